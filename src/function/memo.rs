//! The last answer for each XR, given again while nothing it depends on
//! has changed.
//!
//! Crossplane calls the function for every XR on every poll and watch
//! event, usually with nothing changed. An answer depends on the request
//! (the XR with its status, what is observed, the input, the credentials,
//! the context) and on the registry answers the caches gave while it was
//! built. So an answer is kept per XR with a fingerprint of the whole
//! request (all but its tag) and the moment the first of those registry
//! answers stops being trusted; a request with the same fingerprint before
//! then gets the same answer, with its own tag. Anything else is composed
//! afresh. Only answers built without a registry failure are kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sdk::protobuf::value::Kind;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::proto::v1::{RequestMeta, RunFunctionRequest, RunFunctionResponse};
use crate::sdk::structs::str_at;

/// Default byte budget of the answers kept.
pub const DEFAULT_MEMO_BYTES: u64 = 32 * 1024 * 1024;

/// What an answer is kept under, and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    /// The XR: apiVersion, kind, namespace and name.
    xr: String,
    /// sha256 of the request without its tag.
    fingerprint: [u8; 32],
}

#[derive(Debug)]
struct KeptAnswer {
    fingerprint: [u8; 32],
    response: RunFunctionResponse,
    until: Instant,
}

pub struct Memo {
    answers: moka::sync::Cache<String, Arc<KeptAnswer>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Memo {
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            answers: moka::sync::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|xr: &String, kept: &Arc<KeptAnswer>| {
                    u32::try_from(xr.len() + kept.response.encoded_len() + 96).unwrap_or(u32::MAX)
                })
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether answers are kept at all; without a budget there is no need
    /// to work out what a request asks.
    pub fn is_enabled(&self) -> bool {
        self.answers.policy().max_capacity() != Some(0)
    }

    /// What `request` asks, for [`Memo::answer`] and [`Memo::keep`]; `None`
    /// when it names no XR.
    pub fn asked(request: &mut RunFunctionRequest) -> Option<Asked> {
        let xr = request
            .observed
            .as_ref()?
            .composite
            .as_ref()?
            .resource
            .as_ref()?;
        let Some(Kind::StructValue(metadata)) = xr.fields.get("metadata")?.kind.as_ref() else {
            return None;
        };
        let text = |within, field| str_at(within, &[field]).unwrap_or_default();
        let xr = format!(
            "{}/{}/{}/{}",
            text(xr, "apiVersion"),
            text(xr, "kind"),
            text(metadata, "namespace"),
            text(metadata, "name")
        );
        // The tag names this one call; everything else is what is asked.
        let meta = request.meta.take();
        let capabilities = meta.as_ref().map(|m| m.capabilities.clone());
        request.meta = capabilities
            .filter(|c| !c.is_empty())
            .map(|capabilities| RequestMeta {
                tag: String::new(),
                capabilities,
            });
        let fingerprint = Sha256::digest(request.encode_to_vec()).into();
        request.meta = meta;
        Some(Asked { xr, fingerprint })
    }

    /// The kept answer to exactly this question, if it is still trusted.
    pub fn answer(&self, asked: &Asked) -> Option<RunFunctionResponse> {
        let kept = self
            .answers
            .get(&asked.xr)
            .filter(|k| k.fingerprint == asked.fingerprint && Instant::now() < k.until);
        match kept {
            Some(kept) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(kept.response.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `response` as the answer to `asked` for `valid_for`.
    pub fn keep(&self, asked: Asked, response: &RunFunctionResponse, valid_for: Duration) {
        let Some(until) = Instant::now().checked_add(valid_for) else {
            return;
        };
        self.answers.insert(
            asked.xr,
            Arc::new(KeptAnswer {
                fingerprint: asked.fingerprint,
                response: response.clone(),
                until,
            }),
        );
    }

    /// Forgets the answer kept for the XR of `asked`.
    pub fn forget(&self, asked: &Asked) {
        self.answers.invalidate(&asked.xr);
    }

    /// Calls answered from memory, and calls composed, so far.
    pub fn counts(&self) -> MemoCounts {
        MemoCounts {
            answered: self.hits.load(Ordering::Relaxed),
            composed: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// How the calls so far were served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoCounts {
    /// Answered from the last answer for their XR.
    pub answered: u64,
    /// Composed afresh.
    pub composed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{RequestMeta, Resource, State};
    use crate::sdk::structs::json_to_struct;
    use serde_json::json;

    fn request(name: &str, version: &str, tag: &str) -> RunFunctionRequest {
        let xr = json!({"apiVersion": "a/v1", "kind": "X", "metadata": {"name": name},
                        "spec": {"version": version}});
        RunFunctionRequest {
            meta: Some(RequestMeta {
                tag: tag.into(),
                ..Default::default()
            }),
            observed: Some(State {
                composite: Some(Resource {
                    resource: json_to_struct(&xr),
                    ..Default::default()
                }),
                resources: Default::default(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_question_under_another_tag_is_the_same_question() {
        let memo = Memo::new(DEFAULT_MEMO_BYTES);
        let asked = Memo::asked(&mut request("a", "v1", "t1")).expect("an XR");
        memo.keep(
            asked,
            &RunFunctionResponse::default(),
            Duration::from_secs(60),
        );
        let again = Memo::asked(&mut request("a", "v1", "t2")).expect("an XR");
        assert!(memo.answer(&again).is_some());
        let changed = Memo::asked(&mut request("a", "v2", "t3")).expect("an XR");
        assert!(memo.answer(&changed).is_none(), "the spec changed");
        let other = Memo::asked(&mut request("b", "v1", "t4")).expect("an XR");
        assert!(memo.answer(&other).is_none(), "another XR");
        assert_eq!(
            memo.counts(),
            MemoCounts {
                answered: 1,
                composed: 2
            }
        );
    }

    /// What the caller can send changes what is asked of it (the Lock and
    /// leaving packages), so it is part of the question; the tag is not.
    #[test]
    fn capabilities_are_part_of_the_question() {
        let plain = Memo::asked(&mut request("a", "v1", "t1")).expect("an XR");
        let mut capable = request("a", "v1", "t2");
        if let Some(meta) = capable.meta.as_mut() {
            meta.capabilities = vec![crate::proto::v1::Capability::RequiredResources as i32];
        }
        let capable = Memo::asked(&mut capable).expect("an XR");
        assert_ne!(plain, capable);
        let mut untagged = request("a", "v1", "");
        untagged.meta = None;
        assert_eq!(Memo::asked(&mut untagged).expect("an XR"), plain);
    }

    #[test]
    fn the_tag_is_put_back() {
        let mut request = request("a", "v1", "t1");
        Memo::asked(&mut request).expect("an XR");
        assert_eq!(request.meta.expect("meta").tag, "t1");
    }

    #[test]
    fn answers_expire() {
        let memo = Memo::new(DEFAULT_MEMO_BYTES);
        let asked = Memo::asked(&mut request("a", "v1", "t")).expect("an XR");
        memo.keep(
            asked.clone(),
            &RunFunctionResponse::default(),
            Duration::ZERO,
        );
        assert!(memo.answer(&asked).is_none());
    }

    #[test]
    fn a_request_without_an_xr_is_not_kept() {
        assert!(Memo::asked(&mut RunFunctionRequest::default()).is_none());
    }
}

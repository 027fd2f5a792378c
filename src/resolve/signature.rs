//! The signature gate: whether a version passes the input's `verify`, by
//! the cosign signatures stored beside its digest (`registry::signatures`,
//! verified by `crate::signature`).
//!
//! A version passes when one signature, by an authority whose
//! `repositories` match the package's, verifies and names its own digest.
//! Otherwise the reason says the most telling thing found, in this order:
//! a valid signature for another digest, a valid signature by an authority
//! that does not cover the repository, a signature by a key no authority
//! holds or by an identity no keyless authority allows, one no key or
//! trusted root verifies, a keyless one with no keyless authority, one
//! that cannot be read, and last `unsigned` when there is none at all.
//! Authorities covering the repository are tried first, so a keyless
//! refusal names one of them when there is one.
//!
//! Verdicts are kept ([`VERDICTS`]): judging is ECDSA (keyless, also a
//! certificate chain and a log entry) for every signature of a digest,
//! while what a digest's signatures say never changes. A verdict is reused
//! while the policy and the signatures found are the same as when it was
//! reached, so a signature added beside an image is judged once the
//! registry's cache reads it again (within the tag TTL).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use super::scan::Verdict;
use crate::keyless::Failure;
use crate::signature::{Finding, Signatures, verify_bundle, verify_legacy};
use crate::spec::verify::Verify;

/// The bytes of verdicts kept (with the signatures each was reached on,
/// shared with the registry's cache while it holds them).
pub const MAX_VERDICT_BYTES: u64 = 16 * 1024 * 1024;

/// The verdicts of this process, for every registry and XR.
pub static VERDICTS: LazyLock<Verdicts> = LazyLock::new(|| Verdicts::new(MAX_VERDICT_BYTES));

/// Verdicts reached, by repository and digest.
pub struct Verdicts {
    reached: moka::sync::Cache<(String, String), Arc<Reached>>,
    /// How many times signatures were judged (not reused): for tests.
    judged: AtomicU64,
}

/// One verdict, and what it was reached on.
struct Reached {
    /// [`Verify::fingerprint`] of the policy.
    policy: [u8; 32],
    found: Arc<Signatures>,
    verdict: Verdict,
}

impl Reached {
    /// Approximate bytes held, key included.
    fn weight(&self, key: &(String, String)) -> u32 {
        let reason = match &self.verdict {
            Verdict::Pass => 0,
            Verdict::Fail(reason) => reason.len(),
        };
        let bytes = key.0.len() + key.1.len() + self.found.weight() + reason + 128;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

impl Verdicts {
    /// Keeps verdicts up to about `bytes`.
    pub fn new(bytes: u64) -> Self {
        Self {
            reached: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|key, reached: &Arc<Reached>| reached.weight(key))
                .build(),
            judged: AtomicU64::new(0),
        }
    }

    /// [`judge`], or the verdict already reached on the same policy and
    /// signatures. Judging runs on a blocking thread: ECDSA and
    /// certificate checks are CPU work the async workers should not wait
    /// on.
    pub async fn judge(
        &self,
        verify: &Arc<Verify>,
        repository: &str,
        digest: &str,
        found: &Arc<Signatures>,
    ) -> Verdict {
        let key = (repository.to_owned(), digest.to_owned());
        let policy = verify.fingerprint();
        if let Some(reached) = self.reached.get(&key)
            && reached.policy == policy
            && reached.found == *found
        {
            return reached.verdict.clone();
        }
        self.judged.fetch_add(1, Ordering::Relaxed);
        let task = {
            let (verify, found) = (Arc::clone(verify), Arc::clone(found));
            let (repository, digest) = key.clone();
            tokio::task::spawn_blocking(move || judge(&verify, &repository, &digest, &found))
        };
        let verdict = match task.await {
            Ok(verdict) => verdict,
            // Not kept: the next resolution judges again.
            Err(e) => return Verdict::Fail(format!("signature check failed: {e}")),
        };
        let reached = Reached {
            policy,
            found: Arc::clone(found),
            verdict: verdict.clone(),
        };
        self.reached.insert(key, Arc::new(reached));
        verdict
    }

    /// How many times signatures were judged rather than reused.
    #[cfg(test)]
    pub fn judged(&self) -> u64 {
        self.judged.load(Ordering::Relaxed)
    }
}

/// Judges the signatures `found` beside `repository@digest`.
pub fn judge(verify: &Verify, repository: &str, digest: &str, found: &Signatures) -> Verdict {
    if found.is_empty() {
        return Verdict::Fail("unsigned".to_string());
    }
    let signers = verify.signers(repository);
    let findings = found
        .legacy
        .iter()
        .map(|s| verify_legacy(s, digest, &signers))
        .chain(
            found
                .bundles
                .iter()
                .map(|b| verify_bundle(b, digest, &signers)),
        )
        .chain(found.unreadable.iter().cloned().map(Finding::Unreadable));
    let covers = |authority: &str| {
        verify
            .authority(authority)
            .is_some_and(|a| a.covers(repository))
    };
    let mut best: Option<(u8, String)> = None;
    for finding in findings {
        let (rank, reason) = match finding {
            Finding::Verified { authority } if covers(&authority) => return Verdict::Pass,
            Finding::OtherDigest { authority, digest } if covers(&authority) => (
                0,
                format!("signature for another digest ({digest}), by authority {authority}"),
            ),
            Finding::Verified { authority } | Finding::OtherDigest { authority, .. } => (
                1,
                format!(
                    "no matching authority: signed by authority {authority}, which does not cover {repository}"
                ),
            ),
            Finding::UnknownKey => (
                2,
                "no matching key: signed by a key no authority holds".to_string(),
            ),
            Finding::Refused {
                authority,
                failure: failure @ Failure::NoMatchingIdentity { .. },
            } => (2, format!("{failure}, for authority {authority}")),
            Finding::Invalid => (
                3,
                "signature invalid: no authority's key verifies it".to_string(),
            ),
            Finding::Refused { authority, failure } => {
                (3, format!("{failure}, for authority {authority}"))
            }
            Finding::Keyless => (4, "keyless signature: no authority is keyless".to_string()),
            Finding::Unreadable(why) => (5, format!("signature unreadable: {why}")),
        };
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, reason));
        }
    }
    Verdict::Fail(best.map_or_else(|| "unsigned".to_string(), |(_, reason)| reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use crate::signature::LegacySignature;
    use crate::signature::fixtures::{DSSE_BUNDLE, PEM};
    use serde_json::json;

    const DIGEST: &str = "sha256:91ff0910d219ddfd54fbf18323149780b5343da2c558b1e9cdf6df7fe1e65cf0";

    fn policy(repositories: &[&str]) -> Verify {
        decode(json!({"authorities": [
            {"name": "platform", "repositories": repositories, "key": {"publicKey": PEM}}
        ]}))
        .expect("valid")
    }

    fn bundle() -> Signatures {
        Signatures {
            bundles: vec![DSSE_BUNDLE.as_bytes().to_vec()],
            ..Signatures::default()
        }
    }

    fn fails(verdict: Verdict, says: &str) {
        match verdict {
            Verdict::Fail(reason) => assert!(reason.starts_with(says), "{reason}"),
            Verdict::Pass => panic!("passed, wanted {says}"),
        }
    }

    #[test]
    fn verdicts() {
        let ours = policy(&["team/*"]);
        assert_eq!(judge(&ours, "team/a", DIGEST, &bundle()), Verdict::Pass);
        fails(
            judge(&ours, "team/a", DIGEST, &Signatures::default()),
            "unsigned",
        );
        let other = "sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6";
        fails(
            judge(&ours, "team/a", other, &bundle()),
            "signature for another digest (sha256:91ff",
        );
        // Signed by an authority, but one that does not cover the package.
        let both: Verify = decode(json!({"authorities": [
            {"name": "platform", "repositories": ["team/*"], "key": {"publicKey": PEM}},
            {"name": "other", "repositories": ["elsewhere/*"], "key": {"publicKey": PEM}},
        ]}))
        .expect("valid");
        assert_eq!(judge(&both, "team/a", DIGEST, &bundle()), Verdict::Pass);
        fails(
            judge(&policy(&["x/*"]), "team/a", DIGEST, &bundle()),
            "no matching authority: signed by authority platform, which does not cover team/a",
        );
        let forged = Signatures {
            legacy: vec![LegacySignature {
                payload: b"{}".to_vec(),
                signature: "MEUCIQDyxh3DYEIXf7uwspUrZoXaC60lMrItxFKCpvgcOKJehQIgW9WqcflDPvRZyltX5yRbSXu7v3UST1hiHEauTWpl6+Q=".into(),
                ..LegacySignature::default()
            }],
            ..Signatures::default()
        };
        fails(judge(&ours, "team/a", DIGEST, &forged), "signature invalid");
        let unreadable = Signatures {
            unreadable: vec!["the .sig manifest: not a manifest".into()],
            ..Signatures::default()
        };
        fails(
            judge(&ours, "team/a", DIGEST, &unreadable),
            "signature unreadable: the .sig manifest",
        );
        // One good signature among bad ones is enough.
        let mixed = Signatures {
            unreadable: vec!["x".into()],
            ..bundle()
        };
        assert_eq!(judge(&ours, "team/a", DIGEST, &mixed), Verdict::Pass);
    }

    #[tokio::test]
    async fn verdicts_are_reused_while_the_policy_and_the_signatures_are_the_same() {
        let verdicts = Verdicts::new(1024 * 1024);
        let ours = Arc::new(policy(&["team/*"]));
        let signed = Arc::new(bundle());
        let judge = async |verify: &Arc<Verify>, repository: &str, found: &Arc<Signatures>| {
            verdicts.judge(verify, repository, DIGEST, found).await
        };
        assert_eq!(judge(&ours, "team/a", &signed).await, Verdict::Pass);
        assert_eq!(verdicts.judged(), 1);
        // Again, and with the same signatures read again: reused.
        assert_eq!(judge(&ours, "team/a", &signed).await, Verdict::Pass);
        assert_eq!(
            judge(&ours, "team/a", &Arc::new(bundle())).await,
            Verdict::Pass
        );
        assert_eq!(verdicts.judged(), 1);
        // Another policy, other signatures, another repository: judged.
        fails(
            judge(&Arc::new(policy(&["x/*"])), "team/a", &signed).await,
            "no matching authority",
        );
        fails(
            judge(&ours, "team/a", &Arc::new(Signatures::default())).await,
            "unsigned",
        );
        assert_eq!(judge(&ours, "team/b", &signed).await, Verdict::Pass);
        assert_eq!(verdicts.judged(), 4);
        // A signature added later is seen.
        assert_eq!(judge(&ours, "team/a", &signed).await, Verdict::Pass);
        assert_eq!(verdicts.judged(), 5);
    }

    #[tokio::test]
    async fn verdicts_kept_stay_within_their_bytes() {
        let verdicts = Verdicts::new(16 * 1024);
        let ours = Arc::new(policy(&["team/*"]));
        let signed = Arc::new(bundle());
        for i in 0..200 {
            verdicts
                .judge(&ours, &format!("team/{i}"), DIGEST, &signed)
                .await;
        }
        verdicts.reached.run_pending_tasks();
        assert!(verdicts.reached.weighted_size() <= 16 * 1024);
        assert!(verdicts.reached.entry_count() < 200);
    }
}

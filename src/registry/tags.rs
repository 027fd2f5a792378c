//! A repository's tags as one listing gave them ([`Tags`]) and, where the
//! registry said, the digest each tag named then.
//!
//! ECR's `ListImages` answers each tag beside its image's digest, so the
//! digest of a tag chosen from a listing needs no second question (and no
//! second cache lookup) to the registry. A listed digest is only taken when
//! it is the form [`Registry::resolve_digest`](super::Registry::resolve_digest)
//! answers (`sha256:` and 64 lowercase hex digits, the sha256 of the
//! manifest bytes) and the listing agrees with itself about it; otherwise
//! the tag has none, and its digest is asked for as before. Nothing here
//! vouches for the image: the package is read by that digest, and its
//! manifest checked against it, before its metadata is used.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use crate::reference::{Algorithm, Digest};

/// One entry of a listing: a tag and the digest the registry gave for it,
/// if it gave one (unchecked: [`Tags::listed`] checks it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedTag {
    pub tag: String,
    pub digest: Option<String>,
}

/// A repository's tags; shared, so a cached listing is handed out without
/// copying it. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Arc<Listed>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Listed {
    /// Every tag; sorted, each once, whenever `digests` is not empty (so a
    /// tag's digest is found by binary search, with no second copy of the
    /// tags in a map).
    names: Vec<String>,
    /// The digest of `names[i]` at `i`, or none; empty when the registry
    /// gave no digests at all.
    digests: Vec<Option<Digest>>,
}

/// What the entries of a listing said about one tag's digest so far.
enum Said {
    /// Every entry gave this well-formed digest.
    Agreed(Digest),
    /// An entry gave none, a malformed one, or one another entry disagrees
    /// with: the tag's digest is asked for instead.
    Unknown,
}

impl Tags {
    /// Tags as a registry that lists no digests gives them (OCI
    /// `/tags/list`), in its order.
    pub fn new(names: Vec<String>) -> Self {
        Self(Arc::new(Listed {
            names,
            digests: Vec::new(),
        }))
    }

    /// Tags as a listing gave them, each with its digest where the listing
    /// gave a well-formed sha256 one, and the same one wherever it lists the
    /// tag (pages may repeat a tag); sorted, each tag once.
    pub fn listed(entries: impl IntoIterator<Item = ListedTag>) -> Self {
        let mut said: BTreeMap<String, Said> = BTreeMap::new();
        for ListedTag { tag, digest } in entries {
            let digest = digest.as_deref().and_then(resolvable);
            match said.entry(tag) {
                Entry::Vacant(slot) => {
                    slot.insert(digest.map_or(Said::Unknown, Said::Agreed));
                }
                Entry::Occupied(mut slot) => {
                    let agrees = matches!((slot.get(), &digest),
                        (Said::Agreed(before), Some(now)) if before == now);
                    if !agrees {
                        slot.insert(Said::Unknown);
                    }
                }
            }
        }
        let (names, digests) = said
            .into_iter()
            .map(|(tag, said)| match said {
                Said::Agreed(digest) => (tag, Some(digest)),
                Said::Unknown => (tag, None),
            })
            .unzip();
        Self(Arc::new(Listed { names, digests }))
    }

    /// The tags, for callers that need nothing else.
    pub fn as_slice(&self) -> &[String] {
        &self.0.names
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.names.iter()
    }

    pub fn len(&self) -> usize {
        self.0.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.names.is_empty()
    }

    pub fn contains(&self, tag: &str) -> bool {
        self.position(tag).is_some()
    }

    /// The digest the listing gave for `tag` (`sha256:` and 64 lowercase
    /// hex digits), if it gave one it agreed with itself about.
    pub fn digest_of(&self, tag: &str) -> Option<&str> {
        // A listing without digests is not searched for one.
        let digests = &self.0.digests;
        if digests.is_empty() {
            return None;
        }
        digests[self.position(tag)?].as_ref().map(Digest::as_str)
    }

    /// Where `tag` is among the names: by binary search when they are
    /// sorted (a listing with digests), else by looking at each.
    fn position(&self, tag: &str) -> Option<usize> {
        let names = &self.0.names;
        if self.0.digests.is_empty() {
            names.iter().position(|name| name == tag)
        } else {
            names.binary_search_by(|name| name.as_str().cmp(tag)).ok()
        }
    }

    /// Approximate bytes held, for a cache's budget.
    pub fn weight(&self) -> usize {
        let names: usize = self.0.names.iter().map(|n| n.len() + 24).sum();
        let digests: usize = self
            .0
            .digests
            .iter()
            .map(|d| d.as_ref().map_or(8, |d| d.as_str().len() + 32))
            .sum();
        names + digests + 48
    }
}

/// `digest` when it is what `resolve_digest` would answer for its tag: a
/// well-formed sha256 digest. A sha512 one is well formed but names the
/// manifest by another hash than the one the resolver compares and reports.
fn resolvable(digest: &str) -> Option<Digest> {
    Digest::parse(digest, "a digest ListImages gave")
        .ok()
        .filter(|d| d.algorithm() == Algorithm::Sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const B: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn entry(tag: &str, digest: Option<&str>) -> ListedTag {
        ListedTag {
            tag: tag.to_string(),
            digest: digest.map(str::to_string),
        }
    }

    #[test]
    fn a_listing_gives_each_tag_once_sorted_with_its_digest() {
        let tags = Tags::listed([
            entry("v2", Some(B)),
            entry("v1", Some(A)),
            entry("v2", Some(B)),
        ]);
        assert_eq!(tags.as_slice(), ["v1".to_string(), "v2".to_string()]);
        assert_eq!(tags.digest_of("v1"), Some(A));
        assert_eq!(tags.digest_of("v2"), Some(B));
        assert_eq!(tags.digest_of("v3"), None);
        assert_eq!(tags.digest_of(A), None, "a digest is not a tag");
    }

    #[test]
    fn a_malformed_digest_is_not_taken() {
        let sha512 = format!("sha512:{}", "a".repeat(128));
        let upper = A.to_uppercase().replace("SHA256", "sha256");
        let short = &A[..A.len() - 1];
        let tags = Tags::listed([
            entry("none", None),
            entry("sha512", Some(&sha512)),
            entry("upper", Some(&upper)),
            entry("short", Some(short)),
            entry("junk", Some("latest")),
            entry("good", Some(A)),
        ]);
        assert_eq!(tags.len(), 6);
        for tag in ["none", "sha512", "upper", "short", "junk"] {
            assert_eq!(tags.digest_of(tag), None, "{tag}");
        }
        assert_eq!(tags.digest_of("good"), Some(A));
    }

    #[test]
    fn a_tag_listed_with_two_digests_has_none() {
        let tags = Tags::listed([
            entry("v1", Some(A)),
            entry("v1", Some(B)),
            entry("v2", Some(A)),
            entry("v2", None),
            entry("v3", Some("sha256:bad")),
            entry("v3", Some(A)),
        ]);
        assert_eq!(tags.len(), 3);
        for tag in ["v1", "v2", "v3"] {
            assert_eq!(tags.digest_of(tag), None, "{tag}");
        }
    }

    #[test]
    fn tags_without_digests_keep_their_order() {
        let tags = Tags::new(vec!["b".into(), "a".into()]);
        assert_eq!(tags.as_slice(), ["b".to_string(), "a".to_string()]);
        assert!(tags.contains("a") && !tags.contains("c"));
        assert_eq!(tags.digest_of("a"), None);
    }
}

//! Dependency versions parsed once per resolution: a large XR's packages
//! mostly ask for their dependencies with the same few texts
//! (`>=v1.0.0`), and every round reads the edges of new selections.

use std::sync::Mutex;

// Hashed for every edge read: foldhash, not SipHash.
use foldhash::HashMap;

use crate::error::Result;
use crate::version::VersionSpec;

/// [`VersionSpec::parse`] by text, remembered for one resolution, errors
/// included (the same text fails the same way).
#[derive(Debug, Default)]
pub(super) struct SpecsCache {
    known: Mutex<HashMap<String, Result<VersionSpec>>>,
}

impl SpecsCache {
    /// What [`VersionSpec::parse`] says of `text`.
    pub(super) fn parse(&self, text: &str) -> Result<VersionSpec> {
        // A poisoned lock only means another lookup panicked; the map is
        // still whole.
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(parsed) = known.get(text) {
            return parsed.clone();
        }
        let parsed = VersionSpec::parse(text);
        known.insert(text.to_owned(), parsed.clone());
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_parse_does_twice() {
        let cache = SpecsCache::default();
        for text in [">=v1.0.0", "latest", "", ">=v1.0.0", "latest", "^1.2"] {
            assert_eq!(cache.parse(text), VersionSpec::parse(text), "{text:?}");
        }
        let known = cache.known.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(known.len(), 4);
    }
}

//! Releases resolution skips: rolled back by a RunFunction call and
//! quarantined in the XR's status (see `function::rollout`), by repository.

use std::collections::BTreeMap;

/// One release held back: a tag (or digest) and the digest it named when
/// it was rolled back. The same tag pushed again at another digest is a new
/// release, and is not held back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub digest: String,
}

/// The releases held back, by ECR repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quarantine {
    by_repository: BTreeMap<String, Vec<Release>>,
}

impl Quarantine {
    pub fn insert(&mut self, repository: &str, release: Release) {
        self.by_repository
            .entry(repository.to_string())
            .or_default()
            .push(release);
    }

    /// The releases of `repository` held back at `version`.
    pub fn at<'a>(
        &'a self,
        repository: &str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Release> {
        self.by_repository
            .get(repository)
            .into_iter()
            .flatten()
            .filter(move |r| r.version == version)
    }
}

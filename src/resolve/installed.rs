//! What is installed, as the resolver sees it: the caller's answer to
//! "which package of this repository exists in the cluster, at which
//! version", asked only when a dependency stops resolving.

use super::graph::PackageNode;

/// The installed packages that may stand in for a dependency that no longer
/// resolves. A RunFunction call answers from the XR's status (re-validated)
/// and the package objects it observes; `bootstrap` has none.
pub trait Installed: Send + Sync {
    /// The installed package of `repository`, if there is one.
    fn get(&self, repository: &str) -> Option<&PackageNode>;
}

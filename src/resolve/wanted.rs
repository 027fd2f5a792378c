//! What one round of resolution wants: the packages, the requirements
//! placed on each, and the dependency edges read from their metadata.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::package::PackageKind;
use crate::version::VersionSpec;

/// An ECR repository name as the resolver holds it. Every round names each
/// wanted repository again (map keys, edges, picks): shared, a round clones
/// pointers, not bytes.
pub(super) type Repository = Arc<str>;

/// A version requirement and who placed it, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Requirement {
    pub(super) spec: VersionSpec,
    pub(super) source: String,
}

/// A package that is wanted this round. `Eq`, so an `Arc` of one compares
/// equal to itself by pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Wanted {
    pub(super) kind: PackageKind,
    /// The reverse mirror mapping of a listed repository; `None` for a
    /// package only its dependents name.
    pub(super) mirrored: Option<String>,
    /// The upstream paths its dependents declare for it, shared with
    /// their edges.
    pub(super) declared: BTreeSet<Arc<str>>,
    /// Index into `spec.packages` when the user listed it.
    pub(super) listed: Option<usize>,
    /// Constraints placed by the packages that depend on it, shared with
    /// the edges that place them: every round wants them again, and one
    /// wanted as in the round before compares equal by pointer.
    pub(super) requirements: Vec<Arc<Requirement>>,
}

impl Wanted {
    /// The path the package is referenced by. A declared path wins, since
    /// it is the one Crossplane's Lock looks for; of several, the least, so
    /// neither the dependents' order nor their names matter.
    pub(super) fn upstream(&self) -> &str {
        self.declared
            .first()
            .map(|declared| &**declared)
            .or(self.mirrored.as_deref())
            .unwrap_or("")
    }
}

/// A dependency edge read from a package's metadata.
#[derive(Clone, Debug)]
pub(super) struct Edge {
    pub(super) repository: Repository,
    pub(super) kind: PackageKind,
    pub(super) upstream: Arc<str>,
    pub(super) requirement: Arc<Requirement>,
}

//! Version resolution: from the packages an XR asks for to the full,
//! dependency-closed set Crossplane must install, read from the registry.
//!
//! Resolution runs to a fixed point. Each round selects a version for every
//! package currently wanted (the XR's packages plus everything their selected
//! versions depend on), then reads the metadata of newly selected images. A
//! new dependency or a changed selection starts another round; a stable round
//! ends it. The registry is behind a cache, so repeated rounds cost nothing.

//!
//! - `resolver.rs`: the rounds, one [`Resolver`] per resolution.
//! - `wanted.rs`: what a round wants: packages, requirements, edges.
//! - `specs.rs`: dependency versions parsed once per resolution.
//! - `select.rs`: one wanted package's version (constraints, dialects,
//!   quarantine, the supply-chain gate, the installed one kept).
//! - `resolution.rs`: what comes out, the install graph (`graph.rs`) and
//!   the installed dependencies kept as they are.
//! - `installed.rs`: what the caller says is installed.
//! - `quarantine.rs`: releases the caller says to skip.
//! - `scan.rs`: the supply-chain gate on ECR's image scans (the input's
//!   `scan`), and the versions it skipped.
//! - `signature.rs`: the supply-chain gate on cosign signatures (the
//!   input's `verify`).

pub mod graph;
mod installed;
mod quarantine;
mod resolution;
mod resolver;
pub mod scan;
mod select;
mod signature;
mod specs;
mod wanted;

pub use self::installed::Installed;
pub use self::quarantine::{Quarantine, Release};
pub use self::resolution::{Blocked, Kept, Resolution};
pub use self::resolver::Resolver;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::registry::Connector;
use crate::registry::credentials::AwsCredentials;
use crate::spec::{Settings, XrSpec};

/// What a RunFunction call knows from the XR's status (re-validated) and
/// the cluster that narrows resolution. `bootstrap` and `mirror` have
/// none.
#[derive(Clone, Copy, Default)]
pub struct Hints<'a> {
    /// The remembered packages that exist in the cluster: a dependency
    /// among them that no longer resolves is kept as it is rather than
    /// failing the whole XR.
    pub installed: Option<&'a dyn Installed>,
    /// Releases rolled back: a constraint takes the next best version.
    pub quarantine: Option<&'a Quarantine>,
}

/// Resolves `spec` against the registry `settings` name, reached through
/// `connector`, within `deadline`, narrowed by `hints`: what both a
/// RunFunction call and `bootstrap` do.
pub async fn resolve_within(
    connector: &dyn Connector,
    settings: &Settings,
    spec: &XrSpec,
    hints: Hints<'_>,
    credentials: Option<&AwsCredentials>,
    deadline: Duration,
) -> Result<Resolution> {
    let work = async {
        let registry = connector
            .connect(&settings.registry, credentials, settings.tag_cache_ttl)
            .await?;
        Resolver::new(settings, spec, registry.as_ref())
            .keeping(hints.installed)
            .skipping(hints.quarantine)
            .resolve()
            .await
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| Error::DeadlineExceeded {
            seconds: deadline.as_secs(),
        })?
}

#[cfg(test)]
mod tests;

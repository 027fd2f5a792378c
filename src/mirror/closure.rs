//! The dependency closure of what was asked, resolved from upstream with
//! the function's own resolver, so `mirror` copies exactly what the
//! function would install.

use super::error::Error;
use super::upstream::Reader;
use crate::resolve::Resolver;
use crate::resolve::graph::Graph;
use crate::spec::policy::Origin;
use crate::spec::xr::XrRef;
use crate::spec::{Input, Settings, XrSpec};

/// Resolves `spec`'s packages and their dependencies.
pub async fn resolve(spec: &XrSpec, input: &Input, upstream: &Reader) -> Result<Graph, Error> {
    // Mirroring is the platform team's own act: no allowlist bounds it
    // beyond the repositories its input allows.
    let settings = Settings::with_origin(XrRef::named("mirror"), spec, input, Origin::Platform)?;
    eprintln!(
        "resolving {} packages and their dependencies upstream",
        spec.packages.len()
    );
    let resolution = Resolver::new(&settings, spec, upstream).resolve().await?;
    for (name, skipped) in &resolution.skipped {
        let skipped: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        eprintln!(
            "{name}: the supply-chain gate skipped {}",
            skipped.join(", ")
        );
    }
    if !resolution.blocked.is_empty() {
        let blocked: Vec<String> = resolution.blocked.iter().map(ToString::to_string).collect();
        return Err(Error::Refused {
            packages: blocked.join("; "),
        });
    }
    Ok(resolution.graph)
}

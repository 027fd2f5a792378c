//! Composers: turn the settings and the resolved install graph into the
//! Kubernetes objects Crossplane should create, each with what it waits for.

pub mod activation;
pub mod iam;
pub mod packages;
pub mod verification;

// Hashed for every planned object of every call: foldhash, not SipHash.
use foldhash::HashSet;

use serde_json::{Map, Value as Json};

use crate::error::{DependencyError, Result};
use crate::resolve::graph::Graph;
use crate::spec::Settings;

/// One object the function wants to exist, keyed by its composition
/// resource name.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub name: String,
    pub object: Map<String, Json>,
    /// Composition resource names that must be observed ready first.
    pub needs: Vec<String>,
}

/// Prefixes of the composition resource names this function owns. Anything
/// else in observed state belongs to another pipeline step.
pub const OWNED_PREFIXES: [&str; 6] = [
    activation::PREFIX,
    iam::PREFIX,
    packages::IMAGE_CONFIG_PREFIX,
    packages::PACKAGE_PREFIX,
    USAGE_PREFIX,
    verification::PREFIX,
];

/// The composition resource names of the Usages that protect what this XR
/// uses of another's objects (composed by `function::ownership`) start with
/// this.
pub const USAGE_PREFIX: &str = "usage-";

pub fn is_owned(resource_name: &str) -> bool {
    OWNED_PREFIXES.iter().any(|p| resource_name.starts_with(p))
}

/// Everything to compose: the activation policy and IAM first, then
/// mirrors and Crossplane's verification (`verify.composeImageConfig`),
/// then packages in install order, each needing all of those: Crossplane
/// verifies a package only when it first fetches it.
pub fn plan(settings: &Settings, graph: &Graph) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    let mut iam = iam::compose(settings, graph);
    planned.extend(activation::compose(settings, &mut iam));
    let gates: Vec<String> = iam
        .iter()
        .filter(|p| p.object.get("kind").and_then(Json::as_str) == Some("RolePolicyAttachment"))
        .map(|p| p.name.clone())
        .collect();
    planned.extend(iam);
    let mirrors = packages::compose_image_configs(settings, graph);
    let mut needs = gates;
    needs.extend(mirrors.iter().map(|m| m.name.clone()));
    planned.extend(mirrors);
    let verification = verification::compose(settings);
    needs.extend(verification.iter().map(|v| v.name.clone()));
    planned.extend(verification);
    planned.extend(packages::compose_packages(settings, graph, &needs)?);
    check_unique(&planned)?;
    Ok(planned)
}

/// Two planned resources under one composition resource name, or two
/// objects of one kind under one `metadata.name`, would overwrite each
/// other; refuse instead. Names are hashed where they are cut or folded, so
/// this takes inputs crafted to collide. Hashed sets: a thousand names
/// with a long common prefix cost an ordered set many byte comparisons.
fn check_unique(planned: &[Planned]) -> Result<()> {
    let mut resources: HashSet<&str> =
        HashSet::with_capacity_and_hasher(planned.len(), Default::default());
    let mut objects: HashSet<(&str, &str, &str)> =
        HashSet::with_capacity_and_hasher(planned.len(), Default::default());
    for p in planned {
        let field = |key: &str| p.object.get(key).and_then(Json::as_str).unwrap_or_default();
        let name = p
            .object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Json::as_str)
            .unwrap_or_default();
        if !resources.insert(&p.name) || !objects.insert((field("apiVersion"), field("kind"), name))
        {
            return Err(DependencyError::SameResourceName {
                name: p.name.clone(),
                kind: field("kind").to_string(),
                object: name.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

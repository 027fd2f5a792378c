//! What the composer needs to know from a package registry, behind one trait.
//!
//! The resolver asks three questions: which tags a repository has, which
//! digest a tag (or digest) names, and what the package at a digest declares
//! in its `package.yaml`. `ecr` answers them from AWS ECR, `memory` from a
//! table (for tests), and `cache` wraps either so that an unchanged XR costs no
//! AWS calls. `xpkg` reads a package out of an OCI image for any registry;
//! `distribution` speaks the OCI distribution API to any registry (the
//! `mirror` command's upstreams and its writes into ECR).

pub mod blob;
pub mod cache;
pub mod connector;
pub mod credentials;
pub mod distribution;
pub mod ecr;
pub mod memory;
pub mod seen;
pub mod xpkg;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The kinds of Crossplane package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PackageKind {
    Provider,
    Function,
    Configuration,
}

impl PackageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Provider => "Provider",
            PackageKind::Function => "Function",
            PackageKind::Configuration => "Configuration",
        }
    }
}

impl std::fmt::Display for PackageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PackageKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "Provider" => Ok(PackageKind::Provider),
            "Function" => Ok(PackageKind::Function),
            "Configuration" => Ok(PackageKind::Configuration),
            other => Err(format!(
                "unknown package kind {other:?}; expected Provider, Function or Configuration"
            )),
        }
    }
}

/// One `spec.dependsOn[]` entry of a package's `package.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// Upstream package path without tag, e.g. `xpkg.upbound.io/upbound/provider-family-aws`.
    pub package: String,
    pub kind: PackageKind,
    /// A Masterminds constraint or a `sha256:` digest, as written.
    pub version: String,
}

/// The parts of a package's `meta.pkg.crossplane.io` document the resolver uses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PackageMeta {
    /// `kind` of the meta document, when it is one we know.
    pub kind: Option<PackageKind>,
    /// `metadata.name` of the meta document.
    pub name: String,
    pub depends_on: Vec<Dependency>,
}

/// A repository's tags.
pub type Tags = std::sync::Arc<Vec<String>>;

/// One registry (one AWS account and region). Repository names are ECR
/// repository names (`upbound/provider-aws-s3`), never full image paths.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Every tag in the repository, in no particular order; shared, so a
    /// cached list is handed out without copying it.
    async fn list_tags(&self, repository: &str) -> Result<Tags>;

    /// The digest (`sha256:...`) a tag points at: the sha256 of the manifest
    /// bytes, which may be an image index. A digest resolves to itself once
    /// the image is known to exist.
    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String>;

    /// The package metadata of the image at `digest`, following an index to
    /// its single (or `linux/amd64`) manifest.
    async fn package_meta(&self, repository: &str, digest: &str) -> Result<PackageMeta>;
}

/// Hands out the registry for one AWS account and region. Implementations
/// keep registries (and their caches) across calls, so repeated RunFunction
/// calls for the same registry and credentials reuse what was learnt.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The registry to use; `credentials: None` means the default AWS
    /// credential chain. `tag_ttl` bounds how long tag answers are trusted.
    async fn connect(
        &self,
        registry: &crate::aws::RegistryRef,
        credentials: Option<&credentials::AwsCredentials>,
        tag_ttl: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn Registry>>;
}

//! What the composer needs to know from a package registry, behind one trait.
//!
//! The resolver asks three questions: which tags a repository has (with,
//! where the registry lists them, the digest each names: see [`tags`]),
//! which digest a tag (or digest) names, when the listing did not say, and
//! what the package at a digest declares in its `package.yaml` (read by
//! that digest, its manifest checked against it); with the input's `scan`,
//! a fourth: what the image scan says about a digest (`scan`); with its
//! `verify`, a fifth: which cosign signatures are stored beside a digest.
//! `ecr` answers them from AWS ECR, `memory` from a table (for tests), and
//! `cache` wraps either so that an unchanged XR costs no AWS calls. Reading
//! a package out of an image is `crate::oci`'s.

pub mod cache;
pub mod connector;
pub mod credentials;
pub mod ecr;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod scan;
pub mod seen;
pub mod tags;

use std::sync::Arc;

use async_trait::async_trait;

use self::scan::ScanReport;
use crate::error::Result;
use crate::package::PackageMeta;
use crate::signature::Signatures;

pub use self::tags::{ListedTag, Tags};

/// One registry (one AWS account and region). Repository names are ECR
/// repository names (`upbound/provider-aws-s3`), never full image paths.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Every tag in the repository, in no particular order, each with its
    /// digest where the registry lists one; shared, so a cached list is
    /// handed out without copying it.
    async fn list_tags(&self, repository: &str) -> Result<Tags>;

    /// The digest (`sha256:...`) a tag points at: the sha256 of the manifest
    /// bytes, which may be an image index. A digest resolves to itself once
    /// the image is known to exist.
    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String>;

    /// The package metadata of the image at `digest`, following an index to
    /// its single (or `linux/amd64`) manifest; shared, so a cached one is
    /// handed out without copying it.
    async fn package_meta(&self, repository: &str, digest: &str) -> Result<Arc<PackageMeta>>;

    /// What the registry's image scan says about the image at `digest`
    /// (ECR: `DescribeImageScanFindings`, see [`scan`]). A registry that
    /// scans nothing answers that the image is not scanned.
    async fn scan_report(&self, repository: &str, digest: &str) -> Result<ScanReport> {
        let _ = (repository, digest);
        Ok(ScanReport::not_scanned("NOT_SUPPORTED"))
    }

    /// The cosign signatures stored beside the image at `digest` (ECR:
    /// the legacy `.sig` tag and the referrers tag, see
    /// `ecr::signatures`), each checked against its digest; verifying them
    /// is `crate::signature`'s. A registry that stores none answers none.
    async fn signatures(&self, repository: &str, digest: &str) -> Result<Arc<Signatures>> {
        let _ = (repository, digest);
        Ok(Arc::default())
    }
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

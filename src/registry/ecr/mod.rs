//! The [`Registry`] answered by AWS ECR.
//!
//! * Tags: `ListImages` (tagged images only, every page), each with the
//!   digest listed beside it.
//! * Tag or digest -> digest: `BatchGetImage` accepting OCI and Docker
//!   manifests and indexes. The digest is the sha256 of the exact manifest
//!   bytes (checked against what ECR reports). Manifests are kept by digest
//!   (they are immutable), so reading a package right after resolving it costs
//!   no second `BatchGetImage`. A tag whose digest its listing gave is not
//!   resolved at all: its package is read by that digest, one
//!   `BatchGetImage` by digest whose bytes are checked against it.
//! * Image scans: `DescribeImageScanFindings`, one page per digest (`scan`).
//! * Signatures: one `BatchGetImage` for cosign's two tags (the referrers
//!   API when there is no referrers tag), then the bundle manifests and the
//!   payload blobs they name (`signatures`).
//! * Package metadata: the manifest (an index is followed to its single or
//!   `linux/amd64` manifest), then the layer annotated `io.crossplane.xpkg:
//!   base`, fetched from the registry data plane (`GET /v2/<repo>/blobs/<digest>`
//!   with the `GetAuthorizationToken` token, following ECR's redirect to S3
//!   without the token) and read as a stream by [`crate::oci::blob`].
//!
//! The AWS API client uses the SDK's own endpoint resolution (so
//! `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL`, FIPS and dual-stack settings
//! apply), the standard retry mode (throttling and 5xx are retried with
//! backoff) and per-attempt and per-operation timeouts.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Registry, Tags};
use crate::error::{Error, Result};
use crate::oci::xpkg::{self, Descriptor, ImageSource, Manifest, ReadOptions};
use crate::package::PackageMeta;
use crate::registry::scan::ScanReport;
use crate::signature::Signatures;

mod api;
mod blobs;
mod client;
mod counters;
mod options;
mod scan;
mod signatures;

pub use blobs::registry_endpoint;
pub use client::EcrRegistry;
pub use counters::CallCounts;
pub use options::{EcrOptions, MAX_LIST_PAGES, MAX_REDIRECTS, REGISTRY_ENDPOINT_ENV};

pub use crate::oci::xpkg::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_LAYERS_SCANNED, OCI_INDEX, OCI_MANIFEST,
    XPKG_ANNOTATION, XPKG_BASE,
};

#[async_trait]
impl Registry for EcrRegistry {
    async fn list_tags(&self, repository: &str) -> Result<Tags> {
        self.list_tags_pages(repository).await
    }

    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
        self.manifest(repository, reference).await.map(|(d, _)| d)
    }

    async fn package_meta(&self, repository: &str, digest: &str) -> Result<Arc<PackageMeta>> {
        let image = EcrImage {
            registry: self,
            repository,
            digest,
        };
        let options = ReadOptions {
            limits: self.options.limits,
            max_layers_scanned: self.options.max_layers_scanned,
            layer_timeout: self.options.blob_timeout,
        };
        xpkg::package_meta(&image, digest, options)
            .await
            .map(Arc::new)
    }

    async fn scan_report(&self, repository: &str, digest: &str) -> Result<ScanReport> {
        self.describe_scan(repository, digest).await
    }

    async fn signatures(&self, repository: &str, digest: &str) -> Result<Arc<Signatures>> {
        self.read_signatures(repository, digest).await.map(Arc::new)
    }
}

/// One package image in ECR, as [`xpkg::package_meta`] reads it.
struct EcrImage<'a> {
    registry: &'a EcrRegistry,
    repository: &'a str,
    /// The package's digest, which errors name.
    digest: &'a str,
}

#[async_trait]
impl ImageSource for EcrImage<'_> {
    type Error = Error;

    async fn manifest(&self, digest: &str) -> Result<Arc<Manifest>> {
        let (_, manifest) = self.registry.manifest(self.repository, digest).await?;
        Ok(manifest)
    }

    async fn open_layer(&self, layer: &Descriptor) -> Result<reqwest::Response> {
        self.registry
            .open_blob(self.repository, &layer.digest)
            .await
    }

    fn invalid(&self, message: String) -> Error {
        self.registry.invalid(self.repository, self.digest, message)
    }

    fn interrupted(&self, message: String) -> Error {
        Error::Unavailable {
            operation: "GetBlob".into(),
            message: format!("{}: {message}", self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::RegistryRef;

    #[test]
    fn endpoint_follows_the_registry_account() {
        let r = RegistryRef::new("222233334444", "us-east-1");
        assert_eq!(
            registry_endpoint(
                Some("https://111122223333.dkr.ecr-fips.us-east-1.amazonaws.com/"),
                &r
            ),
            "https://222233334444.dkr.ecr-fips.us-east-1.amazonaws.com"
        );
        assert_eq!(
            registry_endpoint(None, &r),
            "https://222233334444.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            registry_endpoint(Some("https://vpce.example.com"), &r),
            "https://vpce.example.com"
        );
    }
}

//! The [`Registry`] answered by AWS ECR.
//!
//! * Tags: `ListImages` (tagged images only, every page).
//! * Tag or digest -> digest: `BatchGetImage` accepting OCI and Docker
//!   manifests and indexes. The digest is the sha256 of the exact manifest
//!   bytes (checked against what ECR reports). Manifests are kept by digest
//!   (they are immutable), so reading a package right after resolving it costs
//!   no second `BatchGetImage`.
//! * Package metadata: the manifest (an index is followed to its single or
//!   `linux/amd64` manifest), then the layer annotated `io.crossplane.xpkg:
//!   base`, fetched from the registry data plane (`GET /v2/<repo>/blobs/<digest>`
//!   with the `GetAuthorizationToken` token, following ECR's redirect to S3
//!   without the token) and read as a stream by [`super::blob`].
//!
//! The AWS API client uses the SDK's own endpoint resolution (so
//! `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL`, FIPS and dual-stack settings
//! apply), the standard retry mode (throttling and 5xx are retried with
//! backoff) and per-attempt and per-operation timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use prometheus::IntCounterVec;

use super::credentials::AwsCredentials;
use super::{Registry, Tags};
use crate::aws::RegistryRef;
use crate::error::{Error, Result};
use crate::oci::blob::Limits;
use crate::oci::xpkg::{self, Descriptor, ImageSource, Manifest, ReadOptions};
use crate::package::PackageMeta;

mod api;
mod blobs;
mod counters;

pub use blobs::registry_endpoint;
pub use counters::CallCounts;
use counters::Counters;

pub use crate::oci::xpkg::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_LAYERS_SCANNED, OCI_INDEX, OCI_MANIFEST,
    XPKG_ANNOTATION, XPKG_BASE,
};

/// Environment variable overriding the registry data-plane endpoint (tests,
/// VPC endpoints, pull-through proxies).
pub const REGISTRY_ENDPOINT_ENV: &str = "ECR_REGISTRY_ENDPOINT";

/// Most redirects followed for one blob.
pub const MAX_REDIRECTS: usize = 5;
/// Most `ListImages` pages read for one repository (1000 tags a page).
pub const MAX_LIST_PAGES: usize = 1000;
/// A token is refreshed this long before ECR says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A token whose expiry is already past (clock skew, emulators) is still used
/// for this long; a 401 refreshes it anyway.
const TOKEN_MIN_LIFE: Duration = Duration::from_secs(60);
/// Attempts for one blob GET (connection failures, 429, 5xx).
const BLOB_ATTEMPTS: u32 = 3;

/// Tunables of an [`EcrRegistry`].
#[derive(Clone, Debug)]
pub struct EcrOptions {
    /// Attempts per AWS API operation, first one included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    /// Bound on one attempt of an AWS API call.
    pub attempt_timeout: Duration,
    /// Bound on one AWS API operation, retries included.
    pub operation_timeout: Duration,
    /// Bound on reading one layer blob, redirects and retries included.
    pub blob_timeout: Duration,
    /// AWS API endpoint; `None` lets the SDK resolve it (env and profile
    /// settings included).
    pub api_endpoint: Option<String>,
    /// Registry data-plane endpoint; `None` uses the token's `proxyEndpoint`.
    pub registry_endpoint: Option<String>,
    pub limits: Limits,
    pub max_layers_scanned: usize,
    /// Byte budget of the manifests kept by digest.
    pub manifest_cache_bytes: u64,
    /// Process-wide counter of calls by `operation`, for Prometheus; every
    /// client adds to it, so it survives clients being evicted.
    pub calls_metric: Option<IntCounterVec>,
}

impl Default for EcrOptions {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            blob_timeout: Duration::from_secs(120),
            api_endpoint: None,
            registry_endpoint: None,
            limits: Limits::default(),
            max_layers_scanned: MAX_LAYERS_SCANNED,
            manifest_cache_bytes: 8 * 1024 * 1024,
            calls_metric: None,
        }
    }
}

impl EcrOptions {
    /// Defaults, with the registry endpoint from `ECR_REGISTRY_ENDPOINT`.
    pub fn from_env() -> Self {
        Self {
            registry_endpoint: std::env::var(REGISTRY_ENDPOINT_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty()),
            ..Self::default()
        }
    }
}

struct Token {
    authorization: String,
    endpoint: String,
    refresh_at: Instant,
}

/// One ECR registry (account and region).
pub struct EcrRegistry {
    registry: RegistryRef,
    client: aws_sdk_ecr::Client,
    http: reqwest::Client,
    options: EcrOptions,
    /// Manifests by digest (immutable), bounded by bytes.
    manifests: moka::sync::Cache<String, Arc<Manifest>>,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
    counters: Counters,
}

impl EcrRegistry {
    /// A client for `registry`, with static credentials or (for `None`) the
    /// default AWS credential chain, and options from the environment.
    pub async fn new(registry: RegistryRef, credentials: Option<&AwsCredentials>) -> Result<Self> {
        Self::with_options(registry, credentials, EcrOptions::from_env()).await
    }

    pub async fn with_options(
        registry: RegistryRef,
        credentials: Option<&AwsCredentials>,
        options: EcrOptions,
    ) -> Result<Self> {
        let retry = RetryConfig::standard()
            .with_max_attempts(options.max_attempts.max(1))
            .with_initial_backoff(options.initial_backoff)
            .with_max_backoff(options.max_backoff);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .operation_attempt_timeout(options.attempt_timeout)
            .operation_timeout(options.operation_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(registry.region.clone()))
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(c) = credentials {
            loader = loader.credentials_provider(c.to_sdk());
        }
        if let Some(url) = &options.api_endpoint {
            loader = loader.endpoint_url(url.clone());
        }
        let config = loader.load().await;
        let client = aws_sdk_ecr::Client::new(&config);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.attempt_timeout)
            .build()
            .map_err(|e| Error::Unavailable {
                operation: "GetBlob".into(),
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            counters: Counters::new(options.calls_metric.clone()),
            manifests: moka::sync::Cache::builder()
                .max_capacity(options.manifest_cache_bytes)
                .weigher(|digest: &String, m: &Arc<Manifest>| {
                    u32::try_from(digest.len() + m.bytes.len() + m.media_type.len() + 64)
                        .unwrap_or(u32::MAX)
                })
                .build(),
            registry,
            client,
            http,
            options,
            token: tokio::sync::Mutex::new(None),
        })
    }

    pub fn registry(&self) -> &RegistryRef {
        &self.registry
    }

    /// Calls made so far, by operation.
    pub fn calls(&self) -> CallCounts {
        self.counters.snapshot()
    }

    fn registry_name(&self) -> String {
        self.registry.to_string()
    }

    fn invalid(&self, repository: &str, digest: &str, message: impl Into<String>) -> Error {
        Error::InvalidPackage {
            repository: repository.to_string(),
            digest: digest.to_string(),
            message: message.into(),
        }
    }
}

#[async_trait]
impl Registry for EcrRegistry {
    async fn list_tags(&self, repository: &str) -> Result<Tags> {
        self.list_tags_pages(repository).await.map(Tags::new)
    }

    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
        self.manifest(repository, reference).await.map(|(d, _)| d)
    }

    async fn package_meta(&self, repository: &str, digest: &str) -> Result<PackageMeta> {
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
        xpkg::package_meta(&image, digest, options).await
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

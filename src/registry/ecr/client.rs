//! One ECR registry's client ([`EcrRegistry`]): the AWS API client, the
//! data-plane HTTP client, the manifests kept by digest and the
//! registry token. Its calls are in `api` (the AWS API) and `blobs` (the
//! data plane).

use std::sync::Arc;
use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use super::counters::{CallCounts, Counters};
use super::options::EcrOptions;
use crate::aws::RegistryRef;
use crate::error::{Error, Result};
use crate::oci::xpkg::Manifest;
use crate::registry::credentials::AwsCredentials;

pub(super) struct Token {
    pub(super) authorization: String,
    pub(super) endpoint: String,
    pub(super) refresh_at: Instant,
}

/// One ECR registry (account and region).
pub struct EcrRegistry {
    pub(super) registry: RegistryRef,
    pub(super) client: aws_sdk_ecr::Client,
    pub(super) http: reqwest::Client,
    pub(super) options: EcrOptions,
    /// Manifests by digest (immutable), bounded by bytes.
    pub(super) manifests: moka::sync::Cache<String, Arc<Manifest>>,
    pub(super) token: tokio::sync::Mutex<Option<Arc<Token>>>,
    pub(super) counters: Counters,
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

    pub(super) fn registry_name(&self) -> String {
        self.registry.to_string()
    }

    pub(super) fn invalid(
        &self,
        repository: &str,
        digest: &str,
        message: impl Into<String>,
    ) -> Error {
        Error::InvalidPackage {
            repository: repository.to_string(),
            digest: digest.to_string(),
            message: message.into(),
        }
    }
}

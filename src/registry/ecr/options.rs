//! How an [`EcrRegistry`](super::EcrRegistry) is tuned: retries, timeouts,
//! endpoints, bounds, and the fixed limits on redirects, pages and token
//! lifetimes.

use std::time::Duration;

use prometheus::IntCounterVec;

use crate::oci::blob::LayerLimits;
use crate::oci::xpkg::MAX_LAYERS_SCANNED;

/// Environment variable overriding the registry data-plane endpoint (tests,
/// VPC endpoints, pull-through proxies).
pub const REGISTRY_ENDPOINT_ENV: &str = "ECR_REGISTRY_ENDPOINT";

/// Most redirects followed for one blob.
pub const MAX_REDIRECTS: usize = 5;
/// Most `ListImages` pages read for one repository (1000 tags a page).
pub const MAX_LIST_PAGES: usize = 1000;
/// A token is refreshed this long before ECR says it expires.
pub(super) const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A token whose expiry is already past (clock skew, emulators) is still used
/// for this long; a 401 refreshes it anyway.
pub(super) const TOKEN_MIN_LIFE: Duration = Duration::from_secs(60);
/// Attempts for one blob GET (connection failures, 429, 5xx).
pub(super) const BLOB_ATTEMPTS: u32 = 3;

/// Tunables of an [`EcrRegistry`](super::EcrRegistry).
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
    pub limits: LayerLimits,
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
            limits: LayerLimits::default(),
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

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

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier, ListImagesFilter, TagStatus};
use prometheus::IntCounterVec;

use super::blob::{self, Limits};
use super::cache::evict_oldest;
use super::credentials::AwsCredentials;
use super::distribution::redact;
use super::xpkg::{self, Descriptor, ImageSource, Manifest, ReadOptions};
use super::{PackageMeta, Registry};
use crate::aws::RegistryRef;
use crate::error::{Error, Result};

pub use super::xpkg::{
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
    /// Manifests kept by digest.
    pub manifest_cache_entries: usize,
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
            manifest_cache_entries: 512,
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

/// Calls made by one [`EcrRegistry`], by operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub list_images: u64,
    pub batch_get_image: u64,
    pub get_authorization_token: u64,
    /// GETs of a blob from the registry endpoint.
    pub blob_get: u64,
    /// Redirects (to S3) followed while reading blobs.
    pub blob_redirect: u64,
}

impl CallCounts {
    /// AWS API operations plus blob GETs (redirect hops not counted).
    pub fn total(&self) -> u64 {
        self.list_images + self.batch_get_image + self.get_authorization_token + self.blob_get
    }

    /// `(operation, count)` pairs, labelled as the Prometheus counter is.
    pub fn by_operation(&self) -> [(&'static str, u64); 5] {
        [
            (Operation::ListImages.name(), self.list_images),
            (Operation::BatchGetImage.name(), self.batch_get_image),
            (
                Operation::GetAuthorizationToken.name(),
                self.get_authorization_token,
            ),
            (Operation::GetBlob.name(), self.blob_get),
            (Operation::BlobRedirect.name(), self.blob_redirect),
        ]
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            list_images: self.list_images - earlier.list_images,
            batch_get_image: self.batch_get_image - earlier.batch_get_image,
            get_authorization_token: self.get_authorization_token - earlier.get_authorization_token,
            blob_get: self.blob_get - earlier.blob_get,
            blob_redirect: self.blob_redirect - earlier.blob_redirect,
        }
    }
}

/// What a client counts.
#[derive(Clone, Copy, Debug)]
enum Operation {
    ListImages,
    BatchGetImage,
    GetAuthorizationToken,
    GetBlob,
    BlobRedirect,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::ListImages => "ListImages",
            Operation::BatchGetImage => "BatchGetImage",
            Operation::GetAuthorizationToken => "GetAuthorizationToken",
            Operation::GetBlob => "GetBlob",
            Operation::BlobRedirect => "BlobRedirect",
        }
    }
}

#[derive(Default)]
struct Counters {
    list_images: AtomicU64,
    batch_get_image: AtomicU64,
    get_authorization_token: AtomicU64,
    blob_get: AtomicU64,
    blob_redirect: AtomicU64,
    metric: Option<IntCounterVec>,
}

impl Counters {
    fn new(metric: Option<IntCounterVec>) -> Self {
        Self {
            metric,
            ..Self::default()
        }
    }

    fn record(&self, operation: Operation) {
        let counter = match operation {
            Operation::ListImages => &self.list_images,
            Operation::BatchGetImage => &self.batch_get_image,
            Operation::GetAuthorizationToken => &self.get_authorization_token,
            Operation::GetBlob => &self.blob_get,
            Operation::BlobRedirect => &self.blob_redirect,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(metric) = &self.metric {
            metric.with_label_values(&[operation.name()]).inc();
        }
    }

    fn snapshot(&self) -> CallCounts {
        CallCounts {
            list_images: self.list_images.load(Ordering::Relaxed),
            batch_get_image: self.batch_get_image.load(Ordering::Relaxed),
            get_authorization_token: self.get_authorization_token.load(Ordering::Relaxed),
            blob_get: self.blob_get.load(Ordering::Relaxed),
            blob_redirect: self.blob_redirect.load(Ordering::Relaxed),
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
    manifests: Mutex<ManifestCache>,
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
            manifests: Mutex::new(ManifestCache::new(options.manifest_cache_entries)),
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

    /// Maps an SDK failure to the project's error.
    fn sdk_error<E>(
        &self,
        operation: &str,
        repository: &str,
        reference: Option<&str>,
        err: SdkError<E>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let SdkError::ServiceError(service) = &err {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("").to_string();
            let status = service.raw().status().as_u16();
            match code {
                "RepositoryNotFoundException" => {
                    return Error::RepositoryNotFound {
                        registry: self.registry_name(),
                        repository: repository.to_string(),
                    };
                }
                "InvalidParameterException" if reference.is_some() => {
                    return Error::ImageNotFound {
                        registry: self.registry_name(),
                        repository: repository.to_string(),
                        reference: reference.unwrap_or_default().to_string(),
                        message: format!("{code}: {message}"),
                    };
                }
                "InvalidParameterException" => {
                    return Error::RepositoryNotFound {
                        registry: self.registry_name(),
                        repository: repository.to_string(),
                    };
                }
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "MissingAuthenticationTokenException"
                | "IncompleteSignature" => {
                    return Error::Credentials(format!(
                        "{operation} on {} refused ({code}, HTTP {status}): {message}",
                        self.registry
                    ));
                }
                _ => {
                    return Error::Unavailable {
                        operation: operation.to_string(),
                        message: format!(
                            "{} answered {code} (HTTP {status}): {message}",
                            self.registry
                        ),
                    };
                }
            }
        }
        if is_credentials_error(&err) {
            return Error::Credentials(format!(
                "no usable AWS credentials for {operation} on {}: {}",
                self.registry,
                DisplayErrorContext(&err)
            ));
        }
        let what = match &err {
            SdkError::TimeoutError(_) => "timed out",
            SdkError::DispatchFailure(_) => "could not reach the ECR API",
            SdkError::ResponseError(_) => "unreadable response",
            SdkError::ConstructionFailure(_) => "could not build the request",
            _ => "failed",
        };
        Error::Unavailable {
            operation: operation.to_string(),
            message: format!("{what} ({}): {}", self.registry, DisplayErrorContext(&err)),
        }
    }

    /// The manifest a tag or digest names, and its digest.
    async fn manifest(&self, repository: &str, reference: &str) -> Result<(String, Arc<Manifest>)> {
        let by_digest = reference.starts_with("sha256:");
        if by_digest && let Some(m) = self.cached_manifest(reference) {
            return Ok((reference.to_string(), m));
        }
        let id = if by_digest {
            ImageIdentifier::builder().image_digest(reference).build()
        } else {
            ImageIdentifier::builder().image_tag(reference).build()
        };
        self.counters.record(Operation::BatchGetImage);
        let out = self
            .client
            .batch_get_image()
            .registry_id(&self.registry.account_id)
            .repository_name(repository)
            .image_ids(id)
            .accepted_media_types(OCI_MANIFEST)
            .accepted_media_types(OCI_INDEX)
            .accepted_media_types(DOCKER_MANIFEST)
            .accepted_media_types(DOCKER_MANIFEST_LIST)
            .send()
            .await
            .map_err(|e| self.sdk_error("BatchGetImage", repository, Some(reference), e))?;
        let Some(image) = out.images().first() else {
            let failure = out.failures().first();
            let code = failure.and_then(|f| f.failure_code());
            let reason = failure
                .and_then(|f| f.failure_reason())
                .unwrap_or("no image and no failure reported");
            let message = match code {
                Some(c) => format!("{}: {reason}", c.as_str()),
                None => reason.to_string(),
            };
            return Err(match code {
                Some(
                    ImageFailureCode::UpstreamTooManyRequests
                    | ImageFailureCode::UpstreamUnavailable
                    | ImageFailureCode::KmsError,
                ) => Error::Unavailable {
                    operation: "BatchGetImage".into(),
                    message: format!("{repository}:{reference}: {message}"),
                },
                Some(ImageFailureCode::UpstreamAccessDenied) => Error::Credentials(format!(
                    "pull-through cache upstream refused {repository}:{reference}: {message}"
                )),
                _ => Error::ImageNotFound {
                    registry: self.registry_name(),
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                    message,
                },
            });
        };
        let bytes = image
            .image_manifest()
            .ok_or_else(|| {
                self.invalid(repository, reference, "BatchGetImage returned no manifest")
            })?
            .as_bytes()
            .to_vec();
        let digest = blob::sha256_digest(&bytes);
        if let Some(reported) = image.image_id().and_then(|id| id.image_digest())
            && reported != digest
        {
            return Err(self.invalid(
                repository,
                reported,
                format!("manifest bytes hash to {digest}, not to the digest ECR reports"),
            ));
        }
        if by_digest && digest != reference {
            return Err(self.invalid(
                repository,
                reference,
                format!("manifest fetched by digest hashes to {digest}"),
            ));
        }
        let manifest = Arc::new(Manifest::new(image.image_manifest_media_type(), bytes));
        self.manifests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone(), manifest.clone());
        Ok((digest, manifest))
    }

    fn cached_manifest(&self, digest: &str) -> Option<Arc<Manifest>> {
        self.manifests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
    }

    /// An authorization header and data-plane endpoint, cached until shortly
    /// before the token expires.
    async fn token(&self) -> Result<Arc<Token>> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        self.counters.record(Operation::GetAuthorizationToken);
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| self.sdk_error("GetAuthorizationToken", "", None, e))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| Error::Unavailable {
                operation: "GetAuthorizationToken".into(),
                message: "no authorization data in the answer".into(),
            })?;
        let token = data
            .authorization_token()
            .ok_or_else(|| Error::Unavailable {
                operation: "GetAuthorizationToken".into(),
                message: "no authorization token in the answer".into(),
            })?;
        let endpoint = match &self.options.registry_endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => {
                let proxy = data.proxy_endpoint().map(str::to_string);
                registry_endpoint(proxy.as_deref(), &self.registry)
            }
        };
        let life = data
            .expires_at()
            .and_then(|at| SystemTime::try_from(*at).ok())
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .map(|left| left.saturating_sub(TOKEN_MARGIN))
            .unwrap_or_default()
            .max(TOKEN_MIN_LIFE);
        let token = Arc::new(Token {
            authorization: format!("Basic {token}"),
            endpoint,
            refresh_at: Instant::now() + life,
        });
        *slot = Some(token.clone());
        Ok(token)
    }

    async fn forget_token(&self, stale: &Arc<Token>) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *slot = None;
        }
    }

    /// Opens a blob: the registry GET (with the token), then redirects
    /// without it. Returns a 200 response whose body is the blob.
    async fn open_blob(&self, repository: &str, digest: &str) -> Result<reqwest::Response> {
        let unavailable = |message: String| Error::Unavailable {
            operation: "GetBlob".into(),
            message,
        };
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let url = format!("{}/v2/{repository}/blobs/{digest}", token.endpoint);
            self.counters.record(Operation::GetBlob);
            let sent = self
                .http
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, &token.authorization)
                .send()
                .await;
            let err: Error = match sent {
                Err(e) => unavailable(format!("GET {url}: {}", reqwest_error(&e))),
                Ok(resp) => match resp.status().as_u16() {
                    200 => return Ok(resp),
                    301 | 302 | 303 | 307 | 308 => match self.follow(resp, &url).await {
                        Ok(resp) => return Ok(resp),
                        Err(e) => e,
                    },
                    401 | 403 if !refreshed => {
                        refreshed = true;
                        self.forget_token(&token).await;
                        continue;
                    }
                    401 | 403 => {
                        return Err(Error::Credentials(format!(
                            "the registry {} refused the ECR token (HTTP {}) for {repository}@{digest}",
                            token.endpoint,
                            resp.status().as_u16()
                        )));
                    }
                    404 => {
                        return Err(Error::ImageNotFound {
                            registry: self.registry_name(),
                            repository: repository.to_string(),
                            reference: digest.to_string(),
                            message: "layer blob not found in the registry".into(),
                        });
                    }
                    status => unavailable(format!("GET {url}: HTTP {status}")),
                },
            };
            if attempt >= BLOB_ATTEMPTS {
                return Err(err);
            }
            tokio::time::sleep(self.options.initial_backoff * 2u32.pow(attempt - 1)).await;
        }
    }

    /// Follows redirects from `first` (bounded), never sending the token on.
    async fn follow(&self, mut resp: reqwest::Response, from: &str) -> Result<reqwest::Response> {
        let unavailable = |message: String| Error::Unavailable {
            operation: "GetBlob".into(),
            message,
        };
        let mut url = reqwest::Url::parse(from).map_err(|e| unavailable(format!("{from}: {e}")))?;
        for _ in 0..MAX_REDIRECTS {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| unavailable(format!("redirect from {url} has no Location")))?;
            url = url
                .join(location)
                .map_err(|e| unavailable(format!("bad redirect Location from {url}: {e}")))?;
            self.counters.record(Operation::BlobRedirect);
            resp =
                self.http.get(url.clone()).send().await.map_err(|e| {
                    unavailable(format!("GET {}: {}", redact(&url), reqwest_error(&e)))
                })?;
            match resp.status().as_u16() {
                200 => return Ok(resp),
                301 | 302 | 303 | 307 | 308 => continue,
                status => {
                    return Err(unavailable(format!(
                        "GET {} (redirected blob): HTTP {status}",
                        redact(&url)
                    )));
                }
            }
        }
        Err(unavailable(format!(
            "more than {MAX_REDIRECTS} redirects for {from}"
        )))
    }
}

/// The data-plane endpoint for `registry`: the token's proxy endpoint with
/// the account label set to the registry's (the token works for every
/// registry the principal may read; the proxy endpoint names the caller's
/// own), or the registry host when there is none.
pub fn registry_endpoint(proxy: Option<&str>, registry: &RegistryRef) -> String {
    let Some(proxy) = proxy.map(|p| p.trim_end_matches('/')) else {
        return format!("https://{}", registry.host());
    };
    let (scheme, host) = proxy.split_once("://").unwrap_or(("https", proxy));
    match host.split_once('.') {
        Some((account, rest)) if account.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{scheme}://{}.{rest}", registry.account_id)
        }
        _ => format!("{scheme}://{host}"),
    }
}

fn reqwest_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{what}: {}", xpkg::error_chain(source)),
        None => what.to_string(),
    }
}

fn is_credentials_error<E: std::error::Error + 'static>(err: &SdkError<E>) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

#[async_trait]
impl Registry for EcrRegistry {
    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let mut tags = BTreeSet::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            self.counters.record(Operation::ListImages);
            let page = self
                .client
                .list_images()
                .registry_id(&self.registry.account_id)
                .repository_name(repository)
                .filter(
                    ListImagesFilter::builder()
                        .tag_status(TagStatus::Tagged)
                        .build(),
                )
                .max_results(1000)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("ListImages", repository, None, e))?;
            tags.extend(
                page.image_ids()
                    .iter()
                    .filter_map(|id| id.image_tag())
                    .map(str::to_string),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(tags.into_iter().collect()),
            }
        }
        Err(Error::Unavailable {
            operation: "ListImages".into(),
            message: format!("{repository} has more than {MAX_LIST_PAGES} pages of tags"),
        })
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

/// Manifests by digest, bounded; the least recently used go first.
struct ManifestCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (Arc<Manifest>, u64)>,
}

impl ManifestCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, digest: &str) -> Option<Arc<Manifest>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(digest).map(|(m, t)| {
            *t = tick;
            m.clone()
        })
    }

    fn insert(&mut self, digest: String, manifest: Arc<Manifest>) {
        self.tick += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&digest) {
            evict_oldest(&mut self.entries, |(_, t)| *t);
        }
        self.entries.insert(digest, (manifest, self.tick));
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

    #[test]
    fn manifest_cache_is_bounded() {
        let mut c = ManifestCache::new(4);
        for i in 0..10 {
            c.insert(
                format!("d{i}"),
                Arc::new(Manifest {
                    media_type: String::new(),
                    bytes: vec![],
                }),
            );
            let _ = c.get("d0");
        }
        assert!(c.entries.len() <= 4);
        assert!(c.get("d0").is_some(), "recently used entries stay");
    }
}

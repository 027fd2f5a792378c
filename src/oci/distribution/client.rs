//! One registry host ([`Distribution`]): its HTTP client, the one way a
//! request is sent (same origin only, credentials only where they may go,
//! one authentication challenge answered), and reading bounded answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::auth::Auth;
use super::error::{Error, Result, http_error};
use super::hosts::{is_plain_http, may_carry_credentials, origin};
use super::redact::{redact, redact_text};
use crate::oci::xpkg::MANIFEST_TYPES;
use crate::reference::{Reference, Repository};

/// Largest manifest accepted (ECR's own limit is 4 MiB).
pub(super) const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest error body kept for a message.
const MAX_ERROR_BODY: usize = 512;

/// One registry host.
pub struct Distribution {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) auth: Auth,
    /// Bearer tokens by scope (`repository:<name>:pull`).
    pub(super) tokens: Mutex<HashMap<String, String>>,
    /// Other hosts (`host[:port]`) whose token realm may be sent the Basic
    /// credentials: those the Docker config holds the same ones for.
    pub(super) realm_hosts: Vec<String>,
}

impl Distribution {
    /// A client of `host` (`name[:port]`).
    pub fn new(host: &str, auth: Auth, timeout: Duration) -> Result<Self> {
        let scheme = if is_plain_http(host) { "http" } else { "https" };
        Self::with_endpoint(&format!("{scheme}://{host}"), auth, timeout)
    }

    /// A client of the registry at `endpoint` (`scheme://host[:port]`).
    pub fn with_endpoint(endpoint: &str, auth: Auth, timeout: Duration) -> Result<Self> {
        let config = |message: String| Error::Config {
            registry: endpoint.to_string(),
            message,
        };
        let base = Url::parse(endpoint).map_err(|e| config(format!("not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(timeout)
            .build()
            .map_err(|e| config(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            auth,
            tokens: Mutex::new(HashMap::new()),
            realm_hosts: Vec::new(),
        })
    }

    /// Lets a token realm on these hosts (`host[:port]`, which the Docker
    /// config holds the same credentials for) be sent the Basic ones.
    pub fn with_realm_hosts(mut self, hosts: Vec<String>) -> Self {
        self.realm_hosts = hosts;
        self
    }

    pub fn endpoint(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of a path built from checked parts ([`reference`]'s
    /// `*_path` functions) only.
    pub(super) fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Whether `url` is on this registry's own scheme, host and port.
    pub(super) fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Sends one request, answering one authentication challenge; any
    /// status but 2xx is an error.
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        repository: &Repository,
        push: bool,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response> {
        let scope = scope(repository, push);
        let mut challenged = false;
        loop {
            let mut request = self.request(&method, &url, &scope, &headers)?;
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|source| http_error(method.clone(), redact(&url), source))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if status == StatusCode::UNAUTHORIZED
                && !challenged
                && let Some(challenge) = challenge
            {
                // A challenge from where a redirect led is not ours to
                // answer: our credentials are for this registry only.
                if !self.same_origin(response.url()) {
                    return Err(Error::OffHost {
                        url: redact(&url),
                        message: format!(
                            "a redirect led to {}, which asks for credentials",
                            origin(response.url())
                        ),
                    });
                }
                challenged = true;
                self.answer(&challenge, &scope).await?;
                continue;
            }
            return Err(failure(method, &url, response).await);
        }
    }

    /// Sends one request with a streamed body, once: a body that is gone
    /// once sent cannot answer a challenge, so the caller has already
    /// made a request of the same scope (which answered any). Any status
    /// but 2xx is an error.
    pub(super) async fn send_streamed(
        &self,
        method: Method,
        url: Url,
        repository: &Repository,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<reqwest::Response> {
        let scope = scope(repository, true);
        let response = self
            .request(&method, &url, &scope, &headers)?
            .body(body)
            .send()
            .await
            .map_err(|source| http_error(method.clone(), redact(&url), source))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(failure(method, &url, response).await)
    }

    /// A request to this registry with the credentials `scope` has, where
    /// they may go.
    fn request(
        &self,
        method: &Method,
        url: &Url,
        scope: &str,
        headers: &HeaderMap,
    ) -> Result<reqwest::RequestBuilder> {
        if !self.same_origin(url) {
            return Err(Error::OffHost {
                url: redact(url),
                message: format!("not on {}", origin(&self.base)),
            });
        }
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        // Never a credential over plain HTTP, except to loopback.
        if let Some(authorization) = self
            .authorization(scope)
            .filter(|_| may_carry_credentials(url))
        {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        Ok(request)
    }
}

/// The token scope of a request: pulling, or pulling and pushing.
fn scope(repository: &Repository, push: bool) -> String {
    format!(
        "repository:{repository}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

/// The error for an answer that is not 2xx.
async fn failure(method: Method, url: &Url, response: reqwest::Response) -> Error {
    let status = response.status();
    let detail = error_detail(response).await;
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Error::Unauthorized {
            url: redact(url),
            status,
            detail,
        };
    }
    Error::Status {
        method,
        url: redact(url),
        status,
        detail,
    }
}

/// The checked repository a caller asked for.
pub(super) fn repository_arg(repository: &str) -> Result<Repository> {
    Ok(Repository::parse(repository, "the repository asked for")?)
}

/// The checked tag or digest a caller asked for.
pub(super) fn reference_arg(value: &str) -> Result<Reference> {
    Ok(Reference::parse(value, "the reference asked for")?)
}

pub(super) fn accept_manifests() -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&MANIFEST_TYPES.join(", ")) {
        headers.insert(header::ACCEPT, value);
    }
    headers
}

pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
}

pub(super) fn reported_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) async fn read_bounded(
    mut response: reqwest::Response,
    url: &Url,
    max: u64,
) -> Result<Bytes> {
    let mut out = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| http_error(Method::GET, redact(url), source))?
    {
        if (out.len() + chunk.len()) as u64 > max {
            return Err(Error::Invalid {
                url: redact(url),
                message: format!("answer larger than {max} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

pub(super) async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    url: &Url,
) -> Result<T> {
    let bytes = read_bounded(response, url, MAX_MANIFEST_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
        url: redact(url),
        message: format!("unreadable answer: {e}"),
    })
}

/// The start of an error answer's body, on one line.
pub(super) async fn error_detail(response: reqwest::Response) -> String {
    let body = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
    let text = redact_text(&text);
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

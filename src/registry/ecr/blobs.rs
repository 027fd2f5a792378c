//! The data-plane side of an [`EcrRegistry`]: blobs read from the registry
//! endpoint with the `GetAuthorizationToken` token, ECR's redirects to S3
//! followed without it, and presigned URLs kept out of every message.

use super::client::EcrRegistry;
use super::counters::Operation;
use super::options::{BLOB_ATTEMPTS, MAX_REDIRECTS};
use crate::aws::RegistryRef;
use crate::error::{Error, Result};
use crate::oci::distribution::redact;
use crate::oci::xpkg;
use crate::reference::{self, Digest, Repository};

impl EcrRegistry {
    /// Opens a blob: the registry GET (with the token), then redirects
    /// without it. Returns a 200 response whose body is the blob.
    pub(super) async fn open_blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<reqwest::Response> {
        let unavailable = |message: String| Error::Unavailable {
            operation: "GetBlob".into(),
            message,
        };
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            // Built from checked parts only: a digest off the grammar
            // (`../x`, a tag) never becomes a request path.
            let repo = Repository::parse(repository, "the repository asked for")
                .map_err(|e| invalid(repository, digest, e))?;
            let checked = Digest::parse(digest, "the layer digest asked for")
                .map_err(|e| invalid(repository, digest, e))?;
            let url = format!(
                "{}{}",
                token.endpoint.trim_end_matches('/'),
                reference::blob_path(&repo, &checked)
            );
            self.counters.record(Operation::GetBlob);
            let sent = self
                .http
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, &token.authorization)
                .send()
                .await;
            let err: Error = match sent {
                Err(e) if crate::error::is_unknown_host(&e) => {
                    return Err(Error::UnknownHost {
                        registry: self.registry_name(),
                        operation: "GetBlob".into(),
                        message: format!("GET {url}: {}", reqwest_error(&e)),
                    });
                }
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
                        return Err(Error::AccessDenied {
                            registry: self.registry_name(),
                            operation: "GetBlob".into(),
                            message: format!(
                                "{} refused a fresh ECR token (HTTP {}) for {repository}@{digest}",
                                token.endpoint,
                                resp.status().as_u16()
                            ),
                        });
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
    pub(super) async fn follow(
        &self,
        mut resp: reqwest::Response,
        from: &str,
    ) -> Result<reqwest::Response> {
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
                .ok_or_else(|| {
                    unavailable(format!("redirect from {} has no Location", redact(&url)))
                })?;
            url = url.join(location).map_err(|e| {
                unavailable(format!("bad redirect Location from {}: {e}", redact(&url)))
            })?;
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

/// A reference off the grammar: the message quotes it, escaped and cut.
fn invalid(repository: &str, _digest: &str, e: reference::Error) -> Error {
    Error::InvalidPackage {
        repository: repository.escape_debug().take(200).collect(),
        digest: String::new(),
        message: e.to_string(),
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

//! A client of the OCI distribution API (`/v2/...`): what the `mirror`
//! command reads from an upstream package registry and writes into ECR's
//! data plane.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: a
//! `Bearer` challenge is answered with a token from its realm (anonymous, or
//! with the Basic credentials of the Docker config file), a `Basic` one with
//! those credentials. ECR's data plane takes the `GetAuthorizationToken`
//! token as a fixed `Basic` header ([`Auth::Header`]). Registries on
//! `localhost` or `127.0.0.1` are spoken to over plain HTTP, as
//! go-containerregistry (and so Crossplane) does; every other over HTTPS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::xpkg::{Descriptor, MANIFEST_TYPES, Manifest, OCI_INDEX, error_chain};
use crate::reference::{self, Digest, Reference, Repository};

/// Most pages of `/tags/list` read for one repository.
const MAX_TAG_PAGES: usize = 100;
/// Largest manifest accepted (ECR's own limit is 4 MiB).
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest error body kept for a message.
const MAX_ERROR_BODY: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transport failure. `message` is the whole cause chain, shown
    /// here because callers turn this error into text; so it has no
    /// `source()`, which would print the cause a second time.
    #[error("{method} {url}: {message}")]
    Http {
        method: Method,
        url: String,
        message: String,
    },
    #[error("{method} {url}: HTTP {status}{detail}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{url}: the registry refused our credentials (HTTP {status}){detail}")]
    Unauthorized {
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{url}: {message}")]
    Invalid { url: String, message: String },
    #[error("{registry}: {message}")]
    Config { registry: String, message: String },
    /// A reference off the grammar, or bytes that do not hash to their
    /// digest.
    #[error(transparent)]
    Reference(#[from] reference::Error),
    /// Credentials or a request a registry asked for that would leave the
    /// registry host (another host, plain HTTP): refused, nothing sent.
    #[error("{url}: {message}; nothing was sent there")]
    OffHost { url: String, message: String },
}

impl Error {
    /// Whether the registry said the thing asked for is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How requests are authenticated.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No credentials; a Bearer challenge is answered anonymously.
    #[default]
    Anonymous,
    /// `user:password`, base64-encoded, as the Docker config file keeps it:
    /// sent to a token realm or as a `Basic` header when challenged.
    Basic(String),
    /// A ready `Authorization` header sent with every request (ECR's token).
    Header(String),
}

impl Auth {
    /// The credentials the Docker config file (`$DOCKER_CONFIG/config.json`,
    /// else `~/.docker/config.json`) holds for `host`, anonymous when it
    /// has none. Credential helpers are not run.
    pub fn from_docker_config(host: &str) -> Result<Auth> {
        let Some(path) = docker_config_path() else {
            return Ok(Auth::Anonymous);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Auth::Anonymous),
            Err(e) => {
                return Err(Error::Config {
                    registry: host.to_string(),
                    message: format!("reading {}: {e}", path.display()),
                });
            }
        };
        docker_config_auth(&text, host).map_err(|message| Error::Config {
            registry: host.to_string(),
            message: format!("{}: {message}", path.display()),
        })
    }
}

fn docker_config_path() -> Option<std::path::PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(std::path::PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME")
            .map(|home| std::path::PathBuf::from(home).join(".docker/config.json")),
    }
}

/// The hosts the Docker config file holds `host`'s own credentials for
/// too: a token realm on one of them may be sent those credentials. None
/// when the file cannot be read.
pub fn realm_hosts_from_docker_config(host: &str) -> Vec<String> {
    docker_config_path()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|text| docker_config_realm_hosts(&text, host))
        .unwrap_or_default()
}

/// `(host, auth)` of each `auths` entry of a Docker config file. Keys may
/// be a bare host or a URL (`https://host/v1/`).
fn docker_config_entries(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: HashMap<String, Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        auth: Option<String>,
    }
    let config: Config =
        serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    Ok(config
        .auths
        .into_iter()
        .filter_map(|(key, entry)| {
            let key = key
                .strip_prefix("https://")
                .or_else(|| key.strip_prefix("http://"))
                .unwrap_or(&key);
            let host = key.split('/').next().unwrap_or_default().to_string();
            entry
                .auth
                .filter(|a| !a.is_empty())
                .map(|auth| (host, auth))
        })
        .collect())
}

/// The `auth` entry of a Docker config file for `host`.
pub fn docker_config_auth(text: &str, host: &str) -> std::result::Result<Auth, String> {
    Ok(docker_config_entries(text)?
        .into_iter()
        .find(|(h, _)| h == host)
        .map_or(Auth::Anonymous, |(_, auth)| Auth::Basic(auth)))
}

/// The other hosts a Docker config file holds `host`'s credentials for.
pub fn docker_config_realm_hosts(text: &str, host: &str) -> Vec<String> {
    let Ok(entries) = docker_config_entries(text) else {
        return Vec::new();
    };
    let Some((_, auth)) = entries.iter().find(|(h, _)| h == host) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(h, a)| h != host && a == auth)
        .map(|(h, _)| h.clone())
        .collect()
}

/// The checked repository a caller asked for.
fn repository_arg(repository: &str) -> Result<Repository> {
    Ok(Repository::parse(repository, "the repository asked for")?)
}

/// The checked tag or digest a caller asked for.
fn reference_arg(value: &str) -> Result<Reference> {
    Ok(Reference::parse(value, "the reference asked for")?)
}

/// `host[:port]` of a URL, as a Docker config names it.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `scheme://host[:port]` of a URL, for messages.
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// Whether credentials may travel to `url`: over HTTPS, or plain HTTP to
/// loopback only.
fn may_carry_credentials(url: &Url) -> bool {
    let loopback = match url.host_str().unwrap_or_default() {
        "localhost" => true,
        host => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// Whether a registry host is reached over plain HTTP.
pub fn is_plain_http(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// One registry host.
pub struct Distribution {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    /// Bearer tokens by scope (`repository:<name>:pull`).
    tokens: Mutex<HashMap<String, String>>,
    /// Other hosts (`host[:port]`) whose token realm may be sent the Basic
    /// credentials: those the Docker config holds the same ones for.
    realm_hosts: Vec<String>,
}

/// What [`Distribution::push_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted,
    /// Uploaded, this many bytes.
    Uploaded(u64),
}

/// A blob's bytes, as they arrive.
pub type BlobStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

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
    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Whether `url` is on this registry's own scheme, host and port.
    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Every tag of `repository`, following `Link` pages.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let repository = &repository_arg(repository)?;
        let mut tags = Vec::new();
        let mut url = self.url(&reference::tags_path(repository));
        url.set_query(Some("n=1000"));
        for _ in 0..MAX_TAG_PAGES {
            let response = self
                .send(
                    Method::GET,
                    url.clone(),
                    repository,
                    false,
                    HeaderMap::new(),
                    None,
                )
                .await?;
            let next = match next_page(response.headers()) {
                Some(link) => Some(self.next_page_url(&url, &link, repository)?),
                None => None,
            };
            let page: Page = json(response, &url).await?;
            for tag in page.tags.unwrap_or_default() {
                // A tag becomes a request path later: checked where it
                // comes in, named by where.
                reference::Tag::parse(
                    &tag,
                    format!("tag {} of the tag list of {}", tags.len(), redact(&url)),
                )?;
                tags.push(tag);
            }
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(Error::Invalid {
            url: url.to_string(),
            message: format!("more than {MAX_TAG_PAGES} pages of tags"),
        })
    }

    /// A `Link: rel="next"` target: only the same registry's tag list of
    /// the same repository, with its query; anything else is refused.
    fn next_page_url(&self, url: &Url, link: &str, repository: &Repository) -> Result<Url> {
        let refused = |message: String| Error::OffHost {
            url: redact(url),
            message,
        };
        let next = url
            .join(link)
            .map_err(|e| refused(format!("the Link header is not a URL: {e}")))?;
        if !self.same_origin(&next) {
            return Err(refused(format!(
                "the Link header names another host ({}); its next page is not followed",
                origin(&next)
            )));
        }
        if next.path() != reference::tags_path(repository) {
            return Err(Error::Reference(reference::Error::Repository {
                origin: format!("the Link header of {}", redact(url)),
                value: reference::Error::quoted(next.path()),
            }));
        }
        let mut checked = self.url(&reference::tags_path(repository));
        checked.set_query(next.query());
        Ok(checked)
    }

    /// The manifest a tag or digest names and its digest, checked against
    /// the digest asked for and the one the registry reports; `None` when
    /// there is none.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, Manifest)>> {
        let repository = &repository_arg(repository)?;
        let reference = &reference_arg(reference)?;
        let url = self.url(&reference::manifest_path(repository, reference));
        let response = match self
            .send(
                Method::GET,
                url.clone(),
                repository,
                false,
                accept_manifests(),
                None,
            )
            .await
        {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        if response
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_BYTES)
        {
            return Err(Error::Invalid {
                url: redact(&url),
                message: format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let media_type = content_type(response.headers());
        let reported = reported_digest(response.headers());
        let bytes = read_bounded(response, &url, MAX_MANIFEST_BYTES).await?;
        let what = format!("manifest {}", redact(&url));
        if let Some(asked) = reference.digest() {
            asked.verify(&bytes, &what)?;
        }
        let reported = match reported {
            Some(r) => Some(Digest::parse(
                &r,
                format!("the Docker-Content-Digest of {}", redact(&url)),
            )?),
            None => None,
        };
        if let Some(reported) = &reported {
            reported.verify(&bytes, format!("{what} (as the registry reports it)"))?;
        }
        let manifest = Manifest::new(media_type.as_deref(), bytes.to_vec());
        let digest = match reference.digest() {
            Some(asked) => asked.to_string(),
            None => manifest.digest(),
        };
        Ok(Some((digest, manifest)))
    }

    /// The digest a tag or digest names, when it exists (HEAD).
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let repository = &repository_arg(repository)?;
        let reference = &reference_arg(reference)?;
        let url = self.url(&reference::manifest_path(repository, reference));
        match self
            .send(
                Method::HEAD,
                url.clone(),
                repository,
                false,
                accept_manifests(),
                None,
            )
            .await
        {
            Ok(response) => match reported_digest(response.headers()) {
                Some(reported) => Ok(Some(
                    Digest::parse(
                        &reported,
                        format!("the Docker-Content-Digest of {}", redact(&url)),
                    )?
                    .to_string(),
                )),
                None => Ok(reference.digest().map(Digest::to_string)),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifests that name `digest` as their subject (OCI 1.1 referrers
    /// API); `None` when the registry does not offer the API.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Vec<Descriptor>>> {
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let url = self.url(&reference::referrers_path(repository, digest));
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(OCI_INDEX));
        match self
            .send(Method::GET, url.clone(), repository, false, headers, None)
            .await
        {
            Ok(response) => {
                let manifests = json::<Index>(response, &url).await?.manifests;
                for (i, m) in manifests.iter().enumerate() {
                    Digest::parse(&m.digest, format!("referrer {i} of {repository}@{digest}"))?;
                }
                Ok(Some(manifests))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a manifest under a tag or its digest, byte for byte.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<()> {
        let repository = &repository_arg(repository)?;
        let reference = &reference_arg(reference)?;
        if let Some(digest) = reference.digest() {
            digest.verify(&manifest.bytes, format!("manifest {repository}@{digest}"))?;
        }
        let url = self.url(&reference::manifest_path(repository, reference));
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&manifest.media_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        let body = Bytes::from(manifest.bytes.clone());
        let response = self
            .send(
                Method::PUT,
                url.clone(),
                repository,
                true,
                headers,
                Some(body),
            )
            .await?;
        let want = manifest.digest();
        match reported_digest(response.headers()) {
            Some(got) if got != want => Err(Error::Invalid {
                url: url.to_string(),
                message: format!("the registry stored {got}, not {want}"),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the registry holds a blob in `repository`.
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let url = self.url(&reference::blob_path(repository, digest));
        match self
            .send(Method::HEAD, url, repository, false, HeaderMap::new(), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A blob's bytes as they arrive (redirects followed, without our
    /// credentials on another host), hashed chunk by chunk: the stream
    /// ends with an error, not with its end, when they do not hash to
    /// `digest` (or are not `size` bytes), so nothing that consumes it
    /// commits them.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobStream> {
        let checked = Digest::parse(digest, "the digest asked for")?;
        let response = self.open_blob(repository, digest).await?;
        let url = redact(response.url());
        let what = format!("blob {repository}@{checked}");
        let state = (Some(response), Some(checked.verifier()));
        Ok(Box::pin(futures::stream::unfold(
            state,
            move |(response, verifier)| {
                let url = url.clone();
                let what = what.clone();
                async move {
                    let mut response = response?;
                    let mut verifier = verifier?;
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            verifier.update(&chunk);
                            if let Some(size) = size.filter(|s| verifier.len() > *s) {
                                let e = reference::Error::Size {
                                    what,
                                    expected: size,
                                    actual: verifier.len(),
                                };
                                return Some((Err(e.into()), (None, None)));
                            }
                            Some((Ok(chunk), (Some(response), Some(verifier))))
                        }
                        Ok(None) => {
                            let len = verifier.len();
                            let checked = match size.filter(|s| *s != len) {
                                Some(expected) => Err(reference::Error::Size {
                                    what,
                                    expected,
                                    actual: len,
                                }),
                                None => verifier.finish(what),
                            };
                            checked.err().map(|e| (Err(e.into()), (None, None)))
                        }
                        Err(source) => {
                            Some((Err(http_error(Method::GET, url, source)), (None, None)))
                        }
                    }
                }
            },
        )))
    }

    /// A blob's response, for callers that read it themselves.
    pub async fn open_blob(&self, repository: &str, digest: &str) -> Result<reqwest::Response> {
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let url = self.url(&reference::blob_path(repository, digest));
        self.send(Method::GET, url, repository, false, HeaderMap::new(), None)
            .await
    }

    /// Puts a blob into `repository`: mounted from `mount_from` (another
    /// repository of this registry) when it holds it, else uploaded from
    /// `body`, in one request up to `chunk_size` bytes and in
    /// `chunk_size` chunks above that.
    pub async fn push_blob<'b>(
        &self,
        repository: &str,
        digest: &str,
        mount_from: Option<&str>,
        chunk_size: usize,
        body: impl FnOnce() -> futures::future::BoxFuture<'b, Result<BlobStream>>,
    ) -> Result<Pushed> {
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let mount_from = match mount_from {
            Some(from) => Some(Repository::parse(from, "the repository to mount from")?),
            None => None,
        };
        let mut start = self.url(&reference::uploads_path(repository));
        if let Some(from) = &mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", from.as_str());
        }
        let response = self
            .send(
                Method::POST,
                start.clone(),
                repository,
                true,
                HeaderMap::new(),
                Some(Bytes::new()),
            )
            .await?;
        if response.status() == StatusCode::CREATED && mount_from.is_some() {
            return Ok(Pushed::Mounted);
        }
        let mut location = self.location(&response, &start)?;
        let mut stream = body().await?;
        let mut sent: u64 = 0;
        let mut buffer = BytesMut::new();
        let chunk_size = chunk_size.max(1);
        let mut chunked = false;
        loop {
            let next = stream.next().await.transpose()?;
            if let Some(bytes) = &next {
                buffer.extend_from_slice(bytes);
            }
            // Everything fits in one request: a monolithic PUT.
            if next.is_none() && !chunked {
                break;
            }
            while buffer.len() >= chunk_size || (next.is_none() && !buffer.is_empty()) {
                let take = buffer.len().min(chunk_size);
                let chunk = buffer.split_to(take).freeze();
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                let range = format!("{sent}-{}", sent + chunk.len() as u64 - 1);
                if let Ok(value) = HeaderValue::from_str(&range) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                sent += chunk.len() as u64;
                let response = self
                    .send(
                        Method::PATCH,
                        location.clone(),
                        repository,
                        true,
                        headers,
                        Some(chunk),
                    )
                    .await?;
                location = self.location(&response, &location)?;
                chunked = true;
            }
            if next.is_none() {
                break;
            }
        }
        let body = buffer.freeze();
        let uploaded = sent + body.len() as u64;
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        self.send(Method::PUT, location, repository, true, headers, Some(body))
            .await?;
        Ok(Pushed::Uploaded(uploaded))
    }

    fn location(&self, response: &reqwest::Response, from: &Url) -> Result<Url> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Invalid {
                url: redact(from),
                message: "upload answer has no Location".into(),
            })?;
        let location = from.join(location).map_err(|e| Error::Invalid {
            url: redact(from),
            message: format!("the upload Location is not a URL: {e}"),
        })?;
        if !self.same_origin(&location) {
            return Err(Error::OffHost {
                url: redact(from),
                message: format!(
                    "the upload Location names another host ({})",
                    origin(&location)
                ),
            });
        }
        Ok(location)
    }

    /// Sends one request, answering one authentication challenge; any
    /// status but 2xx is an error.
    async fn send(
        &self,
        method: Method,
        url: Url,
        repository: &Repository,
        push: bool,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response> {
        let scope = format!(
            "repository:{repository}:{}",
            if push { "pull,push" } else { "pull" }
        );
        let mut challenged = false;
        if !self.same_origin(&url) {
            return Err(Error::OffHost {
                url: redact(&url),
                message: format!("not on {}", origin(&self.base)),
            });
        }
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            // Never a credential over plain HTTP, except to loopback.
            if let Some(authorization) = self
                .authorization(&scope)
                .filter(|_| may_carry_credentials(&url))
            {
                request = request.header(header::AUTHORIZATION, authorization);
            }
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
            let detail = error_detail(response).await;
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Err(Error::Unauthorized {
                    url: redact(&url),
                    status,
                    detail,
                });
            }
            return Err(Error::Status {
                method,
                url: redact(&url),
                status,
                detail,
            });
        }
    }

    fn authorization(&self, scope: &str) -> Option<String> {
        if let Auth::Header(h) = &self.auth {
            return Some(h.clone());
        }
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(scope).cloned()
    }

    /// Gets what a `WWW-Authenticate` challenge asks for and keeps it for
    /// the scope.
    async fn answer(&self, challenge: &str, scope: &str) -> Result<()> {
        let refused = |message: String| Error::Unauthorized {
            url: self.endpoint().to_string(),
            status: StatusCode::UNAUTHORIZED,
            detail: format!(": {message}"),
        };
        let parsed = Challenge::parse(challenge)
            .ok_or_else(|| refused(format!("unreadable challenge {challenge:?}")))?;
        let basic = match &self.auth {
            Auth::Basic(b) => Some(b.clone()),
            _ => None,
        };
        let authorization = match parsed.scheme.as_str() {
            "basic" => match basic {
                Some(_) if !may_carry_credentials(&self.base) => {
                    return Err(Error::OffHost {
                        url: self.endpoint().to_string(),
                        message: "Basic credentials are never sent over plain HTTP".into(),
                    });
                }
                Some(b) => format!("Basic {b}"),
                None => {
                    return Err(refused(
                        "Basic credentials required; none in the Docker config".into(),
                    ));
                }
            },
            "bearer" => {
                let realm = parsed
                    .param("realm")
                    .ok_or_else(|| refused("Bearer challenge without a realm".into()))?;
                let mut url = Url::parse(realm)
                    .map_err(|e| refused(format!("token realm {realm:?}: {e}")))?;
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = parsed.param("service") {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", scope);
                }
                let mut request = self.http.get(url.clone());
                // The Basic credentials go to a realm on this registry's
                // own host, over HTTPS (or loopback), and nowhere else.
                let same_host = url.host_str() == self.base.host_str()
                    && url.port_or_known_default() == self.base.port_or_known_default();
                let named = self.realm_hosts.iter().any(|h| *h == authority(&url));
                if basic.is_some() && (!(same_host || named) || !may_carry_credentials(&url)) {
                    return Err(Error::OffHost {
                        url: redact(&url),
                        message: format!(
                            "the token realm is not on {} over HTTPS; the credentials for it are not sent",
                            origin(&self.base)
                        ),
                    });
                }
                if let Some(b) = basic {
                    request = request.header(header::AUTHORIZATION, format!("Basic {b}"));
                }
                let response = request
                    .send()
                    .await
                    .map_err(|source| http_error(Method::GET, redact(&url), source))?;
                if !response.status().is_success() {
                    let status = response.status();
                    return Err(Error::Unauthorized {
                        url: redact(&url),
                        status,
                        detail: error_detail(response).await,
                    });
                }
                #[derive(Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let token: Token = json(response, &url).await?;
                let token = token
                    .token
                    .or(token.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| refused(format!("{} gave no token", redact(&url))))?;
                format!("Bearer {token}")
            }
            other => return Err(refused(format!("unsupported scheme {other:?}"))),
        };
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.to_string(), authorization);
        Ok(())
    }
}

/// A parsed `WWW-Authenticate` header: a scheme and `key="value"` pairs.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses one challenge in a single pass; `None` when there is no scheme.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((key, after)) = rest.split_once('=') else {
                break;
            };
            let key = key.trim().to_ascii_lowercase();
            let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut escaped = false;
                let mut end = quoted.len();
                for (i, c) in quoted.char_indices() {
                    match (escaped, c) {
                        (true, c) => {
                            value.push(c);
                            escaped = false;
                        }
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = i + 1;
                            break;
                        }
                        (false, c) => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.push((key, value));
            rest = next;
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn accept_manifests() -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&MANIFEST_TYPES.join(", ")) {
        headers.insert(header::ACCEPT, value);
    }
    headers
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
}

fn reported_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The target of a `Link: <...>; rel="next"` header.
fn next_page(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

async fn read_bounded(mut response: reqwest::Response, url: &Url, max: u64) -> Result<Bytes> {
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

async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response, url: &Url) -> Result<T> {
    let bytes = read_bounded(response, url, MAX_MANIFEST_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
        url: redact(url),
        message: format!("unreadable answer: {e}"),
    })
}

/// The start of an error answer's body, on one line.
async fn error_detail(response: reqwest::Response) -> String {
    let body = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
    let text = redact_text(&text);
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Text from a registry or object store, on one line, with every word
/// that could carry a credential (a presigned query, an echoed header, the
/// word after `Basic`/`Bearer`) replaced.
pub fn redact_text(text: &str) -> String {
    const SECRET: [&str; 9] = [
        "x-amz-",
        "signature",
        "credential",
        "token",
        "authorization",
        "password",
        "secret",
        "?",
        "&",
    ];
    let mut after_scheme = false;
    text.split_whitespace()
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let secret = after_scheme || SECRET.iter().any(|s| lower.contains(s));
            after_scheme = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == "basic"
                || lower.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == "bearer";
            if secret { "[redacted]" } else { word }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A transport failure, with the URL taken out of the error itself: a
/// redirect's presigned URL carries credentials in its query, and only the
/// redacted `url` may reach a message.
fn http_error(method: Method, url: String, source: reqwest::Error) -> Error {
    Error::Http {
        method,
        url,
        message: error_chain(&source.without_url()),
    }
}

/// A URL without its query: presigned URLs carry credentials there.
pub fn redact(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        )
        .expect("parses");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c.param("service"), Some("registry.example.com"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull"));

        let c = Challenge::parse(r#"Basic realm="My \"Registry\"""#).expect("parses");
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some(r#"My "Registry""#));

        let c = Challenge::parse("Bearer realm=https://x/token, service=x").expect("parses");
        assert_eq!(c.param("realm"), Some("https://x/token"));
        assert_eq!(c.param("service"), Some("x"));

        assert_eq!(Challenge::parse("   "), None);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for (host, plain) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:41234", true),
            ("[::1]:5000", true),
            ("xpkg.upbound.io", false),
            ("127.0.0.1.nip.io", false),
            ("localhost.example.com:5000", false),
        ] {
            assert_eq!(is_plain_http(host), plain, "{host}");
        }
    }

    #[test]
    fn docker_config_entries() {
        let config = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "ZG9ja2VyOmh1Yg=="},
            "xpkg.upbound.io": {"auth": "dXNlcjpwYXNz"},
            "https://127.0.0.1:5000": {"auth": "bG9jYWw6bG9jYWw="}
        }}"#;
        let basic = |host| match docker_config_auth(config, host).expect("parses") {
            Auth::Basic(b) => Some(b),
            _ => None,
        };
        assert_eq!(basic("xpkg.upbound.io").as_deref(), Some("dXNlcjpwYXNz"));
        assert_eq!(basic("127.0.0.1:5000").as_deref(), Some("bG9jYWw6bG9jYWw="));
        assert_eq!(
            basic("index.docker.io").as_deref(),
            Some("ZG9ja2VyOmh1Yg==")
        );
        assert_eq!(basic("xpkg.crossplane.io"), None);
        assert!(docker_config_auth("{", "x").is_err());
    }

    #[test]
    fn next_page_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_page(&HeaderMap::new()), None);
    }

    #[test]
    fn redaction_drops_queries_and_passwords() {
        let url =
            Url::parse("https://u:secret@s3.example.com/blob?X-Amz-Signature=abc").expect("url");
        let shown = redact(&url);
        assert!(
            !shown.contains("secret") && !shown.contains("abc"),
            "{shown}"
        );
    }

    /// A server on loopback that answers every request with `answer(head)`
    /// (the request as far as the first read got), after logging the head;
    /// returns its `host:port` and the log.
    async fn serve(
        answer: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let response = answer(&head);
                log.lock().expect("log").push(head);
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (host, seen)
    }

    /// A registry on loopback that wants a Bearer token from its own realm,
    /// which hands one out only for the right Basic credentials and scope.
    async fn token_registry() -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let realm = format!("http://{host}/token");
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                let authorization = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .unwrap_or_default()
                    .to_string();
                log.lock()
                    .expect("log")
                    .push(format!("{line} [{authorization}]"));
                let (status, extra, body) = if line.starts_with("GET /token?") {
                    if line.contains("scope=repository%3Ateam%2Fpkg%3Apull")
                        && authorization == "Basic dXNlcjpwYXNz"
                    {
                        ("200 OK", String::new(), r#"{"token":"t0k3n"}"#.to_string())
                    } else {
                        ("401 Unauthorized", String::new(), String::new())
                    }
                } else if authorization == "Bearer t0k3n" {
                    (
                        "200 OK",
                        String::new(),
                        r#"{"tags":["v1.0.0","v1.1.0"]}"#.to_string(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\n"),
                        String::new(),
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (host, seen)
    }

    #[tokio::test]
    async fn bearer_challenges_are_answered_with_a_token_from_the_realm() {
        let (host, seen) = token_registry().await;
        let client = Distribution::new(
            &host,
            Auth::Basic("dXNlcjpwYXNz".into()),
            Duration::from_secs(5),
        )
        .expect("client");
        let tags = client.tags("team/pkg").await.expect("tags");
        assert_eq!(tags, ["v1.0.0", "v1.1.0"]);
        // Once a token is held, no new challenge is needed.
        client.tags("team/pkg").await.expect("tags again");
        let seen = seen.lock().expect("log").clone();
        assert_eq!(seen.len(), 4, "challenge, token, answer, answer: {seen:#?}");
        assert!(
            seen[1].starts_with("GET /token?service=test&scope="),
            "{seen:#?}"
        );

        let anonymous =
            Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
        let error = anonymous
            .tags("team/pkg")
            .await
            .expect_err("no credentials");
        assert!(matches!(error, Error::Unauthorized { .. }), "{error}");
    }

    /// A tag list naming a tag off the grammar is refused, naming it and
    /// where it came from.
    #[tokio::test]
    async fn tags_off_the_grammar_are_refused() {
        let (host, _) = serve(|_| {
            let body = r#"{"tags":["v1.0.0","../../x/manifests/v9"]}"#;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        })
        .await;
        let client =
            Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
        let error = client.tags("team/pkg").await.expect_err("refused");
        assert!(
            matches!(error, Error::Reference(reference::Error::Tag { .. })),
            "{error}"
        );
        let said = error.to_string();
        assert!(
            said.contains("tag 1 of the tag list of") && said.contains("../../x/manifests/v9"),
            "{said}"
        );
        // Asked-for values off the grammar never reach a request either.
        for (repository, reference) in [
            ("team/../x", "v1"),
            ("team/pkg", "../x"),
            ("team/pkg", "a?b"),
        ] {
            let error = client
                .manifest(repository, reference)
                .await
                .expect_err("refused");
            assert!(matches!(error, Error::Reference(_)), "{error}");
        }
    }

    #[tokio::test]
    async fn presigned_redirects_never_reach_error_messages() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_at = closed.local_addr().expect("addr");
        drop(closed);
        let (host, _) = serve(move |_| {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{closed_at}/bucket/blob?X-Amz-Signature=secret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        })
        .await;
        let client =
            Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
        let Err(error) = client
            .blob("team/pkg", &format!("sha256:{}", "a".repeat(64)), None)
            .await
        else {
            panic!("the redirect target is closed");
        };
        let shown = error.to_string();
        assert!(!shown.contains("secret"), "{shown}");
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            assert!(!s.to_string().contains("secret"), "{s}");
            source = s.source();
        }
    }

    /// A transport failure shows its cause in its message and nowhere
    /// else, so the message and the whole chain are the same text.
    #[tokio::test]
    async fn transport_failures_say_their_cause_once() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = closed.local_addr().expect("addr").to_string();
        drop(closed);
        let client =
            Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
        let error = client.tags("team/pkg").await.expect_err("closed");
        assert!(matches!(error, Error::Http { .. }), "{error}");
        assert!(std::error::Error::source(&error).is_none(), "{error}");
        assert_eq!(error_chain(&error), error.to_string());
    }

    /// Every message and source of `error`, joined.
    fn everything_said(error: &Error) -> String {
        let mut said = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            said.push_str(&format!(" | {s}"));
            source = s.source();
        }
        said
    }

    /// An object store that refuses a presigned URL and echoes the
    /// credential in its error body: neither the query nor the echo reaches
    /// a message, for a blob read, a manifest read and a tag list.
    #[tokio::test]
    async fn presigned_queries_and_echoed_credentials_never_reach_messages() {
        let (host, _) = serve(|head| {
            if head.starts_with("GET /v2/") {
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /bucket/blob?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIDSECRET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        } else {
            let body = "<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIDSECRET</AWSAccessKeyId><StringToSign>X-Amz-Signature=s3cr3t</StringToSign> Authorization: Basic dXNlcjpwYXNz</Error>";
            format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        })
        .await;
        let client =
            Distribution::new(&host, Auth::Anonymous, Duration::from_secs(5)).expect("client");
        let digest = format!("sha256:{}", "a".repeat(64));
        let mut errors = Vec::new();
        match client.blob("team/pkg", &digest, None).await {
            Err(e) => errors.push(e),
            Ok(_) => panic!("S3 refused"),
        }
        errors.push(
            client
                .manifest("team/pkg", &digest)
                .await
                .expect_err("S3 refused"),
        );
        errors.push(client.tags("team/pkg").await.expect_err("S3 refused"));
        for error in &errors {
            let said = everything_said(error);
            for secret in ["s3cr3t", "AKIDSECRET", "dXNlcjpwYXNz", "X-Amz-"] {
                assert!(!said.contains(secret), "{secret} in: {said}");
            }
            assert!(said.contains("403"), "says what happened: {said}");
        }
    }

    #[test]
    fn realm_hosts_hold_the_same_credentials() {
        let config = r#"{"auths": {
            "registry.example": {"auth": "c2FtZQ=="},
            "https://auth.example/v1/": {"auth": "c2FtZQ=="},
            "other.example": {"auth": "b3RoZXI="},
            "empty.example": {"auth": ""}
        }}"#;
        assert_eq!(
            docker_config_realm_hosts(config, "registry.example"),
            ["auth.example"]
        );
        assert!(docker_config_realm_hosts(config, "nowhere.example").is_empty());
        assert!(docker_config_realm_hosts("{", "registry.example").is_empty());
    }

    /// A Bearer challenge naming a token realm on another host gets no
    /// Basic credentials: the realm host receives nothing at all; unless
    /// the Docker config holds the same credentials for that host.
    #[tokio::test]
    async fn basic_credentials_never_go_to_a_realm_on_another_host() {
        let (foreign_host, received) = serve(|_| {
            "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"token\":\"t\"}"
                .to_string()
        })
        .await;
        let realm_host = foreign_host.clone();
        let (host, _) = serve(move |_| {
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{realm_host}/token\",service=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        })
        .await;
        let client = Distribution::new(
            &host,
            Auth::Basic("dXNlcjpwYXNz".into()),
            Duration::from_secs(5),
        )
        .expect("client");
        let error = client.tags("team/pkg").await.expect_err("refused");
        assert!(matches!(error, Error::OffHost { .. }), "{error}");
        assert!(!error.to_string().contains("dXNlcjpwYXNz"), "{error}");
        assert!(
            received.lock().expect("log").is_empty(),
            "the foreign realm got: {:#?}",
            received.lock().expect("log")
        );

        // Named by the Docker config with the same credentials: the realm
        // is asked (over loopback) with them.
        let named = Distribution::new(
            &host,
            Auth::Basic("dXNlcjpwYXNz".into()),
            Duration::from_secs(5),
        )
        .expect("client")
        .with_realm_hosts(vec![foreign_host.clone()]);
        let _ = named.tags("team/pkg").await;
        let received = received.lock().expect("log").clone();
        assert!(
            received
                .iter()
                .any(|r| r.contains("authorization: Basic dXNlcjpwYXNz")),
            "{received:#?}"
        );
    }

    #[test]
    fn credentials_go_over_https_or_to_loopback_only() {
        for (url, ok) in [
            ("https://registry.example/v2/", true),
            ("http://127.0.0.1:5000/v2/", true),
            ("http://localhost:5000/v2/", true),
            ("http://[::1]:5000/v2/", true),
            ("http://registry.example/v2/", false),
            ("http://127.0.0.1.nip.io/v2/", false),
            ("ftp://registry.example/", false),
        ] {
            let url = Url::parse(url).expect("url");
            assert_eq!(may_carry_credentials(&url), ok, "{url}");
        }
    }

    proptest! {
        #[test]
        fn challenge_parsing_never_panics(header in ".{0,300}") {
            let _ = Challenge::parse(&header);
        }

        #[test]
        fn docker_config_parsing_never_panics(text in ".{0,200}", host in "[a-z0-9.:]{0,20}") {
            let _ = docker_config_auth(&text, &host);
        }

        #[test]
        fn link_headers_never_panic(link in "[ -~]{0,200}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.insert(header::LINK, value);
            }
            let _ = next_page(&headers);
        }

        #[test]
        fn quoted_values_round_trip(value in "[ -~]{0,40}") {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            let header = format!("Bearer realm=\"{escaped}\",service=\"s\"");
            let c = Challenge::parse(&header).expect("parses");
            prop_assert_eq!(c.param("realm"), Some(value.as_str()));
            prop_assert_eq!(c.param("service"), Some("s"));
        }
    }
}

//! The upstream package registries, seen through the [`Registry`] trait the
//! resolver reads ECR with, so `mirror` resolves a package's dependency
//! closure with exactly the function's rules.
//!
//! The resolver names packages by their ECR repository. [`Upstream`] keeps
//! where each of those repositories comes from, in this precedence:
//! 1. the path a resolved package declares for it in its `dependsOn`,
//!    exactly (what Crossplane's Lock will look for);
//! 2. the path given on the command line;
//! 3. the mirror table read backwards (its first mirror whose prefix holds
//!    the repository, in table order).
//!
//! One ECR repository is fed from one upstream: when two dependents declare
//! different paths for it, or a declared path differs from the command
//! line's, the run is refused with both named. Nothing is ever chosen by
//! sorting (which would let any package in the closure redirect a
//! dependency to a look-alike registry: dependency confusion).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{DependencyError, Error, Result};
use crate::oci::blob::LayerLimits;
use crate::oci::distribution::{self, Auth, Distribution};
use crate::oci::signatures::{self, SignatureSource, Small, Tagged, blob_digest, read_small};
use crate::oci::xpkg::{self, Descriptor, ImageSource, MAX_LAYERS_SCANNED, Manifest, ReadOptions};
use crate::package::PackageMeta;
use crate::reference::Digest;
use crate::reference::{Reference, Repository};
use crate::registry::Registry;
use crate::registry::Tags;
use crate::registry::cache::{CacheOptions, CachedRegistry};
use crate::signature::Signatures;
use crate::spec::input::Mirror;

/// Where a package comes from: a registry host and a repository in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub host: String,
    pub repository: String,
}

impl Location {
    /// Splits `host/path`; `None` unless the host is `name[:port]` and the
    /// path a repository name of the distribution grammar.
    pub fn parse(path: &str) -> Option<Location> {
        let (host, repository) = path.split_once('/')?;
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        let repository = Repository::parse(repository, path).ok()?;
        host_ok.then(|| Location {
            host: host.to_string(),
            repository: repository.to_string(),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)
    }
}

/// The upstream registries behind the function's caches, so each tag list,
/// digest and `package.yaml` is read once per run whoever asks: the
/// command line's packages, the resolver's rounds, the signature lookup.
pub type Reader = CachedRegistry<Upstream>;

pub struct Upstream {
    mirrors: Vec<Mirror>,
    /// Registry host -> the endpoint it is read from instead (a
    /// pull-through proxy in front of it, a local copy).
    endpoints: BTreeMap<String, String>,
    timeout: Duration,
    /// ECR repository -> the path the command line named.
    listed: Mutex<BTreeMap<String, String>>,
    /// ECR repository -> the paths resolved packages declare for it.
    declared: Mutex<BTreeMap<String, BTreeSet<String>>>,
    clients: Mutex<HashMap<String, Arc<Distribution>>>,
    /// Manifests read, by digest: `mirror` copies them byte for byte.
    manifests: Mutex<HashMap<String, Arc<Manifest>>>,
}

impl Upstream {
    pub fn new(
        mirrors: Vec<Mirror>,
        endpoints: BTreeMap<String, String>,
        timeout: Duration,
    ) -> Self {
        Self {
            mirrors,
            endpoints,
            timeout,
            listed: Mutex::default(),
            declared: Mutex::default(),
            clients: Mutex::default(),
            manifests: Mutex::default(),
        }
    }

    /// These registries behind the function's caches. One run: answers stay
    /// trusted for its whole length.
    pub fn cached(self) -> Reader {
        Reader::new(
            Arc::new(self),
            CacheOptions {
                tag_ttl: Duration::from_secs(24 * 3600),
                ..CacheOptions::forgetting_failures()
            },
        )
    }

    /// The ECR repository `path` is mirrored to.
    pub fn repository_for(&self, path: &str) -> Option<String> {
        Mirror::repository_for(&self.mirrors, path).map(|(r, _)| r)
    }

    /// Records that `repository` is read from `path`.
    pub fn list(&self, repository: &str, path: &str) {
        lock(&self.listed).insert(repository.to_string(), path.to_string());
    }

    /// Where the packages of an ECR repository are read from.
    pub fn source(&self, repository: &str) -> Result<Location> {
        let declared = lock(&self.declared)
            .get(repository)
            .cloned()
            .unwrap_or_default();
        let listed = lock(&self.listed).get(repository).cloned();
        let mut named: Vec<&String> = declared.iter().collect();
        if let Some(listed) = listed.as_ref().filter(|l| !declared.contains(*l)) {
            named.push(listed);
        }
        if let [first, second, ..] = named.as_slice() {
            return Err(DependencyError::UnknownSource(format!(
                "{repository} would be fed from two upstreams, {first} and {second}; \
                 one ECR repository mirrors one upstream: make the dependsOn paths and the command line agree"
            ))
            .into());
        }
        let path = named
            .first()
            .map(|p| (*p).clone())
            .or_else(|| Mirror::upstream_for(&self.mirrors, repository).map(|(p, _)| p))
            .ok_or_else(|| {
                DependencyError::UnknownSource(format!(
                    "{repository} is under no mirror's repository prefix; say where it comes from with --mirror"
                ))
            })?;
        Location::parse(&path).ok_or_else(|| {
            Error::from(DependencyError::UnknownSource(format!(
                "{path:?} (the upstream of {repository}) is not a registry host and a repository name"
            )))
        })
    }

    /// The client for a registry host, with the Docker config's credentials.
    pub fn client(&self, host: &str) -> Result<Arc<Distribution>> {
        if let Some(client) = lock(&self.clients).get(host) {
            return Ok(client.clone());
        }
        let auth = Auth::from_docker_config(host).map_err(|e| unavailable(host, e))?;
        let client = match self.endpoints.get(host) {
            Some(endpoint) => Distribution::with_endpoint(endpoint, auth, self.timeout),
            None => Distribution::new(host, auth, self.timeout),
        };
        let client = client
            .map_err(|e| unavailable(host, e))?
            .with_realm_hosts(distribution::realm_hosts_from_docker_config(host));
        let client = Arc::new(client);
        lock(&self.clients).insert(host.to_string(), client.clone());
        Ok(client)
    }

    /// A manifest by digest, read once.
    pub async fn manifest(&self, source: &Location, digest: &str) -> Result<Arc<Manifest>> {
        if let Some(m) = lock(&self.manifests).get(digest) {
            return Ok(m.clone());
        }
        let (digest, manifest) = self.fetch(source, digest).await?;
        let manifest = Arc::new(manifest);
        lock(&self.manifests).insert(digest, manifest.clone());
        Ok(manifest)
    }

    async fn fetch(&self, source: &Location, reference: &str) -> Result<(String, Manifest)> {
        let client = self.client(&source.host)?;
        client
            .manifest(&source.repository, reference)
            .await
            .map_err(|e| from_distribution(source, e))?
            .ok_or_else(|| Error::ImageNotFound {
                registry: source.host.clone(),
                repository: source.repository.clone(),
                reference: reference.to_string(),
                message: "no such manifest".into(),
            })
    }
}

#[async_trait]
impl Registry for Upstream {
    async fn list_tags(&self, repository: &str) -> Result<Tags> {
        let source = self.source(repository)?;
        self.client(&source.host)?
            .tags(&source.repository)
            .await
            .map(Tags::new)
            .map_err(|e| from_distribution(&source, e))
    }

    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
        let source = self.source(repository)?;
        let checked =
            Reference::parse(reference, format!("a version of {source}")).map_err(|e| {
                Error::InvalidPackage {
                    repository: source.to_string(),
                    digest: String::new(),
                    message: e.to_string(),
                }
            })?;
        if let Some(digest) = checked.digest() {
            self.manifest(&source, digest.as_str()).await?;
            return Ok(digest.to_string());
        }
        let (digest, manifest) = self.fetch(&source, reference).await?;
        lock(&self.manifests).insert(digest.clone(), Arc::new(manifest));
        Ok(digest)
    }

    async fn package_meta(&self, repository: &str, digest: &str) -> Result<Arc<PackageMeta>> {
        let source = self.source(repository)?;
        let image = UpstreamImage {
            upstream: self,
            source: &source,
            digest,
        };
        let options = ReadOptions {
            limits: LayerLimits::default(),
            max_layers_scanned: MAX_LAYERS_SCANNED,
            layer_timeout: self.timeout,
        };
        let meta = xpkg::package_meta(&image, digest, options).await?;
        let mut declared = lock(&self.declared);
        for dependency in &meta.depends_on {
            if let Some(repository) = self.repository_for(&dependency.package) {
                declared
                    .entry(repository)
                    .or_default()
                    .insert(dependency.package.clone());
            }
        }
        Ok(Arc::new(meta))
    }

    async fn signatures(&self, repository: &str, digest: &str) -> Result<Arc<Signatures>> {
        let source = self.source(repository)?;
        let checked =
            Digest::parse(digest, "the image digest").map_err(|e| Error::InvalidPackage {
                repository: source.to_string(),
                digest: String::new(),
                message: e.to_string(),
            })?;
        let image = UpstreamSignatures {
            upstream: self,
            source: &source,
            digest: &checked,
        };
        signatures::read(&image, &checked).await.map(Arc::new)
    }
}

/// One upstream image's signatures, for `mirror --verify-with`.
struct UpstreamSignatures<'a> {
    upstream: &'a Upstream,
    source: &'a Location,
    digest: &'a Digest,
}

impl UpstreamSignatures<'_> {
    /// The manifest `reference` names, `None` when there is none.
    async fn bytes(&self, reference: &str) -> Result<Option<Vec<u8>>> {
        let client = self.upstream.client(&self.source.host)?;
        match client.manifest(&self.source.repository, reference).await {
            Ok(found) => Ok(found.map(|(_, m)| m.bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(from_distribution(self.source, e)),
        }
    }
}

#[async_trait]
impl SignatureSource for UpstreamSignatures<'_> {
    type Error = Error;

    async fn tagged(&self, legacy: &str, referrers: &str) -> Result<Tagged> {
        Ok(Tagged {
            legacy: self.bytes(legacy).await?,
            referrers: self.bytes(referrers).await?,
        })
    }

    async fn referrers(&self) -> Result<Option<Vec<Descriptor>>> {
        self.upstream
            .client(&self.source.host)?
            .referrers(&self.source.repository, self.digest.as_str())
            .await
            .map_err(|e| from_distribution(self.source, e))
    }

    async fn manifest(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        // By digest: the client checks the bytes against it.
        self.bytes(digest).await
    }

    async fn blob(&self, layer: &Descriptor, max: usize) -> Result<Small> {
        let expected = match blob_digest(layer, max) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        let response = self
            .upstream
            .client(&self.source.host)?
            .open_blob(&self.source.repository, expected.as_str())
            .await
            .map_err(|e| from_distribution(self.source, e))?;
        read_small(response, &expected, max, self.upstream.timeout)
            .await
            .map_err(|e| unavailable(&self.source.host, e))
    }
}

struct UpstreamImage<'a> {
    upstream: &'a Upstream,
    source: &'a Location,
    digest: &'a str,
}

#[async_trait]
impl ImageSource for UpstreamImage<'_> {
    type Error = Error;

    async fn manifest(&self, digest: &str) -> Result<Arc<Manifest>> {
        self.upstream.manifest(self.source, digest).await
    }

    async fn open_layer(&self, layer: &Descriptor) -> Result<reqwest::Response> {
        self.upstream
            .client(&self.source.host)?
            .open_blob(&self.source.repository, &layer.digest)
            .await
            .map_err(|e| from_distribution(self.source, e))
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidPackage {
            repository: self.source.to_string(),
            digest: self.digest.to_string(),
            message,
        }
    }

    fn interrupted(&self, message: String) -> Error {
        unavailable(&self.source.host, message)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(host: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        operation: format!("reading {host}"),
        message: e.to_string(),
    }
}

/// The resolver's error for a registry failure: a 404 is a missing
/// repository or image, refused credentials are credentials.
fn from_distribution(source: &Location, e: distribution::Error) -> Error {
    match &e {
        e if e.is_not_found() => Error::RepositoryNotFound {
            registry: source.host.clone(),
            repository: source.repository.clone(),
        },
        distribution::Error::Unauthorized { .. } => Error::Unauthorized {
            registry: source.host.clone(),
            message: e.to_string(),
        },
        distribution::Error::OffHost { .. } => Error::Unauthorized {
            registry: source.host.clone(),
            message: e.to_string(),
        },
        distribution::Error::Invalid { .. } | distribution::Error::Reference(_) => {
            Error::InvalidPackage {
                repository: source.to_string(),
                digest: String::new(),
                message: e.to_string(),
            }
        }
        _ => unavailable(&source.host, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sources_split_at_the_first_slash(
            host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            path in "[a-z0-9]{1,5}([._-][a-z0-9]{1,5})?(/[a-z0-9]{1,5}(__[a-z0-9]{1,3})?){0,3}",
        ) {
            let text = format!("{host}/{path}");
            let source = Location::parse(&text).expect("parses");
            prop_assert_eq!(&source.host, &host);
            prop_assert_eq!(&source.repository, &path);
            prop_assert_eq!(source.to_string(), text);
        }

        #[test]
        fn source_parsing_never_panics(text in ".{0,100}") {
            let _ = Location::parse(&text);
        }
    }

    fn mirror(upstream: &str, prefix: &str) -> Mirror {
        Mirror {
            upstream: upstream.into(),
            repository_prefix: prefix.into(),
        }
    }

    #[test]
    fn sources_listed_then_declared_then_mirrored() {
        let upstream = Upstream::new(
            vec![
                mirror("xpkg.upbound.io/", "m/"),
                mirror("xpkg.crossplane.io/", "m/"),
            ],
            BTreeMap::new(),
            Duration::from_secs(1),
        );
        let source = |r: &str| upstream.source(r).map(|s| s.to_string());
        assert_eq!(source("m/a/b").as_deref(), Ok("xpkg.upbound.io/a/b"));
        // The command line names where a repository comes from...
        upstream.list("m/a/b", "127.0.0.1:5000/a/b");
        assert_eq!(source("m/a/b").as_deref(), Ok("127.0.0.1:5000/a/b"));
        assert!(source("other/x").is_err());

        // ...a dependent's declared path, exactly, comes before the table,
        // even when it sorts after another mirror's upstream.
        lock(&upstream.declared)
            .entry("m/c/d".into())
            .or_default()
            .insert("xpkg.upbound.io/c/d".to_string());
        assert_eq!(source("m/c/d").as_deref(), Ok("xpkg.upbound.io/c/d"));
    }

    /// Dependency confusion: one package declaring the look-alike
    /// `xpkg.crossplane.io` path of a repository others declare on
    /// `xpkg.upbound.io` is refused with both named, never resolved by
    /// picking the alphabetically first.
    #[test]
    fn two_upstreams_for_one_repository_are_refused() {
        let upstream = Upstream::new(
            vec![
                mirror("xpkg.upbound.io/", "m/"),
                mirror("xpkg.crossplane.io/", "m/"),
            ],
            BTreeMap::new(),
            Duration::from_secs(1),
        );
        lock(&upstream.declared)
            .entry("m/upbound/provider-family-aws".into())
            .or_default()
            .extend([
                "xpkg.crossplane.io/upbound/provider-family-aws".to_string(),
                "xpkg.upbound.io/upbound/provider-family-aws".to_string(),
            ]);
        let e = upstream
            .source("m/upbound/provider-family-aws")
            .expect_err("two upstreams")
            .to_string();
        assert!(
            e.contains("xpkg.crossplane.io/upbound/provider-family-aws")
                && e.contains("xpkg.upbound.io/upbound/provider-family-aws"),
            "{e}"
        );

        // A declared path that differs from the command line's is refused
        // too.
        lock(&upstream.declared)
            .entry("m/x/y".into())
            .or_default()
            .insert("xpkg.crossplane.io/x/y".to_string());
        upstream.list("m/x/y", "xpkg.upbound.io/x/y");
        let e = upstream
            .source("m/x/y")
            .expect_err("two upstreams")
            .to_string();
        assert!(
            e.contains("xpkg.crossplane.io/x/y") && e.contains("xpkg.upbound.io/x/y"),
            "{e}"
        );
        // The same path declared and listed is one upstream.
        upstream.list("m/x/y", "xpkg.crossplane.io/x/y");
        assert_eq!(
            upstream.source("m/x/y").map(|s| s.to_string()).as_deref(),
            Ok("xpkg.crossplane.io/x/y")
        );
    }

    #[test]
    fn sources_off_the_grammar_are_refused() {
        for bad in [
            "host/../x",
            "host/a/../../b",
            "host/a?b",
            "host/a#b",
            "host/a b",
            "host/A",
            "ho st/a",
            "user@host/a",
            "host/",
            "/a",
        ] {
            assert_eq!(Location::parse(bad), None, "{bad}");
        }
    }
}

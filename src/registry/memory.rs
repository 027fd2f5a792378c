//! A registry held in memory, for tests and for the simulator: the same
//! answers ECR would give, with call counting and an outage switch so tests can
//! prove the no-drop invariant.
//!
//! A test double, compiled only for unit tests and with the `test-support`
//! feature (which the integration tests and benches turn on through a
//! dev-dependency on this crate); the function never uses it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::scan::ScanReport;
use super::{ListedTag, Registry, Tags};
use crate::error::{Error, Result};
use crate::oci::blob::sha256_digest;
use crate::package::{Dependency, PackageKind, PackageMeta};
use crate::signature::Signatures;

#[derive(Default)]
pub struct MemoryRegistry {
    /// repository -> tag -> digest
    tags: Mutex<HashMap<String, HashMap<String, String>>>,
    /// digest -> metadata
    metas: Mutex<HashMap<String, PackageMeta>>,
    /// digest -> what its scan says; a digest not here is not scanned.
    scans: Mutex<HashMap<String, ScanReport>>,
    /// digest -> the signatures stored beside it; none when not here.
    signatures: Mutex<HashMap<String, Signatures>>,
    calls: AtomicUsize,
    /// How many of `calls` asked for a tag's or digest's digest.
    resolves: AtomicUsize,
    down: AtomicBool,
}

impl MemoryRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or retags) an image. The digest is derived from repository and
    /// tag so distinct images never share one by accident.
    pub fn push(&self, repository: &str, tag: &str, meta: PackageMeta) -> String {
        // Not a content hash (there is no content), but well formed and
        // distinct per image, so no two images share one by accident.
        let digest = sha256_digest(format!("{repository}:{tag}").as_bytes());
        self.tag_image(repository, tag, digest, meta)
    }

    /// Pushes a new image under `tag`, which moves to it: a digest no
    /// earlier push of the tag gave.
    pub fn move_tag(&self, repository: &str, tag: &str, meta: PackageMeta) -> String {
        let before = self
            .lock_tags()
            .get(repository)
            .and_then(|tags| tags.get(tag).cloned())
            .unwrap_or_default();
        let digest = sha256_digest(format!("{repository}:{tag}:{before}").as_bytes());
        self.tag_image(repository, tag, digest, meta)
    }

    /// Stores the image `digest` with its metadata and points `tag` at it.
    fn tag_image(&self, repository: &str, tag: &str, digest: String, meta: PackageMeta) -> String {
        self.lock_tags()
            .entry(repository.to_string())
            .or_default()
            .insert(tag.to_string(), digest.clone());
        self.metas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone(), meta);
        digest
    }

    /// Sets what the scan of the image at `digest` says.
    pub fn set_scan(&self, digest: &str, report: ScanReport) {
        self.scans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_string(), report);
    }

    /// Sets the signatures stored beside the image at `digest`.
    pub fn set_signatures(&self, digest: &str, signatures: Signatures) {
        self.signatures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_string(), signatures);
    }

    /// Deletes every image of a repository; the repository stays, empty.
    pub fn empty(&self, repository: &str) {
        if let Some(tags) = self.lock_tags().get_mut(repository) {
            tags.clear();
        }
    }

    /// Deletes a repository and its images.
    pub fn delete(&self, repository: &str) {
        self.lock_tags().remove(repository);
    }

    /// Makes every call fail as if AWS were unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many calls were answered or refused so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many of [`calls`](Self::calls) were `resolve_digest`.
    pub fn resolve_digest_calls(&self) -> usize {
        self.resolves.load(Ordering::SeqCst)
    }

    fn lock_tags(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, String>>> {
        self.tags.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self, operation: &str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable {
                operation: operation.to_string(),
                message: "registry is down".to_string(),
            });
        }
        Ok(())
    }

    fn not_found(repository: &str) -> Error {
        Error::RepositoryNotFound {
            registry: "memory".to_string(),
            repository: repository.to_string(),
        }
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn list_tags(&self, repository: &str) -> Result<Tags> {
        self.enter("ListImages")?;
        let tags = self.lock_tags();
        let repo = tags
            .get(repository)
            .ok_or_else(|| Self::not_found(repository))?;
        // Each tag with its digest, as ECR's ListImages lists them.
        Ok(Tags::listed(repo.iter().map(|(tag, digest)| ListedTag {
            tag: tag.clone(),
            digest: Some(digest.clone()),
        })))
    }

    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        self.enter("BatchGetImage")?;
        let tags = self.lock_tags();
        let repo = tags
            .get(repository)
            .ok_or_else(|| Self::not_found(repository))?;
        let found = if reference.starts_with("sha256:") {
            repo.values().find(|d| *d == reference).cloned()
        } else {
            repo.get(reference).cloned()
        };
        found.ok_or_else(|| Error::ImageNotFound {
            registry: "memory".to_string(),
            repository: repository.to_string(),
            reference: reference.to_string(),
            message: "ImageNotFound".to_string(),
        })
    }

    async fn package_meta(&self, repository: &str, digest: &str) -> Result<Arc<PackageMeta>> {
        self.enter("GetDownloadUrlForLayer")?;
        self.metas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .map(|meta| Arc::new(meta.clone()))
            .ok_or_else(|| Error::ImageNotFound {
                registry: "memory".to_string(),
                repository: repository.to_string(),
                reference: digest.to_string(),
                message: "no such manifest".to_string(),
            })
    }

    async fn scan_report(&self, _repository: &str, digest: &str) -> Result<ScanReport> {
        self.enter("DescribeImageScanFindings")?;
        let scans = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        Ok(scans
            .get(digest)
            .cloned()
            .unwrap_or_else(|| ScanReport::not_scanned("NOT_FOUND")))
    }

    async fn signatures(&self, _repository: &str, digest: &str) -> Result<Arc<Signatures>> {
        self.enter("Signatures")?;
        let signatures = self.signatures.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::new(
            signatures.get(digest).cloned().unwrap_or_default(),
        ))
    }
}

/// The blog case, as tests and benchmarks use it: the AWS family provider
/// (v2.1.0, v2.2.0 and a v2.3.0-rc.1 prerelease), the S3 provider (v2.1.0,
/// v2.2.0), which depends on the family at any release, and
/// function-patch-and-transform v0.8.2.
pub fn blog_registry() -> MemoryRegistry {
    let registry = MemoryRegistry::new();
    for tag in ["v2.1.0", "v2.2.0", "v2.3.0-rc.1"] {
        registry.push(
            "upbound/provider-family-aws",
            tag,
            meta(PackageKind::Provider, &[]),
        );
    }
    let family = "xpkg.upbound.io/upbound/provider-family-aws";
    for tag in ["v2.1.0", "v2.2.0"] {
        registry.push(
            "upbound/provider-aws-s3",
            tag,
            meta(
                PackageKind::Provider,
                &[(family, PackageKind::Provider, ">= 0.0.0")],
            ),
        );
    }
    registry.push(
        "crossplane-contrib/function-patch-and-transform",
        "v0.8.2",
        meta(PackageKind::Function, &[]),
    );
    registry
}

/// The metadata of a package of `kind` whose `dependsOn` lists
/// `(package, kind, version)`: what tests and benchmarks push into a
/// [`MemoryRegistry`]. The name is left empty; the resolver does not read it.
pub fn meta(kind: PackageKind, depends_on: &[(&str, PackageKind, &str)]) -> PackageMeta {
    PackageMeta {
        kind: Some(kind),
        name: String::new(),
        depends_on: depends_on
            .iter()
            .map(|(package, kind, version)| Dependency {
                package: package.to_string(),
                kind: *kind,
                version: version.to_string(),
            })
            .collect(),
    }
}

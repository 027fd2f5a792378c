//! Copying images from an upstream registry into ECR, byte for byte.
//!
//! An [`Image`] is a manifest tree (an index, its manifests, their config
//! and layer blobs) read from upstream. Its content goes first: each blob
//! the target lacks is mounted from another ECR repository that holds it or
//! uploaded as it streams in, then each manifest is stored under its digest,
//! children before the index. Tags come last and only for images whose
//! content is complete, so no tag ever names a half-written image. What the
//! target already holds (HEAD by digest) is not sent again, which makes a
//! second run upload nothing and an interrupted run resume where it stopped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use super::Error;
use super::progress::Progress;
use super::target::Target;
use super::upstream::{Source, Upstream};
use crate::oci::distribution::Pushed;
use crate::oci::xpkg::{Descriptor, Manifest};
use crate::reference::Digest;

/// Deepest nesting of indexes followed.
const MAX_DEPTH: usize = 3;
/// Most manifests in one image tree.
const MAX_MANIFESTS: usize = 256;

/// What an image is to its package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Package,
    /// A cosign signature, attestation or referrers-index tag, or an OCI
    /// referrer, of the package image.
    Signature,
}

/// One image to copy.
#[derive(Clone, Debug)]
pub struct Image {
    pub source: Source,
    /// The ECR repository it goes to.
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub role: Role,
    /// Every manifest of the tree, each after the manifests it lists.
    pub manifests: Vec<(String, Arc<Manifest>)>,
    /// Every blob of the tree, once each.
    pub blobs: Vec<Descriptor>,
}

impl Image {
    /// Reads the manifest tree at `digest`.
    pub async fn read(
        upstream: &Upstream,
        source: Source,
        repository: String,
        digest: String,
        tags: Vec<String>,
        role: Role,
    ) -> Result<Image, Error> {
        let mut image = Image {
            source,
            repository,
            digest: digest.clone(),
            tags,
            role,
            manifests: Vec::new(),
            blobs: Vec::new(),
        };
        let mut seen = BTreeSet::new();
        image.walk(upstream, &digest, 0, &mut seen).await?;
        Ok(image)
    }

    async fn walk(
        &mut self,
        upstream: &Upstream,
        digest: &str,
        depth: usize,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), Error> {
        if !seen.insert(digest.to_string()) {
            return Ok(());
        }
        if depth > MAX_DEPTH || seen.len() > MAX_MANIFESTS {
            return Err(Error::Image {
                image: format!("{}@{}", self.source, self.digest),
                message: format!(
                    "more than {MAX_MANIFESTS} manifests or {MAX_DEPTH} levels of indexes"
                ),
            });
        }
        let manifest = upstream
            .manifest(&self.source, digest)
            .await
            .map_err(Error::Resolve)?;
        let parsed = manifest.parse().map_err(|message| Error::Image {
            image: format!("{}@{digest}", self.source),
            message,
        })?;
        let invalid = |e: crate::reference::Error| Error::Image {
            image: format!("{}@{digest}", self.source),
            message: e.to_string(),
        };
        // Every digest the manifest names is checked before it is followed
        // or copied: a child "digest" of `../other/manifests/v9` or of a
        // tag would otherwise become a request path.
        let children: Vec<&Descriptor> = if manifest.is_index(&parsed) {
            parsed.manifests.iter().flatten().collect()
        } else {
            Vec::new()
        };
        for (i, child) in children.iter().enumerate() {
            Digest::parse(
                &child.digest,
                format!("manifests[{i}] of index {}@{digest}", self.source),
            )
            .map_err(invalid)?;
        }
        for (i, blob) in parsed.blobs().enumerate() {
            Digest::parse(
                &blob.digest,
                format!("blob {i} of manifest {}@{digest}", self.source),
            )
            .map_err(invalid)?;
        }
        for child in children {
            Box::pin(self.walk(upstream, &child.digest, depth + 1, seen)).await?;
        }
        for blob in parsed.blobs() {
            if !self.blobs.iter().any(|b| b.digest == blob.digest) {
                self.blobs.push(blob.clone());
            }
        }
        self.manifests.push((digest.to_string(), manifest));
        Ok(())
    }

    pub fn name(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// What copying one image's content did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub bytes_uploaded: u64,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub manifests_pushed: usize,
    /// Whether the image was already complete in the target.
    pub present: bool,
}

pub struct Copier<'a> {
    upstream: &'a Upstream,
    target: &'a Target,
    chunk_size: usize,
    progress: &'a Progress,
    /// A target repository known to hold each blob, for mounts.
    placed: Mutex<HashMap<String, String>>,
    /// The run's target repositories, where a blob may already be.
    repositories: Vec<String>,
}

impl<'a> Copier<'a> {
    pub fn new(
        upstream: &'a Upstream,
        target: &'a Target,
        chunk_size: usize,
        progress: &'a Progress,
        repositories: Vec<String>,
    ) -> Self {
        Self {
            upstream,
            target,
            chunk_size,
            progress,
            placed: Mutex::default(),
            repositories,
        }
    }

    /// Copies the blobs and manifests of `image`, not its tags.
    pub async fn content(&self, image: &Image) -> Result<Copied, Error> {
        let data = self.target.data();
        let mut copied = Copied::default();
        if data
            .manifest_digest(&image.repository, &image.digest)
            .await
            .map_err(target_error)?
            .is_some()
        {
            copied.present = true;
            self.progress.image(image, &copied);
            return Ok(copied);
        }
        for blob in &image.blobs {
            match self.blob(image, blob).await? {
                None => {}
                Some(Pushed::Mounted) => copied.blobs_mounted += 1,
                Some(Pushed::Uploaded(bytes)) => {
                    copied.blobs_uploaded += 1;
                    copied.bytes_uploaded += bytes;
                }
            }
        }
        for (digest, manifest) in &image.manifests {
            let exists = data
                .manifest_digest(&image.repository, digest)
                .await
                .map_err(target_error)?
                .is_some();
            if !exists {
                data.put_manifest(&image.repository, digest, manifest)
                    .await
                    .map_err(target_error)?;
                copied.manifests_pushed += 1;
            }
        }
        self.progress.image(image, &copied);
        Ok(copied)
    }

    /// Points each tag of `image` at it; returns how many were pushed (a
    /// tag already naming the image is left alone).
    pub async fn tag(&self, image: &Image) -> Result<usize, Error> {
        let data = self.target.data();
        let Some((_, manifest)) = image.manifests.last() else {
            return Ok(0);
        };
        let mut pushed = 0;
        for tag in &image.tags {
            let current = data
                .manifest_digest(&image.repository, tag)
                .await
                .map_err(target_error)?;
            if current.as_deref() == Some(image.digest.as_str()) {
                continue;
            }
            data.put_manifest(&image.repository, tag, manifest)
                .await
                .map_err(target_error)?;
            self.progress.tagged(image, tag);
            pushed += 1;
        }
        Ok(pushed)
    }

    /// Puts one blob into the image's repository; `None` when it is there.
    async fn blob(&self, image: &Image, blob: &Descriptor) -> Result<Option<Pushed>, Error> {
        let data = self.target.data();
        let repository = &image.repository;
        if data
            .has_blob(repository, &blob.digest)
            .await
            .map_err(target_error)?
        {
            self.place(&blob.digest, repository);
            return Ok(None);
        }
        let mount_from = self.holder(&blob.digest, repository).await?;
        let upstream = self.upstream;
        let source = image.source.clone();
        let digest = blob.digest.clone();
        let size = blob.size;
        let body = move || {
            async move {
                let client = upstream.client(&source.host).map_err(|e| {
                    crate::oci::distribution::Error::Config {
                        registry: source.host.clone(),
                        message: e.to_string(),
                    }
                })?;
                client.blob(&source.repository, &digest, size).await
            }
            .boxed()
        };
        let pushed = data
            .push_blob(
                repository,
                &blob.digest,
                mount_from.as_deref(),
                self.chunk_size,
                body,
            )
            .await
            .map_err(|e| Error::Blob {
                image: image.name(),
                digest: blob.digest.clone(),
                source: Box::new(e),
            })?;
        self.place(&blob.digest, repository);
        self.progress.blob(image, blob, pushed);
        Ok(Some(pushed))
    }

    /// Another repository of the run that holds a blob: one this run put it
    /// in, else the first of the run's repositories that has it.
    async fn holder(&self, digest: &str, repository: &str) -> Result<Option<String>, Error> {
        let placed = self
            .placed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .filter(|r| *r != repository)
            .cloned();
        if placed.is_some() {
            return Ok(placed);
        }
        for other in self.repositories.iter().filter(|r| *r != repository) {
            if self
                .target
                .data()
                .has_blob(other, digest)
                .await
                .map_err(target_error)?
            {
                self.place(digest, other);
                return Ok(Some(other.clone()));
            }
        }
        Ok(None)
    }

    fn place(&self, digest: &str, repository: &str) {
        self.placed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.to_string())
            .or_insert_with(|| repository.to_string());
    }
}

/// The blobs of `image` the target lacks (all when its repository does not
/// exist yet), or none when the image is already there.
pub async fn missing<'i>(
    target: &Target,
    image: &'i Image,
    repository_exists: bool,
) -> Result<Vec<&'i Descriptor>, Error> {
    if !repository_exists {
        return Ok(image.blobs.iter().collect());
    }
    let data = target.data();
    let present = data
        .manifest_digest(&image.repository, &image.digest)
        .await
        .map_err(target_error)?;
    if present.is_some() {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    for blob in &image.blobs {
        if !data
            .has_blob(&image.repository, &blob.digest)
            .await
            .map_err(target_error)?
        {
            missing.push(blob);
        }
    }
    Ok(missing)
}

fn target_error(e: crate::oci::distribution::Error) -> Error {
    Error::Target(Box::new(e))
}

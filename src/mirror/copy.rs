//! Copying images from an upstream registry into ECR, byte for byte.
//!
//! An [`Image`]'s content goes first: each blob the target lacks is mounted
//! from another ECR repository that holds it or uploaded as it streams in,
//! then each manifest is stored under its digest, children before the
//! index. Tags come last and only for images whose content is complete
//! (when, is [`super::tag`]'s to say), so no tag ever names a half-written
//! image. What the target already holds (HEAD by digest) is not sent again,
//! which makes a second run upload nothing and an interrupted run resume
//! where it stopped.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::FutureExt;
use futures::stream::{self, StreamExt};

use super::copied::Copied;
use super::error::Error;
use super::image::{Image, Package, TreeManifest};
use super::progress::Progress;
use super::target::Target;
use super::upstream::Upstream;
use crate::oci::distribution::Pushed;
use crate::oci::xpkg::Descriptor;

/// Copies images into the target, remembering which repository holds
/// which blob so later images mount it instead of uploading it again.
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
            .map_err(Error::target)?
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
        for TreeManifest { digest, manifest } in &image.manifests {
            let exists = data
                .manifest_digest(&image.repository, digest)
                .await
                .map_err(Error::target)?
                .is_some();
            if !exists {
                data.put_manifest(&image.repository, digest, manifest)
                    .await
                    .map_err(Error::target)?;
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
        let Some(TreeManifest { manifest, .. }) = image.manifests.last() else {
            return Ok(0);
        };
        let mut pushed = 0;
        for tag in &image.tags {
            let current = data
                .manifest_digest(&image.repository, tag)
                .await
                .map_err(Error::target)?;
            if current.as_deref() == Some(image.digest.as_str()) {
                continue;
            }
            data.put_manifest(&image.repository, tag, manifest)
                .await
                .map_err(Error::target)?;
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
            .map_err(Error::target)?
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
                .map_err(Error::target)?
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

/// Copies the content of every package's images, `concurrency` packages
/// at once; one result per package, in the order given.
pub async fn packages(
    copier: &Copier<'_>,
    packages: &[Package],
    concurrency: usize,
) -> Vec<Result<Copied, Error>> {
    stream::iter(packages)
        .map(|package| async {
            let mut total = Copied::none();
            for image in &package.images {
                total.add(&copier.content(image).await?);
            }
            Ok(total)
        })
        .buffered(concurrency)
        .collect()
        .await
}

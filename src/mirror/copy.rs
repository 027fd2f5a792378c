//! Copying images from an upstream registry into ECR, byte for byte.
//!
//! An [`Image`]'s content goes first: its blobs, several at once, each one
//! the target lacks mounted from another ECR repository that holds it or
//! uploaded as it streams in ([`Holders`] makes sure a blob is uploaded
//! once per run, however many images share it; fewer bodies stream at once
//! than transfers are in flight, [`super::streaming`] says why); then each
//! manifest, stored under its digest, children before the index. Tags come
//! last and only for images whose content is complete (when, is
//! [`super::tag`]'s to say), so no tag ever names a half-written image.
//! What the target already holds (HEAD by digest) is not sent again, which
//! makes a second run upload nothing and an interrupted run resume where it
//! stopped; a repository this run created is known to be empty, and is not
//! asked.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::FutureExt;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use super::copied::Copied;
use super::error::Error;
use super::holders::Holders;
use super::image::{Image, Package, TreeManifest};
use super::plan::Plan;
use super::progress::Progress;
use super::streaming;
use super::target::Target;
use super::upstream::Upstream;
use crate::oci::distribution::{BlobPush, Pushed};
use crate::oci::xpkg::Descriptor;

/// How content is sent.
#[derive(Clone, Copy, Debug)]
pub struct Sending {
    /// Upload blobs larger than this in chunks of this size.
    pub chunk_size: Option<usize>,
    /// Blob transfers (uploads and mounts) at once, over the whole run.
    pub transfers: usize,
    /// Of those, uploads whose bodies stream at once.
    pub streams: usize,
}

/// Copies images into the target, remembering which repository holds
/// which blob so later images mount it instead of uploading it again.
pub struct Copier<'a> {
    upstream: &'a Upstream,
    target: &'a Target,
    progress: &'a Progress,
    sending: Sending,
    transfers: Semaphore,
    /// Upload bodies streaming: released with a body's last byte.
    streams: Arc<Semaphore>,
    holders: Holders,
    /// Repositories that existed before the run: where a blob may be
    /// without this run putting it there.
    existing: Vec<String>,
    /// Repositories the run created: empty when it started.
    created: BTreeSet<String>,
}

impl<'a> Copier<'a> {
    pub fn new(
        upstream: &'a Upstream,
        target: &'a Target,
        progress: &'a Progress,
        plan: &Plan,
        sending: Sending,
    ) -> Self {
        let created: BTreeSet<String> = plan.repositories_to_create.iter().cloned().collect();
        Self {
            upstream,
            target,
            progress,
            sending,
            transfers: Semaphore::new(sending.transfers.max(1)),
            streams: Arc::new(Semaphore::new(sending.streams.max(1))),
            holders: Holders::default(),
            existing: plan
                .repositories
                .iter()
                .filter(|r| !created.contains(*r))
                .cloned()
                .collect(),
            created,
        }
    }

    /// Whether the run created `repository`, so it held nothing at the
    /// start.
    fn created(&self, repository: &str) -> bool {
        self.created.contains(repository)
    }

    /// Copies the blobs and manifests of `image`, not its tags.
    pub async fn content(&self, image: &Image) -> Result<Copied, Error> {
        let data = self.target.data();
        let fresh = self.created(&image.repository);
        let mut copied = Copied::default();
        if !fresh
            && data
                .manifest_digest(&image.repository, &image.digest)
                .await
                .map_err(Error::target)?
                .is_some()
        {
            copied.present = true;
            self.progress.image(image, &copied);
            return Ok(copied);
        }
        // Largest first: the run ends soonest when the longest transfers
        // start first.
        let mut blobs: Vec<&Descriptor> = image.blobs.iter().collect();
        blobs.sort_by_key(|b| std::cmp::Reverse(b.size));
        copied = stream::iter(blobs)
            .map(|blob| self.blob(image, blob))
            .buffer_unordered(self.sending.transfers.max(1))
            .try_fold(copied, |mut copied, pushed| async move {
                match pushed {
                    None => {}
                    Some(Pushed::Mounted) => copied.blobs_mounted += 1,
                    Some(Pushed::Uploaded(bytes)) => {
                        copied.blobs_uploaded += 1;
                        copied.bytes_uploaded += bytes;
                    }
                }
                Ok(copied)
            })
            .await?;
        for TreeManifest { digest, manifest } in &image.manifests {
            let exists = !fresh
                && data
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
            // A repository the run created had no tag to keep.
            let current = if self.created(&image.repository) {
                None
            } else {
                data.manifest_digest(&image.repository, tag)
                    .await
                    .map_err(Error::target)?
            };
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
        let repository = &image.repository;
        if !self.created(repository)
            && self
                .target
                .data()
                .has_blob(repository, &blob.digest)
                .await
                .map_err(Error::target)?
        {
            self.holders.found(&blob.digest, repository);
            return Ok(None);
        }
        let mut uploaded = None;
        let holder = self
            .holders
            .holder(&blob.digest, || async {
                if let Some(other) = self.existing_holder(&blob.digest, repository).await? {
                    return Ok(other);
                }
                uploaded = Some(self.transfer(image, blob, None).await?);
                Ok::<_, Error>(repository.clone())
            })
            .await?;
        let pushed = match uploaded {
            Some(pushed) => pushed,
            None if holder == *repository => return Ok(None),
            None => self.transfer(image, blob, Some(&holder)).await?,
        };
        self.progress.blob(image, blob, pushed);
        Ok(Some(pushed))
    }

    /// Mounts a blob from `mount_from`, or uploads it from upstream, once
    /// one of the run's transfers is free.
    async fn transfer(
        &self,
        image: &Image,
        blob: &Descriptor,
        mount_from: Option<&str>,
    ) -> Result<Pushed, Error> {
        let _slot = self.transfers.acquire().await;
        let upstream = self.upstream;
        let source = image.source.clone();
        let digest = blob.digest.clone();
        let size = blob.size;
        let streams = self.streams.clone();
        let body = move || {
            async move {
                let client = upstream.client(&source.host).map_err(|e| {
                    crate::oci::distribution::Error::Config {
                        registry: source.host.clone(),
                        message: e.to_string(),
                    }
                })?;
                let slot = if streaming::needs_slot(size) {
                    // Never closed, so always a slot.
                    streams.acquire_owned().await.ok()
                } else {
                    None
                };
                let stream = client.blob(&source.repository, &digest, size).await?;
                Ok(streaming::holding(stream, size, slot))
            }
            .boxed()
        };
        let push = BlobPush {
            repository: &image.repository,
            digest: &blob.digest,
            size: blob.size,
            mount_from,
            chunk_size: self.sending.chunk_size,
        };
        self.target
            .data()
            .push_blob(push, body)
            .await
            .map_err(|e| Error::Blob {
                image: image.name(),
                digest: blob.digest.clone(),
                source: Box::new(e),
            })
    }

    /// A repository that held a blob before the run started (so it is not
    /// `repository`, and not one the run created).
    async fn existing_holder(
        &self,
        digest: &str,
        repository: &str,
    ) -> Result<Option<String>, Error> {
        for other in self.existing.iter().filter(|r| *r != repository) {
            if self
                .target
                .data()
                .has_blob(other, digest)
                .await
                .map_err(Error::target)?
            {
                return Ok(Some(other.clone()));
            }
        }
        Ok(None)
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

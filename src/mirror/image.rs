//! The images of the resolved packages, read from upstream: each
//! package's image as a manifest tree (an index, its manifests, their
//! config and layer blobs) and, asked to, its signatures, attestations and
//! OCI referrers. Every digest a manifest names is checked before it is
//! followed.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::error::Error;
use super::upstream::{Location, Reader, Upstream};
use crate::oci::xpkg::{Descriptor, Manifest};
use crate::reference::Digest;
use crate::registry::Registry;
use crate::resolve::graph::PackageNode;

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

/// One manifest of an image's tree, by its digest.
#[derive(Clone, Debug)]
pub struct TreeManifest {
    pub digest: String,
    pub manifest: Arc<Manifest>,
}

/// One image to copy.
#[derive(Clone, Debug)]
pub struct Image {
    pub source: Location,
    /// The ECR repository it goes to.
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub role: Role,
    /// Every manifest of the tree, each after the manifests it lists.
    pub manifests: Vec<TreeManifest>,
    /// Every blob of the tree, once each.
    pub blobs: Vec<Descriptor>,
}

impl Image {
    /// Reads the manifest tree at `digest`.
    pub async fn read(
        upstream: &Upstream,
        source: Location,
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
        let invalid = |source: crate::reference::Error| Error::Digest {
            image: format!("{}@{digest}", self.source),
            source,
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
        self.manifests.push(TreeManifest {
            digest: digest.to_string(),
            manifest,
        });
        Ok(())
    }

    pub fn name(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// One resolved package and the images that carry it.
pub struct Package {
    pub node: PackageNode,
    pub source: Location,
    /// The package image first, then its signatures.
    pub images: Vec<Image>,
}

/// What to read of each package, and how many at once.
pub struct Reading {
    /// Its signatures, attestations and referrers too.
    pub signatures: bool,
    pub concurrency: usize,
}

/// Reads the manifest trees of every package (and its signatures), in the
/// order given.
pub async fn read_packages(
    upstream: &Reader,
    nodes: Vec<&PackageNode>,
    reading: &Reading,
) -> Result<Vec<Package>, Error> {
    stream::iter(nodes)
        .map(|node| async move {
            let source = upstream.inner().source(&node.repository)?;
            let tags = if crate::names::is_digest(&node.version) {
                Vec::new()
            } else {
                vec![node.version.clone()]
            };
            let mut images = vec![
                Image::read(
                    upstream.inner(),
                    source.clone(),
                    node.repository.clone(),
                    node.digest.clone(),
                    tags,
                    Role::Package,
                )
                .await?,
            ];
            if reading.signatures {
                images.extend(signatures(upstream, &source, node).await?);
            }
            Ok(Package {
                node: node.clone(),
                source,
                images,
            })
        })
        .buffered(reading.concurrency)
        .collect::<Vec<Result<Package, Error>>>()
        .await
        .into_iter()
        .collect()
}

/// The cosign signature and attestation tags of a package image, its
/// referrers-tag index, and what the referrers API lists for it.
async fn signatures(
    upstream: &Reader,
    source: &Location,
    node: &PackageNode,
) -> Result<Vec<Image>, Error> {
    let hex = node.digest.trim_start_matches("sha256:");
    let wanted: Vec<String> = ["sig", "att", "sbom"]
        .iter()
        .map(|suffix| format!("sha256-{hex}.{suffix}"))
        .chain([format!("sha256-{hex}")])
        .collect();
    let tags = upstream.list_tags(&node.repository).await?;
    let mut images = Vec::new();
    let mut seen = BTreeSet::new();
    for tag in wanted.iter().filter(|w| tags.contains(w)) {
        let digest = upstream.resolve_digest(&node.repository, tag).await?;
        seen.insert(digest.clone());
        images.push(
            Image::read(
                upstream.inner(),
                source.clone(),
                node.repository.clone(),
                digest,
                vec![tag.clone()],
                Role::Signature,
            )
            .await?,
        );
    }
    let client = upstream.inner().client(&source.host)?;
    let referrers = client
        .referrers(&source.repository, &node.digest)
        .await
        .map_err(|e| Error::Referrers {
            image: format!("{source}@{}", node.digest),
            source: Box::new(e),
        })?
        .unwrap_or_default();
    for referrer in referrers {
        if seen.insert(referrer.digest.clone()) {
            images.push(
                Image::read(
                    upstream.inner(),
                    source.clone(),
                    node.repository.clone(),
                    referrer.digest,
                    Vec::new(),
                    Role::Signature,
                )
                .await?,
            );
        }
    }
    Ok(images)
}

//! What a run would copy: for each package, the blobs and bytes the target
//! lacks, and the repositories to create. Asks ECR, writes nothing; the dry
//! run prints this and stops.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::error::Error;
use super::image::{Image, Package, Role};
use super::target::Target;
use crate::oci::xpkg::Descriptor;

/// ECR API lookups of repositories at once.
const REPOSITORY_LOOKUPS: usize = 8;

/// What the dry run prints for one package.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackagePlan {
    pub source: String,
    pub repository: String,
    pub kind: String,
    pub version: String,
    pub digest: String,
    pub depends_on: Vec<String>,
    pub signatures: Vec<String>,
    pub repository_exists: bool,
    pub blobs_to_copy: usize,
    pub bytes_to_copy: u64,
}

/// What a run would copy.
pub struct Plan {
    pub packages: Vec<PackagePlan>,
    /// Every repository the run writes into, existing or not.
    pub repositories: Vec<String>,
    pub repositories_to_create: Vec<String>,
    /// Bytes to upload: a blob counts once whatever number of repositories
    /// need it, since the others mount it.
    pub bytes: u64,
}

impl Plan {
    /// Asks the target which repositories exist, then what each package's
    /// images lack.
    pub async fn make(target: &Target, packages: &[Package]) -> Result<Plan, Error> {
        let repositories: BTreeSet<&str> = packages
            .iter()
            .map(|p| p.node.repository.as_str())
            .collect();
        let asked: Vec<(&str, Result<bool, Error>)> = stream::iter(&repositories)
            .map(|r| async move { (*r, target.has_repository(r).await) })
            .buffered(REPOSITORY_LOOKUPS)
            .collect()
            .await;
        let mut existing = BTreeSet::new();
        for (repository, exists) in asked {
            if exists? {
                existing.insert(repository.to_string());
            }
        }
        let mut to_copy: BTreeMap<String, u64> = BTreeMap::new();
        let mut planned = Vec::new();
        for package in packages {
            let exists = existing.contains(&package.node.repository);
            let mut blobs = 0;
            let mut bytes = 0;
            for image in &package.images {
                let missing = if exists {
                    missing(target, image).await?
                } else {
                    image.blobs.iter().collect()
                };
                for blob in missing {
                    blobs += 1;
                    let size = blob.size.unwrap_or_default();
                    bytes += size;
                    to_copy.insert(blob.digest.clone(), size);
                }
            }
            planned.push(PackagePlan {
                repository_exists: exists,
                blobs_to_copy: blobs,
                bytes_to_copy: bytes,
                ..PackagePlan::of(package)
            });
        }
        let repositories_to_create = planned
            .iter()
            .filter(|p| !p.repository_exists)
            .map(|p| p.repository.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(Plan {
            packages: planned,
            repositories: repositories.into_iter().map(str::to_string).collect(),
            repositories_to_create,
            bytes: to_copy.values().sum(),
        })
    }
}

impl PackagePlan {
    /// A package, before the target is asked about it.
    fn of(package: &Package) -> Self {
        let node = &package.node;
        PackagePlan {
            source: package.source.to_string(),
            repository: node.repository.clone(),
            kind: node.kind.to_string(),
            version: node.version.clone(),
            digest: node.digest.clone(),
            depends_on: node.depends_on.iter().cloned().collect(),
            signatures: package
                .images
                .iter()
                .filter(|i| i.role == Role::Signature)
                .map(|i| i.tags.first().cloned().unwrap_or_else(|| i.digest.clone()))
                .collect(),
            repository_exists: false,
            blobs_to_copy: 0,
            bytes_to_copy: 0,
        }
    }
}

/// The blobs of `image` its existing repository lacks, or none when the
/// image is already there.
async fn missing<'i>(target: &Target, image: &'i Image) -> Result<Vec<&'i Descriptor>, Error> {
    let data = target.data();
    let present = data
        .manifest_digest(&image.repository, &image.digest)
        .await
        .map_err(Error::target)?;
    if present.is_some() {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    for blob in &image.blobs {
        if !data
            .has_blob(&image.repository, &blob.digest)
            .await
            .map_err(Error::target)?
        {
            missing.push(blob);
        }
    }
    Ok(missing)
}

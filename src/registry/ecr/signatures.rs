//! The signature side of an [`EcrRegistry`], as `oci::signatures` reads
//! it: cosign's two tags in one `BatchGetImage`, the referrers API on the
//! data plane (`ListReferrers`) when there is no referrers tag, bundle
//! manifests by digest (`BatchGetImage`, kept by digest) and blobs from
//! the data plane.

use async_trait::async_trait;
use aws_sdk_ecr::types::ImageIdentifier;

use super::client::EcrRegistry;
use super::counters::Operation;
use crate::error::{Error, Result};
use crate::oci::blob;
use crate::oci::signatures::{
    self, SignatureSource, Small, Tagged, blob_digest, index, read_small,
};
use crate::oci::xpkg::{Descriptor, OCI_INDEX};
use crate::reference::{self, Digest, Repository};
use crate::signature::Signatures;
use crate::spec::limits::MAX_SIGNATURE_MANIFEST_BYTES;

impl EcrRegistry {
    /// Every signature of `repository@digest`.
    pub(super) async fn read_signatures(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Signatures> {
        let checked = Digest::parse(digest, "the image digest")
            .map_err(|e| self.invalid(repository, digest, e.to_string()))?;
        let image = EcrSignatures {
            registry: self,
            repository,
            digest: &checked,
        };
        signatures::read(&image, &checked).await
    }
}

/// One image's signatures in ECR.
struct EcrSignatures<'a> {
    registry: &'a EcrRegistry,
    repository: &'a str,
    digest: &'a Digest,
}

impl EcrSignatures<'_> {
    fn unavailable(&self, operation: &str, message: String) -> Error {
        Error::Unavailable {
            operation: operation.into(),
            message: format!("{}@{}: {message}", self.repository, self.digest),
        }
    }
}

#[async_trait]
impl SignatureSource for EcrSignatures<'_> {
    type Error = Error;

    async fn tagged(&self, legacy: &str, referrers: &str) -> Result<Tagged> {
        let ecr = self.registry;
        ecr.counters.record(Operation::BatchGetImage);
        let out = ecr
            .batch_get_manifests(self.repository)
            .image_ids(ImageIdentifier::builder().image_tag(legacy).build())
            .image_ids(ImageIdentifier::builder().image_tag(referrers).build())
            .send()
            .await
            .map_err(|e| ecr.sdk_error("BatchGetImage", self.repository, Some(referrers), e))?;
        let mut tagged = Tagged::default();
        for image in out.images() {
            let Some(bytes) = image.image_manifest().map(|m| m.as_bytes().to_vec()) else {
                continue;
            };
            let actual = blob::sha256_digest(&bytes);
            if let Some(reported) = image.image_id().and_then(|id| id.image_digest())
                && reported != actual
            {
                return Err(ecr.invalid(
                    self.repository,
                    reported,
                    format!(
                        "signature manifest bytes hash to {actual}, not to the digest ECR reports"
                    ),
                ));
            }
            match image.image_id().and_then(|id| id.image_tag()) {
                Some(t) if t == legacy => tagged.legacy = Some(bytes),
                Some(t) if t == referrers => tagged.referrers = Some(bytes),
                _ => {}
            }
        }
        Ok(tagged)
    }

    async fn referrers(&self) -> Result<Option<Vec<Descriptor>>> {
        let ecr = self.registry;
        let repo = Repository::parse(self.repository, "the repository asked for")
            .map_err(|e| ecr.invalid(self.repository, self.digest.as_str(), e.to_string()))?;
        let token = ecr.token().await?;
        let url = format!(
            "{}{}",
            token.endpoint.trim_end_matches('/'),
            reference::referrers_path(&repo, self.digest)
        );
        ecr.counters.record(Operation::ListReferrers);
        let mut response = ecr
            .http
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, &token.authorization)
            .header(reqwest::header::ACCEPT, OCI_INDEX)
            .send()
            .await
            .map_err(|e| self.unavailable("ListReferrers", e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            // No referrers API here (or none this token may read): the
            // gate then finds no bundle, and fails closed.
            400 | 401 | 403 | 404 | 405 => return Ok(None),
            status => return Err(self.unavailable("ListReferrers", format!("HTTP {status}"))),
        }
        let mut bytes = Vec::new();
        let read = async {
            while let Some(chunk) = response.chunk().await? {
                if bytes.len() + chunk.len() > MAX_SIGNATURE_MANIFEST_BYTES {
                    return Ok(false);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(true)
        };
        let whole = tokio::time::timeout(ecr.options.blob_timeout, read)
            .await
            .map_err(|_| self.unavailable("ListReferrers", "timed out".into()))?
            .map_err(|e| self.unavailable("ListReferrers", e.to_string()))?;
        // An answer too large or not an index lists nothing: the gate
        // then finds no bundle there, and fails closed.
        Ok(whole.then(|| index(&bytes).ok()).flatten())
    }

    async fn manifest(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        // By digest: `manifest` checks the bytes against it.
        match self.registry.manifest(self.repository, digest).await {
            Ok((_, manifest)) => Ok(Some(manifest.bytes.clone())),
            Err(Error::ImageNotFound { .. } | Error::InvalidPackage { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn blob(&self, layer: &Descriptor, max: usize) -> Result<Small> {
        let expected = match blob_digest(layer, max) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        let ecr = self.registry;
        let response = ecr.open_blob(self.repository, expected.as_str()).await?;
        read_small(response, &expected, max, ecr.options.blob_timeout)
            .await
            .map_err(|e| self.unavailable("GetBlob", e))
    }
}

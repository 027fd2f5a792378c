//! The signature side of an [`EcrRegistry`]: what cosign stored beside one
//! image, read in one `BatchGetImage` for both places cosign puts it:
//!
//! * the legacy tag `sha256-<hex>.sig`: a manifest whose simple-signing
//!   layers carry the signature in an annotation;
//! * the referrers tag schema `sha256-<hex>` (what cosign v3 writes to a
//!   registry without the OCI 1.1 referrers API): an index of manifests
//!   whose `subject` is the image and whose layer is a Sigstore bundle;
//!   without that tag, the referrers API itself (`GET
//!   /v2/<repo>/referrers/<digest>` on the data plane, one call; a registry
//!   without it answers 404), whose answer is the same kind of index.
//!
//! Every manifest is checked against its digest (the one ECR reports, or
//! the index's descriptor), every blob against its descriptor's, and each
//! is bounded in size and number. A manifest that is not what it should be
//! is noted as unreadable, not an error: the gate then names it.

use aws_sdk_ecr::types::ImageIdentifier;

use super::client::EcrRegistry;
use super::counters::Operation;
use crate::error::{Error, Result};
use crate::oci::blob;
use crate::oci::xpkg::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, ManifestJson, OCI_INDEX, OCI_MANIFEST,
};
use crate::reference::{Algorithm, Digest};
use crate::signature::{
    BUNDLE_MEDIA_TYPE_PREFIX, LegacySignature, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, Signatures,
};
use crate::spec::limits::{
    MAX_BUNDLE_BYTES, MAX_SIGNATURE_MANIFEST_BYTES, MAX_SIGNATURE_PAYLOAD_BYTES, MAX_SIGNATURES,
};

/// The manifests found under the two tags.
#[derive(Default)]
struct Tagged {
    legacy: Option<Vec<u8>>,
    referrers: Option<Vec<u8>>,
}

impl EcrRegistry {
    /// Every signature of `repository@digest` (see the module docs).
    pub(super) async fn read_signatures(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Signatures> {
        let checked = Digest::parse(digest, "the image digest")
            .map_err(|e| self.invalid(repository, digest, e.to_string()))?;
        let mut found = Signatures::default();
        if checked.algorithm() != Algorithm::Sha256 {
            return Ok(found);
        }
        let tagged = self.tagged(repository, checked.hex()).await?;
        if let Some(bytes) = tagged.legacy {
            match parse(&bytes) {
                Ok(manifest) => self.legacy(repository, &manifest, &mut found).await?,
                Err(e) => found.unreadable.push(format!("the .sig manifest: {e}")),
            }
        }
        let referrers = match tagged.referrers {
            Some(bytes) => Some(bytes),
            None => self.referrers_api(repository, &checked).await?,
        };
        if let Some(bytes) = referrers {
            match parse(&bytes) {
                Ok(index) => self.bundles(repository, digest, &index, &mut found).await?,
                Err(e) => found.unreadable.push(format!("the referrers index: {e}")),
            }
        }
        Ok(found)
    }

    /// The manifests tagged `sha256-<hex>.sig` and `sha256-<hex>`, in one
    /// call; a tag that is not there is none.
    async fn tagged(&self, repository: &str, hex: &str) -> Result<Tagged> {
        let legacy = format!("sha256-{hex}.sig");
        let referrers = format!("sha256-{hex}");
        self.counters.record(Operation::BatchGetImage);
        let out = self
            .client
            .batch_get_image()
            .registry_id(&self.registry.account_id)
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(&legacy).build())
            .image_ids(ImageIdentifier::builder().image_tag(&referrers).build())
            .accepted_media_types(OCI_MANIFEST)
            .accepted_media_types(OCI_INDEX)
            .accepted_media_types(DOCKER_MANIFEST)
            .accepted_media_types(DOCKER_MANIFEST_LIST)
            .send()
            .await
            .map_err(|e| self.sdk_error("BatchGetImage", repository, Some(&referrers), e))?;
        let mut tagged = Tagged::default();
        for image in out.images() {
            let Some(bytes) = image.image_manifest().map(|m| m.as_bytes().to_vec()) else {
                continue;
            };
            let actual = blob::sha256_digest(&bytes);
            if let Some(reported) = image.image_id().and_then(|id| id.image_digest())
                && reported != actual
            {
                return Err(self.invalid(
                    repository,
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

    /// The referrers index the registry's OCI 1.1 referrers API answers,
    /// at most [`MAX_SIGNATURE_MANIFEST_BYTES`]; `None` where the registry
    /// has no such API (404, 405, 400) or a token cannot read it (the
    /// manifests it names are read, and checked, by digest).
    async fn referrers_api(&self, repository: &str, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let unavailable = |message: String| Error::Unavailable {
            operation: "ListReferrers".into(),
            message,
        };
        let repo = crate::reference::Repository::parse(repository, "the repository asked for")
            .map_err(|e| self.invalid(repository, digest.as_str(), e.to_string()))?;
        let token = self.token().await?;
        let url = format!(
            "{}{}",
            token.endpoint.trim_end_matches('/'),
            crate::reference::referrers_path(&repo, digest)
        );
        self.counters.record(Operation::ListReferrers);
        let mut response = self
            .http
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, &token.authorization)
            .header(reqwest::header::ACCEPT, OCI_INDEX)
            .send()
            .await
            .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
        match response.status().as_u16() {
            200 => {}
            400 | 401 | 403 | 404 | 405 => return Ok(None),
            status => return Err(unavailable(format!("GET {url}: HTTP {status}"))),
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
        let whole = tokio::time::timeout(self.options.blob_timeout, read)
            .await
            .map_err(|_| unavailable(format!("GET {url}: timed out")))?
            .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
        // Too large to be a signature index: read as nothing, named by the
        // gate as unsigned.
        Ok(whole.then_some(bytes))
    }

    /// The simple-signing layers of a `.sig` manifest.
    async fn legacy(
        &self,
        repository: &str,
        manifest: &ManifestJson,
        found: &mut Signatures,
    ) -> Result<()> {
        let layers = manifest
            .layers
            .iter()
            .flatten()
            .filter(|l| l.media_type.as_deref() == Some(SIMPLE_SIGNING))
            .take(MAX_SIGNATURES);
        for layer in layers {
            let Some(signature) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            else {
                found.unreadable.push(format!(
                    "layer {} has no signature annotation",
                    layer.digest
                ));
                continue;
            };
            match self
                .small_blob(repository, layer, MAX_SIGNATURE_PAYLOAD_BYTES)
                .await?
            {
                Ok(payload) => found.legacy.push(LegacySignature {
                    payload,
                    signature: signature.clone(),
                }),
                Err(e) => found.unreadable.push(e),
            }
        }
        Ok(())
    }

    /// The bundles of the referrers index whose subject is `digest`.
    async fn bundles(
        &self,
        repository: &str,
        digest: &str,
        index: &ManifestJson,
        found: &mut Signatures,
    ) -> Result<()> {
        for child in index.manifests.iter().flatten().take(MAX_SIGNATURES) {
            if found.legacy.len() + found.bundles.len() >= MAX_SIGNATURES {
                break;
            }
            // Fetched by digest: `manifest` checks the bytes against it.
            let (_, manifest) = match self.manifest(repository, &child.digest).await {
                Ok(m) => m,
                Err(Error::ImageNotFound { .. } | Error::InvalidPackage { .. }) => continue,
                Err(e) => return Err(e),
            };
            let Ok(parsed) = parse(&manifest.bytes) else {
                continue;
            };
            let is_bundle =
                |t: Option<&str>| t.is_some_and(|t| t.starts_with(BUNDLE_MEDIA_TYPE_PREFIX));
            let kind = parsed
                .artifact_type
                .as_deref()
                .or(parsed.config.as_ref().and_then(|c| c.media_type.as_deref()));
            let about = parsed.subject.as_ref().map(|s| s.digest.as_str());
            if !is_bundle(kind) || about != Some(digest) {
                continue;
            }
            let Some(layer) = parsed
                .layers
                .iter()
                .flatten()
                .find(|l| is_bundle(l.media_type.as_deref()))
            else {
                continue;
            };
            match self.small_blob(repository, layer, MAX_BUNDLE_BYTES).await? {
                Ok(bundle) => found.bundles.push(bundle),
                Err(e) => found.unreadable.push(e),
            }
        }
        Ok(())
    }

    /// A blob of at most `max` bytes, checked against its digest: the
    /// bytes, or why they are not usable; an error only when the registry
    /// could not be read.
    async fn small_blob(
        &self,
        repository: &str,
        layer: &Descriptor,
        max: usize,
    ) -> Result<std::result::Result<Vec<u8>, String>> {
        if layer.size.is_some_and(|s| s > max as u64) {
            return Ok(Err(format!(
                "blob {} is larger than {max} bytes",
                layer.digest
            )));
        }
        let Ok(expected) = Digest::parse(&layer.digest, "a signature blob digest") else {
            return Ok(Err(format!(
                "blob digest {:?} is not a digest",
                layer.digest
            )));
        };
        let mut response = self.open_blob(repository, expected.as_str()).await?;
        let mut verifier = expected.verifier();
        let mut bytes = Vec::new();
        let read = async {
            while let Some(chunk) = response.chunk().await? {
                if bytes.len() + chunk.len() > max {
                    return Ok(false);
                }
                verifier.update(&chunk);
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(true)
        };
        let within = tokio::time::timeout(self.options.blob_timeout, read)
            .await
            .map_err(|_| Error::Unavailable {
                operation: "GetBlob".into(),
                message: format!("{repository}@{expected}: timed out"),
            })?
            .map_err(|e| Error::Unavailable {
                operation: "GetBlob".into(),
                message: format!("{repository}@{expected}: {e}"),
            })?;
        if !within {
            return Ok(Err(format!("blob {expected} is larger than {max} bytes")));
        }
        Ok(verifier
            .finish(format!("blob {repository}@{expected}"))
            .map(|()| bytes)
            .map_err(|e| e.to_string()))
    }
}

/// A signature manifest or index of at most
/// [`MAX_SIGNATURE_MANIFEST_BYTES`].
fn parse(bytes: &[u8]) -> std::result::Result<ManifestJson, String> {
    if bytes.len() > MAX_SIGNATURE_MANIFEST_BYTES {
        return Err(format!(
            "{} bytes, more than {MAX_SIGNATURE_MANIFEST_BYTES}",
            bytes.len()
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))
}

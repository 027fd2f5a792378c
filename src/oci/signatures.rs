//! Reading what cosign stored beside one image, whatever registry serves
//! it: ECR ([`crate::registry::ecr`]) and the `mirror` command's upstreams
//! answer the same questions through [`SignatureSource`].
//!
//! Two places, as cosign writes them:
//!
//! * the legacy tag `sha256-<hex>.sig`: a manifest whose simple-signing
//!   layers carry the signature in an annotation;
//! * an OCI 1.1 referrer whose `subject` is the image and whose layer is a
//!   Sigstore bundle, listed by the referrers tag schema `sha256-<hex>`
//!   (what cosign v3 writes to a registry without the referrers API) or,
//!   without that tag, by the registry's referrers API.
//!
//! Every manifest is checked against its digest (by the source), every
//! blob against its descriptor's, and each is bounded in size and number.
//! What is not what it should be is noted as unreadable, not an error: the
//! gate then names it. Verifying is `crate::signature`'s.

use async_trait::async_trait;

use super::xpkg::{Descriptor, ManifestJson};
use crate::reference::{Algorithm, Digest};
use crate::signature::{
    BUNDLE_MEDIA_TYPE_PREFIX, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, LegacySignature,
    REKOR_ANNOTATION, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, Signatures,
};
use crate::spec::limits::{
    MAX_BUNDLE_BYTES, MAX_CERTIFICATE_PEM_LEN, MAX_CHAIN_PEM_LEN, MAX_REKOR_BUNDLE_LEN,
    MAX_SIGNATURE_LEN, MAX_SIGNATURE_MANIFEST_BYTES, MAX_SIGNATURE_PAYLOAD_BYTES, MAX_SIGNATURES,
};

/// The manifests cosign's two tags name, as bytes.
#[derive(Clone, Debug, Default)]
pub struct Tagged {
    /// `sha256-<hex>.sig`.
    pub legacy: Option<Vec<u8>>,
    /// `sha256-<hex>`.
    pub referrers: Option<Vec<u8>>,
}

/// A blob, or why it cannot be used (too large, not matching its digest).
pub type Small = Result<Vec<u8>, String>;

/// One image's registry, as [`read`] asks it. Errors are the source's
/// own: the registry could not be read.
#[async_trait]
pub trait SignatureSource: Send + Sync {
    type Error: Send;

    /// The manifests the tags `legacy` and `referrers` name, each `None`
    /// when the tag is not there.
    async fn tagged(&self, legacy: &str, referrers: &str) -> Result<Tagged, Self::Error>;

    /// The manifests the registry's referrers API lists for the image
    /// (see [`index`]); `None` without the API.
    async fn referrers(&self) -> Result<Option<Vec<Descriptor>>, Self::Error>;

    /// The manifest at `digest`, checked against it; `None` when it is
    /// not there or not readable.
    async fn manifest(&self, digest: &str) -> Result<Option<Vec<u8>>, Self::Error>;

    /// The blob `layer` names, at most `max` bytes, checked against its
    /// digest (see [`read_small`]).
    async fn blob(&self, layer: &Descriptor, max: usize) -> Result<Small, Self::Error>;
}

/// Every signature of the image at `digest` (see the module docs). A
/// digest that is not sha256 has none: cosign names its tags by sha256.
pub async fn read<S: SignatureSource + ?Sized>(
    source: &S,
    digest: &Digest,
) -> Result<Signatures, S::Error> {
    let mut found = Signatures::default();
    if digest.algorithm() != Algorithm::Sha256 {
        return Ok(found);
    }
    let hex = digest.hex();
    let tagged = source
        .tagged(&format!("sha256-{hex}.sig"), &format!("sha256-{hex}"))
        .await?;
    if let Some(bytes) = tagged.legacy {
        match parse(&bytes) {
            Ok(manifest) => legacy(source, &manifest, &mut found).await?,
            Err(e) => found.unreadable.push(format!("the .sig manifest: {e}")),
        }
    }
    let referrers = match tagged.referrers {
        Some(bytes) => match index(&bytes) {
            Ok(children) => Some(children),
            Err(e) => {
                found.unreadable.push(format!("the referrers index: {e}"));
                None
            }
        },
        None => source.referrers().await?,
    };
    if let Some(children) = referrers {
        bundles(source, digest.as_str(), &children, &mut found).await?;
    }
    Ok(found)
}

/// The simple-signing layers of a `.sig` manifest.
async fn legacy<S: SignatureSource + ?Sized>(
    source: &S,
    manifest: &ManifestJson,
    found: &mut Signatures,
) -> Result<(), S::Error> {
    let layers = manifest
        .layers
        .iter()
        .flatten()
        .filter(|l| l.media_type.as_deref() == Some(SIMPLE_SIGNING))
        .take(MAX_SIGNATURES);
    for layer in layers {
        let annotations = match annotations(layer) {
            Ok(a) => a,
            Err(why) => {
                found.unreadable.push(why);
                continue;
            }
        };
        match source.blob(layer, MAX_SIGNATURE_PAYLOAD_BYTES).await? {
            Ok(payload) => found.legacy.push(LegacySignature {
                payload,
                ..annotations
            }),
            Err(e) => found.unreadable.push(e),
        }
    }
    Ok(())
}

/// A legacy layer's annotations (its payload left empty): the signature,
/// and the certificate, chain and Rekor bundle of a keyless one, each
/// within its bound.
fn annotations(layer: &Descriptor) -> Result<LegacySignature, String> {
    let get = |name: &str, max: usize| -> Result<Option<String>, String> {
        match layer.annotations.as_ref().and_then(|a| a.get(name)) {
            Some(v) if v.len() > max => Err(format!(
                "layer {}: annotation {name} is {} bytes, more than {max}",
                layer.digest,
                v.len()
            )),
            v => Ok(v.cloned()),
        }
    };
    let Some(signature) = get(SIGNATURE_ANNOTATION, MAX_SIGNATURE_LEN)? else {
        return Err(format!(
            "layer {} has no signature annotation",
            layer.digest
        ));
    };
    Ok(LegacySignature {
        payload: Vec::new(),
        signature,
        certificate: get(CERTIFICATE_ANNOTATION, MAX_CERTIFICATE_PEM_LEN)?,
        chain: get(CHAIN_ANNOTATION, MAX_CHAIN_PEM_LEN)?,
        rekor: get(REKOR_ANNOTATION, MAX_REKOR_BUNDLE_LEN)?,
    })
}

/// The bundles of a referrers index whose subject is `digest`.
async fn bundles<S: SignatureSource + ?Sized>(
    source: &S,
    digest: &str,
    children: &[Descriptor],
    found: &mut Signatures,
) -> Result<(), S::Error> {
    for child in children.iter().take(MAX_SIGNATURES) {
        if found.legacy.len() + found.bundles.len() >= MAX_SIGNATURES {
            break;
        }
        let Some(bytes) = source.manifest(&child.digest).await? else {
            continue;
        };
        let Ok(parsed) = parse(&bytes) else {
            continue;
        };
        let Some(layer) = bundle_layer(&parsed, digest) else {
            continue;
        };
        match source.blob(layer, MAX_BUNDLE_BYTES).await? {
            Ok(bundle) => found.bundles.push(bundle),
            Err(e) => found.unreadable.push(e),
        }
    }
    Ok(())
}

/// The bundle layer of a referrer, when it is a Sigstore bundle about
/// `digest`.
fn bundle_layer<'a>(referrer: &'a ManifestJson, digest: &str) -> Option<&'a Descriptor> {
    let is_bundle = |t: Option<&str>| t.is_some_and(|t| t.starts_with(BUNDLE_MEDIA_TYPE_PREFIX));
    let kind = referrer.artifact_type.as_deref().or(referrer
        .config
        .as_ref()
        .and_then(|c| c.media_type.as_deref()));
    let about = referrer.subject.as_ref().map(|s| s.digest.as_str());
    if !is_bundle(kind) || about != Some(digest) {
        return None;
    }
    referrer
        .layers
        .iter()
        .flatten()
        .find(|l| is_bundle(l.media_type.as_deref()))
}

/// A signature manifest or index of at most
/// [`MAX_SIGNATURE_MANIFEST_BYTES`].
fn parse(bytes: &[u8]) -> Result<ManifestJson, String> {
    if bytes.len() > MAX_SIGNATURE_MANIFEST_BYTES {
        return Err(format!(
            "{} bytes, more than {MAX_SIGNATURE_MANIFEST_BYTES}",
            bytes.len()
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))
}

/// The manifests a referrers index lists (a tag's or the referrers
/// API's), from at most [`MAX_SIGNATURE_MANIFEST_BYTES`].
pub fn index(bytes: &[u8]) -> Result<Vec<Descriptor>, String> {
    Ok(parse(bytes)?.manifests.unwrap_or_default())
}

/// Reads a blob's `response` whole, at most `max` bytes, within `timeout`,
/// checked against `expected`: the bytes or why they are not usable
/// (inner), or why the read failed (outer).
pub async fn read_small(
    mut response: reqwest::Response,
    expected: &Digest,
    max: usize,
    timeout: std::time::Duration,
) -> Result<Small, String> {
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
    let whole = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| format!("{expected}: timed out"))?
        .map_err(|e| format!("{expected}: {e}"))?;
    if !whole {
        return Ok(Err(format!("blob {expected} is larger than {max} bytes")));
    }
    Ok(verifier
        .finish(format!("blob {expected}"))
        .map(|()| bytes)
        .map_err(|e| e.to_string()))
}

/// What [`SignatureSource::blob`] checks before reading: a size within
/// `max` and a digest of the grammar.
pub fn blob_digest(layer: &Descriptor, max: usize) -> Result<Digest, String> {
    if layer.size.is_some_and(|s| s > max as u64) {
        return Err(format!("blob {} is larger than {max} bytes", layer.digest));
    }
    Digest::parse(&layer.digest, "a signature blob digest").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE: &str = "sha256:91ff0910d219ddfd54fbf18323149780b5343da2c558b1e9cdf6df7fe1e65cf0";

    fn referrer(artifact: &str, subject: &str, layer: &str) -> ManifestJson {
        serde_json::from_value(json!({
            "schemaVersion": 2,
            "artifactType": artifact,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
            "layers": [{"mediaType": layer, "digest": "sha256:3d0f52bd4a8f3092755c915689dd4da9185578ebbb9868633f86ec6c6f3a321d", "size": 659}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject}
        }))
        .expect("manifest")
    }

    #[test]
    fn only_a_bundle_about_the_image_is_read() {
        let bundle = "application/vnd.dev.sigstore.bundle.v0.3+json";
        assert!(bundle_layer(&referrer(bundle, IMAGE, bundle), IMAGE).is_some());
        let other = "sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6";
        assert!(bundle_layer(&referrer(bundle, other, bundle), IMAGE).is_none());
        assert!(bundle_layer(&referrer("application/spdx+json", IMAGE, bundle), IMAGE).is_none());
        assert!(bundle_layer(&referrer(bundle, IMAGE, "text/plain"), IMAGE).is_none());
    }

    #[test]
    fn manifests_and_blobs_are_bounded() {
        assert!(parse(&vec![b' '; MAX_SIGNATURE_MANIFEST_BYTES + 1]).is_err());
        assert!(parse(b"not json").is_err());
        let big = Descriptor {
            media_type: None,
            digest: IMAGE.into(),
            size: Some(65),
            annotations: None,
            platform: None,
        };
        assert!(blob_digest(&big, 64).is_err());
        assert!(blob_digest(&big, 65).is_ok());
        let bad = Descriptor {
            digest: "../x".into(),
            ..big
        };
        assert!(blob_digest(&bad, 65).is_err());
    }

    fn response(body: &'static [u8]) -> reqwest::Response {
        reqwest::Response::from(http::Response::new(body))
    }

    #[tokio::test]
    async fn a_blob_is_read_only_whole_within_its_bound_and_matching_its_digest() {
        let timeout = std::time::Duration::from_secs(5);
        let payload: &'static [u8] = b"{\"critical\":{}}";
        let right = Digest::sha256(payload);
        let read = read_small(response(payload), &right, 64, timeout).await;
        assert_eq!(read, Ok(Ok(payload.to_vec())));
        let wrong = Digest::sha256(b"something else");
        let read = read_small(response(payload), &wrong, 64, timeout).await;
        assert!(
            matches!(read, Ok(Err(why)) if why.contains("sha256")),
            "a tampered blob"
        );
        let read = read_small(response(payload), &right, 4, timeout).await;
        assert!(matches!(read, Ok(Err(why)) if why.contains("larger than 4")));
    }

    /// A registry in memory: tags, manifests by digest, blobs by digest.
    #[derive(Default)]
    struct Memory {
        tagged: Tagged,
        api: Option<Vec<Descriptor>>,
        manifests: std::collections::HashMap<String, Vec<u8>>,
        blobs: std::collections::HashMap<String, Vec<u8>>,
    }

    #[async_trait]
    impl SignatureSource for Memory {
        type Error = String;

        async fn tagged(&self, _: &str, _: &str) -> Result<Tagged, String> {
            Ok(self.tagged.clone())
        }

        async fn referrers(&self) -> Result<Option<Vec<Descriptor>>, String> {
            Ok(self.api.clone())
        }

        async fn manifest(&self, digest: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.manifests.get(digest).cloned())
        }

        async fn blob(&self, layer: &Descriptor, max: usize) -> Result<Small, String> {
            let digest = match blob_digest(layer, max) {
                Ok(d) => d,
                Err(why) => return Ok(Err(why)),
            };
            let bytes = self.blobs.get(digest.as_str()).cloned().unwrap_or_default();
            Ok(digest
                .verify(&bytes, "blob")
                .map(|()| bytes)
                .map_err(|e| e.to_string()))
        }
    }

    #[tokio::test]
    async fn reads_both_places_and_notes_what_it_cannot() {
        let image = Digest::parse(IMAGE, "test").expect("digest");
        let payload = b"payload".to_vec();
        let bundle = b"bundle".to_vec();
        let payload_digest = Digest::sha256(&payload).to_string();
        let bundle_digest = Digest::sha256(&bundle).to_string();
        let sig = json!({"schemaVersion": 2, "layers": [
            {"mediaType": SIMPLE_SIGNING, "digest": payload_digest, "size": 7,
             "annotations": {SIGNATURE_ANNOTATION: "MEUC", CERTIFICATE_ANNOTATION: "cert", REKOR_ANNOTATION: "{}"}},
            {"mediaType": SIMPLE_SIGNING, "digest": payload_digest, "size": 7},
            {"mediaType": SIMPLE_SIGNING, "digest": payload_digest, "size": 7,
             "annotations": {SIGNATURE_ANNOTATION: "MEUC", CHAIN_ANNOTATION: "x".repeat(MAX_CHAIN_PEM_LEN + 1)}},
        ]});
        let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
        let referrer = json!({"schemaVersion": 2, "artifactType": bundle_type,
            "layers": [{"mediaType": bundle_type, "digest": bundle_digest, "size": 6}],
            "subject": {"digest": IMAGE}})
        .to_string()
        .into_bytes();
        let referrer_digest = Digest::sha256(&referrer).to_string();
        let mut memory = Memory {
            tagged: Tagged {
                legacy: Some(sig.to_string().into_bytes()),
                referrers: None,
            },
            api: Some(vec![Descriptor {
                media_type: None,
                digest: referrer_digest.clone(),
                size: None,
                annotations: None,
                platform: None,
            }]),
            ..Memory::default()
        };
        memory.manifests.insert(referrer_digest, referrer);
        memory.blobs.insert(payload_digest, payload.clone());
        memory.blobs.insert(bundle_digest, bundle.clone());
        let found = read(&memory, &image).await.expect("read");
        assert_eq!(found.legacy.len(), 1);
        assert_eq!(found.legacy[0].payload, payload);
        assert_eq!(found.bundles, vec![bundle]);
        assert_eq!(found.legacy[0].certificate.as_deref(), Some("cert"));
        assert_eq!(found.legacy[0].chain, None);
        assert_eq!(found.legacy[0].rekor.as_deref(), Some("{}"));
        assert_eq!(found.unreadable.len(), 2, "{:?}", found.unreadable);
        assert!(found.unreadable[0].contains("no signature annotation"));
        assert!(found.unreadable[1].contains("more than"));

        // Not manifests at all: noted, never an error.
        let broken = Memory {
            tagged: Tagged {
                legacy: Some(b"not json".to_vec()),
                referrers: Some(vec![b'x'; MAX_SIGNATURE_MANIFEST_BYTES + 1]),
            },
            ..Memory::default()
        };
        let found = read(&broken, &image).await.expect("read");
        assert!(found.legacy.is_empty() && found.bundles.is_empty());
        assert_eq!(found.unreadable.len(), 2, "{:?}", found.unreadable);
    }

    proptest::proptest! {
        #[test]
        fn any_tagged_bytes_are_read_or_noted(
            legacy in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
            referrers in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
        ) {
            let memory = Memory { tagged: Tagged { legacy, referrers }, ..Memory::default() };
            let image = Digest::parse(IMAGE, "test").expect("digest");
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let found = runtime.block_on(read(&memory, &image)).expect("read");
            proptest::prop_assert!(found.legacy.len() + found.bundles.len() <= MAX_SIGNATURES);
        }
    }
}

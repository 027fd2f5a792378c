//! Reading a Crossplane package (xpkg) out of an OCI image, whatever
//! registry serves it: the manifest types, which manifest of an index is the
//! package, which layer holds `package.yaml`, and streaming that layer into
//! a [`LayerReader`]. ECR ([`crate::registry::ecr`]) and any OCI distribution registry
//! (the `mirror` command's upstreams) answer the same questions through
//! [`ImageSource`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::blob::{self, Compression, LayerLimits, LayerReader};
use crate::package::PackageMeta;
use crate::reference::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type a package may be stored as.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// The layer annotation marking an xpkg's base layer, and its value.
pub const XPKG_ANNOTATION: &str = "io.crossplane.xpkg";
pub const XPKG_BASE: &str = "base";

/// Most layers of an unannotated image searched for `package.yaml`.
pub const MAX_LAYERS_SCANNED: usize = 8;

/// Chunks of a layer in flight between the network and the reader.
const LAYER_CHANNEL_CHUNKS: usize = 4;

/// Bounds on reading one package.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    pub limits: LayerLimits,
    /// Layers of an unannotated image searched for `package.yaml`, top down.
    pub max_layers_scanned: usize,
    /// Bound on reading one layer, from the request to its last byte.
    pub layer_timeout: Duration,
}

/// A manifest as a registry returned it: the exact bytes (their sha256 is
/// the image digest) and the media type it was served with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// The media type, from the bytes' own `mediaType` when the registry
    /// sent none.
    pub fn new(media_type: Option<&str>, bytes: Vec<u8>) -> Self {
        let media_type = media_type
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .or_else(|| media_type_of(&bytes))
            .unwrap_or_default();
        Self { media_type, bytes }
    }

    pub fn digest(&self) -> String {
        blob::sha256_digest(&self.bytes)
    }

    pub fn parse(&self) -> Result<ManifestJson, String> {
        serde_json::from_slice(&self.bytes).map_err(|e| format!("manifest is not valid JSON: {e}"))
    }

    /// Whether this is an image index (or Docker manifest list).
    pub fn is_index(&self, parsed: &ManifestJson) -> bool {
        self.media_type == OCI_INDEX
            || self.media_type == DOCKER_MANIFEST_LIST
            || (parsed.manifests.is_some() && parsed.layers.is_none())
    }
}

/// The fields of an image manifest or index that are read.
#[derive(Deserialize, Clone, Debug, Default)]
pub struct ManifestJson {
    #[serde(default, rename = "mediaType")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    /// OCI 1.1: the image this artifact refers to (signatures, SBOMs).
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// OCI 1.1: what kind of artifact this is (a Sigstore bundle).
    #[serde(default, rename = "artifactType")]
    pub artifact_type: Option<String>,
}

impl ManifestJson {
    /// Every blob (config and layers) the manifest references.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter().flatten())
    }
}

#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(default, rename = "mediaType")]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Descriptor {
    fn is_base_layer(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(XPKG_ANNOTATION))
            .is_some_and(|v| v == XPKG_BASE)
    }
}

#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

fn media_type_of(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<ManifestJson>(bytes)
        .ok()
        .and_then(|m| m.media_type)
}

/// One image in one repository, as a registry serves it. Errors are the
/// source's own; `invalid` makes one for a package that is not well formed.
#[async_trait]
pub trait ImageSource: Send + Sync {
    type Error: Send;

    /// The manifest at a digest.
    async fn manifest(&self, digest: &str) -> Result<Arc<Manifest>, Self::Error>;

    /// The blob of a layer, as a response whose body is streamed.
    async fn open_layer(&self, layer: &Descriptor) -> Result<reqwest::Response, Self::Error>;

    /// An error saying the package is not well formed.
    fn invalid(&self, message: String) -> Self::Error;

    /// An error saying the layer could not be read to its end.
    fn interrupted(&self, message: String) -> Self::Error;
}

/// The package metadata of the image at `digest`: an index is followed to
/// its single (or `linux/amd64`) manifest; the layer annotated
/// `io.crossplane.xpkg: base` is read, or else the top-most of the last
/// `max_layers_scanned` layers that has `package.yaml`, as Crossplane's
/// flattened filesystem would show it.
pub async fn package_meta<S: ImageSource + ?Sized>(
    source: &S,
    digest: &str,
    options: ReadOptions,
) -> Result<PackageMeta, S::Error> {
    let max_layers_scanned = options.max_layers_scanned;
    let invalid = |e: crate::reference::Error| source.invalid(e.to_string());
    // Each manifest is read by a checked digest and used only once its
    // bytes hash to it, whatever the registry (or a cache) answered.
    let top_digest = Digest::parse(digest, "the package's digest").map_err(invalid)?;
    let top = source.manifest(top_digest.as_str()).await?;
    top_digest
        .verify(&top.bytes, format!("manifest {top_digest}"))
        .map_err(invalid)?;
    let mut parsed = top.parse().map_err(|m| source.invalid(m))?;
    if top.is_index(&parsed) {
        let child =
            package_manifest(parsed.manifests.take().unwrap_or_default()).ok_or_else(|| {
                source.invalid(
                    "image index has no manifest, or several and none for linux/amd64".into(),
                )
            })?;
        // Never followed by tag: a tag would let the index's package
        // change under its digest.
        let child_digest = Digest::parse(
            &child.digest,
            format!("the package manifest of index {top_digest}"),
        )
        .map_err(invalid)?;
        let manifest = source.manifest(child_digest.as_str()).await?;
        child_digest
            .verify(&manifest.bytes, format!("manifest {child_digest}"))
            .map_err(invalid)?;
        parsed = manifest.parse().map_err(|m| source.invalid(m))?;
        if manifest.is_index(&parsed) {
            return Err(source.invalid("image index points at another index".into()));
        }
    }
    let layers = parsed.layers.unwrap_or_default();
    let annotated: Vec<&Descriptor> = layers.iter().filter(|l| l.is_base_layer()).collect();
    match annotated.as_slice() {
        [base] => {
            return read_layer(source, base, options).await?.ok_or_else(|| {
                source.invalid(format!(
                    "annotated base layer {} has no {}",
                    base.digest,
                    blob::PACKAGE_FILE
                ))
            });
        }
        [] => {}
        _ => {
            return Err(source.invalid(format!(
                "{} layers are annotated {XPKG_ANNOTATION}: {XPKG_BASE}; a package has one",
                annotated.len()
            )));
        }
    }
    for layer in layers.iter().rev().take(max_layers_scanned) {
        if let Some(meta) = read_layer(source, layer, options).await? {
            return Ok(meta);
        }
    }
    let which = if layers.len() > max_layers_scanned {
        format!("the top {max_layers_scanned} of {}", layers.len())
    } else {
        format!("the {}", layers.len())
    };
    Err(source.invalid(format!(
        "no layer is annotated {XPKG_ANNOTATION}: {XPKG_BASE} and none of {which} layers has {}",
        blob::PACKAGE_FILE
    )))
}

/// The manifest of an index that holds the package: the only one, or the
/// `linux/amd64` one.
pub fn package_manifest(children: Vec<Descriptor>) -> Option<Descriptor> {
    if children.len() == 1 {
        return children.into_iter().next();
    }
    children.into_iter().find(|c| {
        c.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
    })
}

/// Streams one layer into a [`LayerReader`]; `None` when it holds no
/// `package.yaml`.
async fn read_layer<S: ImageSource + ?Sized>(
    source: &S,
    layer: &Descriptor,
    options: ReadOptions,
) -> Result<Option<PackageMeta>, S::Error> {
    let limits = options.limits;
    // The layer's digest goes into a request path: checked first.
    Digest::parse(&layer.digest, "a layer of the package manifest")
        .map_err(|e| source.invalid(e.to_string()))?;
    let too_big = |size: u64| {
        source.invalid(format!(
            "layer {} is {size} bytes, more than the {} bytes allowed",
            layer.digest, limits.max_compressed_bytes
        ))
    };
    if let Some(size) = layer.size.filter(|s| *s > limits.max_compressed_bytes) {
        return Err(too_big(size));
    }
    let compression = Compression::from_media_type(layer.media_type.as_deref().unwrap_or(""))
        .map_err(|m| source.invalid(m))?;
    let reader =
        LayerReader::new(&layer.digest, compression, limits).map_err(|e| source.invalid(e.0))?;
    // Gunzip, tar, YAML and sha256 are CPU work: they run on the blocking
    // pool, fed through a short channel, so the async workers only move
    // bytes and a slow layer never holds one up.
    let (chunks, mut received) = tokio::sync::mpsc::channel::<bytes::Bytes>(LAYER_CHANNEL_CHUNKS);
    let worker = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        while let Some(chunk) = received.blocking_recv() {
            reader.feed(&chunk)?;
        }
        reader.finish()
    });
    let read = async {
        let mut response = source.open_layer(layer).await?;
        if let Some(len) = response
            .content_length()
            .filter(|l| *l > limits.max_compressed_bytes)
        {
            return Err(too_big(len));
        }
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            source.interrupted(format!(
                "reading layer {}: {}",
                layer.digest,
                error_chain(&e)
            ))
        })? {
            if chunks.send(chunk).await.is_err() {
                // The reader stopped early (an invalid layer): its answer
                // says why.
                break;
            }
        }
        Ok(())
    };
    // On a timeout or an error the sender is dropped, which ends the
    // worker; its answer is then not needed.
    tokio::time::timeout(options.layer_timeout, read)
        .await
        .map_err(|_| {
            source.interrupted(format!(
                "reading layer {} took more than {:?}",
                layer.digest, options.layer_timeout
            ))
        })??;
    drop(chunks);
    worker
        .await
        .map_err(|e| source.invalid(format!("layer {}: reading it failed: {e}", layer.digest)))?
        .map_err(|e| source.invalid(format!("layer {}: {e}", layer.digest)))
}

pub use crate::error::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(digest: &str, platform: Option<(&str, &str)>) -> Descriptor {
        Descriptor {
            media_type: Some(OCI_MANIFEST.into()),
            digest: digest.into(),
            size: Some(1),
            annotations: None,
            platform: platform.map(|(os, architecture)| Platform {
                os: os.into(),
                architecture: architecture.into(),
            }),
        }
    }

    #[test]
    fn the_package_manifest_of_an_index() {
        let cases: &[(&str, Vec<Descriptor>, Option<&str>)] = &[
            ("empty", vec![], None),
            (
                "single, any platform",
                vec![descriptor("a", Some(("linux", "arm64")))],
                Some("a"),
            ),
            (
                "linux/amd64 among several",
                vec![
                    descriptor("a", Some(("linux", "arm64"))),
                    descriptor("b", Some(("linux", "amd64"))),
                ],
                Some("b"),
            ),
            (
                "several, none linux/amd64",
                vec![
                    descriptor("a", Some(("linux", "arm64"))),
                    descriptor("b", None),
                ],
                None,
            ),
        ];
        for (name, children, want) in cases {
            let got = package_manifest(children.clone()).map(|d| d.digest);
            assert_eq!(got.as_deref(), *want, "{name}");
        }
    }

    /// Manifests by the reference asked for; records every reference.
    struct Fake {
        manifests: HashMap<String, Arc<Manifest>>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ImageSource for Fake {
        type Error = String;

        async fn manifest(&self, digest: &str) -> Result<Arc<Manifest>, String> {
            self.asked.lock().expect("log").push(digest.to_string());
            self.manifests
                .get(digest)
                .cloned()
                .ok_or_else(|| format!("no manifest {digest}"))
        }

        async fn open_layer(&self, layer: &Descriptor) -> Result<reqwest::Response, String> {
            Err(format!("layer {} opened", layer.digest))
        }

        fn invalid(&self, message: String) -> String {
            format!("invalid: {message}")
        }

        fn interrupted(&self, message: String) -> String {
            format!("interrupted: {message}")
        }
    }

    fn options() -> ReadOptions {
        ReadOptions {
            limits: LayerLimits::default(),
            max_layers_scanned: MAX_LAYERS_SCANNED,
            layer_timeout: Duration::from_secs(1),
        }
    }

    /// An index whose child is a tag or a traversal is never followed; a
    /// manifest whose bytes are not its digest is never used, even when
    /// the source (a cache, a registry) hands it over under that digest.
    #[tokio::test]
    async fn the_reader_follows_digests_only_and_checks_their_bytes() {
        let child = |digest: &str| {
            format!(
                r#"{{"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1}}]}}"#
            )
            .into_bytes()
        };
        let mut manifests = HashMap::new();
        let mut tops = Vec::new();
        for bad in ["v9.9.9", "../../../other/repo/manifests/v9.9.9"] {
            let index = Manifest::new(Some(OCI_INDEX), child(bad));
            let digest = index.digest();
            manifests.insert(digest.clone(), Arc::new(index));
            // What following the child by tag would find.
            manifests.insert(
                bad.to_string(),
                Arc::new(Manifest::new(Some(OCI_MANIFEST), b"{}".to_vec())),
            );
            tops.push((digest, bad));
        }
        // A manifest served under a digest it does not hash to.
        let liar = blob::sha256_digest(b"the real bytes");
        manifests.insert(
            liar.clone(),
            Arc::new(Manifest::new(
                Some(OCI_MANIFEST),
                br#"{"layers":[]}"#.to_vec(),
            )),
        );
        let source = Fake {
            manifests,
            asked: Default::default(),
        };
        for (digest, bad) in &tops {
            let e = package_meta(&source, digest, options())
                .await
                .expect_err("a non-digest child");
            assert!(e.contains("is not a digest") && e.contains("index"), "{e}");
            let asked = source.asked.lock().expect("log").clone();
            assert!(!asked.iter().any(|a| a == bad), "{bad} followed: {asked:?}");
        }
        let e = package_meta(&source, &liar, options())
            .await
            .expect_err("bytes off their digest");
        assert!(e.contains("does not match its digest"), "{e}");
        let e = package_meta(&source, "latest", options())
            .await
            .expect_err("a tag for a digest");
        assert!(e.contains("is not a digest"), "{e}");
    }

    #[test]
    fn media_type_comes_from_the_bytes_when_not_sent() {
        let bytes = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[]}}"#).into_bytes();
        let m = Manifest::new(None, bytes.clone());
        assert_eq!(m.media_type, OCI_INDEX);
        assert!(m.is_index(&m.parse().expect("json")));
        assert_eq!(
            Manifest::new(Some(OCI_MANIFEST), bytes).media_type,
            OCI_MANIFEST
        );
    }

    #[test]
    fn blobs_are_the_config_then_the_layers() {
        let parsed: ManifestJson = serde_json::from_str(
            r#"{"config":{"digest":"c"},"layers":[{"digest":"l1"},{"digest":"l2"}]}"#,
        )
        .expect("json");
        let digests: Vec<&str> = parsed.blobs().map(|d| d.digest.as_str()).collect();
        assert_eq!(digests, ["c", "l1", "l2"]);
    }
}

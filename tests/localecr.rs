//! Proves the local ECR plumbing: an image seeded through scripts/localecr.py
//! is served by the OCI registry with the digest `seed` reported.

mod support;

use serde_json::json;
use support::localecr;

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

#[tokio::test]
async fn seeded_image_is_served_by_the_registry() {
    let ecr = localecr::env();
    let repo = localecr::unique("plumbing/provider-example");
    let seeded = ecr.seed(&json!({"images": [{
        "repository": repo,
        "tags": ["v1.0.0", "v1.1.0"],
        "package": {
            "apiVersion": "meta.pkg.crossplane.io/v1",
            "kind": "Provider",
            "metadata": {"name": "provider-example"},
        },
    }]}));

    let v1 = seeded[&repo]["v1.0.0"].as_str().expect("digest for v1.0.0");
    let v11 = seeded[&repo]["v1.1.0"].as_str().expect("digest for v1.1.0");
    assert!(v1.starts_with("sha256:") && v1.len() == 71, "digest {v1}");
    assert_ne!(v1, v11, "each tag has its own manifest");

    let resp = ecr
        .registry_get(
            &format!("/v2/{repo}/manifests/v1.0.0"),
            Some(localecr::ACCEPT_MANIFESTS),
        )
        .await;
    assert_eq!(
        resp.status,
        200,
        "body: {}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(resp.header("docker-content-digest"), Some(v1));
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    let manifest: serde_json::Value = serde_json::from_slice(&resp.body).expect("manifest is JSON");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["annotations"]["io.crossplane.xpkg"], "base");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // The same manifest is addressable by digest.
    let by_digest = ecr
        .registry_get(
            &format!("/v2/{repo}/manifests/{v1}"),
            Some(localecr::ACCEPT_MANIFESTS),
        )
        .await;
    assert_eq!(by_digest.status, 200);
    assert_eq!(by_digest.body, resp.body);
}

#[test]
fn unique_names_differ() {
    assert_ne!(localecr::unique("a"), localecr::unique("a"));
}

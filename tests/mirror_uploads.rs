//! `mirror` uploads each blob of a closure once: a layer many packages
//! share, copied by many of them at once, reaches the local ECR's data
//! plane in one upload and is mounted everywhere else. Counted where the
//! registry receives it (a relay in front of the ECR endpoint records the
//! requests), not from what `mirror` reports about itself.

mod support;

use std::process::{Command, Stdio};

use serde_json::{Value as Json, json};
use support::localecr::{self, ACCEPT_MANIFESTS, package_meta};
use support::recorder::Recorder;

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

const BINARY: &str = env!("CARGO_BIN_EXE_function-ecr-packages");
const PACKAGES: usize = 6;

/// The query of an upload's final `PUT` (or a mount's `POST`), as the
/// client encodes it.
fn query(name: &str, digest: &str) -> String {
    format!("{name}={}", digest.replace(':', "%3A"))
}

#[tokio::test]
async fn a_layer_shared_by_packages_copied_at_once_is_uploaded_once() {
    let ecr = localecr::env();
    let unique = localecr::unique("shared");
    let repositories: Vec<String> = (0..PACKAGES).map(|i| format!("{unique}/p{i}")).collect();
    let images: Vec<Json> = repositories
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({"repository": r, "tags": ["v1.0.0"], "sharedLayers": 1,
                   "package": package_meta("Provider", &format!("p{i}"), json!([]))})
        })
        .collect();
    ecr.seed_upstream(&json!({ "images": images }));
    let manifest = ecr
        .upstream_get(
            &format!("/v2/{}/manifests/v1.0.0", repositories[0]),
            Some(ACCEPT_MANIFESTS),
        )
        .await;
    let manifest: Json = serde_json::from_slice(&manifest.body).expect("manifest");
    // localecr puts the shared layers first, the package layer last.
    let shared = manifest["layers"][0]["digest"]
        .as_str()
        .expect("shared layer")
        .to_string();

    let recorder = Recorder::start(ecr.registry_endpoint.trim_start_matches("http://"));
    let scratch = localecr::Scratch::new("mirror-uploads");
    let target = localecr::unique("once");
    let out = Command::new(BINARY)
        .arg("mirror")
        .args([
            "--account-id",
            localecr::ACCOUNT_ID,
            "--region",
            &ecr.region,
        ])
        .args(["--mirror", &format!("{}/{unique}/={target}/", ecr.upstream)])
        .args(["--concurrency", &PACKAGES.to_string()])
        .args(
            repositories
                .iter()
                .map(|r| format!("{}/{r}:v1.0.0", ecr.upstream)),
        )
        .env("ECR_REGISTRY_ENDPOINT", format!("http://{}", recorder.addr))
        .env("DOCKER_CONFIG", &*scratch)
        .stdin(Stdio::null())
        .output()
        .expect("run mirror");
    assert!(
        out.status.success(),
        "mirror failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        recorder.count(&query("digest", &shared)),
        1,
        "the shared layer {shared} is uploaded once"
    );
    assert_eq!(
        recorder.count(&query("mount", &shared)),
        PACKAGES - 1,
        "and mounted into every other package's repository"
    );
    for i in 0..PACKAGES {
        let path = format!("/v2/{target}/p{i}/blobs/{shared}");
        let got = ecr.registry_get(&path, None).await;
        assert_eq!(got.status, 200, "{path} is readable");
    }
}

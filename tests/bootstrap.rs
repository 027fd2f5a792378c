//! `function-ecr-packages bootstrap` against the local ECR: the real binary,
//! real registry answers, output checked against the CRDs.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use function_ecr_packages::spec::settings::default_role_name;
use function_ecr_packages::spec::xr::XrRef;
use serde_json::{Value as Json, json};
use support::{cluster, localecr};

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

fn family_catalog(ns: &str) -> Json {
    let meta = |name: &str, deps: Json| json!({"apiVersion": "meta.pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": name}, "spec": {"dependsOn": deps}});
    json!({"images": [
        {"repository": format!("{ns}/provider-family-aws"), "tags": ["v2.1.0", "v2.2.0"], "package": meta("provider-family-aws", json!([]))},
        {"repository": format!("{ns}/provider-aws-s3"), "tags": ["v2.2.0"],
         "package": meta("provider-aws-s3", json!([{"provider": format!("xpkg.upbound.io/{ns}/provider-family-aws"), "version": ">= 0.0.0"}]))},
        {"repository": format!("{ns}/function-ecr-packages"), "tags": ["v0.1.0"],
         "package": {"apiVersion": "meta.pkg.crossplane.io/v1", "kind": "Function", "metadata": {"name": "function-ecr-packages"}}}
    ]})
}

fn write_xr(dir: &Path, packages: Json) -> PathBuf {
    let xr = json!({
        "apiVersion": "ecr.platform.example.org/v1alpha1", "kind": "XEcrPackages", "metadata": {"name": "bootstrap"},
        "spec": {"registry": {"accountId": localecr::ACCOUNT_ID, "region": "us-east-1"}, "packages": packages,
                 "iam": {"oidcProvider": "oidc.eks.us-east-1.amazonaws.com/id/ABC"}}
    });
    let path = dir.join("xr.yaml");
    std::fs::write(&path, serde_norway::to_string(&xr).expect("yaml")).expect("write xr");
    path
}

fn bootstrap(xr: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_function-ecr-packages"));
    command
        .args(["bootstrap", "--xr"])
        .arg(xr)
        .arg("--out")
        .arg(out);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run bootstrap")
}

#[test]
fn bootstrap_writes_valid_manifests_in_wave_order() {
    let ecr = localecr::env();
    let ns = localecr::unique("boot");
    let seeded = ecr.seed(&family_catalog(&ns));
    let dir = localecr::Scratch::new("bootstrap");
    let xr = write_xr(
        &dir,
        json!([
            {"kind": "Provider", "repository": format!("{ns}/provider-aws-s3"), "version": ">=v2.0.0"},
            {"kind": "Function", "repository": format!("{ns}/function-ecr-packages"), "version": "v0.1.0"}
        ]),
    );
    let out = dir.join("out");
    let output = bootstrap(&xr, &out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resolving 2 packages"), "{stderr}");
    assert!(
        stderr.contains(&format!("resolved {ns}/provider-family-aws v2.2.0")),
        "{stderr}"
    );

    let text = std::fs::read_to_string(out.join("manifests.yaml")).expect("manifests");
    let schemas = cluster::Schemas::load();
    let mut wave_of_kind: Vec<(usize, String, String)> = Vec::new();
    let mut wave = 0;
    for chunk in text.split("\n---\n") {
        // A wave's marker closes the chunk before its first document.
        if let Ok(object) = serde_norway::from_str::<Json>(chunk)
            && object.is_object()
        {
            schemas.validate(&object);
            let name = object
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string();
            wave_of_kind.push((
                wave,
                object["kind"].as_str().unwrap_or_default().to_string(),
                name,
            ));
        }
        if let Some(line) = chunk.lines().rev().find(|l| l.starts_with("# wave ")) {
            wave = line["# wave ".len()..]
                .split(':')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("wave number");
        }
    }
    let family = format!("{}-provider-family-aws", ns);
    let position = |name: &str| {
        wave_of_kind
            .iter()
            .find(|(_, _, n)| n == name)
            .map(|(w, _, _)| *w)
    };
    // The XR file has no UID: the default role name hashes its name.
    let role = default_role_name(XrRef::named("bootstrap"), None);
    assert_eq!(
        position("ecr-packages-bootstrap"),
        Some(1),
        "the activation policy in the first wave: {wave_of_kind:?}"
    );
    assert_eq!(
        position(&role),
        Some(2),
        "IAM once its definitions are active: {wave_of_kind:?}"
    );
    assert_eq!(position(&family), Some(3), "{wave_of_kind:?}");
    assert_eq!(
        position(&format!("{ns}-provider-aws-s3")),
        Some(4),
        "{wave_of_kind:?}"
    );
    assert_eq!(
        position(&format!("{ns}-function-ecr-packages")),
        Some(3),
        "the function installs itself: {wave_of_kind:?}"
    );
    assert!(
        text.contains(&format!(
            "xpkg.upbound.io/{ns}/function-ecr-packages:v0.1.0"
        )),
        "{text}"
    );
    assert_eq!(wave_of_kind.len(), 8, "{wave_of_kind:?}");
    assert!(seeded[format!("{ns}/provider-family-aws")]["v2.2.0"].is_string());

    let values: Json = serde_norway::from_str(
        &std::fs::read_to_string(out.join("crossplane-values.yaml")).expect("values"),
    )
    .expect("yaml");
    assert_eq!(
        values,
        json!({"image": {"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/crossplane/crossplane"},
               "serviceAccount": {"customAnnotations": {"eks.amazonaws.com/role-arn": format!("arn:aws:iam::123456789012:role/{role}")}}})
    );
}

#[test]
fn bootstrap_fails_with_one_clear_line() {
    let ecr = localecr::env();
    let ns = localecr::unique("bootfail");
    ecr.seed(&family_catalog(&ns));
    let dir = localecr::Scratch::new("bootstrap-fail");
    let cases = [
        (
            json!([{"kind": "Provider", "repository": format!("{ns}/provider-nope"), "version": "v1.0.0"}]),
            vec![],
            "not found",
        ),
        (
            json!([{"kind": "Provider", "repository": format!("{ns}/provider-family-aws"), "version": ">=v9.0.0"}]),
            vec![],
            "no version of",
        ),
        (
            json!([{"kind": "Provider", "repository": format!("{ns}/provider-family-aws"), "version": "v2.2.0"}]),
            vec![
                ("AWS_ACCESS_KEY_ID", ""),
                ("AWS_SECRET_ACCESS_KEY", ""),
                ("AWS_PROFILE", "missing-profile"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
                ("AWS_CONFIG_FILE", "/nonexistent"),
            ],
            "credentials",
        ),
    ];
    for (packages, env, message) in cases {
        let xr = write_xr(&dir, packages);
        let output = bootstrap(&xr, &dir.join("out"), &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{message}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.to_lowercase().contains(message), "{message}: {stderr}");
    }
}

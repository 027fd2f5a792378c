//! `mirror` end to end: the binary copies from a real upstream registry
//! (Debian's docker-registry, seeded with packages that have dependencies,
//! annotated layers, a multi-platform index and a signature tag) into the
//! local ECR stand-in (moto for the API, docker-registry behind the ECR
//! proxy for images), and the function then installs what was mirrored.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use cluster::{Cluster, allowing_test_iam};
use function_ecr_packages::aws::RegistryRef;
use function_ecr_packages::function::Function;
use function_ecr_packages::registry::Registry;
use function_ecr_packages::registry::connector::EcrConnector;
use function_ecr_packages::registry::ecr::EcrRegistry;
use localecr::{ACCEPT_MANIFESTS, LocalEcr, package_meta as meta};
use serde_json::{Value as Json, json};
use support::cosign::{Cosign, image};
use support::{cluster, localecr};

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

const BINARY: &str = env!("CARGO_BIN_EXE_function-ecr-packages");

/// A dependency closure seeded upstream under a prefix of its own, and the
/// ECR prefix it is mirrored to.
struct Closure {
    ecr: LocalEcr,
    /// `127.0.0.1:PORT/<unique>/`: where the packages live upstream.
    upstream: String,
    /// `<unique>/`: where they go in ECR.
    target: String,
    /// Upstream repository -> tag -> digest.
    seeded: Json,
    scratch: localecr::Scratch,
}

const FAMILY: &str = "upbound/provider-family-aws";
const S3: &str = "upbound/provider-aws-s3";
const FUNCTION: &str = "crossplane-contrib/function-x";

impl Closure {
    /// The family provider (two releases, signed, a layer shared with S3),
    /// the S3 provider depending on it (`extra` bytes of CRDs), and a
    /// function stored as a two-platform index.
    fn seed(extra: u64) -> Closure {
        let ecr = localecr::env();
        let unique = localecr::unique("mirror");
        let upstream = format!("{}/{unique}/", ecr.upstream);
        let scratch = localecr::Scratch::new("mirror-test");
        let images = json!([
            {"repository": format!("{unique}/{FAMILY}"), "tags": ["v1.0.0", "v1.1.0"],
             "signature": true, "runtimeLayers": 1, "sharedLayers": 1,
             "package": meta("Provider", "provider-family-aws", json!([]))},
            {"repository": format!("{unique}/{S3}"), "tags": ["v1.0.0", "v1.1.0-rc.1"],
             "extraYamlBytes": extra, "sharedLayers": 1,
             "package": meta("Provider", "provider-aws-s3", json!([
                 {"provider": format!("{upstream}{FAMILY}"), "version": ">=v1.0.0"}]))},
            {"repository": format!("{unique}/{FUNCTION}"), "tags": ["v0.1.0"], "layout": "index",
             "platforms": ["linux/amd64", "linux/arm64"],
             "package": meta("Function", "function-x", json!([]))},
        ]);
        let seeded = ecr.seed_upstream(&json!({ "images": images }));
        Closure {
            ecr,
            upstream,
            target: format!("{}/", localecr::unique("mirrored")),
            seeded,
            scratch,
        }
    }

    fn package(&self, repository: &str) -> String {
        format!("{}{repository}", self.upstream)
    }

    fn digest(&self, repository: &str, tag: &str) -> String {
        let unique = self.upstream.split('/').nth(1).expect("prefix");
        self.seeded[format!("{unique}/{repository}")][tag]
            .as_str()
            .unwrap_or_else(|| panic!("{repository}:{tag} not seeded: {}", self.seeded))
            .to_string()
    }

    fn mirror_flag(&self) -> String {
        format!("{}={}", self.upstream, self.target)
    }

    /// `mirror` with the account, region and mirror table set, plus `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .arg("mirror")
            .args([
                "--account-id",
                localecr::ACCOUNT_ID,
                "--region",
                &self.ecr.region,
            ])
            .args(["--mirror", &self.mirror_flag()])
            .args(args)
            // No Docker config: upstream is read anonymously.
            .env("DOCKER_CONFIG", &*self.scratch)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run mirror"))
    }

    /// The ECR API's view of the target registry.
    async fn ecr_api(&self) -> EcrRegistry {
        EcrRegistry::new(
            RegistryRef::new(localecr::ACCOUNT_ID, &self.ecr.region),
            None,
        )
        .await
        .expect("ECR client")
    }
}

/// What one run of `mirror` did.
struct Run {
    code: Option<i32>,
    /// The JSON document on stdout (Null when there is none).
    summary: Json,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            summary: serde_json::from_slice(&out.stdout).unwrap_or(Json::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "mirror failed:\n{}", self.stderr);
        self
    }

    fn package(&self, repository_suffix: &str) -> &Json {
        self.summary["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["repository"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(repository_suffix))
            })
            .unwrap_or_else(|| panic!("no {repository_suffix} in {}", self.summary))
    }

    fn total(&self, field: &str) -> u64 {
        self.summary["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p[field].as_u64().unwrap_or_default())
            .sum()
    }
}

/// The bytes of a manifest in the target (through the ECR data plane).
async fn target_manifest(ecr: &LocalEcr, repository: &str, reference: &str) -> Vec<u8> {
    let path = manifest_path(repository, reference);
    found(ecr.registry_get(&path, Some(ACCEPT_MANIFESTS)).await, &path)
}

/// The bytes of a manifest upstream, by package path.
async fn upstream_manifest(ecr: &LocalEcr, package: &str, reference: &str) -> Vec<u8> {
    let path = manifest_path(package.split_once('/').expect("host/path").1, reference);
    found(ecr.upstream_get(&path, Some(ACCEPT_MANIFESTS)).await, &path)
}

fn manifest_path(repository: &str, reference: &str) -> String {
    format!("/v2/{repository}/manifests/{reference}")
}

fn found(response: localecr::HttpResponse, what: &str) -> Vec<u8> {
    assert_eq!(response.status, 200, "GET {what}");
    response.body
}

#[tokio::test]
async fn the_closure_is_copied_byte_for_byte_once_and_installs() {
    let closure = Closure::seed(300_000);
    let xr_file = closure.scratch.join("xr.yaml");
    let s3 = closure.package(S3);
    let function = format!("{}:v0.1.0", closure.package(FUNCTION));
    let first = closure.run(&[
        "--signatures",
        "--concurrency",
        "1",
        "--chunk-size",
        "65536",
        "--emit-xr",
        xr_file.to_str().expect("utf-8 path"),
        &s3,
        &function,
    ]);
    first.assert_success();

    // The closure: S3's dependency came along at its highest release; S3
    // itself at its highest release (the prerelease tag is not one).
    let family = first.package(FAMILY);
    assert_eq!(family["version"], "v1.1.0", "{}", first.summary);
    assert_eq!(first.package(S3)["version"], "v1.0.0");
    let created: Vec<&str> = first.summary["repositoriesCreated"]
        .as_array()
        .expect("created")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for repository in [FAMILY, S3, FUNCTION] {
        assert!(
            created.contains(&format!("{}{repository}", closure.target).as_str()),
            "{repository} created: {created:?}"
        );
    }
    assert!(
        first.total("bytesUploaded") > 300_000 / 3,
        "{}",
        first.summary
    );
    assert!(
        first.total("blobsMounted") >= 1,
        "the layer S3 shares with the family is mounted, not uploaded again: {}",
        first.summary
    );

    // Identical digests, through the ECR API and the data plane alike.
    let api = closure.ecr_api().await;
    for (repository, tag) in [(FAMILY, "v1.1.0"), (S3, "v1.0.0"), (FUNCTION, "v0.1.0")] {
        let target = format!("{}{repository}", closure.target);
        let want = closure.digest(repository, tag);
        assert_eq!(
            api.resolve_digest(&target, tag)
                .await
                .expect("in the ECR API"),
            want,
            "{repository}:{tag}"
        );
        assert_eq!(
            target_manifest(&closure.ecr, &target, tag).await,
            upstream_manifest(&closure.ecr, &closure.package(repository), tag).await,
            "{repository}:{tag} byte for byte"
        );
    }
    // Every platform of the index, and the signature tag.
    let index: Json = serde_json::from_slice(
        &target_manifest(
            &closure.ecr,
            &format!("{}{FUNCTION}", closure.target),
            "v0.1.0",
        )
        .await,
    )
    .expect("index");
    let children = index["manifests"].as_array().expect("manifests");
    assert_eq!(children.len(), 2);
    for child in children {
        let digest = child["digest"].as_str().expect("digest");
        target_manifest(
            &closure.ecr,
            &format!("{}{FUNCTION}", closure.target),
            digest,
        )
        .await;
    }
    let signature = format!("{}.sig", closure.digest(FAMILY, "v1.1.0").replace(':', "-"));
    assert_eq!(
        target_manifest(
            &closure.ecr,
            &format!("{}{FAMILY}", closure.target),
            &signature
        )
        .await,
        upstream_manifest(&closure.ecr, &closure.package(FAMILY), &signature).await,
    );
    // The unasked-for release of the family stays upstream.
    let tags = api
        .list_tags(&format!("{}{FAMILY}", closure.target))
        .await
        .expect("tags");
    assert!(!tags.contains("v1.0.0"), "{tags:?}");

    // A second run finds everything there and uploads nothing.
    let second = closure.run(&["--signatures", &s3, &function]);
    second.assert_success();
    assert_eq!(second.total("bytesUploaded"), 0, "{}", second.summary);
    assert_eq!(second.total("tagsPushed"), 0, "{}", second.summary);
    for repository in [FAMILY, S3, FUNCTION] {
        assert_eq!(second.package(repository)["status"], "present");
    }

    // The function installs what was mirrored, from the emitted XR.
    installs_the_emitted_xr(&closure, &xr_file).await;
}

async fn installs_the_emitted_xr(closure: &Closure, xr_file: &Path) {
    let text = std::fs::read_to_string(xr_file).expect("emitted XR");
    let mut xr: Json = serde_norway::from_str(&text).expect("XR YAML");
    let packages = xr["spec"]["packages"].as_array().expect("packages").clone();
    assert_eq!(packages.len(), 3, "{text}");
    for package in &packages {
        let version = package["version"].as_str().expect("version");
        assert!(version.starts_with("sha256:"), "pinned to a digest: {text}");
    }
    xr["metadata"]["name"] = json!(localecr::unique("mirrored"));
    let input = allowing_test_iam(json!({
        "apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input",
        "mirrors": [{"upstream": closure.upstream, "repositoryPrefix": closure.target}],
        "iam": {"enabled": false}
    }));
    let function = Function::with_connector(Arc::new(EcrConnector::new()));
    let mut cluster = Cluster::new(function, xr, input);
    let rounds = cluster.settle(16).await;
    let last = rounds.last().expect("a round");
    last.assert_no_fatal();
    assert!(last.xr_ready(), "the XR becomes ready");
    let installed: Vec<String> = last
        .desired()
        .values()
        .filter(|o| matches!(o["kind"].as_str(), Some("Provider" | "Function")))
        .filter_map(|o| o.pointer("/spec/package").and_then(Json::as_str))
        .map(str::to_string)
        .collect();
    for (repository, tag) in [(FAMILY, "v1.1.0"), (S3, "v1.0.0"), (FUNCTION, "v0.1.0")] {
        let digest = closure.digest(repository, tag);
        assert!(
            installed
                .iter()
                .any(|p| p.contains(repository) && p.ends_with(&digest)),
            "{repository}@{digest} installed: {installed:?}"
        );
    }
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let closure = Closure::seed(10_000);
    let xr = closure.scratch.join("request.yaml");
    std::fs::write(
        &xr,
        serde_norway::to_string(&json!({
            "apiVersion": "ecr.platform.example.org/v1alpha1", "kind": "XEcrPackages",
            "metadata": {"name": "platform-packages"},
            "spec": {
                "registry": {"accountId": localecr::ACCOUNT_ID, "region": closure.ecr.region},
                "packages": [{"kind": "Provider", "repository": format!("{}{S3}", closure.target),
                              "version": ">=v1.0.0"}]
            }
        }))
        .expect("yaml"),
    )
    .expect("write XR");
    let mut command = Command::new(BINARY);
    command
        .arg("mirror")
        .args(["--from-xr", xr.to_str().expect("utf-8")])
        .args(["--mirror", &closure.mirror_flag(), "--dry-run"])
        .env("DOCKER_CONFIG", &*closure.scratch);
    let run = Run::from(command.output().expect("run mirror"));
    run.assert_success();
    assert_eq!(run.summary["dryRun"], true);
    let plan: Vec<(String, String)> = run.summary["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["repository"].as_str().unwrap_or_default().to_string(),
                p["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        plan,
        [
            (format!("{}{FAMILY}", closure.target), "v1.1.0".to_string()),
            (format!("{}{S3}", closure.target), "v1.0.0".to_string()),
        ],
        "dependencies first"
    );
    assert_eq!(
        run.summary["repositoriesToCreate"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(run.summary["bytesToCopy"].as_u64().unwrap_or_default() > 0);

    let api = closure.ecr_api().await;
    for repository in [FAMILY, S3] {
        let error = api
            .list_tags(&format!("{}{repository}", closure.target))
            .await
            .expect_err("nothing was created");
        assert!(
            matches!(
                error,
                function_ecr_packages::Error::RepositoryNotFound { .. }
            ),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_interrupted_run_resumes_where_it_stopped() {
    // Large enough that S3's copy is still under way when the family's is
    // done: a few hundred chunks.
    let closure = Closure::seed(6_000_000);
    let s3 = closure.package(S3);
    let plan = closure.run(&["--dry-run", &s3]);
    plan.assert_success();
    let total = plan.summary["bytesToCopy"].as_u64().expect("bytes to copy");

    let mut child = closure
        .command(&["--concurrency", "1", "--chunk-size", "16384", &s3])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mirror");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("log line");
        let copied = line.contains("\"image copied\"") && line.contains(FAMILY);
        seen.push(line);
        if copied {
            break;
        }
    }
    child.kill().expect("kill mirror");
    child.wait().expect("reap mirror");
    assert!(
        seen.iter().any(|l| l.contains("\"image copied\"")),
        "the family was copied before the kill: {seen:#?}"
    );
    // Tags come last: the interrupted run tagged nothing, though the
    // family's content is complete.
    let api = closure.ecr_api().await;
    for repository in [FAMILY, S3] {
        let tags = api
            .list_tags(&format!("{}{repository}", closure.target))
            .await
            .expect("repository created");
        assert!(
            tags.is_empty(),
            "{repository} untagged after the kill: {tags:?}"
        );
    }

    let resumed = closure.run(&[&s3]);
    resumed.assert_success();
    assert_eq!(
        resumed.package(FAMILY)["bytesUploaded"],
        0,
        "{}",
        resumed.summary
    );
    let again = resumed.total("bytesUploaded");
    assert!(
        again < total,
        "the resumed run sends less than everything ({again} of {total})"
    );
    assert_eq!(
        api.resolve_digest(&format!("{}{S3}", closure.target), "v1.0.0")
            .await
            .expect("S3 tagged"),
        closure.digest(S3, "v1.0.0")
    );
}

#[tokio::test]
async fn a_missing_upstream_package_fails_with_its_name_and_writes_nothing() {
    let closure = Closure::seed(1_000);
    let missing = closure.package("upbound/provider-nope");
    let run = closure.run(&[&format!("{missing}:v1.0.0"), &closure.package(S3)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("upbound/provider-nope") && last.contains("not found"),
        "{last}"
    );
    let api = closure.ecr_api().await;
    assert!(
        api.list_tags(&format!("{}{S3}", closure.target))
            .await
            .is_err(),
        "nothing was mirrored"
    );

    let run = closure.run(&[&format!("{}:v9.9.9", closure.package(S3))]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("v9.9.9"), "{}", run.stderr);

    let run = closure.run(&["upbound/provider-aws-s3"]);
    assert_eq!(run.code, Some(2), "a usage error: {}", run.stderr);
}

#[tokio::test]
async fn a_dependency_that_fails_to_copy_leaves_its_dependents_untagged() {
    let closure = Closure::seed(1_000);
    // Break the family upstream: delete a layer blob its manifest lists (not
    // the package layer, so it still resolves).
    let family_path = closure.package(FAMILY);
    let repository = family_path.split_once('/').expect("host/path").1;
    let manifest: Json =
        serde_json::from_slice(&upstream_manifest(&closure.ecr, &family_path, "v1.1.0").await)
            .expect("manifest");
    let runtime = manifest["layers"][0]["digest"].as_str().expect("layer");
    let deleted = reqwest::Client::new()
        .delete(format!(
            "http://{}/v2/{repository}/blobs/{runtime}",
            closure.ecr.upstream
        ))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status().as_u16(), 202);

    let run = closure.run(&[&closure.package(S3)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.package(FAMILY)["status"], "failed", "{}", run.summary);
    let s3 = run.package(S3);
    assert_eq!(s3["status"], "untagged", "{}", run.summary);
    assert!(
        s3["error"].as_str().unwrap_or_default().contains(FAMILY),
        "{s3}"
    );
    let api = closure.ecr_api().await;
    let tags = api
        .list_tags(&format!("{}{S3}", closure.target))
        .await
        .expect("the repository was created");
    assert!(
        tags.is_empty(),
        "no tag names S3 while its dependency is missing: {tags:?}"
    );
}

#[tokio::test]
async fn repositories_are_created_as_asked_and_immutable_tags_are_not_pushed_again() {
    let closure = Closure::seed(1_000);
    let family = format!("{}:v1.0.0", closure.package(FAMILY));
    let flags = [
        "--immutable-tags",
        "--scan-on-push",
        "--kms-key",
        "alias/crossplane-packages",
        family.as_str(),
    ];
    closure.run(&flags).assert_success();
    // Immutable tags already naming the image are left alone.
    let again = closure.run(&flags);
    again.assert_success();
    assert_eq!(
        again.package(FAMILY)["status"],
        "present",
        "{}",
        again.summary
    );

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(closure.ecr.region.clone()))
        .load()
        .await;
    let described = aws_sdk_ecr::Client::new(&config)
        .describe_repositories()
        .repository_names(format!("{}{FAMILY}", closure.target))
        .send()
        .await
        .expect("DescribeRepositories");
    let repository = &described.repositories()[0];
    assert_eq!(
        repository.image_tag_mutability(),
        Some(&aws_sdk_ecr::types::ImageTagMutability::Immutable)
    );
    assert_eq!(
        repository
            .image_scanning_configuration()
            .map(|c| c.scan_on_push()),
        Some(true)
    );
    let encryption = repository.encryption_configuration().expect("encryption");
    assert_eq!(
        encryption.encryption_type(),
        &aws_sdk_ecr::types::EncryptionType::Kms
    );
    assert_eq!(encryption.kms_key(), Some("alias/crossplane-packages"));
}

#[tokio::test]
async fn a_private_upstream_is_read_with_the_docker_config_credentials() {
    let ecr = localecr::env();
    let unique = localecr::unique("private");
    let seeded = ecr.seed_private_upstream(&json!({"images": [
        {"repository": format!("{unique}/{FAMILY}"), "tags": ["v1.0.0"],
         "package": meta("Provider", "provider-family-aws", json!([]))}
    ]}));
    let package = format!("{}/{unique}/{FAMILY}:v1.0.0", ecr.private_upstream);
    let target = format!("{}/", localecr::unique("private-mirror"));
    let docker_config = localecr::Scratch::new("docker-config");
    let run = || {
        Run::from(
            Command::new(BINARY)
                .arg("mirror")
                .args([
                    "--account-id",
                    localecr::ACCOUNT_ID,
                    "--region",
                    &ecr.region,
                ])
                .args([
                    "--mirror",
                    &format!("{}/{unique}/={target}", ecr.private_upstream),
                ])
                .arg(&package)
                .env("DOCKER_CONFIG", &*docker_config)
                .output()
                .expect("run mirror"),
        )
    };

    let refused = run();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let last = refused.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&ecr.private_upstream) && last.contains("credentials"),
        "names the registry and the missing credentials: {last}"
    );

    std::fs::write(
        docker_config.join("config.json"),
        json!({"auths": {ecr.private_upstream.clone(): {"auth": ecr.private_auth}}}).to_string(),
    )
    .expect("write Docker config");
    run().assert_success();
    let api = EcrRegistry::new(RegistryRef::new(localecr::ACCOUNT_ID, &ecr.region), None)
        .await
        .expect("ECR client");
    assert_eq!(
        api.resolve_digest(&format!("{target}{FAMILY}"), "v1.0.0")
            .await
            .expect("mirrored"),
        seeded[format!("{unique}/{FAMILY}")]["v1.0.0"]
    );
}

#[tokio::test]
async fn a_blob_another_repository_already_holds_is_mounted_not_uploaded() {
    let closure = Closure::seed(1_000);
    closure
        .run(&[&format!("{}:v1.1.0", closure.package(FAMILY))])
        .assert_success();
    // S3 shares a layer with the family, which the first run put in ECR.
    let run = closure.run(&[&closure.package(S3)]);
    run.assert_success();
    assert_eq!(run.package(FAMILY)["status"], "present");
    let s3 = run.package(S3);
    assert_eq!(s3["blobsMounted"], 1, "{s3}");
    let shared: Json = serde_json::from_slice(
        &upstream_manifest(&closure.ecr, &closure.package(S3), "v1.0.0").await,
    )
    .expect("manifest");
    let shared = shared["layers"][0]["digest"]
        .as_str()
        .expect("shared layer");
    let got = closure
        .ecr
        .registry_get(&format!("/v2/{}{S3}/blobs/{shared}", closure.target), None)
        .await;
    assert_eq!(
        got.status, 200,
        "the mounted blob is readable from S3's repository"
    );
}

#[tokio::test]
async fn the_registry_host_flag_names_where_images_go() {
    let closure = Closure::seed(1_000);
    let host = closure
        .ecr
        .registry_endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let run = Run::from(
        closure
            .command(&[
                "--registry-host",
                &host,
                &format!("{}:v1.0.0", closure.package(FAMILY)),
            ])
            .env_remove("ECR_REGISTRY_ENDPOINT")
            .output()
            .expect("run mirror"),
    );
    run.assert_success();
    let api = closure.ecr_api().await;
    assert_eq!(
        api.resolve_digest(&format!("{}{FAMILY}", closure.target), "v1.0.0")
            .await
            .expect("mirrored"),
        closure.digest(FAMILY, "v1.0.0")
    );
}

#[tokio::test]
async fn verify_with_copies_only_what_an_authority_signed_and_names_what_it_refuses() {
    let Some(cosign) = Cosign::new() else { return };
    let ecr = localecr::env();
    let unique = localecr::unique("verify");
    let upstream = format!("{}/{unique}/", ecr.upstream);
    let family = format!("{unique}/{FAMILY}");
    let s3 = format!("{unique}/{S3}");
    let seeded = ecr.seed_upstream(&json!({"images": [
        {"repository": family, "tags": ["v1.0.0", "v1.1.0"],
         "package": meta("Provider", "provider-family-aws", json!([]))},
        {"repository": s3, "tags": ["v1.0.0"],
         "package": meta("Provider", "provider-aws-s3", json!([
             {"provider": format!("{upstream}{FAMILY}"), "version": ">=v1.0.0"}]))},
    ]}));
    let digest = |tag: &str| seeded[&family][tag].as_str().expect("seeded").to_string();
    let s3_digest = seeded[&s3]["v1.0.0"].as_str().expect("seeded").to_string();
    let closure = Closure {
        ecr: ecr.clone(),
        upstream,
        target: format!("{}/", localecr::unique("verified")),
        seeded: seeded.clone(),
        scratch: localecr::Scratch::new("mirror-verify"),
    };
    let pem = cosign.key_pair("platform");
    cosign.sign(
        "platform",
        &image(&ecr.upstream, &family, &digest("v1.0.0")),
        true,
    );
    cosign.sign("platform", &image(&ecr.upstream, &s3, &s3_digest), false);
    let policy = closure.scratch.join("policy.json");
    let input = json!({"apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input",
        "verify": {"authorities": [{"name": "platform",
            "repositories": [format!("{}upbound/*", closure.target)],
            "key": {"publicKey": pem}}]}});
    std::fs::write(&policy, input.to_string()).expect("policy");
    let policy = policy.to_str().expect("utf-8");
    let package = closure.package(FAMILY);

    // A dependency's constraint falls to the highest signed version; the
    // unsigned one is named and not copied.
    let dependent = format!("{}:v1.0.0", closure.package(S3));
    let run = closure.run(&["--verify-with", policy, &dependent]);
    run.assert_success();
    assert!(
        run.stderr
            .contains("the supply-chain gate skipped v1.1.0 (unsigned)"),
        "{}",
        run.stderr
    );
    let target = format!("{}{FAMILY}", closure.target);
    let copied = target_manifest(&ecr, &target, "v1.0.0").await;
    assert_eq!(
        function_ecr_packages::oci::blob::sha256_digest(&copied),
        digest("v1.0.0")
    );
    let skipped = ecr
        .registry_get(&manifest_path(&target, "v1.1.0"), Some(ACCEPT_MANIFESTS))
        .await;
    assert_eq!(skipped.status, 404, "the unsigned version was copied");

    // The unsigned version asked for by tag: refused, named, nothing copied.
    let exact = format!("{package}:v1.1.0");
    let run = closure.run(&["--verify-with", policy, &exact]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("the supply-chain gate refuses to copy")
            && run.stderr.contains("v1.1.0 (unsigned)"),
        "{}",
        run.stderr
    );
}

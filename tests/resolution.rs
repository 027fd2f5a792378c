//! The ECR issue's scenarios through the whole function: `Function` with an
//! `EcrConnector` pointed at the local ECR stand-in (moto for the ECR API,
//! docker-registry for blobs, started by `scripts/test`), driven by the
//! reconcile simulator. Images are real xpkgs built and pushed by the
//! seeder; each test lives under its own repository namespace, which the
//! default mirrors map back from `xpkg.upbound.io/<namespace>/...`.
//!
//! Every object any round composes is validated against the real CRDs.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cluster::{Cluster, Round, Schemas, allowing_test_iam, image_config};
use function_ecr_packages::function::Function;
use function_ecr_packages::proto::v1::Severity;
use function_ecr_packages::registry::cache::CacheOptions;
use function_ecr_packages::registry::connector::EcrConnector;
use function_ecr_packages::registry::ecr::{CallCounts, EcrOptions};
use serde_json::{Value as Json, json};
use support::cosign::{Cosign, image};
use support::{cluster, localecr};
use tokio::net::TcpListener;

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

/// The ECR host of the local ECR's account and region, as composed objects
/// name it.
const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

const TRUE: i32 = 2;
const FALSE: i32 = 3;
const UNKNOWN: i32 = 1;

// ---------------------------------------------------------------------------
// Helpers

/// Options from the environment with quick retries, so outages end fast.
fn options() -> EcrOptions {
    EcrOptions {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..EcrOptions::from_env()
    }
}

/// A connector to the local ECR (panics clearly when it is not running).
fn connector_with(options: EcrOptions) -> Arc<EcrConnector> {
    localecr::env();
    Arc::new(EcrConnector::with_options(options, CacheOptions::default()))
}

fn connector() -> Arc<EcrConnector> {
    connector_with(options())
}

/// A connector whose ECR API endpoint refuses connections.
fn api_down() -> Arc<EcrConnector> {
    connector_with(EcrOptions {
        api_endpoint: Some(localecr::closed_port()),
        ..options()
    })
}

/// A connector whose registry (blob) endpoint refuses connections.
fn blobs_down() -> Arc<EcrConnector> {
    connector_with(EcrOptions {
        registry_endpoint: Some(localecr::closed_port()),
        ..options()
    })
}

fn function(connector: &Arc<EcrConnector>) -> Function {
    Function::with_connector(connector.clone())
}

/// A simulated cluster holding the XR `name` that lists `packages`, the
/// function's input `settings`, and nothing composed yet.
fn simulate(connector: &Arc<EcrConnector>, name: &str, packages: Json, settings: Json) -> Cluster {
    Cluster::new(
        function(connector),
        xr(name, packages),
        allowing_test_iam(settings),
    )
}

/// The calls of the connector's only client (none before the first connect).
async fn calls(connector: &EcrConnector) -> CallCounts {
    let rows = connector.call_counts().await;
    assert!(rows.len() <= 1, "one registry, one identity: {rows:?}");
    rows.into_iter().map(|(_, c)| c).next().unwrap_or_default()
}

fn counts(list: u64, batch_get: u64, token: u64, blobs: u64) -> CallCounts {
    CallCounts {
        list_images: list,
        batch_get_image: batch_get,
        get_authorization_token: token,
        blob_get: blobs,
        blob_redirect: 0,
        describe_image_scan_findings: 0,
        list_referrers: 0,
    }
}

/// Repository -> tag -> digest, as the seeder pushed them.
struct Seeded(Json);

impl Seeded {
    fn digest(&self, repository: &str, tag: &str) -> String {
        self.0[repository][tag]
            .as_str()
            .unwrap_or_else(|| panic!("{repository}:{tag} was not seeded: {}", self.0))
            .to_string()
    }

    /// The `status.packages` row of `repository` resolved at `tag`, ready.
    fn status(&self, repository: &str, tag: &str) -> (String, String, String, bool) {
        status(&label(repository), tag, &self.digest(repository, tag))
    }
}

fn seed(images: Json) -> Seeded {
    Seeded(localecr::env().seed(&json!({ "images": images })))
}

/// A `package.yaml` meta document.
fn meta(kind: &str, name: &str, depends_on: Json) -> Json {
    let api_version = if kind == "Function" {
        "meta.pkg.crossplane.io/v1beta1"
    } else {
        "meta.pkg.crossplane.io/v1"
    };
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"dependsOn": depends_on}
    })
}

/// A `dependsOn` entry in the current form.
fn needs(kind: &str, package: &str, version: &str) -> Json {
    json!({"apiVersion": "pkg.crossplane.io/v1", "kind": kind, "package": package, "version": version})
}

/// The upstream path a repository of the test's namespace mirrors.
fn upstream(repository: &str) -> String {
    format!("xpkg.upbound.io/{repository}")
}

/// The upstream reference of `repository` at `tag`.
fn tagged(repository: &str, tag: &str) -> String {
    format!("{}:{tag}", upstream(repository))
}

/// `metadata.name` Crossplane gives the package at `repository`.
fn label(repository: &str) -> String {
    repository.replace('/', "-")
}

fn resource(repository: &str) -> String {
    format!("package-{}", label(repository))
}

fn xr(name: &str, packages: Json) -> Json {
    json!({
        "apiVersion": "platform.example.org/v1alpha1",
        "kind": "XEcrPackages",
        "metadata": {"name": name},
        "spec": {
            "registry": {"accountId": localecr::ACCOUNT_ID, "region": "us-east-1"},
            "packages": packages,
            "iam": {"oidcProvider": "oidc.eks.us-east-1.amazonaws.com/id/ABC", "nodeRoleNames": ["eks-nodes"]}
        }
    })
}

fn package(kind: &str, repository: &str, version: &str) -> Json {
    json!({"kind": kind, "repository": repository, "version": version})
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(Schemas::load)
}

/// Every object the round composes matches its CRD.
fn validate(round: &Round) {
    for object in round.desired().values() {
        schemas().validate(object);
    }
}

async fn reconcile(cluster: &mut Cluster) -> Round {
    let round = cluster.reconcile().await;
    validate(&round);
    round
}

/// The objects the last round of a [`settle`] desires.
async fn settled(cluster: &mut Cluster) -> BTreeMap<String, Json> {
    settle(cluster).await.last().expect("rounds").desired()
}

/// Settles to Ready with no Fatal and nothing deleted on the way.
async fn settle(cluster: &mut Cluster) -> Vec<Round> {
    let rounds = cluster.settle(16).await;
    for round in &rounds {
        validate(round);
        round.assert_no_fatal();
        assert!(round.deleted.is_empty(), "deleted {:?}", round.deleted);
    }
    assert!(
        rounds.last().is_some_and(Round::xr_ready),
        "not ready after {} rounds; last conditions {:?}",
        rounds.len(),
        rounds.last().map(|r| &r.response.conditions)
    );
    rounds
}

/// The non-empty creation waves of a settle.
fn waves(rounds: &[Round]) -> Vec<Vec<String>> {
    rounds
        .iter()
        .map(|r| r.created.clone())
        .filter(|c| !c.is_empty())
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The names of the IAM objects and the xpkg.upbound.io mirror: the first wave.
fn first_wave(extra: &[&str]) -> Vec<String> {
    let mut wave = strings(&["activation-policy"]);
    wave.extend(strings(extra));
    wave.sort();
    wave
}

/// The IAM objects, once the activation policy has activated their
/// definitions.
fn iam_wave() -> Vec<String> {
    strings(&[
        "iam-attachment",
        "iam-attachment-node-eks-nodes",
        "iam-policy",
        "iam-role",
    ])
}

/// `status.packages` as (name, version, digest, ready), in install order.
fn statuses(xr: &Json) -> Vec<(String, String, String, bool)> {
    xr["status"]["packages"]
        .as_array()
        .expect("status.packages")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["version"].as_str().unwrap_or_default().to_string(),
                p["digest"].as_str().unwrap_or_default().to_string(),
                p["ready"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn status(name: &str, version: &str, digest: &str) -> (String, String, String, bool) {
    (
        name.to_string(),
        version.to_string(),
        digest.to_string(),
        true,
    )
}

fn provider(repository: &str, reference: &str) -> Json {
    json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
           "metadata": {"name": label(repository)},
           "spec": {"package": reference, "revisionHistoryLimit": 1}})
}

/// An observed object as the function composed it: without its status and
/// the `metadata.generation` the API server keeps.
fn without_status(object: &Json) -> Json {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Json::as_object_mut) {
        metadata.remove("generation");
    }
    object
}

/// The no-drop invariant after a failure the function rides out: every
/// resource that existed is still desired, unchanged, and nothing else; one
/// Warning, no Fatal; `Resolved=False` with `reason` and a message holding
/// every `part`; the XR is not Ready.
fn assert_kept(before: &BTreeMap<String, Json>, round: &Round, reason: &str, parts: &[&str]) {
    assert_none_dropped(before, round, reason, parts);
    assert_eq!(
        round.desired().keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "nothing added either"
    );
}

/// [`assert_kept`] without the "nothing else": a failure in the middle of
/// the waves may still create what the last resolved set holds.
fn assert_none_dropped(
    before: &BTreeMap<String, Json>,
    round: &Round,
    reason: &str,
    parts: &[&str],
) {
    let desired = round.desired();
    for (name, object) in before {
        let kept = desired
            .get(name)
            .unwrap_or_else(|| panic!("{name} was dropped; desired {:?}", desired.keys()));
        assert_eq!(kept, &without_status(object), "{name} changed");
    }
    assert!(round.deleted.is_empty(), "deleted {:?}", round.deleted);
    round.assert_no_fatal();
    let warnings = round.results(Severity::Warning);
    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    let (status, got_reason, message) = round.condition("Resolved").expect("Resolved");
    assert_eq!((status, got_reason.as_str()), (FALSE, reason), "{message}");
    assert_eq!(
        warnings[0], message,
        "the warning says what the condition says"
    );
    for part in parts {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    assert!(
        !round.xr_ready(),
        "the XR is not Ready while resolution fails"
    );
}

/// Back on a working registry: resolved, nothing created or deleted, Ready.
fn assert_resolved_unchanged(round: &Round) {
    assert_eq!(round.condition("Resolved").map(|c| c.0), Some(TRUE));
    assert!(round.created.is_empty() && round.deleted.is_empty());
    assert!(round.xr_ready());
}

/// One Fatal holding every `part`, and nothing applied.
fn assert_fatal(cluster: &Cluster, before: &BTreeMap<String, Json>, round: &Round, parts: &[&str]) {
    let fatal = round.results(Severity::Fatal);
    assert_eq!(fatal.len(), 1, "{fatal:?}");
    eprintln!("fatal: {}", fatal[0]);
    for part in parts {
        assert!(fatal[0].contains(part), "{part:?} not in {:?}", fatal[0]);
    }
    assert!(
        round.desired().is_empty(),
        "a Fatal response desires nothing"
    );
    assert_eq!(&cluster.observed, before, "nothing applied");
}

/// A loopback server that accepts connections and never answers.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

/// The blog case's images under `ns`: the family in two releases, a
/// prerelease and an incomplete `v2` tag; S3 depending on it with `>= 0.0.0`.
fn blog_images(ns: &str) -> (String, String, Json) {
    let family = format!("{ns}/provider-family-aws");
    let s3 = format!("{ns}/provider-aws-s3");
    let images = json!([
        {"repository": family, "tags": ["v2.1.0", "v2.2.0", "v2.3.0-rc.1", "v2"],
         "package": meta("Provider", "provider-family-aws", json!([]))},
        {"repository": s3, "tags": ["v2.1.0", "v2.2.0"],
         "package": meta("Provider", "provider-aws-s3",
                         json!([{"provider": upstream(&family), "version": ">= 0.0.0"}]))},
    ]);
    (family, s3, images)
}

/// What the blog XR lists: S3 from v2.0.0 on, the family left to S3's
/// dependency on it.
fn blog_packages(s3: &str) -> Json {
    json!([package("Provider", s3, ">=v2.0.0")])
}

/// The blog case seeded under a fresh namespace, and a simulated cluster
/// holding the blog XR.
struct Blog {
    family: String,
    s3: String,
    seeded: Seeded,
    cluster: Cluster,
}

/// [`Blog`] for the XR `name`, read through `connector`, with the input
/// `settings`.
/// An input that lists the local ECR's registry in `allowedRegistries`, so
/// that the XR's status may stand in for it even for a function that has
/// not read it yet (one restarted during an outage).
fn listed_registry() -> Json {
    json!({"allowedRegistries": [{"accountId": localecr::ACCOUNT_ID, "region": "*"}]})
}

fn blog_cluster(name: &str, connector: &Arc<EcrConnector>, settings: Json) -> Blog {
    let ns = localecr::unique(name);
    let (family, s3, images) = blog_images(&ns);
    let seeded = seed(images);
    let cluster = simulate(connector, name, blog_packages(&s3), settings);
    Blog {
        family,
        s3,
        seeded,
        cluster,
    }
}

// ---------------------------------------------------------------------------
// 1. The blog case

#[tokio::test]
async fn blog_case_settles_in_waves_on_the_seeded_digests() {
    let connector = connector();
    // The family is not listed: its version comes from S3's `>= 0.0.0`,
    // which admits neither the prerelease nor the incomplete `v2`.
    let Blog {
        family,
        s3,
        seeded,
        mut cluster,
    } = blog_cluster("blog", &connector, json!({}));
    let rounds = settle(&mut cluster).await;
    assert_eq!(
        waves(&rounds),
        vec![
            first_wave(&["image-config-xpkg-upbound-io"]),
            iam_wave(),
            vec![resource(&family)],
            vec![resource(&s3)],
        ],
        "the activation policy and the mirror, then IAM, then the family, then S3"
    );
    assert!(
        rounds[..rounds.len() - 1].iter().all(|r| !r.xr_ready()),
        "Ready only at the end"
    );
    let last = rounds.last().expect("rounds");
    let desired = last.desired();
    assert_eq!(
        desired[&resource(&family)],
        provider(&family, &tagged(&family, "v2.2.0"))
    );
    assert_eq!(
        desired[&resource(&s3)],
        provider(&s3, &tagged(&s3, "v2.2.0"))
    );
    assert_eq!(
        desired["image-config-xpkg-upbound-io"],
        image_config(
            "ecr-mirror-xpkg-upbound-io",
            "xpkg.upbound.io/",
            &format!("{HOST}/")
        )
    );
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            seeded.status(&family, "v2.2.0"),
            seeded.status(&s3, "v2.2.0"),
        ]
    );
    // The pull role may read exactly the resolved repositories.
    let policy: Json = serde_json::from_str(
        desired["iam-policy"]["spec"]["forProvider"]["policy"]
            .as_str()
            .expect("policy document"),
    )
    .expect("policy JSON");
    let arn = |repository: &str| {
        format!(
            "arn:aws:ecr:us-east-1:{}:repository/{repository}",
            localecr::ACCOUNT_ID
        )
    };
    assert_eq!(
        policy["Statement"][1]["Resource"],
        json!([arn(&s3), arn(&family)])
    );
    assert_eq!(
        cluster.xr["status"]["packages"][1]["dependsOn"],
        json!([label(&family)])
    );
    let (resolved, reason, message) = last.condition("Resolved").expect("Resolved");
    assert_eq!((resolved, reason.as_str()), (TRUE, "Resolved"));
    assert_eq!(message, format!("resolved 2 packages from {HOST}"));
    assert_eq!(
        last.condition("PackagesHealthy").map(|c| (c.0, c.1)),
        Some((TRUE, "Healthy".to_string()))
    );

    // An explicit family version wins when S3's constraint admits it.
    let mut explicit = simulate(
        &connector,
        "blog-explicit",
        json!([
            package("Provider", &family, "v2.1.0"),
            package("Provider", &s3, "v2.2.0")
        ]),
        json!({}),
    );
    assert_eq!(
        settled(&mut explicit).await[&resource(&family)],
        provider(&family, &tagged(&family, "v2.1.0"))
    );
    assert_eq!(
        statuses(&explicit.xr),
        vec![
            seeded.status(&family, "v2.1.0"),
            seeded.status(&s3, "v2.2.0"),
        ]
    );
}

// ---------------------------------------------------------------------------
// 2. Transitive chains; a Configuration on two Providers and a Function

#[tokio::test]
async fn a_configuration_pulls_in_providers_a_function_and_their_dependencies() {
    let ns = localecr::unique("chain");
    let family = format!("{ns}/provider-family-aws");
    let s3 = format!("{ns}/provider-aws-s3");
    let ec2 = format!("{ns}/provider-aws-ec2");
    let pat = format!("{ns}/function-patch-and-transform");
    let platform = format!("{ns}/configuration-platform");
    let pat_upstream = format!("xpkg.crossplane.io/{pat}");
    let seeded = seed(json!([
        {"repository": family, "tags": ["v2.1.0", "v2.2.0", "v2.3.0"],
         "package": meta("Provider", "provider-family-aws", json!([]))},
        // S3 caps the family, EC2 sets its floor: both must hold.
        {"repository": s3, "tags": ["v2.1.0", "v2.2.0"],
         "package": meta("Provider", "provider-aws-s3",
                         json!([needs("Provider", &upstream(&family), "<v2.3.0")]))},
        {"repository": ec2, "tags": ["v2.0.0", "v3.0.0"],
         "package": meta("Provider", "provider-aws-ec2",
                         json!([{"provider": upstream(&family), "version": ">=v2.1.0"}]))},
        {"repository": pat, "tags": ["v0.8.1", "v0.8.2"],
         "package": meta("Function", "function-patch-and-transform", json!([]))},
        {"repository": platform, "tags": ["v1.0.0"],
         "package": meta("Configuration", "configuration-platform", json!([
             needs("Provider", &upstream(&s3), ">=v2.1.0"),
             {"provider": upstream(&ec2), "version": "<v3.0.0"},
             {"function": pat_upstream, "version": "<v0.8.2"}
         ]))},
    ]));
    let connector = connector();
    let mut cluster = simulate(
        &connector,
        "platform",
        json!([package("Configuration", &platform, "v1.0.0")]),
        json!({}),
    );
    let first = reconcile(&mut cluster).await;
    // One ListImages, one BatchGetImage and one blob per package, one token.
    assert_eq!(calls(&connector).await, counts(5, 5, 1, 5));
    let mut rounds = vec![first];
    rounds.extend(settle(&mut cluster).await);
    assert_eq!(
        waves(&rounds),
        vec![
            first_wave(&[
                "image-config-xpkg-crossplane-io",
                "image-config-xpkg-upbound-io"
            ]),
            iam_wave(),
            vec![resource(&pat), resource(&family)],
            vec![resource(&ec2), resource(&s3)],
            vec![resource(&platform)],
        ],
        "each wave after what it depends on"
    );
    assert_eq!(
        calls(&connector).await,
        counts(5, 5, 1, 5),
        "settling costs nothing more"
    );

    let desired = rounds.last().expect("rounds").desired();
    assert_eq!(
        desired[&resource(&pat)],
        json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Function",
               "metadata": {"name": label(&pat)},
               "spec": {"package": format!("{pat_upstream}:v0.8.1"), "revisionHistoryLimit": 1}}),
        "a dependency keeps the upstream its parent declared"
    );
    assert_eq!(
        desired[&resource(&platform)],
        json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration",
               "metadata": {"name": label(&platform)},
               "spec": {"package": tagged(&platform, "v1.0.0"), "revisionHistoryLimit": 1}})
    );
    assert_eq!(
        desired["image-config-xpkg-crossplane-io"]["spec"],
        json!({"matchImages": [{"type": "Prefix", "prefix": "xpkg.crossplane.io/"}],
               "rewriteImage": {"prefix": format!("{HOST}/")}})
    );
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            seeded.status(&pat, "v0.8.1"),
            seeded.status(&family, "v2.2.0"),
            seeded.status(&ec2, "v2.0.0"),
            seeded.status(&s3, "v2.2.0"),
            seeded.status(&platform, "v1.0.0"),
        ]
    );
    let depends_on = |i: usize| {
        let mut names: Vec<String> = cluster.xr["status"]["packages"][i]["dependsOn"]
            .as_array()
            .expect("dependsOn")
            .iter()
            .map(|n| n.as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(depends_on(2), vec![label(&family)]);
    assert_eq!(depends_on(3), vec![label(&family)]);
    let mut platform_needs = vec![label(&ec2), label(&s3), label(&pat)];
    platform_needs.sort();
    assert_eq!(depends_on(4), platform_needs);
}

// ---------------------------------------------------------------------------
// 3. Digests

#[tokio::test]
async fn digests_pin_and_pin_digests_references_every_package_by_digest() {
    let ns = localecr::unique("pin");
    let (family, s3, images) = blog_images(&ns);
    let seeded = seed(images);
    let connector = connector();

    // The user pins the family to the digest of v2.1.0.
    let pinned = seeded.digest(&family, "v2.1.0");
    let mut cluster = simulate(
        &connector,
        "pinned",
        json!([
            package("Provider", &family, &pinned),
            package("Provider", &s3, "v2.2.0")
        ]),
        json!({}),
    );
    let desired = settled(&mut cluster).await;
    assert_eq!(
        desired[&resource(&family)],
        provider(&family, &format!("{}@{pinned}", upstream(&family)))
    );
    assert_eq!(
        desired[&resource(&s3)],
        provider(&s3, &tagged(&s3, "v2.2.0"))
    );
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            status(&label(&family), &pinned, &pinned),
            seeded.status(&s3, "v2.2.0"),
        ]
    );

    // pinDigests: tags are chosen as usual, referenced by their digests.
    let mut cluster = simulate(
        &connector,
        "pin-all",
        blog_packages(&s3),
        json!({"pinDigests": true}),
    );
    let desired = settled(&mut cluster).await;
    let family_digest = seeded.digest(&family, "v2.2.0");
    let s3_digest = seeded.digest(&s3, "v2.2.0");
    assert_eq!(
        desired[&resource(&family)],
        provider(&family, &format!("{}@{family_digest}", upstream(&family)))
    );
    assert_eq!(
        desired[&resource(&s3)],
        provider(&s3, &format!("{}@{s3_digest}", upstream(&s3)))
    );
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            status(&label(&family), "v2.2.0", &family_digest),
            status(&label(&s3), "v2.2.0", &s3_digest),
        ]
    );

    // The same with strategy Skip: ECR paths, every dependency composed here.
    let mut skip = xr("pin-skip", blog_packages(&s3));
    skip["spec"]["strategy"] = json!("Skip");
    let mut cluster = Cluster::new(
        function(&connector),
        skip,
        allowing_test_iam(json!({"pinDigests": true})),
    );
    let desired = settled(&mut cluster).await;
    assert!(!desired.keys().any(|k| k.starts_with("image-config-")));
    assert_eq!(
        desired[&resource(&family)]["spec"],
        json!({"package": format!("{HOST}/{family}@{family_digest}"), "skipDependencyResolution": true, "revisionHistoryLimit": 1})
    );
    assert_eq!(
        desired[&resource(&s3)]["spec"],
        json!({"package": format!("{HOST}/{s3}@{s3_digest}"), "skipDependencyResolution": true, "revisionHistoryLimit": 1})
    );
}

// ---------------------------------------------------------------------------
// 4. Prereleases and incomplete tags

#[tokio::test]
async fn prereleases_only_when_admitted_and_incomplete_tags_never() {
    let ns = localecr::unique("pre");
    let pre = format!("{ns}/provider-pre");
    let config = format!("{ns}/configuration-pre");
    // `v1` and `v1.1` would read as 1.0.0 and 1.1.0 to a lenient parser,
    // both above the prereleases; Crossplane ignores incomplete tags.
    let seeded = seed(json!([
        {"repository": pre, "tags": ["v1.0.0-rc.1", "v1.0.0-rc.2", "v1", "v1.1"],
         "package": meta("Provider", "provider-pre", json!([]))},
        {"repository": config, "tags": ["v1.0.0"],
         "package": meta("Configuration", "configuration-pre",
                         json!([needs("Provider", &upstream(&pre), ">= 0.0.0-0")]))},
    ]));
    let connector = connector();
    let rc2 = seeded.digest(&pre, "v1.0.0-rc.2");

    // A dependency admitting prereleases gets the highest one.
    let mut cluster = simulate(
        &connector,
        "pre-dep",
        json!([package("Configuration", &config, "v1.0.0")]),
        json!({}),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&pre)],
        provider(&pre, &tagged(&pre, "v1.0.0-rc.2"))
    );
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            status(&label(&pre), "v1.0.0-rc.2", &rc2),
            seeded.status(&config, "v1.0.0"),
        ]
    );

    // So does a listed package asking with `>= 0.0.0-0`.
    let mut cluster = simulate(
        &connector,
        "pre-listed",
        json!([package("Provider", &pre, ">= 0.0.0-0")]),
        json!({}),
    );
    settle(&mut cluster).await;
    assert_eq!(
        statuses(&cluster.xr),
        vec![status(&label(&pre), "v1.0.0-rc.2", &rc2)]
    );

    // `>= 0.0.0` admits no prerelease, and the incomplete tags do not count.
    let mut cluster = simulate(
        &connector,
        "pre-none",
        json!([package("Provider", &pre, ">= 0.0.0")]),
        json!({}),
    );
    let round = reconcile(&mut cluster).await;
    assert_fatal(
        &cluster,
        &BTreeMap::new(),
        &round,
        &[&format!(
            "no version of {pre} satisfies \">= 0.0.0\" (spec.packages[0])"
        )],
    );
}

// ---------------------------------------------------------------------------
// 5. Graphs that cannot be installed

#[tokio::test]
async fn unresolvable_graphs_are_fatal_name_the_culprits_and_apply_nothing() {
    let ns = localecr::unique("fatal");
    let family = format!("{ns}/provider-family-aws");
    let cycle_a = format!("{ns}/provider-cycle-a");
    let cycle_b = format!("{ns}/provider-cycle-b");
    let low = format!("{ns}/provider-low");
    let high = format!("{ns}/provider-high");
    let orphan = format!("{ns}/provider-orphan");
    let missing = format!("{ns}/provider-missing");
    let future = format!("{ns}/provider-future");
    let on = |repository: &str, version: &str| {
        json!([needs("Provider", &upstream(repository), version)])
    };
    seed(json!([
        {"repository": family, "tags": ["v2.1.0", "v2.2.0"],
         "package": meta("Provider", "provider-family-aws", json!([]))},
        {"repository": cycle_a, "tags": ["v1.0.0"], "package": meta("Provider", "a", on(&cycle_b, ">=1.0.0"))},
        {"repository": cycle_b, "tags": ["v1.0.0"], "package": meta("Provider", "b", on(&cycle_a, ">=1.0.0"))},
        {"repository": low, "tags": ["v1.0.0"], "package": meta("Provider", "low", on(&family, "<v2.2.0"))},
        {"repository": high, "tags": ["v1.0.0"], "package": meta("Provider", "high", on(&family, ">=v2.2.0"))},
        {"repository": orphan, "tags": ["v1.0.0"], "package": meta("Provider", "orphan", on(&missing, ">=1.0.0"))},
        {"repository": future, "tags": ["v1.0.0"], "package": meta("Provider", "future", on(&family, ">=v3.0.0"))},
    ]));
    let connector = connector();
    let listed = |repositories: &[&str]| -> Json {
        Json::Array(
            repositories
                .iter()
                .map(|r| package("Provider", r, "v1.0.0"))
                .collect(),
        )
    };
    let cases: Vec<(Json, Vec<String>)> = vec![
        (
            listed(&[&cycle_a]),
            vec![format!(
                "dependency cycle: {cycle_a} (v1.0.0) -> {cycle_b} (v1.0.0) -> {cycle_a} (v1.0.0)"
            )],
        ),
        (
            listed(&[&low, &high]),
            vec![
                format!("no version of {family} satisfies"),
                format!("\"<v2.2.0\" (required by {low}:v1.0.0)"),
                format!("\">=v2.2.0\" (required by {high}:v1.0.0)"),
            ],
        ),
        (
            json!([package(
                "Provider",
                &format!("{ns}/provider-nowhere"),
                ">=1.0.0"
            )]),
            vec![format!(
                "repository \"{ns}/provider-nowhere\" not found in {HOST}"
            )],
        ),
        (
            listed(&[&orphan]),
            vec![format!(
                "repository \"{missing}\" not found in {HOST} (required by {orphan}:v1.0.0)"
            )],
        ),
        (
            json!([package("Provider", &family, "v9.9.9")]),
            vec![format!(
                "no version of {family} satisfies \"v9.9.9\" (spec.packages[0])"
            )],
        ),
        (
            listed(&[&future]),
            vec![format!(
                "no version of {family} satisfies \">=v3.0.0\" (required by {future}:v1.0.0)"
            )],
        ),
    ];
    for (packages, parts) in cases {
        let mut cluster = simulate(&connector, "fatal", packages, json!({}));
        let round = reconcile(&mut cluster).await;
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        assert_fatal(&cluster, &BTreeMap::new(), &round, &parts);
    }

    // After a good settle, a Fatal leaves the cluster and the XR as they were.
    let mut cluster = simulate(
        &connector,
        "fatal-later",
        json!([package("Provider", &family, "v2.2.0")]),
        json!({}),
    );
    settle(&mut cluster).await;
    let before = cluster.observed.clone();
    let status_before = cluster.xr["status"].clone();
    cluster.xr["spec"]["packages"] = listed(&[&low, &high]);
    let round = reconcile(&mut cluster).await;
    assert_fatal(
        &cluster,
        &before,
        &round,
        &[&format!("no version of {family} satisfies")],
    );
    assert_eq!(cluster.xr["status"], status_before);
}

// ---------------------------------------------------------------------------
// 6. Image layouts and invalid packages

#[tokio::test]
async fn unannotated_and_index_images_resolve() {
    let ns = localecr::unique("layout");
    let family = format!("{ns}/provider-family-aws");
    let s3 = format!("{ns}/provider-aws-s3");
    let seeded = seed(json!([
        // No layer annotated io.crossplane.xpkg: base; package.yaml on top
        // of two runtime layers.
        {"repository": family, "tags": ["v2.2.0"], "layout": "unannotated", "runtimeLayers": 2,
         "package": meta("Provider", "provider-family-aws", json!([]))},
        {"repository": s3, "tags": ["v2.2.0"], "layout": "index",
         "platforms": ["linux/arm64", "linux/amd64"],
         "package": meta("Provider", "provider-aws-s3",
                         json!([needs("Provider", &upstream(&family), ">= 0.0.0")]))},
    ]));
    let connector = connector();
    let mut cluster = simulate(
        &connector,
        "layout",
        json!([package("Provider", &s3, "v2.2.0")]),
        json!({}),
    );
    settle(&mut cluster).await;
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            seeded.status(&family, "v2.2.0"),
            seeded.status(&s3, "v2.2.0"),
        ],
        "the index's own digest is the package's"
    );
    // The index costs one more BatchGetImage (its linux/amd64 child); the
    // unannotated image is read from its top layer.
    assert_eq!(calls(&connector).await, counts(2, 3, 1, 2));
}

#[tokio::test]
async fn invalid_packages_keep_the_last_resolved_set() {
    let ns = localecr::unique("invalid");
    let family = format!("{ns}/provider-family-aws");
    let package_meta = meta("Provider", "provider-family-aws", json!([]));
    let seeded = seed(json!([
        {"repository": family, "tags": ["v2.1.0"], "package": package_meta},
        {"repository": family, "tags": ["v2.2.0"], "package": package_meta, "corrupt": true},
        {"repository": family, "tags": ["v2.3.0"], "package": package_meta, "oversized": 4 * 1024 * 1024},
    ]));
    let connector = connector();

    // Without a previous good status: said clearly, nothing composed.
    let mut fresh = simulate(
        &connector,
        "invalid-fresh",
        json!([package("Provider", &family, "v2.2.0")]),
        json!({}),
    );
    let round = reconcile(&mut fresh).await;
    assert_kept(
        &BTreeMap::new(),
        &round,
        "InvalidPackage",
        &[
            &format!(
                "invalid package {family}@{}",
                seeded.digest(&family, "v2.2.0")
            ),
            "not valid gzip",
            "nothing resolved yet, will retry",
        ],
    );
    assert_eq!(
        round.condition("PackagesHealthy").map(|c| (c.0, c.1)),
        Some((UNKNOWN, "NotResolved".to_string()))
    );

    // With one: settle on v2.1.0, then ask for the broken releases.
    let mut cluster = simulate(
        &connector,
        "invalid",
        json!([package("Provider", &family, "v2.1.0")]),
        json!({}),
    );
    settle(&mut cluster).await;
    let before = cluster.observed.clone();
    let good = statuses(&cluster.xr);

    cluster.xr["spec"]["packages"][0]["version"] = json!("v2.2.0");
    let corrupt = reconcile(&mut cluster).await;
    assert_kept(
        &before,
        &corrupt,
        "InvalidPackage",
        &[
            &format!(
                "invalid package {family}@{}",
                seeded.digest(&family, "v2.2.0")
            ),
            "not valid gzip",
            "keeping the last resolved set of 1 packages",
        ],
    );
    assert_eq!(
        corrupt.desired()[&resource(&family)]["spec"]["package"],
        json!(tagged(&family, "v2.1.0"))
    );
    assert_eq!(statuses(&cluster.xr), good, "status.packages remembered");
    let again = reconcile(&mut cluster).await;
    assert!(
        again.results(Severity::Warning).is_empty(),
        "the same warning is not repeated: {:?}",
        again.results(Severity::Warning)
    );
    assert_eq!(again.desired().len(), before.len());

    cluster.xr["spec"]["packages"][0]["version"] = json!("v2.3.0");
    let oversized = reconcile(&mut cluster).await;
    assert_kept(
        &before,
        &oversized,
        "InvalidPackage",
        &[
            &format!(
                "invalid package {family}@{}",
                seeded.digest(&family, "v2.3.0")
            ),
            "larger than 1048576 bytes",
            "keeping the last resolved set of 1 packages",
        ],
    );

    // Back to the good release: resolved again, nothing changed.
    cluster.xr["spec"]["packages"][0]["version"] = json!("v2.1.0");
    let back = reconcile(&mut cluster).await;
    assert_resolved_unchanged(&back);
}

#[tokio::test]
async fn a_tag_moved_to_a_broken_image_keeps_the_last_resolved_set() {
    let ns = localecr::unique("retag");
    let family = format!("{ns}/provider-family-aws");
    let package_meta = meta("Provider", "provider-family-aws", json!([]));
    let good = seed(json!([{"repository": family, "tags": ["v2.1.0"], "package": package_meta}]));
    let connector = connector();
    // Tags are trusted for no time, so the move is seen at once.
    let mut cluster = simulate(
        &connector,
        "retag",
        json!([package("Provider", &family, "v2.1.0")]),
        json!({"tagCacheTTL": "0s"}),
    );
    settle(&mut cluster).await;
    assert_eq!(statuses(&cluster.xr)[0].2, good.digest(&family, "v2.1.0"));
    let before = cluster.observed.clone();

    let moved = seed(
        json!([{"repository": family, "tags": ["v2.1.0"], "package": package_meta, "corrupt": true}]),
    );
    let moved_digest = moved.digest(&family, "v2.1.0");
    assert_ne!(moved_digest, good.digest(&family, "v2.1.0"));
    let round = reconcile(&mut cluster).await;
    assert_kept(
        &before,
        &round,
        "InvalidPackage",
        &[
            &format!("invalid package {family}@{moved_digest}"),
            "keeping the last resolved set of 1 packages",
        ],
    );
    assert_eq!(
        statuses(&cluster.xr)[0].2,
        good.digest(&family, "v2.1.0"),
        "the remembered digest is the last good one"
    );
}

/// Deletes every image of `repository` through the ECR API, as a user
/// emptying the repository would.
async fn empty_repository(repository: &str) {
    localecr::env();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_ECR").expect("the local ECR's API endpoint");
    let client = aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::config::Builder::from(&shared)
            .endpoint_url(endpoint)
            .build(),
    );
    let listed = client
        .list_images()
        .repository_name(repository)
        .send()
        .await
        .expect("ListImages");
    let ids = listed.image_ids.unwrap_or_default();
    assert!(!ids.is_empty(), "{repository} has images to delete");
    client
        .batch_delete_image()
        .repository_name(repository)
        .set_image_ids(Some(ids))
        .send()
        .await
        .expect("BatchDeleteImage");
}

/// The family came in as S3's dependency and is installed; then every
/// image of its repository is deleted. The installed family stays at its
/// version with one Warning, and the XR keeps reconciling (no Fatal).
#[tokio::test]
async fn an_emptied_dependency_repository_keeps_the_installed_dependency() {
    let Blog {
        family,
        mut cluster,
        ..
    } = blog_cluster("emptied", &connector(), json!({"tagCacheTTL": "0s"}));
    settle(&mut cluster).await;
    let before = cluster.observed.clone();

    empty_repository(&family).await;
    let rounds = [reconcile(&mut cluster).await, reconcile(&mut cluster).await];
    for round in &rounds {
        round.assert_no_fatal();
        assert!(round.deleted.is_empty(), "deleted {:?}", round.deleted);
        assert_eq!(
            round.desired()[&resource(&family)]["spec"],
            before[&resource(&family)]["spec"],
            "the family stays at its installed version"
        );
        let (status, reason, _) = round.condition("Resolved").expect("Resolved");
        assert_eq!((status, reason.as_str()), (FALSE, "DependencyUnresolvable"));
        assert!(round.xr_ready(), "everything installed is still healthy");
    }
    let warnings = rounds[0].results(Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let kept = format!("keeping installed dependency {} at v2.2.0", label(&family));
    for part in [kept.as_str(), "has no tagged images"] {
        assert!(warnings[0].contains(part), "{}", warnings[0]);
    }
    assert!(rounds[1].results(Severity::Warning).is_empty(), "said once");
}

// ---------------------------------------------------------------------------
// 7. Outages

#[tokio::test]
async fn outages_after_a_good_settle_drop_nothing() {
    let good = connector();
    // Listed: a restarted function (which has read nothing yet) may stand
    // the status in for it.
    let Blog {
        family,
        mut cluster,
        ..
    } = blog_cluster("outage", &good, listed_registry());
    settle(&mut cluster).await;
    let before = cluster.observed.clone();
    let remembered = statuses(&cluster.xr);
    assert_eq!(remembered.len(), 2);

    // The ECR API refuses connections: a restarted function cannot list tags.
    let down = api_down();
    cluster.function = Arc::new(function(&down));
    // A hang guard, not a measure of speed: refused connections must not
    // stall the reconcile on retries.
    let round = tokio::time::timeout(Duration::from_secs(60), reconcile(&mut cluster))
        .await
        .expect("the reconcile did not answer within a minute");
    assert_kept(
        &before,
        &round,
        "RegistryUnavailable",
        &[
            "registry unavailable during ListImages",
            "keeping the last resolved set of 2 packages, will retry",
        ],
    );
    assert_eq!(
        round.desired()[&resource(&family)]["spec"]["package"],
        json!(tagged(&family, "v2.2.0")),
        "recomposed from status.packages"
    );
    assert_eq!(statuses(&cluster.xr), remembered);
    let again = reconcile(&mut cluster).await;
    assert!(again.results(Severity::Warning).is_empty(), "not repeated");

    // The API answers but the registry (blobs) refuses connections, with a
    // cold cache: the package metadata cannot be read.
    let no_blobs = blobs_down();
    cluster.function = Arc::new(function(&no_blobs));
    let round = reconcile(&mut cluster).await;
    assert_kept(
        &before,
        &round,
        "RegistryUnavailable",
        &[
            "registry unavailable during GetBlob",
            "could not connect",
            "keeping the last resolved set of 2 packages, will retry",
        ],
    );
    let seen = calls(&no_blobs).await;
    assert_eq!(
        (seen.list_images, seen.batch_get_image, seen.blob_get),
        (1, 1, 3),
        "S3's tags and manifest, then three attempts at its layer: {seen:?}"
    );

    // The API accepts connections and never answers: the reconcile's
    // deadline ends resolution.
    let (silent, server) = silent_server().await;
    let slow = connector_with(EcrOptions {
        api_endpoint: Some(silent),
        ..options()
    });
    cluster.function = Arc::new(function(&slow).with_deadline(Duration::from_secs(1)));
    let started = Instant::now();
    let round = reconcile(&mut cluster).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_kept(
        &before,
        &round,
        "RegistryTimeout",
        &[
            "resolution did not finish within 1s",
            "keeping the last resolved set of 2 packages, will retry",
        ],
    );
    server.abort();

    // Back to a working registry: resolved, nothing changed.
    cluster.function = Arc::new(function(&good));
    let back = reconcile(&mut cluster).await;
    assert_resolved_unchanged(&back);
    assert_eq!(statuses(&cluster.xr), remembered);
}

#[tokio::test]
async fn an_outage_in_the_middle_of_the_waves_drops_nothing() {
    let good = connector();
    let Blog {
        family,
        s3,
        seeded,
        mut cluster,
    } = blog_cluster("midway", &good, listed_registry());
    // IAM and the mirror, then the family; S3 not created yet.
    for _ in 0..6 {
        if reconcile(&mut cluster)
            .await
            .created
            .contains(&resource(&family))
        {
            break;
        }
    }
    assert!(cluster.observed.contains_key(&resource(&family)));
    assert!(!cluster.observed.contains_key(&resource(&s3)));

    let down = api_down();
    cluster.function = Arc::new(function(&down));
    let mut before = cluster.observed.clone();
    let round = reconcile(&mut cluster).await;
    assert_none_dropped(
        &before,
        &round,
        "RegistryUnavailable",
        &["keeping the last resolved set of 2 packages"],
    );
    // The last resolved set goes on installing once the family is healthy:
    // S3 at the version resolved before the outage.
    for _ in 0..2 {
        before = cluster.observed.clone();
        let round = reconcile(&mut cluster).await;
        for name in before.keys() {
            assert!(round.desired().contains_key(name), "{name} dropped");
        }
        assert!(round.results(Severity::Fatal).is_empty());
        assert!(!round.xr_ready(), "not Ready while resolution fails");
    }
    assert_eq!(
        without_status(&cluster.observed[&resource(&s3)]),
        provider(&s3, &tagged(&s3, "v2.2.0"))
    );

    cluster.function = Arc::new(function(&good));
    settle(&mut cluster).await;
    assert_eq!(
        statuses(&cluster.xr),
        vec![
            seeded.status(&family, "v2.2.0"),
            seeded.status(&s3, "v2.2.0"),
        ]
    );
}

#[tokio::test]
async fn a_registry_outage_before_anything_resolved_is_reported_clearly() {
    let mut cluster = blog_cluster("cold", &blobs_down(), json!({})).cluster;
    let round = reconcile(&mut cluster).await;
    assert_kept(
        &BTreeMap::new(),
        &round,
        "RegistryUnavailable",
        &[
            "registry unavailable during GetBlob",
            "nothing resolved yet, will retry",
        ],
    );
    assert_eq!(cluster.xr["status"]["packages"], json!([]));
}

// ---------------------------------------------------------------------------
// 8. What a reconcile costs

#[tokio::test]
async fn a_cold_reconcile_costs_a_few_calls_per_package_and_a_warm_one_none() {
    let connector = connector();
    let Blog {
        family,
        s3,
        mut cluster,
        ..
    } = blog_cluster("calls", &connector, json!({}));

    // Cold: per package one ListImages, one BatchGetImage (its manifest is
    // kept for the metadata read) and one blob GET; one token for all.
    let first = reconcile(&mut cluster).await;
    assert!(first.results(Severity::Fatal).is_empty());
    let cold = calls(&connector).await;
    assert_eq!(cold, counts(2, 2, 1, 2), "cold reconcile of the blog XR");
    eprintln!("cold reconcile, 2 packages: {cold:?}");

    // Every later round of the settle, and an unchanged XR after it, within
    // the tag TTL: no AWS call at all.
    let rounds = settle(&mut cluster).await;
    assert!(rounds.len() >= 3, "{} rounds", rounds.len());
    let unchanged = reconcile(&mut cluster).await;
    assert!(unchanged.results(Severity::Warning).is_empty());
    assert!(unchanged.results(Severity::Normal).is_empty(), "no event");
    assert_eq!(
        calls(&connector).await,
        cold,
        "{} warm reconciles made AWS calls",
        rounds.len() + 1
    );

    // Another XR on the same registry asking for another family release
    // costs that release only: its manifest and its layer.
    let mut other = simulate(
        &connector,
        "calls-other",
        json!([
            package("Provider", &family, "v2.1.0"),
            package("Provider", &s3, "v2.2.0")
        ]),
        json!({}),
    );
    settle(&mut other).await;
    let delta = calls(&connector).await.since(&cold);
    assert_eq!(delta, counts(0, 1, 0, 1), "a second XR, warm cache");
    eprintln!("second XR on a warm cache: {delta:?}");
}

#[tokio::test]
async fn expired_tags_are_listed_again_and_metadata_is_not_read_again() {
    let connector = connector();
    let mut cluster = blog_cluster("ttl", &connector, json!({"tagCacheTTL": "1s"})).cluster;
    reconcile(&mut cluster).await;
    let cold = calls(&connector).await;
    assert_eq!(cold, counts(2, 2, 1, 2));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let round = reconcile(&mut cluster).await;
    assert_eq!(round.condition("Resolved").map(|c| c.0), Some(TRUE));
    let expired = calls(&connector).await.since(&cold);
    // Tags again, which list each tag's digest, so no tag is resolved by
    // BatchGetImage; content at a digest never changes.
    assert_eq!(expired, counts(2, 0, 0, 0), "after the tag TTL");
    eprintln!("reconcile after the tag TTL: {expired:?}");
}

// ---------------------------------------------------------------------------
// The supply-chain gate on ECR's image scans (issue 26), against moto's
// DescribeImageScanFindings

/// Starts a scan of each image (moto answers findings only for a scanned
/// image, and a `ScanNotFoundException` otherwise) and has moto answer
/// `findings` for it: `(digest, status, findings, enhanced findings,
/// counts)`.
async fn scanned(repository: &str, images: &[(String, &str, Json, Json, Json)]) {
    let ecr = localecr::env();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let client = aws_sdk_ecr::Client::new(&config);
    let mut results = Vec::new();
    for (digest, status, findings, enhanced, counts) in images {
        client
            .start_image_scan()
            .repository_name(repository)
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(digest)
                    .build(),
            )
            .send()
            .await
            .expect("StartImageScan");
        results.push(json!({
            "registryId": localecr::ACCOUNT_ID,
            "repositoryName": repository,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": status, "description": "set by the test"},
            "imageScanFindings": {
                "findings": findings, "enhancedFindings": enhanced, "findingSeverityCounts": counts
            }
        }));
    }
    let url = format!(
        "{}/moto-api/static/ecr/scan-finding-results",
        ecr.ecr_endpoint.trim_end_matches('/')
    );
    let answer = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"results": results, "region": "us-east-1"}).to_string())
        .send()
        .await
        .expect("moto API");
    assert!(answer.status().is_success(), "{}", answer.status());
}

/// The `status.packages[0].skipped` of the XR.
fn skipped(xr: &Json) -> Json {
    xr["status"]["packages"][0]["skipped"].clone()
}

#[tokio::test]
async fn the_scan_gate_takes_the_highest_clean_version_holds_pending_scans_and_ignores_what_it_is_told()
 {
    let ns = localecr::unique("scan");
    let gated = format!("{ns}/provider-gated");
    let pending = format!("{ns}/provider-pending");
    let seeded = seed(json!([
        {"repository": gated, "tags": ["v1.0.0", "v1.1.0", "v1.2.0"],
         "package": meta("Provider", "provider-gated", json!([]))},
        {"repository": pending, "tags": ["v1.0.0", "v1.1.0"],
         "package": meta("Provider", "provider-pending", json!([]))},
    ]));
    let clean = |digest: String| (digest, "COMPLETE", json!([]), json!([]), json!({}));
    scanned(
        &gated,
        &[
            clean(seeded.digest(&gated, "v1.0.0")),
            clean(seeded.digest(&gated, "v1.1.0")),
            (
                seeded.digest(&gated, "v1.2.0"),
                "COMPLETE",
                json!([{"name": "CVE-2024-1234", "severity": "CRITICAL"},
                       {"name": "CVE-2024-0001", "severity": "LOW"}]),
                json!([]),
                json!({"CRITICAL": 1, "LOW": 1}),
            ),
        ],
    )
    .await;
    scanned(
        &pending,
        &[
            clean(seeded.digest(&pending, "v1.0.0")),
            (
                seeded.digest(&pending, "v1.1.0"),
                "IN_PROGRESS",
                json!([]),
                json!([]),
                json!({}),
            ),
        ],
    )
    .await;
    let connector = connector();
    let policy = |extra: Json| {
        let mut scan = json!({"repositories": [format!("{ns}/*")], "maxSeverity": "HIGH"});
        for (k, v) in extra.as_object().expect("object") {
            scan[k] = v.clone();
        }
        json!({ "scan": scan })
    };

    // A CRITICAL finding skips v1.2.0; the next clean one is taken.
    let mut cluster = simulate(
        &connector,
        "scan-critical",
        json!([package("Provider", &gated, ">= 1.0.0")]),
        policy(json!({})),
    );
    let first = reconcile(&mut cluster).await;
    assert_eq!(
        first.results(Severity::Warning),
        vec![format!(
            "{} stays at v1.1.0: the supply-chain gate skipped v1.2.0 (finding CVE-2024-1234 of severity CRITICAL)",
            label(&gated)
        )]
    );
    let cold = calls(&connector).await;
    assert_eq!(
        cold.describe_image_scan_findings, 2,
        "one scan report per candidate digest: {cold:?}"
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&gated)],
        provider(&gated, &tagged(&gated, "v1.1.0"))
    );
    assert_eq!(
        skipped(&cluster.xr),
        json!([{"version": "v1.2.0", "reason": "finding CVE-2024-1234 of severity CRITICAL"}])
    );
    // Warm, unchanged: no AWS call, no event.
    let before = calls(&connector).await;
    let unchanged = reconcile(&mut cluster).await;
    assert!(unchanged.results(Severity::Warning).is_empty());
    assert_eq!(
        calls(&connector).await,
        before,
        "a warm reconcile made AWS calls"
    );

    // Ignored by name (and LOW tolerated), v1.2.0 passes.
    let mut cluster = simulate(
        &connector,
        "scan-ignore",
        json!([package("Provider", &gated, ">= 1.0.0")]),
        policy(json!({"ignore": ["CVE-2024-1234"]})),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&gated)],
        provider(&gated, &tagged(&gated, "v1.2.0"))
    );
    assert_eq!(skipped(&cluster.xr), Json::Null);

    // whenMissing: Wait holds v1.1.0, whose scan is in progress.
    let mut cluster = simulate(
        &connector,
        "scan-pending",
        json!([package("Provider", &pending, ">= 1.0.0")]),
        policy(json!({"whenMissing": "Wait"})),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&pending)],
        provider(&pending, &tagged(&pending, "v1.0.0"))
    );
    assert_eq!(
        skipped(&cluster.xr),
        json!([{"version": "v1.1.0", "reason": "scan pending (ECR reports IN_PROGRESS)"}])
    );
    // whenMissing: Allow takes it.
    let mut cluster = simulate(
        &connector,
        "scan-allow",
        json!([package("Provider", &pending, ">= 1.0.0")]),
        policy(json!({"whenMissing": "Allow"})),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&pending)],
        provider(&pending, &tagged(&pending, "v1.1.0"))
    );
}

#[tokio::test]
async fn a_package_with_no_clean_version_is_not_composed_and_says_why() {
    let ns = localecr::unique("scanblock");
    let blocked = format!("{ns}/provider-blocked");
    let seeded = seed(json!([
        {"repository": blocked, "tags": ["v1.0.0"],
         "package": meta("Provider", "provider-blocked", json!([]))},
    ]));
    // Enhanced scanning (Inspector): ACTIVE, the finding named by its
    // vulnerability id.
    scanned(
        &blocked,
        &[(
            seeded.digest(&blocked, "v1.0.0"),
            "ACTIVE",
            json!([]),
            json!([{"severity": "HIGH", "status": "ACTIVE", "title": "a title",
                    "packageVulnerabilityDetails": {"vulnerabilityId": "GHSA-aaaa-bbbb-cccc"}}]),
            json!({"HIGH": 1}),
        )],
    )
    .await;
    let connector = connector();
    let mut cluster = simulate(
        &connector,
        "scan-blocked",
        json!([package("Provider", &blocked, ">= 1.0.0")]),
        json!({"scan": {"repositories": [format!("{ns}/*")], "maxSeverity": "MEDIUM"}}),
    );
    let round = reconcile(&mut cluster).await;
    round.assert_no_fatal();
    assert!(!round.desired().contains_key(&resource(&blocked)));
    assert!(!round.xr_ready());
    let (status, reason, message) = round.condition("Resolved").expect("Resolved");
    assert_eq!((status, reason.as_str()), (FALSE, "SupplyChain"));
    assert!(
        message.contains(&format!(
            "{} is not installed: no version of {blocked} passes the supply-chain gate: \
             v1.0.0 (finding GHSA-aaaa-bbbb-cccc of severity HIGH)",
            label(&blocked)
        )),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// The supply-chain gate on cosign signatures (issue 26), made by the real
// cosign CLI against the local ECR

#[tokio::test]
async fn the_signature_gate_takes_the_highest_signed_version_and_names_what_fails() {
    let Some(cosign) = Cosign::new() else { return };
    let ns = localecr::unique("signed");
    let signed = format!("{ns}/provider-signed");
    let reasons = format!("{ns}/provider-reasons");
    let elsewhere = format!("{ns}/provider-elsewhere");
    let seeded = seed(json!([
        {"repository": signed, "tags": ["v1.0.0", "v1.1.0", "v1.2.0"],
         "package": meta("Provider", "provider-signed", json!([]))},
        {"repository": reasons, "tags": ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"],
         "package": meta("Provider", "provider-reasons", json!([]))},
        {"repository": elsewhere, "tags": ["v1.0.0"],
         "package": meta("Provider", "provider-elsewhere", json!([]))},
    ]));
    let host = localecr::env().registry_endpoint;
    let at =
        |repository: &str, tag: &str| image(&host, repository, &seeded.digest(repository, tag));
    let platform = cosign.key_pair("platform");
    let other = cosign.key_pair("other");
    cosign.key_pair("stranger");
    // v1.0.0 by the legacy tag, v1.1.0 by a bundle, v1.2.0 not at all.
    cosign.sign("platform", &at(&signed, "v1.0.0"), false);
    cosign.sign("platform", &at(&signed, "v1.1.0"), true);
    // Each of the others fails its own way.
    cosign.sign("platform", &at(&reasons, "v1.0.0"), false);
    let first = at(&reasons, "v1.0.0");
    cosign.attach("platform", &at(&reasons, "v1.1.0"), &first, false);
    cosign.attach(
        "platform",
        &at(&reasons, "v1.2.0"),
        &at(&reasons, "v1.2.0"),
        true,
    );
    cosign.sign("stranger", &at(&reasons, "v1.3.0"), true);
    cosign.sign("platform", &at(&elsewhere, "v1.0.0"), false);
    let policy = json!({"verify": {"authorities": [
        {"name": "platform", "repositories": [signed, reasons], "key": {"publicKey": platform}},
        {"name": "other", "repositories": [elsewhere], "key": {"publicKey": other}},
    ]}});
    let connector = connector();

    // The highest signed version (a bundle) over a higher unsigned one.
    let mut cluster = simulate(
        &connector,
        "signed-highest",
        json!([package("Provider", &signed, ">= 1.0.0")]),
        policy.clone(),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&signed)],
        provider(&signed, &tagged(&signed, "v1.1.0"))
    );
    assert_eq!(
        skipped(&cluster.xr),
        json!([{"version": "v1.2.0", "reason": "unsigned"}])
    );
    // Warm, unchanged: no AWS call.
    let before = calls(&connector).await;
    reconcile(&mut cluster).await;
    assert_eq!(
        calls(&connector).await,
        before,
        "a warm reconcile made AWS calls"
    );

    // The legacy tag verifies too.
    let mut cluster = simulate(
        &connector,
        "signed-legacy",
        json!([package("Provider", &signed, "< 1.1.0")]),
        policy.clone(),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&signed)],
        provider(&signed, &tagged(&signed, "v1.0.0"))
    );
    assert_eq!(skipped(&cluster.xr), Json::Null);

    // Another digest's signature, a tampered payload, a key no authority
    // holds: each skipped, named.
    let mut cluster = simulate(
        &connector,
        "signed-reasons",
        json!([package("Provider", &reasons, ">= 1.0.0")]),
        policy.clone(),
    );
    assert_eq!(
        settled(&mut cluster).await[&resource(&reasons)],
        provider(&reasons, &tagged(&reasons, "v1.0.0"))
    );
    let first = seeded.digest(&reasons, "v1.0.0");
    assert_eq!(
        skipped(&cluster.xr),
        json!([
            {"version": "v1.3.0", "reason": "no matching key: signed by a key no authority holds"},
            {"version": "v1.2.0", "reason": "signature invalid: no authority's key verifies it"},
            {"version": "v1.1.0", "reason": format!("signature for another digest ({first}), by authority platform")},
        ])
    );

    // Signed, but by an authority that does not cover the repository: not
    // composed, and the XR says why.
    let mut cluster = simulate(
        &connector,
        "signed-elsewhere",
        json!([package("Provider", &elsewhere, ">= 1.0.0")]),
        policy,
    );
    let round = reconcile(&mut cluster).await;
    round.assert_no_fatal();
    assert!(!round.desired().contains_key(&resource(&elsewhere)));
    let (status, reason, message) = round.condition("Resolved").expect("Resolved");
    assert_eq!((status, reason.as_str()), (FALSE, "SupplyChain"));
    assert!(
        message.contains(&format!(
            "v1.0.0 (no matching authority: signed by authority platform, which does not cover {elsewhere})"
        )),
        "{message}"
    );
}

//! Upgrades through the reconcile simulator, which advances package
//! objects the way Crossplane v2.2's package manager does: a package is on
//! a version only once its status says the revision of that `spec.package`
//! is current, Installed and Healthy, and what needs it waits until then.

mod support;

use std::sync::Arc;

use cluster::{Cluster, ManualClock, allowing_test_iam};
use function_ecr_packages::function::Function;
use function_ecr_packages::package::PackageKind;
use function_ecr_packages::proto::v1::Severity;
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::{MemoryRegistry, blog_registry, meta};
use serde_json::{Value as Json, json};
use support::cluster;

const FAMILY: &str = "upbound-provider-family-aws";
const FAMILY_RESOURCE: &str = "package-upbound-provider-family-aws";
const S3_RESOURCE: &str = "package-upbound-provider-aws-s3";
const FAMILY_PATH: &str = "xpkg.upbound.io/upbound/provider-family-aws";

fn family(version: &str) -> Json {
    json!({"kind": "Provider", "repository": "upbound/provider-family-aws", "version": version})
}

fn s3() -> Json {
    json!({"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"})
}

/// A cluster whose XR lists `packages`, settled.
async fn settled(registry: &Arc<MemoryRegistry>, packages: Json) -> Cluster {
    let xr = json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages",
        "metadata": {"name": "blog"},
        "spec": {"registry": {"accountId": "123456789012", "region": "eu-west-2"},
                 "packages": packages,
                 "iam": {"oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/ABC", "nodeRoleNames": ["eks-nodes"]}}});
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
    let mut cluster = Cluster::new(function, xr, allowing_test_iam(json!({})));
    let rounds = cluster.settle(16).await;
    assert!(rounds.last().expect("rounds").xr_ready());
    cluster
}

/// `status.packages[].ready` of the package named `name`.
fn ready_in_status(cluster: &Cluster, name: &str) -> bool {
    cluster.xr["status"]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["ready"].as_bool())
        .unwrap_or_else(|| panic!("no status entry for {name}: {}", cluster.xr["status"]))
}

/// The family's version changes and, in the next round, S3 (which needs
/// it) is added. S3 is created only once the family's status says its new
/// revision is current and healthy: not while Crossplane has not yet acted
/// on the change (Installed and Healthy still describe v2.1.0's revision),
/// not while the new revision's health is unknown.
#[tokio::test]
async fn a_dependent_waits_until_its_dependency_is_on_the_new_version() {
    let registry = Arc::new(blog_registry());
    let mut cluster = settled(&registry, json!([family("v2.1.0")])).await;
    let before = cluster.observed[FAMILY_RESOURCE].clone();
    assert_eq!(
        before["status"]["currentIdentifier"],
        format!("{FAMILY_PATH}:v2.1.0")
    );
    assert_eq!(before["metadata"]["generation"], 1);

    // The version changes; Crossplane's package manager has not acted yet.
    cluster.xr["spec"]["packages"] = json!([family("v2.2.0")]);
    cluster.stalled.insert(FAMILY.to_string());
    let changed = cluster.reconcile().await;
    changed.assert_no_fatal();
    let object = &cluster.observed[FAMILY_RESOURCE];
    assert_eq!(object["spec"]["package"], format!("{FAMILY_PATH}:v2.2.0"));
    assert_eq!(object["metadata"]["generation"], 2);
    assert_eq!(object["status"], before["status"], "not acted on yet");

    // S3 arrives while the family's status is still v2.1.0's: it waits,
    // though Installed and Healthy are True.
    cluster.xr["spec"]["packages"] = json!([family("v2.2.0"), s3()]);
    let stale = cluster.reconcile().await;
    stale.assert_no_fatal();
    assert!(!stale.desired().contains_key(S3_RESOURCE));
    assert!(!stale.xr_ready());
    assert!(!ready_in_status(&cluster, FAMILY));
    let (_, _, message) = stale.condition("PackagesHealthy").expect("PackagesHealthy");
    assert!(
        message.contains(
            "upbound-provider-family-aws (Installed=True (ActivePackageRevision), \
             Healthy=True (HealthyPackageRevision), not yet on its spec.package)"
        ),
        "{message}"
    );
    assert!(
        message
            .contains("upbound-provider-aws-s3 (waiting for package-upbound-provider-family-aws)"),
        "{message}"
    );

    // Crossplane acts: the new revision is current, its health unknown.
    cluster.stalled.clear();
    let activated = cluster.reconcile().await;
    assert!(!activated.desired().contains_key(S3_RESOURCE));
    let status = &cluster.observed[FAMILY_RESOURCE]["status"];
    assert_eq!(status["currentIdentifier"], format!("{FAMILY_PATH}:v2.2.0"));
    assert_ne!(
        status["currentRevision"],
        before["status"]["currentRevision"]
    );
    assert_eq!(status["conditions"][1]["status"], "False");
    assert_eq!(
        status["conditions"][1]["message"],
        "Package revision health is \"Unknown\""
    );
    assert_eq!(status["conditions"][1]["observedGeneration"], 2);

    let unknown = cluster.reconcile().await;
    assert!(
        !unknown.desired().contains_key(S3_RESOURCE),
        "the new revision's health was not known yet"
    );
    assert!(!ready_in_status(&cluster, FAMILY));
    assert_eq!(
        cluster.observed[FAMILY_RESOURCE]["status"]["conditions"][1]["status"],
        "True"
    );

    // Healthy on v2.2.0: S3 goes in, and the XR turns ready.
    let healthy = cluster.reconcile().await;
    assert_eq!(healthy.created, [S3_RESOURCE]);
    assert!(ready_in_status(&cluster, FAMILY));
    let rest = cluster.settle(8).await;
    assert!(rest.last().expect("rounds").xr_ready());
    for round in std::iter::once(&changed).chain([&stale, &activated, &unknown, &healthy]) {
        assert!(round.deleted.is_empty(), "nothing is deleted");
    }
}

/// A release that never becomes healthy keeps what needs it waiting and
/// the XR not ready, though its object is Installed on it.
#[tokio::test]
async fn a_release_that_never_becomes_healthy_holds_its_dependents() {
    let registry = Arc::new(blog_registry());
    let mut cluster = settled(&registry, json!([family("v2.1.0")])).await;
    cluster
        .broken_packages
        .insert(format!("{FAMILY_PATH}:v2.2.0"));
    cluster.xr["spec"]["packages"] = json!([family("v2.2.0"), s3()]);
    // The first round still sees v2.1.0 current and healthy, so S3 may go
    // in on it (its constraint takes any family); the rounds after see
    // v2.2.0 and never a healthy one.
    cluster.reconcile().await;
    let rounds = cluster.settle(6).await;
    let last = rounds.last().expect("rounds");
    assert!(!last.xr_ready());
    assert!(!ready_in_status(&cluster, FAMILY));
    let status = &cluster.observed[FAMILY_RESOURCE]["status"];
    assert_eq!(status["currentIdentifier"], format!("{FAMILY_PATH}:v2.2.0"));
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(
        status["conditions"][1]["message"],
        "Package runtime health is \"False\""
    );
    assert!(rounds.iter().all(|r| r.deleted.is_empty()));

    // The same release healthy again (fixed in place): everything settles.
    cluster.broken_packages.clear();
    let rounds = cluster.settle(6).await;
    assert!(rounds.last().expect("rounds").xr_ready());
    assert!(ready_in_status(&cluster, FAMILY));
}

const S3_PATH: &str = "xpkg.upbound.io/upbound/provider-aws-s3";

/// Saturday 2026-12-05 03:20:16 UTC.
fn saturday() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_440_816)
}

/// A registry with only the v2.1.0 family and S3 (S3 needs the family at
/// `>= v2.1.0`), and a cluster settled on them, its clock by hand.
async fn on_v2_1(xr_packages: Json, input: Json) -> (Arc<MemoryRegistry>, Cluster, ManualClock) {
    let registry = Arc::new(MemoryRegistry::new());
    registry.push(FAMILY_REPO, "v2.1.0", meta(PackageKind::Provider, &[]));
    push_s3(&registry, "v2.1.0", ">= v2.1.0");
    let clock = ManualClock::at(saturday());
    let xr = json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages",
        "metadata": {"name": "blog"},
        "spec": {"registry": {"accountId": "123456789012", "region": "eu-west-2"},
                 "packages": xr_packages,
                 "iam": {"oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/ABC", "nodeRoleNames": ["eks-nodes"]}}});
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())))
        .with_clock(Arc::new(clock.clone()));
    let mut input = input;
    input["tagCacheTTL"] = json!("0s");
    let mut cluster = Cluster::new(function, xr, allowing_test_iam(input));
    let rounds = cluster.settle(16).await;
    assert!(rounds.last().expect("rounds").xr_ready());
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.1.0")
    );
    (registry, cluster, clock)
}

const FAMILY_REPO: &str = "upbound/provider-family-aws";

fn push_s3(registry: &MemoryRegistry, version: &str, needs: &str) {
    registry.push(
        "upbound/provider-aws-s3",
        version,
        meta(
            PackageKind::Provider,
            &[(FAMILY_PATH, PackageKind::Provider, needs)],
        ),
    );
}

fn s3_range() -> Json {
    json!([{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": ">= v2.1.0"}])
}

/// `spec.package` of a composed resource.
fn at(cluster: &Cluster, resource: &str) -> String {
    cluster.observed[resource]["spec"]["package"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the package object is on its `spec.package`: status for it,
/// Installed and Healthy for the current generation.
fn on(cluster: &Cluster, resource: &str) -> bool {
    let object = &cluster.observed[resource];
    let status = &object["status"];
    status["currentIdentifier"] == object["spec"]["package"]
        && status["conditions"].as_array().is_some_and(|all| {
            all.iter().all(|c| {
                c["status"] == "True" && c["observedGeneration"] == object["metadata"]["generation"]
            })
        })
}

fn upgraded(round: &cluster::Round) -> (i32, String, String) {
    round.condition("Upgraded").expect("an Upgraded condition")
}

const TRUE: i32 = 2;
const FALSE: i32 = 3;

/// A new family release and an S3 release that needs it: the family moves
/// first, and S3 only once the family is on its new release; nothing is
/// deleted, and the XR ends Upgraded.
#[tokio::test]
async fn a_new_family_release_moves_the_family_first_and_s3_once_it_is_on_it() {
    let (registry, mut cluster, clock) = on_v2_1(s3_range(), json!({})).await;
    registry.push(FAMILY_REPO, "v2.2.0", meta(PackageKind::Provider, &[]));
    push_s3(&registry, "v2.2.0", ">= v2.2.0");
    let mut reasons = Vec::new();
    for _ in 0..12 {
        let family_was_on_new =
            at(&cluster, FAMILY_RESOURCE).ends_with(":v2.2.0") && on(&cluster, FAMILY_RESOURCE);
        let s3_before = at(&cluster, S3_RESOURCE);
        clock.advance(std::time::Duration::from_secs(10));
        let round = cluster.reconcile().await;
        round.assert_no_fatal();
        assert!(
            round.deleted.is_empty(),
            "nothing is deleted: {:?}",
            round.deleted
        );
        if at(&cluster, S3_RESOURCE) != s3_before {
            assert!(
                family_was_on_new,
                "S3 moved before the family was on v2.2.0"
            );
        }
        reasons.push(upgraded(&round).1);
    }
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.2.0")
    );
    assert_eq!(at(&cluster, S3_RESOURCE), format!("{S3_PATH}:v2.2.0"));
    assert!(reasons.contains(&"Progressing".to_string()), "{reasons:?}");
    assert_eq!(
        reasons.last().map(String::as_str),
        Some("UpToDate"),
        "{reasons:?}"
    );
}

/// A release that never turns healthy is rolled back after the grace,
/// quarantined with one Warning, skipped by resolution; the next good
/// release goes through.
#[tokio::test]
async fn a_release_that_never_turns_healthy_is_rolled_back_and_the_next_goes_through() {
    let packages = json!([
        {"kind": "Provider", "repository": FAMILY_REPO, "version": ">= v2.1.0"},
        {"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.1.0"},
    ]);
    let (registry, mut cluster, clock) = on_v2_1(
        packages,
        json!({"upgrades": {"progressDeadline": "5m", "healthyGrace": "1m"}}),
    )
    .await;
    let s3_at = at(&cluster, S3_RESOURCE);
    registry.push(FAMILY_REPO, "v2.2.0", meta(PackageKind::Provider, &[]));
    cluster
        .broken_packages
        .insert(format!("{FAMILY_PATH}:v2.2.0"));
    let started = cluster.reconcile().await;
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.2.0")
    );
    assert_eq!(upgraded(&started).1, "Progressing");
    let mut warnings = Vec::new();
    let mut rolled_back = None;
    for i in 0..12 {
        clock.advance(std::time::Duration::from_secs(20));
        let round = cluster.reconcile().await;
        round.assert_no_fatal();
        assert!(round.deleted.is_empty());
        assert_eq!(at(&cluster, S3_RESOURCE), s3_at, "S3 is left alone");
        warnings.extend(round.results(Severity::Warning));
        if rolled_back.is_none() && at(&cluster, FAMILY_RESOURCE).ends_with(":v2.1.0") {
            rolled_back = Some(i);
            assert_eq!(upgraded(&round).0, FALSE);
            assert_eq!(upgraded(&round).1, "RolledBack");
        }
    }
    assert!(rolled_back.is_some(), "never rolled back");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("healthyGrace"), "{warnings:?}");
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.1.0")
    );
    assert!(on(&cluster, FAMILY_RESOURCE), "back on v2.1.0 and healthy");
    let quarantined = cluster.xr["status"]["quarantined"].clone();
    assert_eq!(quarantined[0]["name"], FAMILY);
    assert_eq!(quarantined[0]["version"], "v2.2.0");
    let family_status = cluster.xr["status"]["packages"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == FAMILY).cloned())
        .expect("a status entry for the family");
    assert_eq!(
        family_status["version"], "v2.1.0",
        "resolution skips v2.2.0"
    );
    assert_eq!(family_status["rollout"]["phase"], "RolledBack");

    registry.push(FAMILY_REPO, "v2.3.0", meta(PackageKind::Provider, &[]));
    let rounds = cluster.settle(8).await;
    assert!(rounds.iter().all(|r| r.deleted.is_empty()));
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.3.0")
    );
    assert!(on(&cluster, FAMILY_RESOURCE));
    let last = rounds.last().expect("rounds");
    assert_eq!(
        upgraded(last),
        (
            TRUE,
            "UpToDate".to_string(),
            "every package is on its resolved version".to_string()
        )
    );
    assert_eq!(
        cluster.xr["status"]["quarantined"][0]["version"], "v2.2.0",
        "still skipped"
    );
}

/// Pause holds installed packages (and says so) until lifted; a window
/// holds them until it opens, and the TTL brings the function back then.
#[tokio::test]
async fn pause_and_windows_hold_rollouts() {
    let (registry, mut cluster, clock) = on_v2_1(s3_range(), json!({})).await;
    registry.push(FAMILY_REPO, "v2.2.0", meta(PackageKind::Provider, &[]));
    cluster.xr["spec"]["upgrades"] = json!({"paused": true});
    for _ in 0..3 {
        let round = cluster.reconcile().await;
        round.assert_no_fatal();
        assert_eq!(upgraded(&round).1, "Paused");
        assert!(round.xr_ready(), "what is installed is still ready");
    }
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.1.0")
    );
    cluster.xr["spec"]["upgrades"] = json!({"paused": false});
    // The platform allows rollouts on Sundays from 02:00 UTC only.
    cluster.input["upgrades"] =
        json!({"windows": [{"days": ["Sun"], "start": "02:00", "duration": "2h"}]});
    cluster.input["ttl"] = json!("24h");
    let outside = cluster.reconcile().await;
    assert_eq!(upgraded(&outside).1, "OutsideWindow");
    let ttl = outside
        .response
        .meta
        .as_ref()
        .and_then(|m| m.ttl)
        .expect("a TTL");
    assert_eq!(ttl.seconds, 81_584, "called back when the window opens");
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.1.0")
    );
    clock.set(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_522_400)); // Sun 02:00
    let inside = cluster.reconcile().await;
    assert_eq!(upgraded(&inside).1, "Progressing");
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.2.0")
    );
    let rounds = cluster.settle(8).await;
    assert!(rounds.iter().all(|r| r.deleted.is_empty()));
    assert!(on(&cluster, FAMILY_RESOURCE));
}

/// A release the XR's constraint keeps a package from shows as
/// `available`; none shows once the package is on the highest release.
#[tokio::test]
async fn releases_outside_the_constraint_show_as_available() {
    let packages = json!([{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "~v2.1.0"}]);
    let (registry, mut cluster, _clock) = on_v2_1(packages, json!({})).await;
    push_s3(&registry, "v2.2.0", ">= v2.1.0");
    push_s3(&registry, "v2.3.0-rc.1", ">= v2.1.0");
    registry.push(FAMILY_REPO, "v2.2.0", meta(PackageKind::Provider, &[]));
    cluster.settle(6).await;
    let entry = |name: &str| {
        cluster.xr["status"]["packages"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no status entry for {name}"))
    };
    assert_eq!(entry("upbound-provider-aws-s3")["version"], "v2.1.0");
    assert_eq!(
        entry("upbound-provider-aws-s3")["available"],
        "v2.2.0",
        "not the prerelease"
    );
    assert_eq!(entry(FAMILY)["version"], "v2.2.0");
    assert!(
        entry(FAMILY).get("available").is_none(),
        "{}",
        entry(FAMILY)
    );
}

/// A release Crossplane never gets to (its package manager does not act on
/// the new `spec.package`) is rolled back at the progress deadline, not
/// before.
#[tokio::test]
async fn a_release_never_reached_is_rolled_back_at_the_deadline() {
    let packages = json!([{"kind": "Provider", "repository": FAMILY_REPO, "version": ">= v2.1.0"}]);
    let (registry, mut cluster, clock) =
        on_v2_1(packages, json!({"upgrades": {"progressDeadline": "5m"}})).await;
    registry.push(FAMILY_REPO, "v2.2.0", meta(PackageKind::Provider, &[]));
    // The status stays v2.1.0's: the new reference is never current, so
    // no health is ever reported for it and only the deadline can end it.
    cluster.stalled.insert(FAMILY.to_string());
    cluster.reconcile().await.assert_no_fatal();
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.2.0")
    );
    let mut waited = std::time::Duration::ZERO;
    while waited < std::time::Duration::from_secs(270) {
        clock.advance(std::time::Duration::from_secs(30));
        waited += std::time::Duration::from_secs(30);
        let round = cluster.reconcile().await;
        assert!(round.deleted.is_empty());
        assert_eq!(
            at(&cluster, FAMILY_RESOURCE),
            format!("{FAMILY_PATH}:v2.2.0"),
            "inside the deadline ({waited:?})"
        );
        let ttl = round
            .response
            .meta
            .as_ref()
            .and_then(|m| m.ttl)
            .expect("a TTL");
        assert!(
            ttl.seconds <= 300 - waited.as_secs() as i64 + 1,
            "{ttl:?} after {waited:?}"
        );
    }
    // 299 s: still inside; 300 s: the deadline.
    clock.advance(std::time::Duration::from_secs(29));
    cluster.reconcile().await;
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.2.0")
    );
    clock.advance(std::time::Duration::from_secs(1));
    let past = cluster.reconcile().await;
    assert_eq!(
        at(&cluster, FAMILY_RESOURCE),
        format!("{FAMILY_PATH}:v2.1.0")
    );
    let warnings = past.results(Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("within progressDeadline 5m0s")),
        "{warnings:?}"
    );
    assert_eq!(cluster.xr["status"]["quarantined"][0]["version"], "v2.2.0");
}

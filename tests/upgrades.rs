//! Upgrades through the reconcile simulator, which advances package
//! objects the way Crossplane v2.2's package manager does: a package is on
//! a version only once its status says the revision of that `spec.package`
//! is current, Installed and Healthy, and what needs it waits until then.

mod support;

use std::sync::Arc;

use cluster::{Cluster, allowing_test_iam};
use function_ecr_packages::function::Function;
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::{MemoryRegistry, blog_registry};
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

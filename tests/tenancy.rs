//! Many XRs in one cluster, through the reconcile simulator: package
//! objects, ImageConfigs and IAM objects are singletons, so an XR shares
//! what another XR (or a person) holds and never takes it over.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster::{Cluster, allowing_test_iam};
use function_ecr_packages::function::Function;
use function_ecr_packages::package::PackageKind;
use function_ecr_packages::proto::v1::Severity;
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::{MemoryRegistry, blog_registry, meta};
use serde_json::{Value as Json, json};

const S3: &str = "package-upbound-provider-aws-s3";
const FAMILY: &str = "package-upbound-provider-family-aws";
const IMAGE_CONFIG: &str = "image-config-xpkg-upbound-io";
use support::cluster;

/// The blog registry, plus a Configuration that needs provider-aws-s3
/// v2.2.0 or later.
fn registry() -> Arc<MemoryRegistry> {
    let registry = blog_registry();
    registry.push(
        "acme/platform-storage",
        "v1.0.0",
        meta(
            PackageKind::Configuration,
            &[(
                "xpkg.upbound.io/upbound/provider-aws-s3",
                PackageKind::Provider,
                ">=v2.2.0",
            )],
        ),
    );
    Arc::new(registry)
}

/// An XR named `name` (with `uid`) asking for `packages`, in a simulated
/// Crossplane that answers required resources.
fn tenant(registry: &Arc<MemoryRegistry>, name: &str, packages: Json, input: Json) -> Cluster {
    let xr = json!({
        "apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages",
        "metadata": {"name": name, "uid": format!("uid-{name}")},
        "spec": {
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": packages,
            "iam": {"oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/ABC"}
        }
    });
    let input = allowing_test_iam(input);
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
    let mut cluster = Cluster::new(function, xr, input);
    cluster.lock = Some(
        json!({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Lock",
                               "metadata": {"name": "lock"}, "packages": []}),
    );
    cluster
}

fn s3(version: &str) -> Json {
    json!([{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": version}])
}

/// What `owner` composed, as another XR sees it in the cluster: each object
/// controlled by `owner`.
fn controlled_by(owner: &Cluster) -> Vec<Json> {
    let name = owner.xr["metadata"]["name"].clone();
    let uid = owner.xr["metadata"]["uid"].clone();
    owner
        .observed
        .values()
        .map(|object| {
            let mut object = object.clone();
            object["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages",
                "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true
            }]);
            object
        })
        .collect()
}

fn status_entry<'a>(cluster: &'a Cluster, repository: &str) -> &'a Json {
    cluster.xr["status"]["packages"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["repository"] == repository))
        .unwrap_or_else(|| panic!("no status entry for {repository}: {}", cluster.xr["status"]))
}

fn condition(cluster: &Cluster, kind: &str) -> (String, String, String) {
    let c = cluster.xr["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or_default();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

fn kinds(objects: &BTreeMap<String, Json>, kind: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Two XRs need provider-aws-s3 (one lists it, one gets it as a
/// Configuration's dependency): the second composes no package object, the
/// family or the ImageConfig of its own, protects what it uses with
/// ClusterUsages, becomes Ready, and says whom it shares with.
#[tokio::test]
async fn a_package_another_xr_installed_is_shared_not_taken_over() {
    let registry = registry();
    let mut a = tenant(&registry, "team-a", s3(">=v2.0.0"), json!({}));
    a.settle(16).await;
    assert!(a.observed.contains_key(S3) && a.observed.contains_key(FAMILY));

    let storage = json!([{"kind": "Configuration", "repository": "acme/platform-storage", "version": "v1.0.0"}]);
    let mut b = tenant(&registry, "team-b", storage, json!({}));
    b.existing = controlled_by(&a);
    let rounds = b.settle(16).await;
    let last = rounds.last().expect("a round");
    last.assert_no_fatal();
    assert!(last.xr_ready(), "{:?}", last.results(Severity::Warning));
    for taken in [S3, FAMILY, IMAGE_CONFIG] {
        assert!(
            rounds.iter().all(|r| !r.desired().contains_key(taken)),
            "{taken} composed by the second XR"
        );
    }
    assert!(b.observed.contains_key("package-acme-platform-storage"));
    let usages = kinds(&b.observed, "ClusterUsage");
    assert_eq!(
        usages,
        [
            "usage-image-config-xpkg-upbound-io",
            "usage-package-upbound-provider-aws-s3",
            "usage-package-upbound-provider-family-aws",
        ]
    );
    let usage = &b.observed["usage-package-upbound-provider-aws-s3"];
    assert_eq!(
        usage["spec"]["of"]["resourceRef"]["name"],
        a.observed[S3]["metadata"]["name"]
    );
    assert_eq!(
        status_entry(&b, "upbound/provider-aws-s3")["sharedWith"],
        "XEcrPackages/team-a"
    );
    assert_eq!(status_entry(&b, "upbound/provider-aws-s3")["ready"], true);
    assert!(
        status_entry(&b, "acme/platform-storage")
            .get("sharedWith")
            .is_none()
    );
    assert_eq!(condition(&b, "Resolved").0, "True");

    // Steady: the owner observes everything and asks nothing (one call);
    // the sharer asks for what it shares (two).
    let calls = a.calls;
    a.reconcile().await;
    assert_eq!(a.calls - calls, 1);
    let calls = b.calls;
    let round = b.reconcile().await;
    assert!(round.created.is_empty() && round.deleted.is_empty());
    assert_eq!(b.calls - calls, 2);
}

/// Another XR installed another version: nothing is composed for it or
/// fought over, what needs it waits, and the XR says who holds it and both
/// versions, with one Warning.
#[tokio::test]
async fn an_incompatible_version_is_a_conflict_and_is_left_alone() {
    let registry = registry();
    let mut a = tenant(&registry, "team-a", s3("v2.1.0"), json!({}));
    a.settle(16).await;
    let storage = json!([{"kind": "Configuration", "repository": "acme/platform-storage", "version": "v1.0.0"}]);
    let mut b = tenant(&registry, "team-b", storage, json!({}));
    b.existing = controlled_by(&a);
    let rounds = b.settle(8).await;
    for round in &rounds {
        round.assert_no_fatal();
        let desired = round.desired();
        assert!(
            !desired.contains_key(S3),
            "the installed package is never composed"
        );
        assert!(
            !desired.contains_key("package-acme-platform-storage"),
            "its dependent waits"
        );
    }
    let (status, reason, message) = condition(&b, "Resolved");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Conflict"));
    for needle in [
        "Provider upbound-provider-aws-s3",
        "XEcrPackages/team-a",
        "provider-aws-s3:v2.1.0",
        "provider-aws-s3:v2.2.0",
    ] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
    let warnings: usize = rounds
        .iter()
        .map(|r| r.results(Severity::Warning).len())
        .sum();
    assert_eq!(warnings, 1, "one Warning, not one per reconcile");
    assert!(!rounds.last().expect("a round").xr_ready());
    assert!(
        kinds(&b.observed, "ClusterUsage")
            .iter()
            .all(|u| !u.contains("aws-s3"))
    );
}

/// An object nobody controls (installed by hand, such as this function's
/// own Function object) is never taken over unless the input adopts.
#[tokio::test]
async fn an_object_with_no_controller_is_adopted_only_when_the_input_says_so() {
    let registry = registry();
    let hand_installed = json!({
        "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
        "metadata": {"name": "upbound-provider-aws-s3", "uid": "by-hand"},
        "spec": {"package": "registry.example.org/someone/else:v9.9.9"},
        "status": {"currentIdentifier": "registry.example.org/someone/else:v9.9.9",
                   "conditions": [{"type": "Installed", "status": "True"}, {"type": "Healthy", "status": "True"}]}
    });
    let mut b = tenant(&registry, "team-b", s3("v2.2.0"), json!({}));
    b.existing = vec![hand_installed.clone()];
    let rounds = b.settle(8).await;
    assert!(rounds.iter().all(|r| !r.desired().contains_key(S3)));
    // Nothing waits for it here, and still the XR is not Ready.
    assert!(!rounds.last().expect("a round").xr_ready());
    let (status, reason, message) = condition(&b, "Resolved");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "Conflict"),
        "{message}"
    );
    assert!(
        message.contains("no controller") && message.contains("someone/else:v9.9.9"),
        "{message}"
    );

    let mut adopting = tenant(
        &registry,
        "team-b",
        s3("v2.2.0"),
        json!({"adoptExisting": true}),
    );
    adopting.existing = vec![hand_installed];
    adopting.settle(16).await;
    assert_eq!(
        adopting.observed[S3]["spec"]["package"],
        "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0"
    );
}

/// A package another XR protects with a Usage (Crossplane labels it in
/// use) stays with its owner after the owner drops it, until the label
/// goes; then it leaves as usual.
#[tokio::test]
async fn a_package_in_use_by_another_xr_stays_until_it_is_let_go() {
    let registry = registry();
    let mut a = tenant(&registry, "team-a", s3(">=v2.0.0"), json!({}));
    a.settle(16).await;
    for name in [S3, FAMILY] {
        a.observed.get_mut(name).expect("installed")["metadata"]["labels"] =
            json!({"crossplane.io/in-use": "true"});
    }
    a.xr["spec"]["packages"] = json!([{"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2"}]);
    for _ in 0..3 {
        let round = a.reconcile().await;
        round.assert_no_fatal();
        assert!(round.desired().contains_key(S3) && round.desired().contains_key(FAMILY));
        for name in [S3, FAMILY] {
            a.observed.get_mut(name).expect("kept")["metadata"]["labels"] =
                json!({"crossplane.io/in-use": "true"});
        }
    }
    for name in [S3, FAMILY] {
        a.observed.get_mut(name).expect("kept")["metadata"]["labels"] = json!({});
    }
    a.lock = Some(
        json!({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Lock",
                         "metadata": {"name": "lock"}, "packages": []}),
    );
    a.settle(8).await;
    assert!(!a.observed.contains_key(S3) && !a.observed.contains_key(FAMILY));
}

//! The composition engine end to end, against an in-memory registry and a
//! simulated cluster: waves, exact objects, idempotence, no-drop under
//! failures, removal order, CRD validity.

mod support;

use std::sync::Arc;

use cluster::{Cluster, Schemas, allowing_test_iam, image_config};
use function_ecr_packages::function::Function;
use function_ecr_packages::package::PackageKind;
use function_ecr_packages::proto::v1::Severity;
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::{MemoryRegistry, blog_registry, meta};
use prost::Message;
use serde_json::{Value as Json, json};

const FAMILY: &str = "xpkg.upbound.io/upbound/provider-family-aws";
const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
use support::cluster;

/// The blog case's packages, with the family in three tags.
fn registry() -> Arc<MemoryRegistry> {
    Arc::new(blog_registry())
}

fn xr(extra: Json) -> Json {
    let mut spec = json!({
        "registry": {"accountId": "123456789012", "region": "eu-west-2"},
        "packages": [
            {"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": ">=v2.0.0"},
            {"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2"}
        ],
        "iam": {"oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/ABC", "nodeRoleNames": ["eks-nodes"]}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages", "metadata": {"name": "blog"}, "spec": spec})
}

fn cluster(registry: &Arc<MemoryRegistry>, xr: Json, input: Json) -> Cluster {
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
    Cluster::new(function, xr, allowing_test_iam(input))
}

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn rewrite_installs_in_waves_and_turns_ready() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    let rounds = cluster.settle(16).await;
    let created: Vec<Vec<&str>> = rounds
        .iter()
        .map(|r| names(&r.created))
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        created,
        vec![
            vec!["activation-policy", "image-config-xpkg-upbound-io"],
            vec![
                "iam-attachment",
                "iam-attachment-node-eks-nodes",
                "iam-policy",
                "iam-role",
            ],
            vec![
                "package-crossplane-contrib-function-patch-and-transform",
                "package-upbound-provider-family-aws"
            ],
            vec!["package-upbound-provider-aws-s3"],
        ],
        "waves: the activation policy and mirror, then IAM (once its definitions are active), then roots, then dependents"
    );
    let last = rounds.last().expect("rounds");
    let ttl = |r: &cluster::Round| {
        r.response
            .meta
            .as_ref()
            .and_then(|m| m.ttl)
            .map(|t| t.seconds)
    };
    assert_eq!(
        ttl(&rounds[0]),
        Some(15),
        "called again soon while waves are pending"
    );
    assert_eq!(ttl(last), Some(60), "the input's TTL once settled");
    assert!(
        last.xr_ready(),
        "the XR turns ready once everything is installed and healthy"
    );
    assert!(
        rounds[..rounds.len() - 1].iter().all(|r| !r.xr_ready()),
        "and not before"
    );
    for round in &rounds {
        round.assert_no_fatal();
        assert!(round.deleted.is_empty());
    }

    let desired = last.desired();
    assert_eq!(
        desired["package-upbound-provider-family-aws"],
        json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
               "metadata": {"name": "upbound-provider-family-aws"},
               "spec": {"package": "xpkg.upbound.io/upbound/provider-family-aws:v2.2.0", "revisionHistoryLimit": 1}})
    );
    assert_eq!(
        desired["package-upbound-provider-aws-s3"]["spec"],
        json!({"package": "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0", "revisionHistoryLimit": 1})
    );
    assert_eq!(
        desired["package-crossplane-contrib-function-patch-and-transform"]["kind"],
        json!("Function")
    );
    assert_eq!(
        desired["image-config-xpkg-upbound-io"],
        image_config(
            "ecr-mirror-xpkg-upbound-io",
            "xpkg.upbound.io/",
            &format!("{HOST}/")
        )
    );

    let status = &cluster.xr["status"];
    let packages: Vec<(&str, &str, bool)> = status["packages"]
        .as_array()
        .expect("status.packages")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default(),
                p["ready"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        packages,
        vec![
            (
                "crossplane-contrib-function-patch-and-transform",
                "v0.8.2",
                true
            ),
            ("upbound-provider-family-aws", "v2.2.0", true),
            ("upbound-provider-aws-s3", "v2.2.0", true),
        ]
    );
    assert_eq!(
        status["packages"][2]["dependsOn"],
        json!(["upbound-provider-family-aws"])
    );
    assert_eq!(
        status["packages"][2]["package"],
        json!("xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0")
    );
    assert!(
        status["packages"][2]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(
        last.condition("Resolved").map(|c| c.1),
        Some("Resolved".to_string())
    );
    assert_eq!(
        last.condition("PackagesHealthy").map(|c| (c.0, c.1)),
        Some((2, "Healthy".to_string()))
    );
}

#[tokio::test]
async fn an_unchanged_xr_gets_a_byte_identical_answer_and_no_events() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    cluster.settle(16).await;
    let first = cluster.function.compose(cluster.request()).await;
    let calls = registry.calls();
    let second = cluster.function.compose(cluster.request()).await;
    assert!(
        first.encode_to_vec() == second.encode_to_vec(),
        "same input, different bytes:\n{first:?}\n{second:?}"
    );
    assert!(
        second.results.is_empty(),
        "no event on an unchanged reconcile: {:?}",
        second.results
    );
    assert_eq!(
        registry.calls(),
        calls,
        "a warm cache answers an unchanged XR without registry calls"
    );
}

#[tokio::test]
async fn events_only_when_something_changes() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    let rounds = cluster.settle(16).await;
    let normal: Vec<usize> = rounds
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.results(Severity::Normal).is_empty())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(normal, vec![0], "one Resolved event, on the first round");
}

#[tokio::test]
async fn packages_wait_for_unhealthy_dependencies() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    cluster
        .broken
        .insert("upbound-provider-family-aws".to_string());
    let rounds = cluster.settle(14).await;
    let last = rounds.last().expect("rounds");
    assert!(
        !cluster
            .observed
            .contains_key("package-upbound-provider-aws-s3"),
        "s3 waits for a healthy family"
    );
    assert!(!last.xr_ready());
    let (status, reason, message) = last.condition("PackagesHealthy").expect("condition");
    assert_eq!((status, reason.as_str()), (3, "Unhealthy"));
    assert!(message.contains("upbound-provider-family-aws (Installed=True (ActivePackageRevision), Healthy=False (UnhealthyPackageRevision))"), "{message}");
    assert!(
        message
            .contains("upbound-provider-aws-s3 (waiting for package-upbound-provider-family-aws)"),
        "{message}"
    );
}

#[tokio::test]
async fn skip_points_at_ecr_and_composes_every_dependency() {
    let registry = registry();
    let mut cluster = cluster(
        &registry,
        xr(json!({"strategy": "Skip"})),
        json!({"pinDigests": true}),
    );
    let rounds = cluster.settle(16).await;
    let last = rounds.last().expect("rounds");
    assert!(last.xr_ready());
    let desired = last.desired();
    assert!(
        !desired.keys().any(|k| k.starts_with("image-config-")),
        "Skip needs no ImageConfig"
    );
    let family = &desired["package-upbound-provider-family-aws"]["spec"];
    let digest = cluster.xr["status"]["packages"][1]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    assert_eq!(
        family["package"],
        json!(format!("{HOST}/upbound/provider-family-aws@{digest}"))
    );
    assert_eq!(family["skipDependencyResolution"], json!(true));
}

#[tokio::test]
async fn nothing_is_dropped_while_the_registry_is_down() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({"tagCacheTTL": "0s"}));
    cluster.settle(16).await;
    let before = cluster.observed.clone();

    registry.set_down(true);
    let down = cluster.reconcile().await;
    assert_eq!(
        down.desired().keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "nothing dropped"
    );
    assert!(down.deleted.is_empty());
    assert_eq!(down.results(Severity::Warning).len(), 1, "one warning");
    assert!(down.results(Severity::Fatal).is_empty());
    let (status, reason, message) = down.condition("Resolved").expect("Resolved");
    assert_eq!((status, reason.as_str()), (3, "RegistryUnavailable"));
    assert!(
        message.contains("keeping the last resolved set of 3 packages"),
        "{message}"
    );
    assert_eq!(
        down.desired()["package-upbound-provider-aws-s3"]["spec"]["package"],
        json!("xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0"),
        "recomposed from status.packages"
    );

    let still_down = cluster.reconcile().await;
    assert!(
        still_down.results(Severity::Warning).is_empty(),
        "the same warning is not repeated"
    );
    assert_eq!(still_down.desired().len(), before.len());

    registry.set_down(false);
    let back = cluster.reconcile().await;
    assert_eq!(back.condition("Resolved").map(|c| c.0), Some(2));
    assert_eq!(back.desired().len(), before.len());
}

#[tokio::test]
async fn nothing_is_dropped_when_the_first_resolve_fails() {
    let registry = registry();
    registry.set_down(true);
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    cluster.observed.insert(
        "package-upbound-provider-family-aws".to_string(),
        json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "upbound-provider-family-aws", "uid": "1"}, "spec": {"package": "xpkg.upbound.io/upbound/provider-family-aws:v2.1.0"}}),
    );
    let round = cluster.reconcile().await;
    assert_eq!(
        round.desired()["package-upbound-provider-family-aws"],
        json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "upbound-provider-family-aws"}, "spec": {"package": "xpkg.upbound.io/upbound/provider-family-aws:v2.1.0"}})
    );
    assert!(!round.xr_ready());
}

#[tokio::test]
async fn removed_packages_leave_dependents_first() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    cluster.settle(16).await;
    cluster.xr["spec"]["packages"] = json!([{"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2"}]);
    let first = cluster.reconcile().await;
    assert_eq!(
        names(&first.deleted),
        ["package-upbound-provider-aws-s3"],
        "the dependent goes first"
    );
    let second = cluster.reconcile().await;
    assert_eq!(
        names(&second.deleted),
        ["package-upbound-provider-family-aws"],
        "then what it depended on"
    );
    let third = cluster.reconcile().await;
    assert!(third.deleted.is_empty());
    assert!(
        cluster
            .observed
            .contains_key("package-crossplane-contrib-function-patch-and-transform")
    );
}

/// Crossplane's package Lock with these packages, `(source, dependencies)`.
fn lock(packages: &[(&str, &[&str])]) -> Json {
    let packages: Vec<Json> = packages
        .iter()
        .map(|(source, deps)| {
            json!({"name": source.rsplit('/').next(), "type": "Provider", "source": source, "version": "v2.1.0",
                   "dependencies": deps.iter().map(|d| json!({"package": d, "constraints": ">=v2.0.0", "type": "Provider"})).collect::<Vec<_>>()})
        })
        .collect();
    json!({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Lock", "metadata": {"name": "lock"}, "packages": packages})
}

/// Crossplane's resolver reinstalls any dependency that a package in its
/// Lock declares, and a deleted package lingers: its revision leaves the
/// Lock some time after the package object is deleted, and while the object
/// exists (deleting) a revision can be recreated and add itself back. So a
/// dependency stays while its dependent's object exists or the Lock lists
/// a dependent, and both are asked for only while something is leaving.
#[tokio::test]
async fn a_dependency_stays_while_its_dependent_lingers_or_the_lock_needs_it() {
    const S3: &str = "xpkg.upbound.io/upbound/provider-aws-s3";
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    cluster.lock = Some(lock(&[(S3, &[FAMILY]), (FAMILY, &[])]));
    assert!(cluster.settle(16).await.last().expect("rounds").xr_ready());
    // While objects are still to be created, each is asked about first (see
    // `ownership`); once everything is observed, one call per reconcile.
    let calls = cluster.calls;
    cluster.reconcile().await;
    assert_eq!(
        cluster.calls - calls,
        1,
        "nothing leaving or to create: one call per reconcile"
    );

    cluster.xr["spec"]["packages"] = json!([{"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2"}]);
    let s3 = cluster.observed["package-upbound-provider-aws-s3"].clone();
    let calls = cluster.calls;
    let first = cluster.reconcile().await;
    assert_eq!(
        deleted_packages(&first),
        ["package-upbound-provider-aws-s3"]
    );
    assert_eq!(
        cluster.calls - calls,
        2,
        "asked, then called with the answers"
    );

    // s3's object is deleting, its revision momentarily out of the Lock.
    cluster.lingering.push(s3);
    cluster.lock = Some(lock(&[(FAMILY, &[])]));
    for round in 0..2 {
        let kept = cluster.reconcile().await;
        kept.assert_no_fatal();
        assert!(
            kept.deleted.is_empty(),
            "round {round}: s3's object still exists"
        );
        assert!(
            kept.response
                .meta
                .as_ref()
                .and_then(|m| m.ttl)
                .is_some_and(|t| t.seconds <= 15)
        );
    }
    // s3's object is gone, but its revision is still in the Lock.
    cluster.lingering.clear();
    cluster.lock = Some(lock(&[(S3, &[FAMILY]), (FAMILY, &[])]));
    for round in 0..2 {
        let kept = cluster.reconcile().await;
        kept.assert_no_fatal();
        assert!(
            kept.deleted.is_empty(),
            "round {round}: the Lock still lists s3"
        );
    }
    // Both gone: the family may go.
    cluster.lock = Some(lock(&[(FAMILY, &[])]));
    let last = cluster.reconcile().await;
    assert_eq!(
        deleted_packages(&last),
        ["package-upbound-provider-family-aws"]
    );
    // Asked once more whether the family's object is gone; then nothing.
    let gone = cluster.reconcile().await;
    assert!(gone.deleted.is_empty() && gone.response.requirements.is_some());
    let calls = cluster.calls;
    let settled = cluster.reconcile().await;
    assert!(settled.deleted.is_empty() && settled.response.requirements.is_none());
    assert_eq!(cluster.calls - calls, 1, "nothing leaving: nothing asked");
}

#[tokio::test]
async fn fatal_errors_name_the_problem_and_apply_nothing() {
    let registry = registry();
    registry.push(
        "acme/provider-a",
        "v1.0.0",
        meta(
            PackageKind::Provider,
            &[(FAMILY, PackageKind::Provider, "<v2.2.0")],
        ),
    );
    registry.push(
        "acme/provider-c",
        "v1.0.0",
        meta(
            PackageKind::Provider,
            &[(FAMILY, PackageKind::Provider, ">=v2.2.0")],
        ),
    );
    let cases = [
        (
            xr(
                json!({"packages": [{"kind": "Provider", "repository": "acme/provider-a", "version": "v1.0.0"}, {"kind": "Provider", "repository": "acme/provider-c", "version": "v1.0.0"}]}),
            ),
            json!({}),
            "no version of upbound/provider-family-aws satisfies",
        ),
        (
            xr(json!({})),
            json!({"allowedRepositories": ["upbound/*"]}),
            "crossplane-contrib/function-patch-and-transform (spec.packages[1]) is not in the input's allowedRepositories",
        ),
        (
            xr(json!({"registry": {"accountId": "12", "region": "eu-west-2"}})),
            json!({}),
            "invalid composite resource at spec.registry.accountId",
        ),
        (
            xr(json!({})),
            json!({"strategy": "Sideways"}),
            "invalid function input at strategy",
        ),
    ];
    for (xr, input, message) in cases {
        let mut cluster = cluster(&registry, xr, input);
        let round = cluster.reconcile().await;
        let fatal = round.results(Severity::Fatal);
        assert_eq!(fatal.len(), 1, "{message}: {fatal:?}");
        assert!(fatal[0].contains(message), "{}", fatal[0]);
        assert!(round.desired().is_empty());
    }
}

#[tokio::test]
async fn values_over_their_limit_are_refused_first_with_their_field_and_no_registry_call() {
    let registry = registry();
    let limit = function_ecr_packages::version::MAX_VERSION_LEN;
    let cases = [
        (
            json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3",
                                 "version": ">".repeat(limit + 1)}]}),
            "spec.packages[0].version: must be at most 256 characters, got 257",
        ),
        (
            json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3",
                                 "version": "v".repeat(1 << 20)}]}),
            "spec.packages[0].version: must be at most 256 characters, got 1048576",
        ),
        (
            json!({"packages": [{"kind": "Provider", "repository": "a/".repeat(200),
                                 "version": "v1"}]}),
            "spec.packages[0].repository: must be at most 256 characters",
        ),
    ];
    for (spec, message) in cases {
        let before = registry.calls();
        let mut cluster = cluster(&registry, xr(spec), json!({}));
        let started = std::time::Instant::now();
        let round = cluster.reconcile().await;
        // Printed, not asserted: this machine is shared and noisy.
        eprintln!("{message}: answered in {:?}", started.elapsed());
        let fatal = round.results(Severity::Fatal);
        assert_eq!(fatal.len(), 1, "{fatal:?}");
        assert!(fatal[0].contains(message), "{}", fatal[0]);
        assert!(
            fatal[0].len() < 200,
            "the value is not echoed: {}",
            fatal[0]
        );
        assert!(round.desired().is_empty());
        assert_eq!(registry.calls(), before, "refused before any registry call");
    }
}

/// `registryHost` replaces the ECR host wherever Crossplane pulls from: the
/// ImageConfig's rewrite (Rewrite) and `spec.package` (Skip), with the XR's
/// account and region filled in; the IAM policy still names ECR.
#[tokio::test]
async fn registry_host_is_where_crossplane_pulls_from() {
    let input = json!({"registryHost": "{accountId}.dkr-ecr.{region}.on.aws:8443"});
    let dual_stack = "123456789012.dkr-ecr.eu-west-2.on.aws:8443";

    let registry = registry();
    let mut rewrite = cluster(&registry, xr(json!({})), input.clone());
    let rounds = rewrite.settle(16).await;
    let last = rounds.last().expect("rounds");
    assert!(last.xr_ready());
    let desired = last.desired();
    assert_eq!(
        desired["image-config-xpkg-upbound-io"]["spec"]["rewriteImage"]["prefix"],
        json!(format!("{dual_stack}/"))
    );
    let policy = serde_json::to_string(&desired).expect("json");
    assert!(policy.contains("arn:aws:ecr:eu-west-2:123456789012:repository/"));

    let mut skip = cluster(&registry, xr(json!({"strategy": "Skip"})), input);
    let rounds = skip.settle(16).await;
    let last = rounds.last().expect("rounds");
    assert!(last.xr_ready());
    let family = &last.desired()["package-upbound-provider-family-aws"]["spec"]["package"];
    assert!(
        family
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{dual_stack}/upbound/provider-family-aws"))),
        "{family}"
    );
    // The status it wrote reads back: the next call keeps every package.
    let again = skip.settle(2).await;
    for round in &again {
        assert!(round.deleted.is_empty(), "deleted {:?}", round.deleted);
    }
}

#[tokio::test]
async fn every_composed_object_matches_its_crd() {
    let schemas = Schemas::load();
    let variants = [
        (json!({}), json!({})),
        (json!({"strategy": "Skip"}), json!({"pinDigests": true})),
        (
            json!({"iam": {"identity": "PodIdentity"}}),
            json!({"iam": {"managedResources": "Namespaced", "namespace": "infra"}}),
        ),
        (
            json!({"registry": {"accountId": "123456789012", "region": "cn-north-1"}}),
            json!({}),
        ),
        (
            json!({"registry": {"accountId": "123456789012", "region": "us-gov-west-1"}}),
            json!({"iam": {"managedResources": "Namespaced"}}),
        ),
        (
            json!({}),
            json!({"packagePullPolicy": "Always", "revisionHistoryLimit": 3,
                   "commonLabels": {"platform.example.org/team": "core", "tier": "control-plane"},
                   "ignoreCrossplaneConstraints": true}),
        ),
        // Crossplane's own verification: Secrets and verification
        // ImageConfigs (for repositories the blog's packages are not in, so
        // the function's own gate passes them unsigned).
        (json!({}), verifying(json!({"composeImageConfig": true}))),
        (
            json!({"strategy": "Skip"}),
            verifying(json!({"composeImageConfig": true, "crossplaneNamespace": "xp"})),
        ),
    ];
    for (extra, input) in variants {
        let asked = input.pointer("/verify/composeImageConfig") == Some(&json!(true));
        let registry = registry();
        let mut cluster = cluster(&registry, xr(extra.clone()), input);
        let rounds = cluster.settle(16).await;
        let desired = rounds.last().expect("rounds").desired();
        assert!(desired.len() >= 7, "{extra}: {:?}", desired.keys());
        for object in desired.values() {
            if object["apiVersion"] == "v1" && object["kind"] == "Secret" {
                check_secret(object);
                continue;
            }
            schemas.validate(object);
        }
        check_verification(asked, &desired);
    }
}

/// An input `verify` with one authority over repositories none of the
/// blog's packages is in, and `extra` beside its authorities.
fn verifying(extra: Json) -> Json {
    let pem = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEa8XqzR9kNP5u1E0ieFZuMk78XLfj
uA7koJ/BZDJtngBXNRqb1YprQD++KXaZxKIBTPO0svGlDwsp5nA556oZxA==
-----END PUBLIC KEY-----
";
    let mut verify = json!({"authorities": [{"name": "platform", "repositories": ["signed/*", "signed-one"], "key": {"publicKey": pem}}]});
    if let (Some(v), Some(e)) = (verify.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    json!({"verify": verify})
}

/// The verification objects are composed, and needed by every package,
/// when and only when the input asked for them: one Secret, and
/// ImageConfigs for `signed/`, `signed-one:` and `signed-one@`.
fn check_verification(asked: bool, desired: &std::collections::BTreeMap<String, Json>) {
    let ours: Vec<&String> = desired
        .keys()
        .filter(|k| k.starts_with("verify-"))
        .collect();
    if !asked {
        assert!(ours.is_empty(), "{ours:?}");
        return;
    }
    let kinds: Vec<&str> = ours
        .iter()
        .filter_map(|k| desired[*k]["kind"].as_str())
        .collect();
    assert_eq!(kinds.len(), 4, "{ours:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "ImageConfig").count(), 3);
    let prefixes: Vec<&str> = ours
        .iter()
        .filter_map(|k| desired[*k].pointer("/spec/matchImages/0/prefix"))
        .filter_map(Json::as_str)
        .collect();
    for prefix in ["signed/", "signed-one:", "signed-one@"] {
        assert!(
            prefixes.contains(&format!("{HOST}/{prefix}").as_str()),
            "{prefixes:?}"
        );
    }
}

/// A composed `v1` Secret, which no CRD describes: a DNS-label name in a
/// namespace, `Opaque`, its one key's value base64.
fn check_secret(object: &Json) {
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let name = object
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Json::as_str)
        .unwrap_or_default();
    assert!(label(name) && label(namespace), "{object}");
    assert_eq!(object["type"], "Opaque");
    let pem = object
        .pointer("/data/cosign.pub")
        .and_then(Json::as_str)
        .unwrap_or_default();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(pem)
        .expect("base64");
    assert!(
        String::from_utf8(decoded)
            .expect("utf-8")
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
}

/// The names of the packages a round deleted.
fn deleted_packages(round: &cluster::Round) -> Vec<&str> {
    names(&round.deleted)
        .into_iter()
        .filter(|n| n.starts_with("package-"))
        .collect()
}

#[tokio::test]
async fn implied_dependencies_leave_one_reconcile_after_what_needed_them() {
    // Configuration -> provider-aws-s3 -> family; only the Configuration is
    // listed. Crossplane persists the XR's status between reconciles, as
    // the simulator does, so the edges must survive in status.packages.
    let registry = registry();
    registry.push(
        "acme/configuration-storage",
        "v1.0.0",
        meta(
            PackageKind::Configuration,
            &[(
                "xpkg.upbound.io/upbound/provider-aws-s3",
                PackageKind::Provider,
                ">=v2.0.0",
            )],
        ),
    );
    let function = json!({"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2"});
    let mut cluster = cluster(
        &registry,
        xr(json!({"packages": [
            {"kind": "Configuration", "repository": "acme/configuration-storage", "version": "v1.0.0"},
            function.clone()
        ]})),
        json!({}),
    );
    assert!(cluster.settle(16).await.last().expect("rounds").xr_ready());
    for resource in [
        "package-acme-configuration-storage",
        "package-upbound-provider-aws-s3",
        "package-upbound-provider-family-aws",
    ] {
        assert!(cluster.observed.contains_key(resource), "{resource}");
    }

    cluster.xr["spec"]["packages"] = json!([function]);
    let expected = [
        vec!["package-acme-configuration-storage"],
        vec!["package-upbound-provider-aws-s3"],
        vec!["package-upbound-provider-family-aws"],
        vec![],
    ];
    for (i, expected) in expected.iter().enumerate() {
        let round = cluster.reconcile().await;
        round.assert_no_fatal();
        assert_eq!(&deleted_packages(&round), expected, "removal round {i}");
        let leaving: Vec<&str> = cluster.xr["status"]["packages"]
            .as_array()
            .expect("status.packages")
            .iter()
            .filter(|p| p["leaving"] == json!(true))
            .filter_map(|p| p["name"].as_str())
            .collect();
        // The resolved set changed only in the first round: one event.
        assert_eq!(
            round.results(Severity::Normal).len(),
            usize::from(i == 0),
            "round {i}: {:?}",
            round.results(Severity::Normal)
        );
        // What this round deleted is remembered once more, then forgotten.
        assert_eq!(
            leaving.len(),
            expected.len() + (2 - i.min(2)),
            "round {i}: {leaving:?}"
        );
    }
    assert!(
        cluster
            .observed
            .contains_key("package-crossplane-contrib-function-patch-and-transform")
    );
}

#[tokio::test]
async fn a_dependency_dropped_by_a_new_release_leaves_once_that_release_is_healthy() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({"tagCacheTTL": "1ms"}));
    cluster.settle(16).await;
    assert!(
        cluster
            .observed
            .contains_key("package-upbound-provider-family-aws")
    );
    // v2.3.0 of the S3 provider no longer needs the family; while it rolls
    // out (unhealthy here), the family must stay.
    registry.push(
        "upbound/provider-aws-s3",
        "v2.3.0",
        meta(PackageKind::Provider, &[]),
    );
    cluster.broken.insert("upbound-provider-aws-s3".to_string());
    for i in 0..3 {
        let round = cluster.reconcile().await;
        round.assert_no_fatal();
        assert_eq!(
            round.desired()["package-upbound-provider-aws-s3"]["spec"]["package"],
            "xpkg.upbound.io/upbound/provider-aws-s3:v2.3.0"
        );
        assert!(
            round
                .desired()
                .contains_key("package-upbound-provider-family-aws"),
            "round {i}: the family stays while v2.3.0 is unhealthy"
        );
    }
    cluster.broken.clear();
    // The round that sees v2.3.0 healthy lets the family go.
    let mut deleted = Vec::new();
    for _ in 0..3 {
        let round = cluster.reconcile().await;
        round.assert_no_fatal();
        deleted.extend(deleted_packages(&round).into_iter().map(str::to_string));
    }
    assert_eq!(deleted, ["package-upbound-provider-family-aws"]);
}

#[tokio::test]
async fn an_installed_dependency_that_stops_resolving_is_kept_with_a_warning() {
    for (how, empty) in [("emptied", true), ("deleted", false)] {
        let registry = registry();
        let mut cluster = cluster(&registry, xr(json!({})), json!({"tagCacheTTL": "1ms"}));
        assert!(cluster.settle(16).await.last().expect("rounds").xr_ready());
        let family = cluster.observed["package-upbound-provider-family-aws"].clone();
        if empty {
            registry.empty("upbound/provider-family-aws");
        } else {
            registry.delete("upbound/provider-family-aws");
        }
        // The rest of the XR keeps reconciling: a new function release is
        // picked up in the same rounds.
        registry.push(
            "crossplane-contrib/function-patch-and-transform",
            "v0.9.0",
            meta(PackageKind::Function, &[]),
        );
        cluster.xr["spec"]["packages"][1]["version"] = json!(">=v0.8.0");
        let rounds: Vec<cluster::Round> = {
            let mut rounds = Vec::new();
            for _ in 0..3 {
                rounds.push(cluster.reconcile().await);
            }
            rounds
        };
        for round in &rounds {
            round.assert_no_fatal();
            assert!(round.deleted.is_empty(), "{how}: {:?}", round.deleted);
            assert_eq!(
                round.desired()["package-upbound-provider-family-aws"]["spec"],
                family["spec"],
                "{how}: the family stays at the installed version"
            );
            let (status, reason, message) = round.condition("Resolved").expect("Resolved");
            assert_eq!(
                (status, reason.as_str()),
                (3, "DependencyUnresolvable"),
                "{how}"
            );
            assert!(
                message
                    .contains("keeping installed dependency upbound-provider-family-aws at v2.2.0"),
                "{how}: {message}"
            );
        }
        let warnings = rounds[0].results(Severity::Warning);
        assert_eq!(warnings.len(), 1, "{how}: {warnings:?}");
        assert!(
            warnings[0].starts_with(
                "keeping installed dependency upbound-provider-family-aws at v2.2.0: "
            ),
            "{how}: {}",
            warnings[0]
        );
        let why = if empty {
            "has no tagged images"
        } else {
            "not found"
        };
        assert!(warnings[0].contains(why), "{how}: {}", warnings[0]);
        assert!(
            rounds[1..]
                .iter()
                .all(|r| r.results(Severity::Warning).is_empty()),
            "{how}: the warning is not repeated while nothing changes"
        );
        assert_eq!(
            cluster.observed["package-crossplane-contrib-function-patch-and-transform"]["spec"]["package"],
            "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform:v0.9.0",
            "{how}"
        );
        assert!(rounds.last().expect("rounds").xr_ready(), "{how}");

        // Once the dependent is gone, so is the kept dependency.
        cluster.xr["spec"]["packages"] = json!([cluster.xr["spec"]["packages"][1].clone()]);
        let mut deleted = Vec::new();
        for _ in 0..3 {
            let round = cluster.reconcile().await;
            round.assert_no_fatal();
            deleted.extend(deleted_packages(&round).into_iter().map(str::to_string));
        }
        assert_eq!(
            deleted,
            [
                "package-upbound-provider-aws-s3",
                "package-upbound-provider-family-aws"
            ],
            "{how}"
        );
    }
}

#[tokio::test]
async fn renaming_a_parent_never_recreates_its_dependency() {
    let registry = registry();
    let mut cluster = cluster(&registry, xr(json!({})), json!({}));
    cluster.settle(16).await;
    let family = cluster.observed["package-upbound-provider-family-aws"].clone();
    cluster.xr["spec"]["packages"][0]["name"] = json!("s3");
    let rounds = cluster.settle(8).await;
    let created: Vec<&str> = rounds.iter().flat_map(|r| names(&r.created)).collect();
    let deleted: Vec<&str> = rounds.iter().flat_map(|r| names(&r.deleted)).collect();
    assert_eq!(created, ["package-s3"]);
    assert_eq!(deleted, ["package-upbound-provider-aws-s3"]);
    assert_eq!(
        cluster.observed["package-upbound-provider-family-aws"]["spec"],
        family["spec"]
    );
}

/// Once nothing changes, a call is answered from the last answer for its
/// XR; any change in what the answer depends on, or the expiry of a tag
/// answer it used, composes afresh.
#[tokio::test]
async fn an_unchanged_xr_is_answered_from_memory_until_something_it_depends_on_changes() {
    let registry = registry();
    let input = json!({"tagCacheTTL": "300ms"});
    let mut cluster = cluster(&registry, xr(json!({})), input.clone());
    let rounds = cluster.settle(14).await;
    assert!(rounds.last().expect("a round").xr_ready());
    // One more round, so the XR's status is what the last answer wrote.
    cluster.reconcile().await;
    let counts = |cluster: &Cluster| cluster.function.memo_counts();

    // Unchanged: answered from memory, byte for byte, with no registry call.
    let calls = registry.calls();
    let hits = counts(&cluster).answered;
    let mut first = cluster.reconcile().await.response;
    let mut second = cluster.reconcile().await.response;
    assert_eq!(counts(&cluster).answered, hits + 2);
    assert_eq!(registry.calls(), calls);
    // Each under its own call's tag; otherwise the same answer.
    let tag = |r: &mut function_ecr_packages::proto::v1::RunFunctionResponse| {
        std::mem::take(&mut r.meta.as_mut().expect("meta").tag)
    };
    assert_ne!(tag(&mut first), tag(&mut second));
    assert_eq!(first, second);

    // Each change composes afresh.
    type Change = Box<dyn Fn(&mut Cluster)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "the input",
            Box::new(|c: &mut Cluster| c.input["ttl"] = json!("45s")),
        ),
        (
            "the XR's spec",
            Box::new(|c: &mut Cluster| c.xr["spec"]["packages"][0]["version"] = json!(">=v2.1.0")),
        ),
        (
            "an observed resource's readiness",
            Box::new(|c: &mut Cluster| {
                let (_, object) = c
                    .observed
                    .iter_mut()
                    .find(|(name, _)| name.starts_with("package-"))
                    .expect("a package");
                object["status"]["conditions"] = json!([{"type": "Healthy", "status": "False", "reason": "UnhealthyPackageRevision"}]);
            }),
        ),
    ];
    for (what, change) in changes {
        let misses = counts(&cluster).composed;
        change(&mut cluster);
        cluster.reconcile().await;
        assert_eq!(counts(&cluster).composed, misses + 1, "{what} changed");
    }

    // A new release is seen once the tag answers it used expire.
    cluster.settle(14).await;
    cluster.reconcile().await;
    registry.push(
        "upbound/provider-aws-s3",
        "v2.9.0",
        meta(
            PackageKind::Provider,
            &[(FAMILY, PackageKind::Provider, ">= 0.0.0")],
        ),
    );
    let version = |round: &cluster::Round| {
        round.desired()["package-upbound-provider-aws-s3"]["spec"]["package"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let before = cluster.reconcile().await;
    assert!(
        !version(&before).ends_with("v2.9.0"),
        "{}",
        version(&before)
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let misses = counts(&cluster).composed;
    let after = cluster.reconcile().await;
    assert_eq!(
        counts(&cluster).composed,
        misses + 1,
        "the tag answers expired"
    );
    assert!(version(&after).ends_with("v2.9.0"), "{}", version(&after));
}

/// The input's package fields are composed on every package object, and
/// only when set.
#[tokio::test]
async fn package_fields_from_the_input_are_composed_on_every_package() {
    let input = json!({"packagePullPolicy": "Always",
                       "commonLabels": {"platform.example.org/team": "core"},
                       "ignoreCrossplaneConstraints": true});
    for (input, set) in [(input, true), (json!({}), false)] {
        let registry = registry();
        let mut cluster = cluster(&registry, xr(json!({})), input);
        let rounds = cluster.settle(16).await;
        let desired = rounds.last().expect("rounds").desired();
        let packages: Vec<&Json> = desired
            .iter()
            .filter(|(name, _)| name.starts_with("package-"))
            .map(|(_, object)| object)
            .collect();
        assert!(packages.len() >= 3, "{:?}", desired.keys());
        for object in packages {
            let spec = &object["spec"];
            if set {
                assert_eq!(spec["packagePullPolicy"], "Always", "{object}");
                assert_eq!(
                    spec["commonLabels"],
                    json!({"platform.example.org/team": "core"})
                );
                assert_eq!(spec["ignoreCrossplaneConstraints"], true);
            } else {
                for field in [
                    "packagePullPolicy",
                    "commonLabels",
                    "ignoreCrossplaneConstraints",
                ] {
                    assert!(spec.get(field).is_none(), "{field} in {object}");
                }
            }
        }
    }
}

/// A registry where `^v0.2.3` on the family reads differently across
/// Crossplane v2: Masterminds/semver v1.5.0 (Crossplane v2.0 to v2.2)
/// admits v0.3.0, v3 does not. S3 declares the family that way.
fn dialect_registry() -> Arc<MemoryRegistry> {
    let registry = MemoryRegistry::new();
    for tag in ["v0.2.5", "v0.3.0"] {
        registry.push(
            "upbound/provider-family-aws",
            tag,
            meta(PackageKind::Provider, &[]),
        );
    }
    registry.push(
        "upbound/provider-aws-s3",
        "v2.2.0",
        meta(
            PackageKind::Provider,
            &[(FAMILY, PackageKind::Provider, "^v0.2.3")],
        ),
    );
    Arc::new(registry)
}

fn family_version(cluster: &Cluster) -> String {
    cluster.xr["status"]["packages"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|p| p["repository"] == "upbound/provider-family-aws")
        })
        .and_then(|p| p["version"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A dependency's constraint is read as the Crossplane the input names
/// reads it; with none named, only a version every Crossplane v2 accepts is
/// taken, and one Warning says how the readings differ.
#[tokio::test]
async fn constraints_are_read_as_the_crossplane_that_runs_reads_them() {
    let s3_only = json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}]});
    for (crossplane, expected, warns) in [
        (Some("v2.2"), "v0.3.0", false),
        (Some("v2.3"), "v0.2.5", false),
        (Some("v2.4"), "v0.2.5", false),
        (None, "v0.2.5", true),
    ] {
        let input = match crossplane {
            Some(version) => json!({"crossplaneVersion": version}),
            None => json!({}),
        };
        let mut cluster = cluster(&dialect_registry(), xr(s3_only.clone()), input);
        let rounds = cluster.settle(16).await;
        rounds[0].assert_no_fatal();
        assert_eq!(family_version(&cluster), expected, "{crossplane:?}");
        let warnings: Vec<String> = rounds
            .iter()
            .flat_map(|r| r.results(Severity::Warning))
            .filter(|w| w.contains("read differently across Crossplane v2"))
            .collect();
        assert_eq!(
            warnings.len(),
            usize::from(warns),
            "{crossplane:?}: {warnings:?}"
        );
        if warns {
            assert!(
                warnings[0].contains("v1.5.0 (Crossplane v2.0 to v2.2) takes v0.3.0"),
                "{}",
                warnings[0]
            );
            assert!(warnings[0].contains("took v0.2.5"), "{}", warnings[0]);
        }
    }
}

/// A constraint one Crossplane cannot even parse (a space-separated AND
/// list, which Masterminds/semver v1.5.0 refuses) is refused when that
/// Crossplane may be the one running, naming the dialect; read as v2.4
/// reads it, it resolves.
#[tokio::test]
async fn a_constraint_one_crossplane_cannot_parse_is_refused_unless_another_is_named() {
    let family = json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-family-aws", "version": ">=v0.2.0 <v0.3.0"}]});
    let mut unset = cluster(&dialect_registry(), xr(family.clone()), json!({}));
    let round = unset.reconcile().await;
    let fatal = round.results(Severity::Fatal);
    assert!(fatal.iter().any(|f| f.contains("v1.5.0")), "{fatal:?}");
    let mut v24 = cluster(
        &dialect_registry(),
        xr(family),
        json!({"crossplaneVersion": "v2.4"}),
    );
    v24.settle(16).await[0].assert_no_fatal();
    assert_eq!(family_version(&v24), "v0.2.5");
}

/// Safe-start: the XR's activation policy comes first; the IAM objects
/// only once Crossplane reports their definitions active; a package whose
/// `activate` entries match nothing active yet is installed but not
/// ready, and says what it waits for; with activation off, no policy and
/// IAM at once.
#[tokio::test]
async fn activation_gates_iam_and_packages_on_their_definitions() {
    let registry = registry();
    let packages = json!({"packages": [
        {"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": ">=v2.0.0",
         "activate": ["buckets.s3.aws.upbound.io"]},
    ]});
    let input = json!({"allowedActivations": ["*.s3.aws.upbound.io"]});
    let mut sim = cluster(&registry, xr(packages.clone()), input);

    let first = sim.reconcile().await;
    assert_eq!(
        names(&first.created),
        ["activation-policy", "image-config-xpkg-upbound-io"],
        "IAM waits for its definitions"
    );
    assert_eq!(
        sim.observed["activation-policy"]["spec"]["activate"],
        json!([
            "buckets.s3.aws.upbound.io",
            "policies.iam.aws.upbound.io",
            "rolepolicyattachments.iam.aws.upbound.io",
            "roles.iam.aws.upbound.io",
        ])
    );
    // Crossplane has not reported on the new policy yet: nothing new.
    let second = sim.reconcile().await;
    assert!(second.created.is_empty(), "{:?}", second.created);
    assert!(sim.observed["activation-policy"]["status"]["activated"].is_array());
    let third = sim.reconcile().await;
    assert!(
        third.created.iter().any(|n| n == "iam-role"),
        "IAM once its definitions are active: {:?}",
        third.created
    );

    // S3 installs no definition the entry matches: installed and healthy,
    // never ready.
    let rounds = sim.settle(16).await;
    let last = rounds.last().expect("rounds");
    assert!(!last.xr_ready());
    let s3 = &sim.observed["package-upbound-provider-aws-s3"];
    assert_eq!(s3["status"]["conditions"][1]["status"], "True", "{s3}");
    let (_, reason, message) = last.condition("PackagesHealthy").expect("PackagesHealthy");
    assert_eq!(reason, "Installing");
    assert!(
        message.contains(
            "upbound-provider-aws-s3 (waiting for definitions to be activated: buckets.s3.aws.upbound.io)"
        ),
        "{message}"
    );

    // Once its revision brings the definition, the policy activates it.
    sim.definitions.insert(
        "upbound-provider-aws-s3".to_string(),
        vec![
            "buckets.s3.aws.upbound.io".to_string(),
            "objects.s3.aws.upbound.io".to_string(),
        ],
    );
    let rounds = sim.settle(4).await;
    assert!(rounds.last().expect("rounds").xr_ready());
    assert_eq!(
        sim.observed["activation-policy"]["status"]["activated"],
        json!([
            "buckets.s3.aws.upbound.io",
            "policies.iam.aws.upbound.io",
            "rolepolicyattachments.iam.aws.upbound.io",
            "roles.iam.aws.upbound.io",
        ])
    );

    // Off: no policy, IAM in the first wave; an XR that asks is refused.
    let off = json!({"activation": {"enabled": false}});
    let mut plain = cluster(&registry, xr(json!({})), off.clone());
    let first = plain.reconcile().await;
    assert!(
        first.created.iter().any(|n| n == "iam-role"),
        "{:?}",
        first.created
    );
    assert!(!first.created.iter().any(|n| n == "activation-policy"));
    let mut asking = cluster(&registry, xr(packages), off);
    let refused = asking.reconcile().await;
    let fatal = refused.results(Severity::Fatal);
    assert_eq!(fatal.len(), 1, "{fatal:?}");
    assert!(
        fatal[0].contains("spec.packages[0].activate[0]")
            && fatal[0].contains("activation.enabled"),
        "{fatal:?}"
    );
}

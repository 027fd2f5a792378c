//! The trust model through the whole function: the Composition's input is
//! the platform's policy, the XR is a request, and the XR's status is a
//! hint. Refusals happen before any registry call; and whatever an XR and
//! its status say, everything composed stays inside the input's bounds.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/policy.rs"]
mod policy;

use std::sync::Arc;

use cluster::Cluster;
use function_ecr_packages::function::Function;
use function_ecr_packages::proto::v1::Severity;
use function_ecr_packages::registry::PackageKind;
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::{MemoryRegistry, blog_registry, meta};
use function_ecr_packages::sdk::request::decode;
use function_ecr_packages::sdk::structs::struct_to_json;
use function_ecr_packages::spec::Input;
use function_ecr_packages::spec::policy::glob_match;
use function_ecr_packages::spec::settings::default_role_name;
use function_ecr_packages::spec::xr::is_repository_name;
use policy::{ACCOUNT, listed_policy, refusals, xr};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// The blog case, plus a package outside every allowlist.
fn registry() -> Arc<MemoryRegistry> {
    let registry = blog_registry();
    registry.push(
        "evil/provider-x",
        "v1.0.0",
        meta(PackageKind::Provider, &[]),
    );
    Arc::new(registry)
}

/// An XR status that would be worth leaking into or acting on.
fn remembered_status() -> Json {
    json!({"packages": [{"name": "upbound-provider-aws-s3", "kind": "Provider", "repository": "upbound/provider-aws-s3",
        "version": "v2.2.0", "digest": format!("sha256:{}", "a".repeat(64)),
        "package": "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0", "dependsOn": [], "ready": true}]})
}

#[tokio::test]
async fn refusals_name_the_field_and_make_no_registry_call() {
    for (spec, policy, field, allowlist) in refusals() {
        let registry = registry();
        let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
        let mut composite = xr("team-a", spec.clone());
        composite["status"] = remembered_status();
        let mut cluster = Cluster::new(function, composite, policy);
        let round = cluster.reconcile().await;
        let fatal = round.results(Severity::Fatal);
        assert_eq!(fatal.len(), 1, "{field}: {:?}", round.response.results);
        assert!(
            fatal[0].starts_with(&format!("refused at {field}: ")),
            "{field}: {}",
            fatal[0]
        );
        assert!(
            fatal[0].ends_with(&format!("(see the Composition input's {allowlist})")),
            "{field}: {}",
            fatal[0]
        );
        assert_eq!(registry.calls(), 0, "{field}: no registry call");
        assert!(round.desired().is_empty(), "{field}: nothing composed");
        // Nothing about the request reaches the status beyond the message.
        let composite = round
            .response
            .desired
            .as_ref()
            .and_then(|d| d.composite.as_ref());
        assert!(composite.is_none(), "{field}: {composite:?}");
        assert!(round.response.conditions.is_empty(), "{field}");
        assert_eq!(round.response.results.len(), 1, "{field}");
    }
}

#[tokio::test]
async fn the_same_requests_within_the_policy_are_composed() {
    let mut spec = policy::base_spec();
    spec["packages"][0]["runtimeConfigName"] = json!("team-a-debug");
    spec["iam"] = json!({
        "roleName": "team-a-pull",
        "oidcProvider": "https://oidc.eks.eu-west-2.amazonaws.com/id/TEAMA1",
        "serviceAccounts": [{"namespace": "crossplane-system", "name": "provider-aws-s3"}],
        "nodeRoleNames": ["eks-nodes-a"]
    });
    let registry = registry();
    let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
    let mut cluster = Cluster::new(function, xr("team-a", spec), listed_policy());
    let rounds = cluster.settle(10).await;
    let last = rounds.last().expect("rounds");
    last.assert_no_fatal();
    assert!(last.xr_ready());
    let desired = last.desired();
    assert_eq!(
        desired["iam-role"]["metadata"]["annotations"]["crossplane.io/external-name"],
        "team-a-pull"
    );
    assert_eq!(
        desired["iam-attachment-node-eks-nodes-a"]["spec"]["forProvider"]["role"],
        "eks-nodes-a"
    );
    assert_eq!(
        desired["package-upbound-provider-aws-s3"]["spec"]["runtimeConfigRef"]["name"],
        "team-a-debug"
    );
    let trust: Json = serde_json::from_str(
        desired["iam-role"]["spec"]["forProvider"]["assumeRolePolicy"]
            .as_str()
            .expect("trust policy"),
    )
    .expect("json");
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["oidc.eks.eu-west-2.amazonaws.com/id/TEAMA1:sub"],
        json!(["system:serviceaccount:crossplane-system:provider-aws-s3"])
    );
}

// ---------------------------------------------------------------------------
// The property: whatever the XR and its status say, what is composed stays
// inside the input's bounds.

/// One generated request: the XR's name and spec, its status, whether the
/// registry is reachable, and which policy is in force.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    spec: Json,
    status: Json,
    registry_down: bool,
    policy: Json,
}

fn pick<T: Clone + std::fmt::Debug + 'static>(options: Vec<T>) -> impl Strategy<Value = T> {
    proptest::sample::select(options)
}

/// Mostly one of `usual`, sometimes one of `hostile`: an XR with any
/// hostile value is refused outright, so hostile values are kept rare
/// enough that most cases reach composition and the status memory.
fn mostly<T: Clone + std::fmt::Debug + 'static>(
    usual: Vec<T>,
    hostile: Vec<T>,
) -> impl Strategy<Value = T> {
    prop_oneof![6 => pick(usual), 1 => pick(hostile)]
}

fn package_strategy() -> impl Strategy<Value = Json> {
    (
        mostly(
            vec![
                ("Provider", "upbound/provider-aws-s3", "v2.2.0"),
                ("Provider", "upbound/provider-family-aws", ">=v2.0.0"),
                (
                    "Function",
                    "crossplane-contrib/function-patch-and-transform",
                    "v0.8.2",
                ),
            ],
            vec![("Provider", "evil/provider-x", "v1.0.0")],
        ),
        mostly(
            vec![None, None, Some("team-a-rc")],
            vec![Some("cluster-admin")],
        ),
    )
        .prop_map(|((kind, repository, version), runtime)| {
            let mut package = json!({"kind": kind, "repository": repository, "version": version});
            if let Some(runtime) = runtime {
                package["runtimeConfigName"] = json!(runtime);
            }
            package
        })
}

fn iam_strategy() -> impl Strategy<Value = Json> {
    let unset = || json!(null);
    (
        pick(vec![unset(), json!(true), json!(false)]),
        mostly(
            vec![unset(), unset(), json!("team-a-pull")],
            vec![json!("OrganizationAccountAccessRole")],
        ),
        pick(vec![unset(), json!("IRSA"), json!("PodIdentity")]),
        mostly(
            vec![
                unset(),
                json!("https://oidc.eks.eu-west-2.amazonaws.com/id/TEAMA1"),
            ],
            vec![
                json!("https://token.actions.githubusercontent.com"),
                json!("arn:aws:iam::999999999999:oidc-provider/evil.example.com"),
            ],
        ),
        mostly(
            vec![
                unset(),
                json!([{"namespace": "crossplane-system", "name": "provider-aws-s3"}]),
            ],
            vec![json!([{"namespace": "kube-system", "name": "default"}])],
        ),
        mostly(
            vec![json!([]), json!(["eks-nodes-a"])],
            vec![json!(["Admin"])],
        ),
    )
        .prop_map(|(enabled, role, identity, oidc, accounts, nodes)| {
            let mut iam = json!({"nodeRoleNames": nodes});
            for (key, value) in [
                ("enabled", enabled),
                ("roleName", role),
                ("identity", identity),
                ("oidcProvider", oidc),
                ("serviceAccounts", accounts),
            ] {
                if !value.is_null() {
                    iam[key] = value;
                }
            }
            iam
        })
}

/// A status entry as the function writes it, or tampered with.
fn status_entry_strategy() -> impl Strategy<Value = Json> {
    let good = format!("sha256:{}", "b".repeat(64));
    (
        mostly(
            vec!["upbound/provider-family-aws", "upbound/provider-aws-s3"],
            vec!["evil/provider-x", "*"],
        ),
        mostly(
            vec!["xpkg.upbound.io/{repo}:v2.2.0", "{host}/{repo}:v2.2.0"],
            vec![
                "999999999999.dkr.ecr.eu-west-2.amazonaws.com/{repo}:v2.2.0",
                "evil.example.com/{repo}:v1",
                "xpkg.upbound.io/upbound/provider-aws-iam:v2.2.0",
            ],
        ),
        mostly(vec![good], vec!["sha256:zz".to_string()]),
        mostly(vec!["v2.2.0"], vec!["v1 && x"]),
        pick(vec![json!([]), json!(["upbound-provider-family-aws"])]),
    )
        .prop_map(|(repo, package, digest, version, deps)| {
            let package = package.replace("{repo}", repo).replace(
                "{host}",
                &format!("{ACCOUNT}.dkr.ecr.eu-west-2.amazonaws.com"),
            );
            json!({"name": repo.replace('/', "-").replace('*', "star"), "kind": "Provider",
                   "repository": repo, "version": version, "digest": digest,
                   "package": package, "dependsOn": deps, "ready": true})
        })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        pick(vec!["team-a", "admin", "team-a-platform"]),
        mostly(
            vec![(ACCOUNT, "eu-west-2"), (ACCOUNT, "us-east-1")],
            vec![("999999999999", "eu-west-2")],
        ),
        proptest::collection::vec(package_strategy(), 1..4),
        pick(vec![None, Some("Rewrite"), Some("Skip")]),
        iam_strategy(),
        proptest::collection::vec(status_entry_strategy(), 0..4),
        any::<bool>(),
        pick(vec![json!({}), listed_policy()]),
    )
        .prop_map(
            |(name, (account, region), mut packages, strategy, iam, status, down, policy)| {
                // One entry per repository, as the XR schema requires.
                let mut seen = std::collections::BTreeSet::new();
                packages.retain(|p| seen.insert(p["repository"].to_string()));
                let mut spec = json!({
                    "registry": {"accountId": account, "region": region},
                    "packages": packages,
                    "iam": iam,
                });
                if let Some(strategy) = strategy {
                    spec["strategy"] = json!(strategy);
                }
                // The secure default admits no IAM value from an XR: under
                // it, leave IAM to the input most of the time.
                if policy == json!({}) && name != "admin" {
                    spec["iam"] = json!({"enabled": spec["iam"]["enabled"].clone()});
                    if spec["iam"]["enabled"].is_null() {
                        spec["iam"] = json!({});
                    }
                }
                Case {
                    name: name.to_string(),
                    spec,
                    status: json!({"packages": status}),
                    registry_down: down,
                    policy,
                }
            },
        )
}

/// Panics naming the first composed privilege outside `input`'s bounds.
/// `registry` is the XR's `(account, region)`: every ECR reference must
/// name exactly it, and it must be one the input allows.
fn check_bounds(input: &Input, xr_name: &str, registry: (&str, &str), object: &Json) {
    let matches = |patterns: &[String], value: &str| patterns.iter().any(|p| glob_match(p, value));
    let registry_allowed = |account: &str, region: &str| {
        (account, region) == registry
            && input.allowed_registries.as_ref().is_none_or(|allowed| {
                allowed
                    .iter()
                    .any(|a| glob_match(&a.account_id, account) && glob_match(&a.region, region))
            })
    };
    let repository_allowed = |repository: &str| {
        is_repository_name(repository)
            && (input.allowed_repositories.is_empty()
                || matches(&input.allowed_repositories, repository))
    };
    // `<account>.dkr.ecr.<region>.amazonaws.com/<rest>` -> its parts.
    let ecr = |reference: &str| -> Option<(String, String, String)> {
        let (host, rest) = reference.split_once('/')?;
        let (account, tail) = host.split_once(".dkr.ecr.")?;
        let region = tail.split('.').next()?;
        Some((account.to_string(), region.to_string(), rest.to_string()))
    };
    let kind = object["kind"].as_str().unwrap_or_default();
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Json::as_str)
            .unwrap_or_default()
    };
    match kind {
        "Role" => {
            let role = text("/metadata/annotations/crossplane.io~1external-name");
            let iam = &input.iam;
            let default = default_role_name(xr_name);
            assert!(
                iam.role_name.as_deref() == Some(role)
                    || matches(&iam.allowed_role_names, role)
                    || (iam.role_name.is_none()
                        && iam.allowed_role_names.is_empty()
                        && role == default),
                "role name {role:?}"
            );
            let trust: Json =
                serde_json::from_str(text("/spec/forProvider/assumeRolePolicy")).expect("trust");
            let statement = &trust["Statement"][0];
            if let Some(federated) = statement["Principal"]["Federated"].as_str() {
                let issuer = federated
                    .split_once(":oidc-provider/")
                    .map(|(_, issuer)| issuer)
                    .unwrap_or(federated);
                let own = iam
                    .oidc_provider
                    .as_deref()
                    .map(|p| p.trim_start_matches("https://"));
                assert!(
                    own == Some(issuer)
                        || own == Some(federated)
                        || matches(&iam.allowed_oidc_providers, issuer)
                        || matches(&iam.allowed_oidc_providers, federated),
                    "OIDC provider {federated:?}"
                );
                let subjects = statement["Condition"]["StringEquals"][format!("{issuer}:sub")]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                assert!(!subjects.is_empty(), "{trust}");
                for subject in subjects {
                    let subject = subject.as_str().unwrap_or_default();
                    let (namespace, name) = subject
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|s| s.split_once(':'))
                        .expect("subject");
                    let own = iam
                        .service_accounts
                        .iter()
                        .any(|s| s.namespace == namespace && s.name == name);
                    let default = iam.service_accounts.is_empty()
                        && (namespace, name) == ("crossplane-system", "crossplane");
                    let allowed = iam
                        .allowed_service_accounts
                        .iter()
                        .any(|a| glob_match(&a.namespace, namespace) && glob_match(&a.name, name));
                    assert!(own || default || allowed, "service account {subject:?}");
                }
            } else {
                assert_eq!(
                    statement["Principal"],
                    json!({"Service": "pods.eks.amazonaws.com"}),
                    "{trust}"
                );
            }
        }
        "Policy" => {
            let policy: Json =
                serde_json::from_str(text("/spec/forProvider/policy")).expect("policy");
            for statement in policy["Statement"].as_array().expect("statements") {
                if statement["Sid"] == "AuthorizationToken" {
                    assert_eq!(statement["Action"], json!(["ecr:GetAuthorizationToken"]));
                    continue;
                }
                for resource in statement["Resource"].as_array().expect("resources") {
                    let arn = resource.as_str().unwrap_or_default();
                    let parts: Vec<&str> = arn.splitn(6, ':').collect();
                    assert_eq!(parts.len(), 6, "{arn}");
                    assert_eq!(parts[2], "ecr", "{arn}");
                    assert!(
                        registry_allowed(parts[4], parts[3]),
                        "policy registry {arn}"
                    );
                    let repository = parts[5]
                        .strip_prefix("repository/")
                        .expect("repository ARN");
                    assert!(repository_allowed(repository), "policy resource {arn}");
                }
            }
        }
        "RolePolicyAttachment" => {
            if let Some(role) = object
                .pointer("/spec/forProvider/role")
                .and_then(Json::as_str)
            {
                assert!(
                    input.iam.node_role_names.iter().any(|n| n == role)
                        || matches(&input.iam.allowed_node_role_names, role),
                    "node role {role:?}"
                );
            }
        }
        "ImageConfig" => {
            let (account, region, _) = ecr(text("/spec/rewriteImage/prefix")).expect("ECR prefix");
            assert!(registry_allowed(&account, &region), "{object}");
        }
        "Provider" | "Function" | "Configuration" => {
            let package = text("/spec/package");
            let path = package.split(['@']).next().unwrap_or_default();
            let path = path.rsplit_once(':').map_or(path, |(p, _)| p);
            let repository = match ecr(path) {
                Some((account, region, repository)) => {
                    assert!(registry_allowed(&account, &region), "package {package:?}");
                    repository
                }
                None => input
                    .mirrors
                    .iter()
                    .find_map(|m| {
                        path.strip_prefix(&m.upstream)
                            .map(|rest| format!("{}{rest}", m.repository_prefix))
                    })
                    .unwrap_or_else(|| panic!("package {package:?} is under no mirror")),
            };
            assert!(repository_allowed(&repository), "package {package:?}");
            if let Some(runtime) = object
                .pointer("/spec/runtimeConfigRef/name")
                .and_then(Json::as_str)
            {
                assert!(
                    matches(&input.allowed_runtime_configs, runtime),
                    "runtime config {runtime:?}"
                );
            }
        }
        other => panic!("unexpected kind {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TRUST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn composed_privileges_stay_inside_the_input(case in case_strategy()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let input: Input = decode(case.policy.clone()).expect("policy");
        runtime.block_on(async {
            let registry = registry();
            registry.set_down(case.registry_down);
            let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
            let mut composite = xr(&case.name, case.spec.clone());
            composite["status"] = case.status.clone();
            let mut cluster = Cluster::new(function, composite, case.policy.clone());
            for round in cluster.settle(6).await {
                let fatal = !round.results(Severity::Fatal).is_empty();
                if fatal {
                    prop_assert!(round.desired().is_empty());
                }
                let registry = (
                    case.spec["registry"]["accountId"].as_str().unwrap_or_default(),
                    case.spec["registry"]["region"].as_str().unwrap_or_default(),
                );
                for object in round.desired().values() {
                    check_bounds(&input, &case.name, registry, object);
                }
                // The status written back is held to the same bounds the next
                // reconcile re-validates it against.
                if let Some(status) = round
                    .response
                    .desired
                    .as_ref()
                    .and_then(|d| d.composite.as_ref())
                    .and_then(|c| c.resource.as_ref())
                    .map(struct_to_json)
                {
                    for entry in status["status"]["packages"].as_array().into_iter().flatten() {
                        if entry["leaving"] == json!(true) {
                            continue;
                        }
                        let repository = entry["repository"].as_str().unwrap_or_default();
                        prop_assert!(is_repository_name(repository), "{entry}");
                    }
                }
            }
            Ok(())
        })?;
    }
}

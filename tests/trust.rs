//! The trust model through the whole function: the Composition's input is
//! the platform's policy, the XR is a request, and the XR's status is a
//! hint. Refusals happen before any registry call; and whatever an XR and
//! its status say, everything composed stays inside the input's bounds.

mod support;

use std::sync::Arc;

use cluster::Cluster;
use function_ecr_packages::function::Function;
use function_ecr_packages::names::{is_label, is_repository_name};
use function_ecr_packages::package::PackageKind;
use function_ecr_packages::proto::v1::resource_selector::Match;
use function_ecr_packages::proto::v1::{self, Severity};
use function_ecr_packages::registry::connector::MemoryConnector;
use function_ecr_packages::registry::memory::{MemoryRegistry, blog_registry, meta};
use function_ecr_packages::sdk::request::decode;
use function_ecr_packages::sdk::structs::{json_to_struct, struct_to_json};
use function_ecr_packages::spec::Input;
use function_ecr_packages::spec::activation::Definitions;
use function_ecr_packages::spec::input::ManagedResources;
use function_ecr_packages::spec::limits::MAX_LEAVING_LOOKUPS;
use function_ecr_packages::spec::policy::glob_match;
use function_ecr_packages::spec::settings::default_role_name;
use function_ecr_packages::spec::xr::{Identity, XrRef};
use policy::{ACCOUNT, listed_policy, refusals, xr};
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use support::{cluster, policy};

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
    let rounds = cluster.settle(14).await;
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

/// One generated request: the XR's name, UID and spec, its status, from
/// which round on the registry is down (if it is), and which policy is in
/// force.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    uid: Option<String>,
    spec: Json,
    status: Json,
    down_from: Option<usize>,
    policy: Json,
}

/// A policy that lets an XR choose its identity, binds Pod Identity to one
/// cluster, names default roles with a prefix, and lists no
/// `allowedRegistries`: any registry the function can read.
fn identity_policy() -> Json {
    json!({
        "allowedRepositories": ["upbound/*", "crossplane-contrib/*"],
        "iam": {
            "roleNamePrefix": "team-a",
            "allowedIdentities": ["IRSA", "PodIdentity"],
            "clusterArn": format!("arn:aws:eks:eu-west-2:{CLUSTER_ACCOUNT}:cluster/platform"),
            "oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/PLATFORM",
            "allowedOidcProviders": ["oidc.eks.*.amazonaws.com/id/TEAMA*"],
            "allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-*"}]
        }
    })
}

/// The account of [`identity_policy`]'s cluster.
const CLUSTER_ACCOUNT: &str = "210987654321";

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
        mostly(
            vec![
                json!(null),
                json!(null),
                json!(["buckets.s3.aws.upbound.io"]),
                json!(["*.s3.aws.upbound.io"]),
            ],
            vec![
                json!(["*"]),
                json!(["*.aws.upbound.io"]),
                json!(["roles.iam.aws.upbound.io"]),
            ],
        ),
    )
        .prop_map(|((kind, repository, version), runtime, activate)| {
            let mut package = json!({"kind": kind, "repository": repository, "version": version});
            if let Some(runtime) = runtime {
                package["runtimeConfigName"] = json!(runtime);
            }
            if !activate.is_null() {
                package["activate"] = activate;
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
        // Leaving entries are never composed, but drive lookups and
        // Warnings: some carry names no lookup or message may repeat.
        mostly(
            vec![None, None, Some(None)],
            vec![Some(Some("Function-ECR-Packages")), Some(Some(HUGE_NAME))],
        ),
    )
        .prop_map(|(repo, package, digest, version, deps, leaving)| {
            let package = package.replace("{repo}", repo).replace(
                "{host}",
                &format!("{ACCOUNT}.dkr.ecr.eu-west-2.amazonaws.com"),
            );
            let mut entry = json!({"name": repo.replace('/', "-").replace('*', "star"), "kind": "Provider",
                   "repository": repo, "version": version, "digest": digest,
                   "package": package, "dependsOn": deps, "ready": true});
            if let Some(name) = leaving {
                entry["leaving"] = json!(true);
                if let Some(name) = name {
                    entry["name"] = json!(name.replace("{huge}", &"z".repeat(4096)));
                }
            }
            entry
        })
}

/// A status name far over every bound; `{huge}` is 4 KiB of `z`.
const HUGE_NAME: &str = "x{huge}";

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
        pick(vec![None, None, Some(0), Some(0), Some(1), Some(2)]),
        pick(vec![json!({}), listed_policy(), identity_policy()]),
        pick(vec![
            None,
            Some("0b0f6e3a-0000-4000-8000-000000000001"),
            Some("0b0f6e3a-0000-4000-8000-000000000002"),
        ]),
    )
        .prop_map(
            |(
                name,
                (account, region),
                mut packages,
                strategy,
                iam,
                status,
                down_from,
                policy,
                uid,
            )| {
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
                    uid: uid.map(str::to_string),
                    spec,
                    status: json!({"packages": status}),
                    down_from,
                    policy,
                }
            },
        )
}

/// Panics naming the first composed privilege outside `input`'s bounds.
/// `xr` names the XR (its default role name follows it). `registry` is the
/// XR's `(account, region)`: every ECR reference must name exactly it, and
/// it must be one the input admits: listed in `allowedRegistries`, or, with
/// that list missing, one the function has read (`read`: the registry was
/// up in some round so far).
fn check_bounds(input: &Input, xr: XrRef<'_>, registry: (&str, &str), read: bool, object: &Json) {
    let matches = |patterns: &[String], value: &str| patterns.iter().any(|p| glob_match(p, value));
    let registry_allowed = |account: &str, region: &str| {
        (account, region) == registry
            && match &input.allowed_registries {
                Some(allowed) => allowed
                    .iter()
                    .any(|a| glob_match(&a.account_id, account) && glob_match(&a.region, region)),
                None => read,
            }
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
            let default = default_role_name(xr, iam.role_name_prefix.as_deref());
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
            check_trust(input, registry, &trust);
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
            // A package object is pulled from the XR's registry (directly,
            // or through the ImageConfig's rewrite): the registry must be
            // admitted whatever the path says.
            let (account, region) = registry;
            assert!(registry_allowed(account, region), "{object}");
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
        "ManagedResourceActivationPolicy" => {
            // The IAM definitions the function's own objects need, and
            // what the input allows an XR to ask for; nothing else.
            let group = match input.iam.managed_resources {
                ManagedResources::Cluster => "iam.aws.upbound.io",
                ManagedResources::Namespaced => "iam.aws.m.upbound.io",
            };
            let iam =
                ["roles", "policies", "rolepolicyattachments"].map(|p| format!("{p}.{group}"));
            for entry in object["spec"]["activate"].as_array().expect("activate") {
                let entry = entry.as_str().unwrap_or_default();
                let asked = Definitions::parse(entry).expect("a valid entry");
                assert!(
                    iam.iter().any(|d| d == entry)
                        || input.allowed_activations.iter().any(|a| asked.within(a)),
                    "activation {entry:?} outside {:?}",
                    input.allowed_activations
                );
            }
        }
        other => panic!("unexpected kind {other}"),
    }
}

/// A role's trust inside the input's bounds: the identity is the input's
/// (or one `allowedIdentities` lets the XR choose); IRSA trusts an allowed
/// OIDC provider for allowed service accounts; Pod Identity is never
/// unconditioned: each statement is bound to the cluster's account (and to
/// the input's cluster, when it names one) and to allowed service accounts.
fn check_trust(input: &Input, registry: (&str, &str), trust: &Json) {
    let matches = |patterns: &[String], value: &str| patterns.iter().any(|p| glob_match(p, value));
    let iam = &input.iam;
    let service_account_allowed = |namespace: &str, name: &str| {
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
        own || default || allowed
    };
    let statements = trust["Statement"].as_array().expect("statements");
    assert!(!statements.is_empty(), "{trust}");
    let federated = statements[0]["Principal"]["Federated"].as_str();
    let identity = if federated.is_some() {
        Identity::Irsa
    } else {
        Identity::PodIdentity
    };
    // The default: the input's identity, else IRSA when an OIDC provider is
    // known (the input's, or one the XR may name), else Pod Identity.
    let listed = &iam.allowed_identities;
    match iam.identity {
        Some(own) => assert!(
            identity == own || listed.contains(&identity),
            "identity {identity:?} over the input's {own:?}: {trust}"
        ),
        None if iam.oidc_provider.is_some() => assert!(
            identity == Identity::Irsa || listed.contains(&identity),
            "identity {identity:?} over IRSA: {trust}"
        ),
        // Derived from whether the XR named an OIDC provider: IRSA with
        // one, Pod Identity without; both are bounded below.
        None => {}
    }
    for statement in statements {
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
                assert!(
                    service_account_allowed(namespace, name),
                    "service account {subject:?}"
                );
            }
            continue;
        }
        assert_eq!(
            statement["Principal"],
            json!({"Service": "pods.eks.amazonaws.com"}),
            "{trust}"
        );
        let conditions = statement["Condition"]
            .as_object()
            .unwrap_or_else(|| panic!("Pod Identity without conditions: {trust}"));
        assert_eq!(
            conditions.keys().collect::<Vec<_>>(),
            ["StringEquals"],
            "{trust}"
        );
        let equals = &statement["Condition"]["StringEquals"];
        let cluster = iam.cluster_arn.as_ref();
        let account = cluster.map_or(registry.0, |arn| arn.account_id());
        assert_eq!(equals["aws:SourceAccount"], json!(account), "{trust}");
        match cluster {
            Some(arn) => assert_eq!(
                equals["aws:RequestTag/eks-cluster-arn"],
                json!(arn.as_str()),
                "{trust}"
            ),
            None => assert!(equals.get("aws:RequestTag/eks-cluster-arn").is_none()),
        }
        let namespace = equals["aws:RequestTag/kubernetes-namespace"]
            .as_str()
            .unwrap_or_else(|| panic!("one namespace per statement: {trust}"));
        let names = equals["aws:RequestTag/kubernetes-service-account"]
            .as_array()
            .unwrap_or_else(|| panic!("service accounts: {trust}"));
        assert!(!names.is_empty(), "{trust}");
        for name in names {
            let name = name.as_str().unwrap_or_default();
            assert!(
                service_account_allowed(namespace, name),
                "service account {namespace}/{name}"
            );
        }
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
            let function = Function::with_connector(Arc::new(MemoryConnector::new(registry.clone())));
            let mut composite = xr(&case.name, case.spec.clone());
            composite["status"] = case.status.clone();
            if let Some(uid) = &case.uid {
                composite["metadata"]["uid"] = json!(uid);
            }
            let mut cluster = Cluster::new(function, composite, case.policy.clone());
            // A Crossplane that answers required resources: leaving entries
            // are asked for.
            cluster.lock = Some(json!({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Lock",
                                       "metadata": {"name": "lock"}, "packages": []}));
            let xr_ref = XrRef { kind: "XEcrPackages", name: &case.name, uid: case.uid.as_deref() };
            let registry_ref = (
                case.spec["registry"]["accountId"].as_str().unwrap_or_default(),
                case.spec["registry"]["region"].as_str().unwrap_or_default(),
            );
            // Up in every round before `down_from`: read from the first
            // round on, or never.
            let read = case.down_from != Some(0);
            for number in 0..6 {
                registry.set_down(case.down_from.is_some_and(|from| number >= from));
                let round = cluster.reconcile().await;
                let fatal = !round.results(Severity::Fatal).is_empty();
                if fatal {
                    prop_assert!(round.desired().is_empty());
                }
                for object in round.desired().values() {
                    check_bounds(&input, xr_ref, registry_ref, read, object);
                }
                // With no allowedRegistries, a registry never read is never
                // stood in for: nothing is composed from the status.
                if input.allowed_registries.is_none() && !read {
                    prop_assert!(round.desired().is_empty(), "{:?}", round.desired().keys());
                }
                // What the call asks Crossplane for is bounded and names
                // only checked entries; no message repeats a long value.
                let asked: Vec<String> = round
                    .response
                    .requirements
                    .iter()
                    .flat_map(|r| r.resources.values())
                    .filter_map(|s| match &s.r#match {
                        Some(Match::MatchName(name)) => Some(name.clone()),
                        _ => None,
                    })
                    .collect();
                prop_assert!(asked.len() <= 1 + MAX_LEAVING_LOOKUPS, "{}", asked.len());
                for name in &asked {
                    prop_assert!(askable(name), "asked for {name:?}");
                }
                for result in &round.response.results {
                    prop_assert!(result.message.len() <= 2048, "{} bytes", result.message.len());
                    prop_assert!(!result.message.contains(&"z".repeat(100)), "{}", result.message);
                }
                for condition in &round.response.conditions {
                    let message = condition.message.as_deref().unwrap_or_default();
                    prop_assert!(!message.contains(&"z".repeat(100)), "{message}");
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

// ---------------------------------------------------------------------------
// The trust holes of issue 21, through the real gRPC server.

/// The function behind the real gRPC server, on a loopback port.
struct Grpc {
    client:
        v1::function_runner_service_client::FunctionRunnerServiceClient<tonic::transport::Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), function_ecr_packages::server::ServeError>>,
}

impl Grpc {
    async fn start(function: Function) -> Self {
        use function_ecr_packages::server::GrpcMetrics;
        use function_ecr_packages::server::{self, Config, Security, ServerLimits};
        let metrics = GrpcMetrics::register(&prometheus::Registry::new()).expect("metrics");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = Config {
            security: Security::Insecure,
            max_recv_message_bytes: 16 * 1024 * 1024,
            limits: ServerLimits::default(),
        };
        let served = tokio::spawn(server::serve(
            config,
            Arc::new(function),
            metrics,
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            client: v1::function_runner_service_client::FunctionRunnerServiceClient::new(channel)
                .max_decoding_message_size(16 * 1024 * 1024)
                .max_encoding_message_size(16 * 1024 * 1024),
            stop: Some(stop),
            served,
        }
    }

    /// Calls as Crossplane does: again with what the function asks for
    /// (here, nothing exists), until it asks for the same twice.
    async fn call(&mut self, mut request: v1::RunFunctionRequest) -> v1::RunFunctionResponse {
        let mut asked = None;
        for _ in 0..5 {
            let response = self
                .client
                .run_function(request.clone())
                .await
                .expect("RunFunction")
                .into_inner();
            let fatal = !results_of(&response, Severity::Fatal).is_empty();
            if fatal || response.requirements == asked {
                return response;
            }
            asked.clone_from(&response.requirements);
            // Nothing exists but the IAM definitions, established (as
            // the activation policy grpc_request observes says).
            request.required_resources = response
                .requirements
                .iter()
                .flat_map(|r| &r.resources)
                .map(|(name, selector)| {
                    let items = match &selector.r#match {
                        Some(Match::MatchName(wanted))
                            if selector.kind == "ManagedResourceDefinition" =>
                        {
                            vec![v1::Resource {
                                resource: json_to_struct(&cluster::definition(wanted, true)),
                                ..Default::default()
                            }]
                        }
                        _ => Vec::new(),
                    };
                    (name.clone(), v1::Resources { items })
                })
                .collect();
        }
        panic!("requirements did not settle after 5 calls");
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.served
            .await
            .expect("server task")
            .expect("server result");
    }
}

/// What the function may ask Crossplane for by name: a DNS label it
/// built from checked values, or one of the fixed IAM definitions.
fn askable(name: &str) -> bool {
    let iam = ["roles", "policies", "rolepolicyattachments"];
    is_label(name)
        || iam.iter().any(|plural| {
            name == format!("{plural}.iam.aws.upbound.io")
                || name == format!("{plural}.iam.aws.m.upbound.io")
        })
}

/// A RunFunction request from a Crossplane that answers required
/// resources: the XR, the input, what is observed, and AWS keys under the
/// input's default credentials name.
fn grpc_request(
    composite: &Json,
    input: &Json,
    observed: &[(&str, Json)],
) -> v1::RunFunctionRequest {
    let resource = |object: &Json| v1::Resource {
        resource: json_to_struct(object),
        ..Default::default()
    };
    let keys = [
        ("aws_access_key_id", "AKIDEXAMPLE"),
        ("aws_secret_access_key", "secret"),
    ];
    // Every IAM definition already active, unless the caller observes
    // the policy itself.
    let policy = cluster::active_iam_policy();
    let observed: Vec<(&str, Json)> = std::iter::once(policy)
        .filter(|(name, _)| observed.iter().all(|(n, _)| n != name))
        .chain(observed.iter().cloned())
        .collect();
    v1::RunFunctionRequest {
        meta: Some(v1::RequestMeta {
            tag: "trust".to_string(),
            capabilities: vec![v1::Capability::RequiredResources as i32],
        }),
        observed: Some(v1::State {
            composite: Some(resource(composite)),
            resources: observed
                .iter()
                .map(|(name, object)| (name.to_string(), resource(object)))
                .collect(),
        }),
        desired: Some(v1::State::default()),
        input: json_to_struct(input),
        credentials: [(
            "aws-credentials".to_string(),
            v1::Credentials {
                source: Some(v1::credentials::Source::CredentialData(
                    v1::CredentialData {
                        data: keys
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                            .collect(),
                    },
                )),
            },
        )]
        .into(),
        ..Default::default()
    }
}

fn results_of(response: &v1::RunFunctionResponse, severity: Severity) -> Vec<String> {
    response
        .results
        .iter()
        .filter(|r| r.severity == severity as i32)
        .map(|r| r.message.clone())
        .collect()
}

/// The trust policy of the composed Role, parsed.
fn composed_trust(response: &v1::RunFunctionResponse) -> Json {
    let desired = cluster::desired_of(response);
    let role = desired.get("iam-role").expect("an iam-role");
    serde_json::from_str(
        role["spec"]["forProvider"]["assumeRolePolicy"]
            .as_str()
            .expect("a trust policy"),
    )
    .expect("JSON")
}

/// The XR may choose its identity only among the input's
/// `allowedIdentities` (by default, the input's own): anything else is one
/// Fatal naming `spec.iam.identity` and the allowlist, before any registry
/// call; a listed choice is composed.
#[tokio::test(flavor = "multi_thread")]
async fn identity_refusals_over_grpc_name_the_field_and_call_no_registry() {
    let oidc = "oidc.eks.eu-west-2.amazonaws.com/id/PLATFORM";
    let registry = registry();
    let mut grpc = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
        registry.clone(),
    ))))
    .await;
    // (the XR's iam, the input's iam, the message after the field)
    let refused = [
        (
            json!({"identity": "PodIdentity"}),
            json!({"identity": "IRSA", "oidcProvider": oidc}),
            "\"PodIdentity\" is not allowed (allowed: IRSA)",
        ),
        // The input names no identity: IRSA is derived from its OIDC
        // provider, and the XR may not turn it into Pod Identity.
        (
            json!({"identity": "PodIdentity"}),
            json!({"oidcProvider": oidc}),
            "\"PodIdentity\" is not allowed (allowed: IRSA)",
        ),
        (
            json!({"identity": "IRSA"}),
            json!({"identity": "PodIdentity", "oidcProvider": oidc, "allowedIdentities": ["PodIdentity"]}),
            "\"IRSA\" is not allowed (allowed: PodIdentity)",
        ),
    ];
    for (xr_iam, input_iam, message) in refused {
        let mut spec = policy::base_spec();
        spec["iam"] = xr_iam.clone();
        let mut composite = xr("team-a", spec);
        composite["status"] = remembered_status();
        let response = grpc
            .call(grpc_request(&composite, &json!({"iam": input_iam}), &[]))
            .await;
        let fatal = results_of(&response, Severity::Fatal);
        assert_eq!(
            fatal,
            [format!(
                "refused at spec.iam.identity: {message} (see the Composition input's iam.allowedIdentities)"
            )],
            "{xr_iam}"
        );
        assert_eq!(response.results.len(), 1, "{xr_iam}");
        assert!(cluster::desired_of(&response).is_empty(), "{xr_iam}");
        assert_eq!(registry.calls(), 0, "{xr_iam}: no registry call");
    }
    // Listed: the XR's choice is composed.
    let mut spec = policy::base_spec();
    spec["iam"] = json!({"identity": "PodIdentity"});
    let input = json!({"iam": {"identity": "IRSA", "oidcProvider": oidc,
                               "allowedIdentities": ["IRSA", "PodIdentity"]}});
    let response = grpc
        .call(grpc_request(&xr("team-a", spec), &input, &[]))
        .await;
    assert!(
        results_of(&response, Severity::Fatal).is_empty(),
        "{:?}",
        response.results
    );
    let trust = composed_trust(&response);
    assert_eq!(
        trust["Statement"][0]["Principal"],
        json!({"Service": "pods.eks.amazonaws.com"})
    );
    grpc.stop().await;
}

/// A Pod Identity trust is bound to the cluster's account, the input's
/// cluster and exactly the chosen service accounts; never to any Pod
/// Identity association in the account.
#[tokio::test(flavor = "multi_thread")]
async fn pod_identity_trust_over_grpc_is_bound_to_the_cluster_and_service_accounts() {
    let cluster_arn = "arn:aws:eks:eu-west-2:210987654321:cluster/platform";
    let mut grpc = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
        registry(),
    ))))
    .await;
    let statement = |account: &str, namespace: &str, names: &[&str], cluster: Option<&str>| {
        let mut equals = json!({
            "aws:SourceAccount": account,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": names,
        });
        if let Some(arn) = cluster {
            equals["aws:RequestTag/eks-cluster-arn"] = json!(arn);
        }
        json!({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
               "Action": ["sts:AssumeRole", "sts:TagSession"],
               "Condition": {"StringEquals": equals}})
    };
    // (the XR's iam, the input's iam, the statements)
    let cases = [
        (
            json!({}),
            json!({}),
            vec![statement(
                ACCOUNT,
                "crossplane-system",
                &["crossplane"],
                None,
            )],
        ),
        (
            json!({"serviceAccounts": [
                {"namespace": "crossplane-system", "name": "provider-aws-s3"},
                {"namespace": "crossplane-system", "name": "provider-family-aws"}
            ]}),
            json!({"identity": "PodIdentity", "clusterArn": cluster_arn,
                   "allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-*"}]}),
            vec![statement(
                "210987654321",
                "crossplane-system",
                &["provider-aws-s3", "provider-family-aws"],
                Some(cluster_arn),
            )],
        ),
    ];
    for (xr_iam, input_iam, statements) in cases {
        let mut spec = policy::base_spec();
        spec["iam"] = xr_iam.clone();
        let response = grpc
            .call(grpc_request(
                &xr("team-a", spec),
                &json!({"iam": input_iam}),
                &[],
            ))
            .await;
        assert!(
            results_of(&response, Severity::Fatal).is_empty(),
            "{:?}",
            response.results
        );
        assert_eq!(
            composed_trust(&response),
            json!({"Version": "2012-10-17", "Statement": statements}),
            "{xr_iam}"
        );
    }
    grpc.stop().await;
}

/// Two XRs of one name (two clusters of one account, or one XR deleted and
/// made again) get two default roles: the name follows the XR's UID.
#[tokio::test(flavor = "multi_thread")]
async fn default_role_names_over_grpc_follow_the_xr_uid() {
    let mut grpc = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
        registry(),
    ))))
    .await;
    let mut names = Vec::new();
    for (uid, input) in [
        ("7d6c1a52-0000-4000-8000-000000000001", json!({})),
        ("7d6c1a52-0000-4000-8000-000000000002", json!({})),
        (
            "7d6c1a52-0000-4000-8000-000000000002",
            json!({"iam": {"roleNamePrefix": "team-a-ecr"}}),
        ),
    ] {
        let mut composite = xr("platform-packages", policy::base_spec());
        composite["metadata"]["uid"] = json!(uid);
        let response = grpc.call(grpc_request(&composite, &input, &[])).await;
        assert!(
            results_of(&response, Severity::Fatal).is_empty(),
            "{:?}",
            response.results
        );
        let desired = cluster::desired_of(&response);
        let role = desired["iam-role"]["metadata"]["annotations"]["crossplane.io/external-name"]
            .as_str()
            .expect("external name")
            .to_string();
        let prefix = input["iam"]["roleNamePrefix"].as_str();
        let xr_ref = XrRef {
            kind: "XEcrPackages",
            name: "platform-packages",
            uid: Some(uid),
        };
        assert_eq!(role, default_role_name(xr_ref, prefix), "{uid}");
        assert!(role.len() <= 64, "{role}");
        names.push(role);
    }
    assert!(
        names[0].starts_with("platform-packages-ecr-pull-"),
        "{names:?}"
    );
    assert!(names[2].starts_with("team-a-ecr-"), "{names:?}");
    assert_ne!(names[0], names[1], "one role per XR instance");
    grpc.stop().await;
}

/// An observed package object of ours, as Crossplane sends it.
fn observed_provider(name: &str, package: &str) -> Json {
    json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
           "metadata": {"name": name, "annotations": {"crossplane.io/composition-resource-name": format!("package-{name}")}},
           "spec": {"package": package},
           "status": {"currentIdentifier": package,
                      "conditions": [{"type": "Installed", "status": "True"}, {"type": "Healthy", "status": "True"}]}})
}

/// With no `allowedRegistries`, the XR's status never stands in for a
/// registry this process has not read: nothing new is composed from it,
/// what exists is kept, and a Warning says why. Listed registries, and
/// registries read before, are stood in for as before.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_over_grpc_never_stands_in_for_an_unadmitted_registry() {
    let family = "upbound-provider-family-aws";
    let existing = observed_provider(family, "xpkg.upbound.io/upbound/provider-family-aws:v2.2.0");
    let observed = [(&*format!("package-{family}"), existing.clone())];
    let mut composite = xr("team-a", policy::base_spec());
    composite["status"] = remembered_status();

    // Never read, not listed: refused.
    let down = registry();
    down.set_down(true);
    let mut grpc = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
        down.clone(),
    ))))
    .await;
    let response = grpc
        .call(grpc_request(&composite, &json!({}), &observed))
        .await;
    assert!(
        results_of(&response, Severity::Fatal).is_empty(),
        "{:?}",
        response.results
    );
    let desired = cluster::desired_of(&response);
    assert_eq!(
        desired.keys().collect::<Vec<_>>(),
        ["activation-policy", &format!("package-{family}")],
        "only what exists (the activation policy grpc_request observes, the package) is kept"
    );
    assert_eq!(
        desired[&format!("package-{family}")]["spec"],
        existing["spec"]
    );
    let warnings = results_of(&response, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for part in [
        "registry unavailable",
        "nothing new is composed from status.packages",
        "is not in the input's allowedRegistries",
    ] {
        assert!(
            warnings[0].contains(part),
            "{part:?} not in {}",
            warnings[0]
        );
    }
    assert!(
        response
            .desired
            .as_ref()
            .and_then(|d| d.composite.as_ref())
            .is_some_and(|c| c.ready == v1::Ready::False as i32),
        "not ready"
    );
    grpc.stop().await;

    // Listed in allowedRegistries: the last resolved set is recomposed.
    let listed = json!({"allowedRegistries": [{"accountId": ACCOUNT, "region": "*"}]});
    let mut grpc = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
        down.clone(),
    ))))
    .await;
    let response = grpc
        .call(grpc_request(&composite, &listed, &observed))
        .await;
    let desired = cluster::desired_of(&response);
    assert!(desired.contains_key("iam-role"), "{:?}", desired.keys());
    assert!(
        desired.keys().any(|k| k.starts_with("image-config-")),
        "{:?}",
        desired.keys()
    );

    // Read once by this process, then down: stood in for as well.
    let readable = registry();
    let mut grpc_read = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
        readable.clone(),
    ))))
    .await;
    let first = grpc_read
        .call(grpc_request(&composite, &json!({}), &[]))
        .await;
    assert!(
        results_of(&first, Severity::Warning).is_empty(),
        "{:?}",
        first.results
    );
    readable.set_down(true);
    let response = grpc_read
        .call(grpc_request(&composite, &json!({}), &observed))
        .await;
    let desired = cluster::desired_of(&response);
    assert!(desired.contains_key("iam-role"), "{:?}", desired.keys());
    let warnings = results_of(&response, Severity::Warning);
    assert!(
        warnings
            .iter()
            .all(|w| !w.contains("nothing new is composed")),
        "{warnings:?}"
    );
    grpc.stop().await;
    grpc_read.stop().await;
}

/// A stand-in for the ECR API that denies every call, as ECR does for an
/// account this identity may not read.
async fn denying_ecr_api() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/fn/x is not authorized to perform: ecr:ListImages"}"#;
                let reply = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-errortype: AccessDeniedException\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    base
}

/// A registry that denies access, or whose host does not resolve, is not
/// an outage: the call is Fatal and nothing is composed from the status,
/// even for a registry the input lists.
#[tokio::test(flavor = "multi_thread")]
async fn denied_and_unknown_registries_over_grpc_are_not_outages() {
    use function_ecr_packages::registry::cache::CacheOptions;
    use function_ecr_packages::registry::connector::EcrConnector;
    use function_ecr_packages::registry::ecr::EcrOptions;
    use std::time::Duration;

    let connector = |endpoint: String| {
        Arc::new(EcrConnector::with_options(
            EcrOptions {
                api_endpoint: Some(endpoint.clone()),
                registry_endpoint: Some(endpoint),
                max_attempts: 1,
                connect_timeout: Duration::from_secs(2),
                ..EcrOptions::default()
            },
            CacheOptions::default(),
        ))
    };
    let mut endpoints = vec![(denying_ecr_api().await, "denied ListImages")];
    // `.invalid` never resolves (RFC 6761), where the resolver answers.
    let resolver_answers = std::net::ToSocketAddrs::to_socket_addrs(&("ecr-api.invalid", 443))
        .err()
        .is_some_and(|e| function_ecr_packages::error::is_unknown_host(&e));
    if resolver_answers {
        endpoints.push((
            "http://ecr-api.invalid".to_string(),
            "its host name does not resolve",
        ));
    } else {
        eprintln!("skipping the unknown host case: this machine's resolver gives no answer");
    }
    let listed = json!({"allowedRegistries": [{"accountId": ACCOUNT, "region": "*"}]});
    let mut composite = xr("team-a", policy::base_spec());
    composite["status"] = remembered_status();
    for (endpoint, message) in endpoints {
        let connector = connector(endpoint.clone());
        let mut grpc = Grpc::start(Function::with_connector(connector.clone())).await;
        let response = grpc.call(grpc_request(&composite, &listed, &[])).await;
        let fatal = results_of(&response, Severity::Fatal);
        assert_eq!(fatal.len(), 1, "{endpoint}: {:?}", response.results);
        assert!(fatal[0].contains(message), "{endpoint}: {}", fatal[0]);
        assert!(cluster::desired_of(&response).is_empty(), "{endpoint}");
        grpc.stop().await;
    }
}

/// Every `status.packages` entry, leaving or not, is checked before it
/// drives a lookup: malformed, foreign or oversized entries are never asked
/// for, at most MAX_LEAVING_LOOKUPS are asked in one call, and no Warning
/// or condition repeats a long value.
#[tokio::test(flavor = "multi_thread")]
async fn status_entries_over_grpc_are_checked_before_any_lookup() {
    let entry = |name: &str, repository: &str, kind: &str| {
        json!({"name": name, "kind": kind, "repository": repository, "version": "v1.0.0",
               "digest": format!("sha256:{}", "c".repeat(64)),
               "package": format!("xpkg.upbound.io/{repository}:v1.0.0"),
               "dependsOn": [], "ready": true, "leaving": true})
    };
    let huge = format!("x{}", "z".repeat(1 << 16));
    let hostile = [
        entry(
            "Function-ECR-Packages",
            "upbound/function-ecr-packages",
            "Function",
        ),
        entry(&huge, "upbound/provider-x", "Provider"),
        entry("crossplane", "evil/provider-x", "Provider"),
        entry("cluster-admin", "upbound/provider-y", "ClusterRole"),
        entry("provider-z", &format!("upbound/{huge}"), "Provider"),
    ];
    let mut packages: Vec<Json> = hostile.to_vec();
    packages.extend((0..300).map(|i| {
        entry(
            &format!("leaving-{i}"),
            &format!("upbound/leaving-{i}"),
            "Provider",
        )
    }));
    let mut composite = xr("team-a", policy::base_spec());
    composite["status"] = json!({"packages": packages});
    let input = json!({"allowedRepositories": ["upbound/*"],
                       "allowedRegistries": [{"accountId": ACCOUNT, "region": "*"}]});
    // Resolved as usual, and with the registry down (the status standing in).
    for down in [false, true] {
        let registry = registry();
        registry.set_down(down);
        let mut grpc = Grpc::start(Function::with_connector(Arc::new(MemoryConnector::new(
            registry.clone(),
        ))))
        .await;
        let response = grpc.call(grpc_request(&composite, &input, &[])).await;
        assert!(
            results_of(&response, Severity::Fatal).is_empty(),
            "{:?}",
            response.results
        );
        let asked: Vec<String> = response
            .requirements
            .iter()
            .flat_map(|r| r.resources.values())
            .filter_map(|s| match &s.r#match {
                Some(Match::MatchName(name)) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let leaving = asked.iter().filter(|n| n.starts_with("leaving-")).count();
        assert_eq!(leaving, MAX_LEAVING_LOOKUPS, "down: {down}");
        for name in &asked {
            assert!(askable(name), "asked for {name:?}");
            for hostile in [
                "function-ecr-packages",
                "crossplane",
                "cluster-admin",
                "provider-z",
                "xzz",
            ] {
                assert!(!name.starts_with(hostile), "asked for {name:?}");
            }
        }
        for result in &response.results {
            assert!(
                result.message.len() <= 2048,
                "{} bytes",
                result.message.len()
            );
            assert!(
                !result.message.contains(&"z".repeat(100)),
                "{}",
                result.message
            );
        }
        for condition in &response.conditions {
            let message = condition.message.as_deref().unwrap_or_default();
            assert!(!message.contains(&"z".repeat(100)), "{message}");
        }
        if down {
            // The ignored entries are named in Warnings, cut short.
            let warnings = results_of(&response, Severity::Warning).join("\n");
            assert!(
                warnings.contains("ignoring status.packages[1] (\"xzzz"),
                "{warnings}"
            );
            assert!(warnings.contains("…"), "{warnings}");
        }
        grpc.stop().await;
    }
}

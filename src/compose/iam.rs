//! Pull access: an IAM role Crossplane's package manager assumes, a policy
//! that lets it read exactly the resolved repositories, and the attachments
//! that bind the policy to that role and to the nodes' roles (the kubelet
//! pulls the providers' runtime images).

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::Planned;
use super::packages::into_map;
use crate::names::{Grammar, object_name};
use crate::resolve::graph::Graph;
use crate::spec::Settings;
use crate::spec::input::ManagedResources;
use crate::spec::settings::{IamSettings, Trust};

pub const PREFIX: &str = "iam-";
pub const ROLE: &str = "iam-role";
pub const POLICY: &str = "iam-policy";
pub const ATTACHMENT: &str = "iam-attachment";

/// What the package manager does when it pulls: token, then manifests and
/// layers, and the listing that tag resolution needs.
pub const PULL_ACTIONS: [&str; 5] = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
];

pub fn compose(settings: &Settings, graph: &Graph) -> Vec<Planned> {
    let Some(iam) = &settings.iam else {
        return Vec::new();
    };
    let role_object = role_object_name(&iam.role_name);
    let mut planned = vec![
        managed(
            iam,
            ROLE,
            "Role",
            &role_object,
            Some(&iam.role_name),
            json!({
                "assumeRolePolicy": trust_policy(settings, iam).to_string(),
                "description": "Lets Crossplane pull its packages from ECR (composed by function-ecr-packages)",
            }),
        ),
        managed(
            iam,
            POLICY,
            "Policy",
            &role_object,
            Some(&iam.role_name),
            json!({
                "policy": pull_policy(settings, graph).to_string(),
                "description": "Pull access to the Crossplane package repositories in ECR",
            }),
        ),
        managed(
            iam,
            ATTACHMENT,
            "RolePolicyAttachment",
            &role_object,
            None,
            json!({
                "roleRef": {"name": role_object},
                "policyArnRef": {"name": role_object},
            }),
        ),
    ];
    for node_role in &iam.node_role_names {
        planned.push(managed(
            iam,
            &node_attachment_resource_name(node_role),
            "RolePolicyAttachment",
            &object_name(&format!("{role_object}-node"), node_role, Grammar::Iam),
            None,
            json!({
                "role": node_role,
                "policyArnRef": {"name": role_object},
            }),
        ));
    }
    planned
}

/// The plurals the CRDs (and so the managed resource definitions) of the
/// IAM kinds composed (Role, Policy, RolePolicyAttachment) are named by.
const PLURALS: [&str; 3] = ["roles", "policies", "rolepolicyattachments"];

/// The API group of the IAM kinds, cluster-scoped or namespaced.
fn group(managed_resources: ManagedResources) -> &'static str {
    match managed_resources {
        ManagedResources::Cluster => "iam.aws.upbound.io",
        ManagedResources::Namespaced => "iam.aws.m.upbound.io",
    }
}

/// The managed resource definitions the IAM objects need active (their
/// CRDs' names): what the XR's activation policy activates for them.
pub fn definitions(iam: &IamSettings) -> Vec<String> {
    let group = group(iam.managed_resources);
    PLURALS
        .iter()
        .map(|plural| format!("{plural}.{group}"))
        .collect()
}

fn managed(
    iam: &IamSettings,
    resource_name: &str,
    kind: &str,
    metadata_name: &str,
    external_name: Option<&str>,
    for_provider: Json,
) -> Planned {
    let api_version = format!("{}/v1beta1", group(iam.managed_resources));
    let provider_config_ref = match iam.managed_resources {
        ManagedResources::Cluster => json!({"name": iam.provider_config_name}),
        ManagedResources::Namespaced => {
            json!({"kind": "ClusterProviderConfig", "name": iam.provider_config_name})
        }
    };
    let mut metadata = json!({"name": metadata_name});
    if iam.managed_resources == ManagedResources::Namespaced {
        metadata["namespace"] = json!(iam.namespace);
    }
    if let Some(external) = external_name {
        // The AWS name stays exactly what the user asked for even where it is
        // not a valid Kubernetes name.
        metadata["annotations"] = json!({"crossplane.io/external-name": external});
    }
    Planned {
        name: resource_name.to_string(),
        object: into_map(json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": metadata,
            "spec": {"forProvider": for_provider, "providerConfigRef": provider_config_ref},
        })),
        needs: Vec::new(),
    }
}

/// Who may assume the role: Crossplane's service accounts, through the
/// cluster's OIDC provider (IRSA) or through EKS Pod Identity. A Pod
/// Identity trust is bound as EKS documents it: `aws:SourceAccount` is the
/// cluster's account, and the session tags EKS sets on the assume name the
/// cluster (`eks-cluster-arn`, when the input gives it) and exactly these
/// service accounts (`kubernetes-namespace`, `kubernetes-service-account`),
/// one statement per namespace so that no namespace admits another's names.
/// Without them any Pod Identity association in the account could assume
/// the role.
pub fn trust_policy(settings: &Settings, iam: &IamSettings) -> Json {
    let statements = match &iam.trust {
        Trust::Irsa { oidc_provider } => {
            // A full ARN names the provider's own account (clusters and
            // registries often live in different accounts); a bare issuer is
            // taken to be in the registry's account.
            let (arn, issuer) = match oidc_provider.split_once(":oidc-provider/") {
                Some((_, issuer)) if oidc_provider.starts_with("arn:") => {
                    (oidc_provider.clone(), issuer.to_string())
                }
                _ => (
                    format!(
                        "arn:{}:iam::{}:oidc-provider/{oidc_provider}",
                        settings.registry.partition(),
                        settings.registry.account_id
                    ),
                    oidc_provider.clone(),
                ),
            };
            let subjects: Vec<String> = iam
                .service_accounts
                .iter()
                .map(|sa| format!("system:serviceaccount:{}:{}", sa.namespace, sa.name))
                .collect();
            vec![json!({
                "Effect": "Allow",
                "Principal": {"Federated": arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{issuer}:sub"): subjects,
                    format!("{issuer}:aud"): "sts.amazonaws.com",
                }},
            })]
        }
        Trust::PodIdentity {
            source_account,
            cluster_arn,
        } => {
            let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for sa in &iam.service_accounts {
                let names = by_namespace.entry(sa.namespace.as_str()).or_default();
                if !names.contains(&sa.name.as_str()) {
                    names.push(&sa.name);
                }
            }
            by_namespace
                .into_iter()
                .map(|(namespace, names)| {
                    let mut equals = json!({
                        "aws:SourceAccount": source_account,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": names,
                    });
                    if let Some(arn) = cluster_arn {
                        equals["aws:RequestTag/eks-cluster-arn"] = json!(arn);
                    }
                    json!({
                        "Effect": "Allow",
                        "Principal": {"Service": "pods.eks.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Condition": {"StringEquals": equals},
                    })
                })
                .collect()
        }
    };
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The token is account-wide (`*`); everything else is limited to the
/// resolved repositories.
pub fn pull_policy(settings: &Settings, graph: &Graph) -> Json {
    let repositories: Vec<String> = graph
        .nodes()
        .map(|node| settings.registry.repository_arn(&node.repository))
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AuthorizationToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {"Sid": "PullPackages", "Effect": "Allow", "Action": PULL_ACTIONS, "Resource": repositories},
        ]
    })
}

/// The `metadata.name` of the Role, Policy and RolePolicyAttachment: the
/// role name as a DNS label. IAM names allow `+=,.@_` and capitals and 64
/// characters; a role name that is not already a label up to case gets a
/// hash ([`object_name`]).
pub fn role_object_name(role_name: &str) -> String {
    object_name("", role_name, Grammar::Iam)
}

/// The composition resource name of a node role's attachment:
/// `iam-attachment-node-<role>` (`eks-nodes` ->
/// `iam-attachment-node-eks-nodes`).
pub fn node_attachment_resource_name(node_role: &str) -> String {
    object_name(&format!("{ATTACHMENT}-node"), node_role, Grammar::Iam)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::dns_label;
    use crate::package::PackageKind;
    use crate::resolve::graph::PackageNode;
    use crate::sdk::request::decode;
    use crate::spec::policy::Origin;
    use crate::spec::xr::XrRef;
    use crate::spec::{Input, XrSpec};
    use serde_json::Value as Json;

    fn settings(region: &str, iam: Json, input: Json) -> Settings {
        let spec: XrSpec = decode(json!({
            "registry": {"accountId": "111122223333", "region": region},
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}],
            "iam": iam
        }))
        .expect("spec");
        let input: Input = decode(input).expect("input");
        // The policy is not under test here: take the XR as the platform's.
        Settings::with_origin(XrRef::named("demo"), &spec, &input, Origin::Platform)
            .expect("settings")
    }

    fn graph() -> Graph {
        let node = |repo: &str| PackageNode {
            repository: repo.to_string(),
            kind: PackageKind::Provider,
            upstream: format!("xpkg.upbound.io/{repo}"),
            name: dns_label(repo),
            version: "v2.2.0".to_string(),
            digest: "sha256:00".to_string(),
            depends_on: Default::default(),
            runtime_config_name: None,
        };
        Graph::new([
            node("upbound/provider-aws-s3"),
            node("upbound/provider-family-aws"),
        ])
        .expect("graph")
    }

    /// The policy documents as JSON, from the composed objects.
    fn documents(planned: &[Planned]) -> (Json, Json) {
        let field = |kind: &str, key: &str| -> Json {
            let object = planned
                .iter()
                .find(|p| p.object["kind"] == kind)
                .expect(kind);
            let text = object.object["spec"]["forProvider"][key]
                .as_str()
                .expect("a JSON string");
            serde_json::from_str(text).expect("valid JSON")
        };
        (field("Role", "assumeRolePolicy"), field("Policy", "policy"))
    }

    #[test]
    fn pull_policy_names_exactly_the_resolved_repositories_in_each_partition() {
        for (region, partition) in [
            ("eu-west-2", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
        ] {
            let (_, policy) =
                documents(&compose(&settings(region, json!({}), json!({})), &graph()));
            assert_eq!(
                policy,
                json!({"Version": "2012-10-17", "Statement": [
                    {"Sid": "AuthorizationToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
                    {"Sid": "PullPackages", "Effect": "Allow",
                     "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer", "ecr:ListImages"],
                     "Resource": [
                        format!("arn:{partition}:ecr:{region}:111122223333:repository/upbound/provider-aws-s3"),
                        format!("arn:{partition}:ecr:{region}:111122223333:repository/upbound/provider-family-aws")
                     ]}
                ]}),
                "{region}"
            );
        }
    }

    #[test]
    fn irsa_trusts_each_service_account_through_the_oidc_provider() {
        let oidc = "oidc.eks.us-gov-west-1.amazonaws.com/id/ABC";
        let s = settings(
            "us-gov-west-1",
            json!({"oidcProvider": oidc, "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}, {"namespace": "x", "name": "y"}]}),
            json!({}),
        );
        let (trust, _) = documents(&compose(&s, &graph()));
        assert_eq!(
            trust,
            json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws-us-gov:iam::111122223333:oidc-provider/{oidc}")},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{oidc}:sub"): ["system:serviceaccount:crossplane-system:crossplane", "system:serviceaccount:x:y"],
                    format!("{oidc}:aud"): "sts.amazonaws.com"
                }}
            }]})
        );
        // A full provider ARN keeps its own account.
        let arn = format!("arn:aws:iam::444455556666:oidc-provider/{oidc}");
        let (trust, _) = documents(&compose(
            &settings("eu-west-2", json!({"oidcProvider": arn}), json!({})),
            &graph(),
        ));
        assert_eq!(trust["Statement"][0]["Principal"]["Federated"], json!(arn));
        assert!(
            trust["Statement"][0]["Condition"]["StringEquals"]
                .get(format!("{oidc}:aud"))
                .is_some()
        );
    }

    #[test]
    fn pod_identity_is_bound_to_the_account_cluster_and_service_accounts() {
        let statement = |namespace: &str, names: &[&str], account: &str, cluster: Option<&str>| {
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
        let cluster = "arn:aws:eks:eu-west-2:444455556666:cluster/prod";
        let accounts = json!([
            {"namespace": "crossplane-system", "name": "crossplane"},
            {"namespace": "team-b", "name": "provider-x"},
            {"namespace": "crossplane-system", "name": "provider-aws"}
        ]);
        // (the XR's iam, the input, the statements expected)
        let cases = [
            (
                json!({"identity": "PodIdentity"}),
                json!({}),
                vec![statement(
                    "crossplane-system",
                    &["crossplane"],
                    "111122223333",
                    None,
                )],
            ),
            (
                json!({"identity": "PodIdentity", "serviceAccounts": accounts}),
                json!({"iam": {"clusterArn": cluster}}),
                vec![
                    statement(
                        "crossplane-system",
                        &["crossplane", "provider-aws"],
                        "444455556666",
                        Some(cluster),
                    ),
                    statement("team-b", &["provider-x"], "444455556666", Some(cluster)),
                ],
            ),
        ];
        for (iam, input, statements) in cases {
            let (trust, _) = documents(&compose(
                &settings("eu-west-2", iam.clone(), input),
                &graph(),
            ));
            assert_eq!(
                trust,
                json!({"Version": "2012-10-17", "Statement": statements}),
                "{iam}"
            );
        }
    }

    #[test]
    fn cluster_and_namespaced_managed_resources() {
        let cluster = compose(
            &settings(
                "eu-west-2",
                json!({"nodeRoleNames": ["Nodes_A"]}),
                json!({}),
            ),
            &graph(),
        );
        let names: Vec<&str> = cluster.iter().map(|p| p.name.as_str()).collect();
        // `_` is folded into `-`, so the name carries a hash.
        assert_eq!(names[..3], [ROLE, POLICY, ATTACHMENT]);
        assert!(
            names[3].starts_with("iam-attachment-node-nodes-a-") && names[3].len() == 38,
            "{}",
            names[3]
        );
        for p in &cluster {
            assert_eq!(p.object["apiVersion"], json!("iam.aws.upbound.io/v1beta1"));
            assert_eq!(
                p.object["spec"]["providerConfigRef"],
                json!({"name": "default"})
            );
            assert!(p.object["metadata"].get("namespace").is_none());
        }
        let role = crate::spec::settings::default_role_name(XrRef::named("demo"), None);
        assert_eq!(
            cluster[2].object["spec"]["forProvider"],
            json!({"roleRef": {"name": role}, "policyArnRef": {"name": role}})
        );
        assert_eq!(
            cluster[3].object["spec"]["forProvider"],
            json!({"role": "Nodes_A", "policyArnRef": {"name": role}})
        );

        let namespaced = compose(
            &settings(
                "eu-west-2",
                json!({}),
                json!({"iam": {"managedResources": "Namespaced", "namespace": "infra", "providerConfigName": "aws"}}),
            ),
            &graph(),
        );
        for p in &namespaced {
            assert_eq!(
                p.object["apiVersion"],
                json!("iam.aws.m.upbound.io/v1beta1")
            );
            assert_eq!(p.object["metadata"]["namespace"], json!("infra"));
            assert_eq!(
                p.object["spec"]["providerConfigRef"],
                json!({"kind": "ClusterProviderConfig", "name": "aws"})
            );
        }
    }

    #[test]
    fn names_are_labels_and_keep_apart() {
        use crate::names::is_label;
        assert_eq!(role_object_name("demo-ecr-pull"), "demo-ecr-pull");
        // IAM names ignore case: one role, one name.
        assert_eq!(role_object_name("Demo-ECR-Pull"), "demo-ecr-pull");
        assert_eq!(
            node_attachment_resource_name("eks-node-role"),
            "iam-attachment-node-eks-node-role"
        );
        let roles = [
            "eks-nodes",
            "eks.nodes",
            "eks_nodes",
            "eks@nodes",
            "eks+nodes",
            "eksnodes",
            "+=,.@_",
            "",
            &"n".repeat(64),
            &format!("{}x", "n".repeat(63)),
        ];
        let mut resources: Vec<String> = roles
            .iter()
            .map(|r| node_attachment_resource_name(r))
            .collect();
        let mut objects: Vec<String> = roles.iter().map(|r| role_object_name(r)).collect();
        for name in resources.iter().chain(&objects) {
            assert!(is_label(name), "{name:?}");
        }
        for list in [&mut resources, &mut objects] {
            list.sort();
            list.dedup();
            assert_eq!(list.len(), roles.len());
        }
    }

    #[test]
    fn role_names_keep_their_aws_spelling() {
        let planned = compose(
            &settings(
                "eu-west-2",
                json!({"roleName": "Crossplane_ECR@Pull"}),
                json!({}),
            ),
            &graph(),
        );
        let name = planned[0].object["metadata"]["name"]
            .as_str()
            .expect("name");
        assert!(
            name.starts_with("crossplane-ecr-pull-") && name.len() == 30,
            "{name}"
        );
        assert_eq!(
            planned[0].object["metadata"]["annotations"]["crossplane.io/external-name"],
            json!("Crossplane_ECR@Pull")
        );
        assert!(
            compose(
                &settings("eu-west-2", json!({"enabled": false}), json!({})),
                &graph()
            )
            .is_empty()
        );
    }
}

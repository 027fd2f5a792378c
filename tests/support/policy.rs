//! The platform policy the trust tests use, and the requests it refuses.

use serde_json::{Value as Json, json};

pub const ACCOUNT: &str = "123456789012";

/// A platform policy that lists what team A may ask for.
pub fn listed_policy() -> Json {
    json!({
        "allowedRegistries": [{"accountId": ACCOUNT, "region": "*"}],
        "allowedRepositories": ["upbound/*", "crossplane-contrib/*"],
        "allowedRuntimeConfigs": ["team-a-*"],
        "allowedActivations": ["*.s3.aws.upbound.io"],
        "iam": {
            "roleName": "platform-pull",
            "oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/PLATFORM",
            "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}],
            "nodeRoleNames": ["platform-nodes"],
            "allowedRoleNames": ["team-a-*"],
            "allowedOidcProviders": ["oidc.eks.*.amazonaws.com/id/TEAMA*"],
            "allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-*"}],
            "allowedNodeRoleNames": ["eks-nodes-*"]
        }
    })
}

pub fn xr(name: &str, spec: Json) -> Json {
    json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages",
           "metadata": {"name": name}, "spec": spec})
}

pub fn base_spec() -> Json {
    json!({
        "registry": {"accountId": ACCOUNT, "region": "eu-west-2"},
        "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}]
    })
}

/// Each request outside the policy, with the XR field and the allowlist
/// the Fatal must name.
pub fn refusals() -> Vec<(Json, Json, &'static str, &'static str)> {
    let with = |patch: Json| {
        let mut spec = base_spec();
        for (k, v) in patch.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        spec
    };
    let iam = |fields: Json| with(json!({"iam": fields}));
    vec![
        (
            with(json!({"registry": {"accountId": "999999999999", "region": "eu-west-2"}})),
            listed_policy(),
            "spec.registry",
            "allowedRegistries",
        ),
        (
            with(
                json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "runtimeConfigName": "cluster-admin"}]}),
            ),
            listed_policy(),
            "spec.packages[0].runtimeConfigName",
            "allowedRuntimeConfigs",
        ),
        (
            iam(json!({"roleName": "OrganizationAccountAccessRole"})),
            listed_policy(),
            "spec.iam.roleName",
            "iam.allowedRoleNames",
        ),
        (
            iam(json!({"oidcProvider": "token.actions.githubusercontent.com"})),
            listed_policy(),
            "spec.iam.oidcProvider",
            "iam.allowedOidcProviders",
        ),
        (
            iam(json!({"serviceAccounts": [{"namespace": "kube-system", "name": "default"}]})),
            listed_policy(),
            "spec.iam.serviceAccounts[0]",
            "iam.allowedServiceAccounts",
        ),
        (
            iam(json!({"nodeRoleNames": ["eks-nodes-a", "Admin"]})),
            listed_policy(),
            "spec.iam.nodeRoleNames[1]",
            "iam.allowedNodeRoleNames",
        ),
        // Secure by default: with no allowlist, no value is accepted.
        (
            iam(json!({"roleName": "team-a-pull"})),
            json!({}),
            "spec.iam.roleName",
            "iam.allowedRoleNames",
        ),
        (
            iam(json!({"oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/TEAMA"})),
            json!({}),
            "spec.iam.oidcProvider",
            "iam.allowedOidcProviders",
        ),
        (
            iam(
                json!({"serviceAccounts": [{"namespace": "crossplane-system", "name": "provider-aws"}]}),
            ),
            json!({}),
            "spec.iam.serviceAccounts[0]",
            "iam.allowedServiceAccounts",
        ),
        (
            iam(json!({"nodeRoleNames": ["eks-nodes-a"]})),
            json!({}),
            "spec.iam.nodeRoleNames[0]",
            "iam.allowedNodeRoleNames",
        ),
        (
            with(
                json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "runtimeConfigName": "team-a-rc"}]}),
            ),
            json!({}),
            "spec.packages[0].runtimeConfigName",
            "allowedRuntimeConfigs",
        ),
        // Activation: a definition outside the allowed globs, a pattern
        // wider than the one allowed, and any entry when none is allowed.
        (
            with(
                json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "activate": ["buckets.s3.aws.upbound.io", "instances.ec2.aws.upbound.io"]}]}),
            ),
            listed_policy(),
            "spec.packages[0].activate[1]",
            "allowedActivations",
        ),
        (
            with(
                json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "activate": ["*.aws.upbound.io"]}]}),
            ),
            listed_policy(),
            "spec.packages[0].activate[0]",
            "allowedActivations",
        ),
        (
            with(
                json!({"packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0", "activate": ["buckets.s3.aws.upbound.io"]}]}),
            ),
            json!({}),
            "spec.packages[0].activate[0]",
            "allowedActivations",
        ),
    ]
}

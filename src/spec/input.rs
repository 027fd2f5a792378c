//! The function's input: what the platform team sets once in the
//! Composition (`apiVersion: ecr.fn.crossplane.io/v1beta1, kind: Input`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;

use super::duration;
use super::xr::{Identity, ServiceAccount, Strategy};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Option<Json>,
    /// Used when the XR does not choose.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default = "default_mirrors")]
    pub mirrors: Vec<Mirror>,
    #[serde(default = "yes")]
    pub resolve_dependencies: bool,
    #[serde(default)]
    pub pin_digests: bool,
    /// Glob patterns (`*` and `?`, not crossing `/`, as Go's path.Match).
    /// Empty allows every repository.
    #[serde(default)]
    pub allowed_repositories: Vec<String>,
    /// The registries (account and region) an XR may name. Missing allows
    /// any: the function's own AWS identity is then the only bound.
    #[serde(default)]
    pub allowed_registries: Option<Vec<AllowedRegistry>>,
    /// Globs for `spec.packages[].runtimeConfigName`; empty means an XR may
    /// not choose a DeploymentRuntimeConfig at all.
    #[serde(default)]
    pub allowed_runtime_configs: Vec<String>,
    #[serde(default)]
    pub iam: IamDefaults,
    /// How long Crossplane may cache a response before calling again.
    #[serde(default = "default_ttl", deserialize_with = "duration::deserialize")]
    pub ttl: Duration,
    /// How long tag lists and tag digests are trusted before ECR is asked again.
    #[serde(
        rename = "tagCacheTTL",
        default = "default_tag_cache_ttl",
        deserialize_with = "duration::deserialize"
    )]
    pub tag_cache_ttl: Duration,
    /// The pipeline step credentials entry holding AWS keys, if any.
    #[serde(default = "default_credentials_name")]
    pub credentials_name: String,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            api_version: None,
            kind: None,
            metadata: None,
            strategy: None,
            mirrors: default_mirrors(),
            resolve_dependencies: true,
            pin_digests: false,
            allowed_repositories: Vec::new(),
            allowed_registries: None,
            allowed_runtime_configs: Vec::new(),
            iam: IamDefaults::default(),
            ttl: default_ttl(),
            tag_cache_ttl: default_tag_cache_ttl(),
            credentials_name: default_credentials_name(),
        }
    }
}

/// Maps an upstream package path prefix to a place in ECR.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mirror {
    /// e.g. `xpkg.upbound.io/`; matched as a plain prefix of the package path.
    pub upstream: String,
    /// Prepended to the rest of the path to form the ECR repository name.
    #[serde(default)]
    pub repository_prefix: String,
}

impl Mirror {
    /// The ECR repository an upstream package path is mirrored to, with the
    /// mirror used. The longest matching upstream prefix wins.
    pub fn repository_for<'m>(
        mirrors: &'m [Mirror],
        upstream_path: &str,
    ) -> Option<(String, &'m Mirror)> {
        mirrors
            .iter()
            .filter(|m| upstream_path.starts_with(&m.upstream))
            .max_by_key(|m| m.upstream.len())
            .map(|m| {
                let rest = &upstream_path[m.upstream.len()..];
                (format!("{}{rest}", m.repository_prefix), m)
            })
    }

    /// The upstream package path a repository mirrors: the mirror with the
    /// longest matching repository prefix, the first listed on a tie, so the
    /// default mirrors read `upbound/x` as `xpkg.upbound.io/upbound/x`.
    pub fn upstream_for<'m>(
        mirrors: &'m [Mirror],
        repository: &str,
    ) -> Option<(String, &'m Mirror)> {
        let mut best: Option<&Mirror> = None;
        for mirror in mirrors {
            if repository.starts_with(&mirror.repository_prefix)
                && best.is_none_or(|b| mirror.repository_prefix.len() > b.repository_prefix.len())
            {
                best = Some(mirror);
            }
        }
        best.map(|m| {
            let rest = &repository[m.repository_prefix.len()..];
            (format!("{}{rest}", m.upstream), m)
        })
    }
}

/// The mirror table used when the input names none: both Crossplane
/// package registries, mirrored under the same names.
pub fn default_mirrors() -> Vec<Mirror> {
    ["xpkg.upbound.io/", "xpkg.crossplane.io/"]
        .into_iter()
        .map(|upstream| Mirror {
            upstream: upstream.to_string(),
            repository_prefix: String::new(),
        })
        .collect()
}

/// One registry an XR may name; either field may be `*`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRegistry {
    pub account_id: String,
    pub region: String,
}

/// A service account an XR may federate the pull role to; both fields are
/// globs.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AllowedServiceAccount {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum ManagedResources {
    /// `iam.aws.upbound.io`, cluster scoped.
    #[default]
    Cluster,
    /// `iam.aws.m.upbound.io`, namespaced (provider-aws v2).
    Namespaced,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamDefaults {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Used when the XR names no role (default `<xr-name>-ecr-pull`).
    #[serde(default)]
    pub role_name: Option<String>,
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The cluster's OIDC provider (IRSA), when the XR names none.
    #[serde(default)]
    pub oidc_provider: Option<String>,
    /// Service accounts trusted under IRSA when the XR names none (default
    /// `crossplane-system/crossplane`).
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
    /// Node roles the pull policy is attached to when the XR names none.
    #[serde(default)]
    pub node_role_names: Vec<String>,
    /// Globs an XR's `iam.roleName` must match; empty: the XR may not set it.
    #[serde(default)]
    pub allowed_role_names: Vec<String>,
    /// Globs each of an XR's `iam.nodeRoleNames` must match; empty: the XR
    /// may not set them.
    #[serde(default)]
    pub allowed_node_role_names: Vec<String>,
    /// Globs an XR's `iam.oidcProvider` must match; empty: the XR may not
    /// set it.
    #[serde(default)]
    pub allowed_oidc_providers: Vec<String>,
    /// Namespace and name globs each of an XR's `iam.serviceAccounts` must
    /// match; empty: the XR may not set them.
    #[serde(default)]
    pub allowed_service_accounts: Vec<AllowedServiceAccount>,
    #[serde(default)]
    pub managed_resources: ManagedResources,
    #[serde(default = "default_provider_config_name")]
    pub provider_config_name: String,
    /// Namespace of namespaced managed resources.
    #[serde(default)]
    pub namespace: Option<String>,
}

impl Default for IamDefaults {
    fn default() -> Self {
        Self {
            enabled: true,
            role_name: None,
            identity: None,
            oidc_provider: None,
            service_accounts: Vec::new(),
            node_role_names: Vec::new(),
            allowed_role_names: Vec::new(),
            allowed_node_role_names: Vec::new(),
            allowed_oidc_providers: Vec::new(),
            allowed_service_accounts: Vec::new(),
            managed_resources: ManagedResources::Cluster,
            provider_config_name: default_provider_config_name(),
            namespace: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}

fn default_tag_cache_ttl() -> Duration {
    Duration::from_secs(300)
}

fn default_credentials_name() -> String {
    "aws-credentials".to_string()
}

fn default_provider_config_name() -> String {
    "default".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use serde_json::json;

    #[test]
    fn defaults_when_empty() {
        let input: Input =
            decode(json!({"apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input"}))
                .expect("valid");
        assert_eq!(input.mirrors, Input::default().mirrors);
        assert_eq!(input.mirrors[0].upstream, "xpkg.upbound.io/");
        assert_eq!(input.mirrors[1].upstream, "xpkg.crossplane.io/");
        assert!(input.resolve_dependencies);
        assert!(!input.pin_digests);
        assert!(input.iam.enabled);
        assert_eq!(input.iam.provider_config_name, "default");
        assert_eq!(input.ttl, Duration::from_secs(60));
        assert_eq!(input.credentials_name, "aws-credentials");
    }

    #[test]
    fn reads_every_field() {
        let input: Input = decode(json!({
            "strategy": "Skip",
            "mirrors": [{"upstream": "xpkg.upbound.io/", "repositoryPrefix": "mirror/"}],
            "resolveDependencies": false,
            "pinDigests": true,
            "allowedRepositories": ["upbound/*"],
            "iam": {"enabled": false, "roleName": "r", "identity": "PodIdentity", "managedResources": "Namespaced", "providerConfigName": "aws", "namespace": "infra"},
            "ttl": "2m",
            "tagCacheTTL": "30s",
            "credentialsName": "creds"
        }))
        .expect("valid");
        assert_eq!(input.strategy, Some(Strategy::Skip));
        assert_eq!(input.mirrors[0].repository_prefix, "mirror/");
        assert!(!input.resolve_dependencies && input.pin_digests);
        assert_eq!(input.iam.managed_resources, ManagedResources::Namespaced);
        assert_eq!(input.iam.identity, Some(Identity::PodIdentity));
        assert_eq!(input.ttl, Duration::from_secs(120));
        assert_eq!(input.tag_cache_ttl, Duration::from_secs(30));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"ttl": "soon"}), "ttl"),
            (
                json!({"mirrors": [{"upstream": "x/", "prefix": ""}]}),
                "mirrors[0].prefix",
            ),
            (
                json!({"iam": {"managedResources": "Both"}}),
                "iam.managedResources",
            ),
            (json!({"pinDigest": true}), "pinDigest"),
        ];
        for (input, field) in cases {
            let err = decode::<Input>(input.clone()).unwrap_err();
            assert_eq!(err.path, field, "{input}: {}", err.message);
        }
    }

    /// The CRD shipped in the package must describe exactly what the
    /// function reads: a field in one but not the other is a silent trap.
    #[test]
    fn the_package_crd_matches_the_input() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/package/input/ecr.fn.crossplane.io_inputs.yaml"
        );
        let crd: Json =
            serde_norway::from_str(&std::fs::read_to_string(path).expect("crd")).expect("yaml");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let keys = |v: &Json| -> Vec<String> {
            let mut k: Vec<String> = v
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        let full = json!({
            "apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input", "metadata": {"name": "x"},
            "strategy": "Skip",
            "mirrors": [{"upstream": "xpkg.upbound.io/", "repositoryPrefix": "m/"}],
            "resolveDependencies": true, "pinDigests": true, "allowedRepositories": ["upbound/*"],
            "allowedRegistries": [{"accountId": "123456789012", "region": "*"}],
            "allowedRuntimeConfigs": ["team-*"],
            "iam": {"enabled": true, "roleName": "r", "identity": "IRSA", "managedResources": "Namespaced", "providerConfigName": "p", "namespace": "n",
                    "oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/A", "serviceAccounts": [{"namespace": "crossplane-system", "name": "crossplane"}],
                    "nodeRoleNames": ["nodes"], "allowedRoleNames": ["team-*"], "allowedNodeRoleNames": ["nodes-*"],
                    "allowedOidcProviders": ["oidc.eks.*.amazonaws.com/id/*"],
                    "allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-*"}]},
            "ttl": "1m", "tagCacheTTL": "1m", "credentialsName": "c"
        });
        decode::<Input>(full.clone()).expect("the function reads every field");
        assert_eq!(keys(&schema["properties"]), keys(&full));
        assert_eq!(
            keys(&schema["properties"]["iam"]["properties"]),
            keys(&full["iam"])
        );
        assert_eq!(
            keys(&schema["properties"]["mirrors"]["items"]["properties"]),
            keys(&full["mirrors"][0])
        );
        assert_eq!(
            keys(&schema["properties"]["allowedRegistries"]["items"]["properties"]),
            keys(&full["allowedRegistries"][0])
        );
        for list in ["serviceAccounts", "allowedServiceAccounts"] {
            assert_eq!(
                keys(&schema["properties"]["iam"]["properties"][list]["items"]["properties"]),
                keys(&full["iam"][list][0]),
                "{list}"
            );
        }
    }
}

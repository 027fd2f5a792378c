//! The user's API: the `spec` of an XEcrPackages composite (or any XR whose
//! Composition runs this function).

use serde::Deserialize;
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::registry::PackageKind;
use crate::sdk::request::decode;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct XrSpec {
    pub registry: RegistrySpec,
    pub packages: Vec<PackageRequest>,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub iam: Option<IamSpec>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySpec {
    pub account_id: String,
    pub region: String,
}

/// One package the user wants installed.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageRequest {
    pub kind: PackageKind,
    /// ECR repository name, e.g. `upbound/provider-aws-s3`.
    pub repository: String,
    /// A tag, a Masterminds constraint, or a `sha256:` digest.
    pub version: String,
    /// Overrides the package object's `metadata.name`.
    #[serde(default)]
    pub name: Option<String>,
    /// Sets `spec.runtimeConfigRef.name` (Providers and Functions).
    #[serde(default)]
    pub runtime_config_name: Option<String>,
}

/// How packages reach ECR instead of their upstream registry.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Strategy {
    /// An ImageConfig rewrites upstream paths to the mirror (Crossplane >= 1.20).
    Rewrite,
    /// Packages point at ECR directly with dependency resolution off, and
    /// every dependency is composed explicitly (older Crossplane).
    Skip,
}

/// How Crossplane's pods get permission to pull from ECR.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Identity {
    /// IAM Roles for Service Accounts: an OIDC-federated trust policy.
    #[serde(rename = "IRSA")]
    Irsa,
    /// EKS Pod Identity: trust the pods.eks.amazonaws.com service.
    PodIdentity,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub role_name: Option<String>,
    #[serde(default)]
    pub identity: Option<Identity>,
    #[serde(default)]
    pub oidc_provider: Option<String>,
    #[serde(default)]
    pub service_accounts: Option<Vec<ServiceAccount>>,
    #[serde(default)]
    pub node_role_names: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

impl XrSpec {
    /// Reads and validates `spec` of the observed composite. Unknown fields
    /// at the top of `spec` are Crossplane's own (`crossplane`, `claimRef`,
    /// `compositionRef`...) and are ignored; inside our fields they are typos
    /// and rejected.
    pub fn from_composite(composite: &Json) -> Result<Self> {
        let spec = composite
            .get("spec")
            .cloned()
            .ok_or_else(|| invalid("spec", "the composite resource has no spec"))?;
        let parsed: XrSpec =
            decode(spec).map_err(|e| invalid(&format!("spec.{}", e.path), &e.message))?;
        parsed.validate()?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<()> {
        let account = &self.registry.account_id;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "spec.registry.accountId",
                &format!("{account:?} is not a 12-digit AWS account id"),
            ));
        }
        if !is_region(&self.registry.region) {
            return Err(invalid(
                "spec.registry.region",
                &format!(
                    "{:?} is not an AWS region name like eu-west-2",
                    self.registry.region
                ),
            ));
        }
        if self.packages.is_empty() {
            return Err(invalid("spec.packages", "at least one package is required"));
        }
        for (i, package) in self.packages.iter().enumerate() {
            let at = |field: &str| format!("spec.packages[{i}].{field}");
            if !is_repository_name(&package.repository) {
                return Err(invalid(
                    &at("repository"),
                    &format!(
                        "{:?} is not an ECR repository name (lowercase path segments like upbound/provider-aws-s3)",
                        package.repository
                    ),
                ));
            }
            if package.version.trim().is_empty() {
                return Err(invalid(
                    &at("version"),
                    "a tag, constraint or sha256 digest is required",
                ));
            }
            if let Some(name) = &package.name
                && !is_dns_label(name)
            {
                return Err(invalid(
                    &at("name"),
                    &format!("{name:?} is not a DNS label"),
                ));
            }
            if let Some(earlier) = self.packages[..i]
                .iter()
                .position(|p| p.repository == package.repository)
            {
                return Err(invalid(
                    &at("repository"),
                    &format!(
                        "{:?} is already listed at spec.packages[{earlier}]",
                        package.repository
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn invalid(field: &str, message: &str) -> Error {
    Error::InvalidSpec {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// `eu-west-2`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-3`.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// ECR's repository name grammar: lowercase path components of alphanumerics
/// separated by `.`, `_` or `-`, joined with `/`, 2 to 256 characters.
pub fn is_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|component| {
            !component.is_empty()
                && component.split(['.', '_', '-']).all(|run| {
                    !run.is_empty()
                        && run
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

/// RFC 1123 label, as Kubernetes requires for package names.
pub fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn composite(spec: Json) -> Json {
        json!({"apiVersion": "platform.example.org/v1alpha1", "kind": "XEcrPackages", "metadata": {"name": "x"}, "spec": spec})
    }

    fn valid_spec() -> Json {
        json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [
                {"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": ">=v2.0.0"},
                {"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform", "version": "v0.8.2", "name": "pat", "runtimeConfigName": "rc"}
            ],
            "strategy": "Skip",
            "iam": {"identity": "IRSA", "oidcProvider": "oidc.eks.eu-west-2.amazonaws.com/id/ABC", "nodeRoleNames": ["nodes"]},
            "crossplane": {"compositionRef": {"name": "ignored"}}
        })
    }

    #[test]
    fn parses_a_full_spec() {
        let spec = XrSpec::from_composite(&composite(valid_spec())).expect("valid");
        assert_eq!(spec.packages.len(), 2);
        assert_eq!(spec.packages[1].kind, PackageKind::Function);
        assert_eq!(spec.packages[1].runtime_config_name.as_deref(), Some("rc"));
        assert_eq!(spec.strategy, Some(Strategy::Skip));
        let iam = spec.iam.expect("iam");
        assert_eq!(iam.identity, Some(Identity::Irsa));
        assert_eq!(iam.node_role_names, vec!["nodes".to_string()]);
    }

    #[test]
    fn bad_specs_name_the_field() {
        type Mutation = Box<dyn Fn(&mut Json)>;
        let cases: Vec<(Mutation, &str, &str)> = vec![
            (
                Box::new(|s| s["registry"]["accountId"] = json!("12345")),
                "spec.registry.accountId",
                "12-digit",
            ),
            (
                Box::new(|s| s["registry"]["accountId"] = json!(123456789012_u64)),
                "spec.registry.accountId",
                "invalid type",
            ),
            (
                Box::new(|s| s["registry"]["region"] = json!("Europe")),
                "spec.registry.region",
                "region",
            ),
            (
                Box::new(|s| {
                    s["registry"]
                        .as_object_mut()
                        .map(|o| o.remove("region"))
                        .map(|_| ())
                        .unwrap_or(())
                }),
                "spec.registry",
                "missing field `region`",
            ),
            (
                Box::new(|s| s["packages"] = json!([])),
                "spec.packages",
                "at least one",
            ),
            (
                Box::new(|s| s["packages"][0]["kind"] = json!("Composition")),
                "spec.packages[0].kind",
                "unknown variant",
            ),
            (
                Box::new(|s| s["packages"][1]["repository"] = json!("Upbound/Bad")),
                "spec.packages[1].repository",
                "ECR repository name",
            ),
            (
                Box::new(|s| s["packages"][1]["version"] = json!(" ")),
                "spec.packages[1].version",
                "required",
            ),
            (
                Box::new(|s| s["packages"][1]["name"] = json!("Not_A_Label")),
                "spec.packages[1].name",
                "DNS label",
            ),
            (
                Box::new(|s| s["packages"][1]["repository"] = json!("upbound/provider-aws-s3")),
                "spec.packages[1].repository",
                "already listed at spec.packages[0]",
            ),
            (
                Box::new(|s| s["packages"][0]["versoin"] = json!("1")),
                "spec.packages[0].versoin",
                "unknown field",
            ),
            (
                Box::new(|s| s["strategy"] = json!("Mirror")),
                "spec.strategy",
                "unknown variant",
            ),
            (
                Box::new(|s| s["iam"]["identity"] = json!("Irsa")),
                "spec.iam.identity",
                "unknown variant",
            ),
        ];
        for (mutate, field, message) in cases {
            let mut spec = valid_spec();
            mutate(&mut spec);
            match XrSpec::from_composite(&composite(spec.clone())) {
                Err(Error::InvalidSpec {
                    field: f,
                    message: m,
                }) => {
                    assert_eq!(f, field, "{spec}");
                    assert!(m.contains(message), "{field}: {m}");
                }
                other => panic!("{field}: expected InvalidSpec, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_composite_without_spec_is_refused() {
        let err = XrSpec::from_composite(&json!({"kind": "XEcrPackages"})).unwrap_err();
        assert!(err.to_string().contains("no spec"), "{err}");
    }

    #[test]
    fn repository_names() {
        for (name, ok) in [
            ("upbound/provider-aws-s3", true),
            ("crossplane-contrib/function-patch-and-transform", true),
            ("mirror/upbound/provider_x.y", true),
            ("a", false),
            ("Upbound/x", false),
            ("upbound//x", false),
            ("upbound/-x", false),
            ("upbound/x-", false),
            ("/upbound", false),
        ] {
            assert_eq!(is_repository_name(name), ok, "{name}");
        }
    }
}

//! The user's API: the `spec` of an XEcrPackages composite (or any XR whose
//! Composition runs this function).

// Hashed for every listed package of every call: foldhash, not SipHash.
use foldhash::HashMap;

use crate::sdk::protobuf::Value;
use serde::Deserialize;
use serde_json::Value as Json;

use super::limits::{self, *};
use crate::error::{Error, Result};
use crate::names::{is_label, is_repository_name};
use crate::package::PackageKind;
use crate::sdk::request::{FieldError, decode_ref, decode_value};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct XrSpec {
    pub registry: RegistrySpec,
    #[serde(deserialize_with = "limits::list::<MAX_PACKAGES, _, _>")]
    pub packages: Vec<PackageRequest>,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub iam: Option<IamSpec>,
    #[serde(default)]
    pub upgrades: Option<UpgradesSpec>,
}

/// `spec.upgrades`: the XR's say over the rollouts of its packages, within
/// the input's `upgrades`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradesSpec {
    /// Holds every installed package at what it is on; new packages still
    /// install. Refused when the input's `upgrades.allowPause` is false.
    #[serde(default)]
    pub paused: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySpec {
    #[serde(deserialize_with = "limits::string::<MAX_ACCOUNT_ID_LEN, _>")]
    pub account_id: String,
    #[serde(deserialize_with = "limits::string::<MAX_REGION_LEN, _>")]
    pub region: String,
}

/// One package the user wants installed.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageRequest {
    pub kind: PackageKind,
    /// ECR repository name, e.g. `upbound/provider-aws-s3`.
    #[serde(deserialize_with = "limits::string::<MAX_REPOSITORY_LEN, _>")]
    pub repository: String,
    /// A tag, a Masterminds constraint, or a `sha256:` digest.
    #[serde(deserialize_with = "limits::string::<MAX_VERSION_LEN, _>")]
    pub version: String,
    /// Overrides the package object's `metadata.name`.
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_PACKAGE_NAME_LEN, _>"
    )]
    pub name: Option<String>,
    /// Sets `spec.runtimeConfigRef.name` (Providers and Functions).
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_RUNTIME_CONFIG_NAME_LEN, _>"
    )]
    pub runtime_config_name: Option<String>,
    /// Managed resource definitions to activate once the package is
    /// installed (names or leading-`*` patterns, see `spec::activation`),
    /// within the input's `allowedActivations`; the package is ready only
    /// once they are active.
    #[serde(
        default,
        deserialize_with = "limits::strings::<MAX_ACTIVATIONS, MAX_ACTIVATION_LEN, _>"
    )]
    pub activate: Vec<String>,
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

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Irsa => "IRSA",
            Identity::PodIdentity => "PodIdentity",
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which XR a call is about: its name, and its UID, which tells apart two
/// XRs of one name (one per cluster, or one deleted and made again). Both
/// come from the observed composite's metadata, which the API server sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XrRef<'a> {
    /// Its kind (`XEcrPackages`), as a controller reference names it.
    pub kind: &'a str,
    pub name: &'a str,
    /// None when the composite has none (tests, `bootstrap`).
    pub uid: Option<&'a str>,
}

impl<'a> XrRef<'a> {
    /// An XR known by name alone.
    pub fn named(name: &'a str) -> Self {
        Self {
            kind: "",
            name,
            uid: None,
        }
    }

    /// The kind, name (`xr` when missing) and UID of an observed composite.
    pub fn of(composite: &'a Json) -> Self {
        let text = |pointer: &str| {
            composite
                .pointer(pointer)
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
        };
        Self {
            kind: text("/kind").unwrap_or_default(),
            name: text("/metadata/name").unwrap_or("xr"),
            uid: text("/metadata/uid"),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_ROLE_NAME_LEN, _>"
    )]
    pub role_name: Option<String>,
    #[serde(default)]
    pub identity: Option<Identity>,
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_OIDC_PROVIDER_LEN, _>"
    )]
    pub oidc_provider: Option<String>,
    #[serde(
        default,
        deserialize_with = "limits::option_list::<MAX_SERVICE_ACCOUNTS, ServiceAccount, _>"
    )]
    pub service_accounts: Option<Vec<ServiceAccount>>,
    #[serde(
        default,
        deserialize_with = "limits::strings::<MAX_NODE_ROLES, MAX_ROLE_NAME_LEN, _>"
    )]
    pub node_role_names: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    #[serde(deserialize_with = "limits::string::<MAX_NAMESPACE_LEN, _>")]
    pub namespace: String,
    #[serde(deserialize_with = "limits::string::<MAX_SERVICE_ACCOUNT_NAME_LEN, _>")]
    pub name: String,
}

impl XrSpec {
    /// Reads and validates `spec` of the observed composite. Unknown fields
    /// at the top of `spec` are Crossplane's own (`crossplane`, `claimRef`,
    /// `compositionRef`...) and are ignored; inside our fields they are typos
    /// and rejected. Every string and list is held to its bound in
    /// [`super::limits`] as it is decoded, before any check reads it.
    pub fn from_composite(composite: &Json) -> Result<Self> {
        let spec = composite
            .get("spec")
            .ok_or_else(|| invalid("spec", "the composite resource has no spec"))?;
        Self::checked(decode_ref(spec))
    }

    /// [`XrSpec::from_composite`], from the composite's `spec` as the
    /// request holds it (`None`: it has none), read without JSON between.
    pub fn from_spec_value(spec: Option<&Value>) -> Result<Self> {
        let spec = spec.ok_or_else(|| invalid("spec", "the composite resource has no spec"))?;
        Self::checked(decode_value(spec))
    }

    fn checked(decoded: std::result::Result<Self, FieldError>) -> Result<Self> {
        let parsed = decoded.map_err(|e| invalid(&format!("spec.{}", e.path), &e.message))?;
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
        // Where each repository is first listed: a repeat is found in one
        // lookup, not by scanning every earlier entry.
        let mut first: HashMap<&str, usize> =
            HashMap::with_capacity_and_hasher(self.packages.len(), Default::default());
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
                && !is_label(name)
            {
                return Err(invalid(
                    &at("name"),
                    &format!("{name:?} is not a DNS label"),
                ));
            }
            if let Some(&earlier) = first.get(package.repository.as_str()) {
                return Err(invalid(
                    &at("repository"),
                    &format!(
                        "{:?} is already listed at spec.packages[{earlier}]",
                        package.repository
                    ),
                ));
            }
            first.insert(&package.repository, i);
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

/// An AWS region name, in the shape every partition's regions share
/// (`botocore`'s `regionRegex`es): a 2-4 letter area (`us`, `eu`, `ap`,
/// `cn`, `il`, `eusc`...), one or two groups of lowercase letters (`west`,
/// `gov-west`, `isob-east`, `de-east`), and a number from 1 to 99:
/// `eu-west-2`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-3`,
/// `il-central-1`, `eusc-de-east-1`, `us-isof-south-1`. One pass, no
/// allocation.
pub fn is_region(region: &str) -> bool {
    if region.len() > MAX_REGION_LEN {
        return false;
    }
    let mut groups = region.split('-');
    let Some(area) = groups.next() else {
        return false;
    };
    if !((2..=4).contains(&area.len()) && area.bytes().all(|b| b.is_ascii_lowercase())) {
        return false;
    }
    let (mut words, mut number) = (0, None);
    for group in groups {
        if number.is_some() {
            return false;
        }
        if !group.is_empty() && group.bytes().all(|b| b.is_ascii_lowercase()) {
            words += 1;
        } else {
            number = Some(group);
        }
    }
    let Some(number) = number else {
        return false;
    };
    let digits = number.as_bytes();
    (1..=2).contains(&words)
        && (1..=2).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits[0] != b'0'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::structs::json_to_value;
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
        assert_eq!(spec.upgrades, None);
        let iam = spec.iam.expect("iam");
        assert_eq!(iam.identity, Some(Identity::Irsa));
        let mut paused = valid_spec();
        paused["upgrades"] = json!({"paused": true});
        let paused = XrSpec::from_composite(&composite(paused)).expect("valid");
        assert_eq!(paused.upgrades, Some(UpgradesSpec { paused: true }));
        assert_eq!(iam.node_role_names, vec!["nodes".to_string()]);
    }

    type Mutation = fn(&mut Json);

    /// Each case: what is changed in a valid spec, the field the error
    /// must name, and text its message must contain.
    const BAD_SPECS: &[(Mutation, &str, &str)] = &[
        (
            |s| s["registry"]["accountId"] = json!("12345"),
            "spec.registry.accountId",
            "12-digit",
        ),
        (
            |s| s["registry"]["accountId"] = json!(123456789012_u64),
            "spec.registry.accountId",
            "invalid type",
        ),
        (
            |s| s["registry"]["region"] = json!("Europe"),
            "spec.registry.region",
            "region",
        ),
        (
            |s| {
                s["registry"]
                    .as_object_mut()
                    .map(|o| o.remove("region"))
                    .map(|_| ())
                    .unwrap_or(())
            },
            "spec.registry",
            "missing field `region`",
        ),
        (
            |s| s["packages"] = json!([]),
            "spec.packages",
            "at least one",
        ),
        (
            |s| s["packages"][0]["kind"] = json!("Composition"),
            "spec.packages[0].kind",
            "unknown variant",
        ),
        (
            |s| s["packages"][1]["repository"] = json!("Upbound/Bad"),
            "spec.packages[1].repository",
            "ECR repository name",
        ),
        (
            |s| s["packages"][1]["version"] = json!(" "),
            "spec.packages[1].version",
            "required",
        ),
        (
            |s| s["packages"][1]["name"] = json!("Not_A_Label"),
            "spec.packages[1].name",
            "DNS label",
        ),
        (
            |s| s["packages"][1]["repository"] = json!("upbound/provider-aws-s3"),
            "spec.packages[1].repository",
            "already listed at spec.packages[0]",
        ),
        (
            // Listed a third and a fourth time: the first repeat is named,
            // with where the repository was first listed.
            |s| {
                let first = s["packages"][0].clone();
                if let Some(packages) = s["packages"].as_array_mut() {
                    packages.extend([first.clone(), first]);
                }
            },
            "spec.packages[2].repository",
            "already listed at spec.packages[0]",
        ),
        (
            |s| s["packages"][0]["versoin"] = json!("1"),
            "spec.packages[0].versoin",
            "unknown field",
        ),
        (
            |s| s["strategy"] = json!("Mirror"),
            "spec.strategy",
            "unknown variant",
        ),
        (
            |s| s["upgrades"] = json!({"paused": "yes"}),
            "spec.upgrades.paused",
            "invalid type",
        ),
        (
            |s| s["upgrades"] = json!({"windows": []}),
            "spec.upgrades.windows",
            "unknown field",
        ),
        (
            |s| s["iam"]["identity"] = json!("Irsa"),
            "spec.iam.identity",
            "unknown variant",
        ),
        (
            |s| s["registry"]["region"] = json!("eu-west-+2"),
            "spec.registry.region",
            "not an AWS region",
        ),
        // Bounds: checked as the value is decoded, before anything else.
        (
            |s| s["registry"]["accountId"] = json!("1234567890123"),
            "spec.registry.accountId",
            "at most 12 characters, got 13",
        ),
        (
            |s| s["registry"]["region"] = json!("eu-".repeat(400_000)),
            "spec.registry.region",
            "at most 32 characters, got 1200000",
        ),
        (
            |s| s["packages"] = json!(many_packages(MAX_PACKAGES + 1)),
            "spec.packages",
            "at most 500 items, got 501",
        ),
        (
            |s| s["packages"][1]["repository"] = json!("a/".repeat(129)),
            "spec.packages[1].repository",
            "at most 256 characters, got 258",
        ),
        (
            |s| s["packages"][1]["version"] = json!(">=".repeat(1 << 19)),
            "spec.packages[1].version",
            "at most 256 characters, got 1048576",
        ),
        (
            |s| s["packages"][0]["name"] = json!("n".repeat(64)),
            "spec.packages[0].name",
            "at most 63 characters",
        ),
        (
            |s| s["packages"][1]["runtimeConfigName"] = json!("r".repeat(254)),
            "spec.packages[1].runtimeConfigName",
            "at most 253 characters",
        ),
        (
            |s| s["iam"]["roleName"] = json!("r".repeat(65)),
            "spec.iam.roleName",
            "at most 64 characters",
        ),
        (
            |s| s["iam"]["oidcProvider"] = json!("o".repeat(513)),
            "spec.iam.oidcProvider",
            "at most 512 characters",
        ),
        (
            |s| {
                s["iam"]["serviceAccounts"] =
                    json!(vec![json!({"namespace": "n", "name": "a"}); 33])
            },
            "spec.iam.serviceAccounts",
            "at most 32 items",
        ),
        (
            |s| s["iam"]["serviceAccounts"] = json!([{"namespace": "n".repeat(64), "name": "a"}]),
            "spec.iam.serviceAccounts[0].namespace",
            "at most 63 characters",
        ),
        (
            |s| s["iam"]["serviceAccounts"] = json!([{"namespace": "n", "name": "a".repeat(254)}]),
            "spec.iam.serviceAccounts[0].name",
            "at most 253 characters",
        ),
        (
            |s| s["iam"]["nodeRoleNames"] = json!(vec!["r"; 33]),
            "spec.iam.nodeRoleNames",
            "at most 32 items",
        ),
        (
            |s| s["iam"]["nodeRoleNames"] = json!(["a", "b", "r".repeat(65)]),
            "spec.iam.nodeRoleNames[2]",
            "at most 64 characters",
        ),
    ];

    #[test]
    fn bad_specs_name_the_field() {
        let cases = BAD_SPECS;
        for &(mutate, field, message) in cases {
            let mut spec = valid_spec();
            mutate(&mut spec);
            let read = XrSpec::from_composite(&composite(spec.clone()));
            // A call reads the spec straight from the request's protobuf:
            // to the same error.
            let typed = XrSpec::from_spec_value(Some(&json_to_value(&spec)));
            assert_eq!(
                format!("{typed:?}"),
                format!("{read:?}"),
                "{field}: read from protobuf"
            );
            match read {
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
    fn specs_read_from_protobuf_as_from_json() {
        for spec in [
            valid_spec(),
            json!({"registry": {}}),
            json!(null),
            json!([]),
        ] {
            let read = XrSpec::from_composite(&composite(spec.clone()));
            let typed = XrSpec::from_spec_value(Some(&json_to_value(&spec)));
            assert_eq!(format!("{typed:?}"), format!("{read:?}"), "{spec}");
        }
        let missing = XrSpec::from_spec_value(None);
        let read = XrSpec::from_composite(&json!({"kind": "XEcrPackages"}));
        assert_eq!(format!("{missing:?}"), format!("{read:?}"));
    }

    fn many_packages(n: usize) -> Vec<Json> {
        (0..n)
            .map(|i| json!({"kind": "Provider", "repository": format!("upbound/provider-{i}"), "version": "v1.0.0"}))
            .collect()
    }

    #[test]
    fn the_package_limit_leaves_room() {
        for n in [200, MAX_PACKAGES] {
            let mut spec = valid_spec();
            spec["packages"] = json!(many_packages(n));
            let parsed = XrSpec::from_composite(&composite(spec)).expect("within the limit");
            assert_eq!(parsed.packages.len(), n);
        }
        // At the limit exactly, every string is accepted.
        let mut spec = valid_spec();
        spec["packages"][1]["repository"] = json!(format!("a/{}", "b".repeat(254)));
        spec["packages"][1]["version"] = json!("v".repeat(256));
        spec["packages"][1]["name"] = json!("n".repeat(63));
        spec["iam"]["roleName"] = json!("r".repeat(64));
        XrSpec::from_composite(&composite(spec)).expect("at the limits");
    }

    #[test]
    fn regions() {
        for (region, ok) in [
            ("eu-west-2", true),
            ("us-east-1", true),
            ("us-gov-west-1", true),
            ("us-gov-east-1", true),
            ("cn-north-1", true),
            ("cn-northwest-1", true),
            ("ap-southeast-3", true),
            ("ap-northeast-1", true),
            ("il-central-1", true),
            ("me-central-1", true),
            ("mx-central-1", true),
            ("af-south-1", true),
            ("ca-west-1", true),
            ("eusc-de-east-1", true),
            ("us-iso-east-1", true),
            ("us-isob-east-1", true),
            ("eu-isoe-west-1", true),
            ("us-isof-south-1", true),
            ("eu-west-12", true),
            ("eu-west-+2", false),
            ("eu-west--2", false),
            ("eu-west-2-", false),
            ("eu--west-2", false),
            ("-eu-west-2", false),
            ("eu-west-02", false),
            ("eu-west-0", false),
            ("eu-west-123", false),
            ("eu-west-2a", false),
            ("eu-west", false),
            ("eu-2", false),
            ("EU-west-2", false),
            ("e-west-2", false),
            ("europe-west-2", false),
            ("us-gov-iso-west-1", false),
            ("aws-cn-global", false),
            ("eu-west-٢", false),
            ("eu-west-2 ", false),
            ("", false),
        ] {
            assert_eq!(is_region(region), ok, "{region}");
        }
    }

    /// Both XRDs declare a bound on every string and list of the spec and
    /// the status, the same as the function enforces (or writes at most).
    #[test]
    fn the_xrds_declare_the_bounds() {
        let expected: std::collections::BTreeMap<String, usize> = [
            ("spec.registry.accountId", MAX_ACCOUNT_ID_LEN),
            ("spec.registry.region", MAX_REGION_LEN),
            ("spec.packages[]", MAX_PACKAGES),
            ("spec.packages[].kind", MAX_ENUM_LEN),
            ("spec.packages[].repository", MAX_REPOSITORY_LEN),
            ("spec.packages[].version", MAX_VERSION_LEN),
            ("spec.packages[].name", MAX_PACKAGE_NAME_LEN),
            (
                "spec.packages[].runtimeConfigName",
                MAX_RUNTIME_CONFIG_NAME_LEN,
            ),
            ("spec.strategy", MAX_ENUM_LEN),
            ("spec.iam.roleName", MAX_ROLE_NAME_LEN),
            ("spec.iam.identity", MAX_ENUM_LEN),
            ("spec.iam.oidcProvider", MAX_OIDC_PROVIDER_LEN),
            ("spec.iam.serviceAccounts[]", MAX_SERVICE_ACCOUNTS),
            ("spec.iam.serviceAccounts[].namespace", MAX_NAMESPACE_LEN),
            (
                "spec.iam.serviceAccounts[].name",
                MAX_SERVICE_ACCOUNT_NAME_LEN,
            ),
            ("spec.iam.nodeRoleNames[]", MAX_NODE_ROLES),
            ("spec.iam.nodeRoleNames[]item", MAX_ROLE_NAME_LEN),
            ("spec.packages[].activate[]", MAX_ACTIVATIONS),
            ("spec.packages[].activate[]item", MAX_ACTIVATION_LEN),
            ("status.packages[]", MAX_STATUS_PACKAGES),
            ("status.packages[].name", MAX_PACKAGE_NAME_LEN),
            ("status.packages[].kind", MAX_ENUM_LEN),
            ("status.packages[].repository", MAX_REPOSITORY_LEN),
            ("status.packages[].version", MAX_VERSION_LEN),
            ("status.packages[].digest", MAX_DIGEST_LEN),
            ("status.packages[].package", MAX_STATUS_PACKAGE_REF_LEN),
            ("status.packages[].dependsOn[]", MAX_STATUS_PACKAGES),
            ("status.packages[].dependsOn[]item", MAX_PACKAGE_NAME_LEN),
            ("status.packages[].sharedWith", MAX_SHARED_WITH_LEN),
            ("status.packages[].available", MAX_VERSION_LEN),
            ("status.packages[].skipped[]", limits::MAX_SKIPPED),
            ("status.packages[].skipped[].version", MAX_VERSION_LEN),
            (
                "status.packages[].skipped[].reason",
                limits::MAX_SKIPPED_REASON_LEN,
            ),
            ("status.packages[].rollout.from", MAX_STATUS_PACKAGE_REF_LEN),
            ("status.packages[].rollout.to", MAX_STATUS_PACKAGE_REF_LEN),
            ("status.packages[].rollout.phase", MAX_ENUM_LEN),
            ("status.packages[].rollout.since", MAX_TIMESTAMP_LEN),
            ("status.quarantined[]", MAX_QUARANTINED),
            ("status.quarantined[].name", MAX_PACKAGE_NAME_LEN),
            ("status.quarantined[].version", MAX_VERSION_LEN),
            ("status.quarantined[].digest", MAX_DIGEST_LEN),
            ("status.quarantined[].reason", MAX_QUARANTINE_REASON_LEN),
            ("status.quarantined[].until", MAX_TIMESTAMP_LEN),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        for (file, schema) in xrd_schemas() {
            assert_eq!(
                limits::declared_bounds(&schema),
                Ok(expected.clone()),
                "{file}"
            );
            // The region pattern is is_region's grammar.
            let pattern = schema["properties"]["spec"]["properties"]["registry"]["properties"]
                ["region"]["pattern"]
                .as_str()
                .expect("pattern");
            assert_eq!(pattern, "^[a-z]{2,4}(-[a-z]+){1,2}-[1-9][0-9]?$", "{file}");
        }
    }

    /// The OpenAPI schema of each example XRD, by file name.
    fn xrd_schemas() -> Vec<(&'static str, Json)> {
        ["xrd.yaml", "xrd-legacy.yaml"]
            .into_iter()
            .map(|file| {
                let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
                let text = std::fs::read_to_string(&path).expect("xrd");
                let xrd: Json = serde_norway::from_str(&text).expect("yaml");
                let schema = xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
                (file, schema)
            })
            .collect()
    }

    #[test]
    fn the_xrds_declare_upgrades_as_the_rollout_engine_reads_and_writes_them() {
        for (file, schema) in xrd_schemas() {
            // spec.upgrades is what UpgradesSpec reads; the status fields
            // the rollout engine writes are declared as it writes them.
            let upgrades = &schema["properties"]["spec"]["properties"]["upgrades"]["properties"];
            let fields: Vec<&String> = upgrades.as_object().expect("properties").keys().collect();
            assert_eq!(fields, ["paused"], "{file}");
            assert_eq!(upgrades["paused"]["type"], json!("boolean"), "{file}");
            let status = &schema["properties"]["status"]["properties"];
            let rollout = &status["packages"]["items"]["properties"]["rollout"];
            assert_eq!(
                rollout["properties"]["phase"]["enum"],
                json!(["Pending", "Progressing", "RolledBack"]),
                "{file}"
            );
            assert_eq!(
                rollout["required"],
                json!(["from", "to", "phase", "since"]),
                "{file}"
            );
            let quarantined = &status["quarantined"]["items"];
            assert_eq!(
                quarantined["required"],
                json!(["name", "version", "digest", "until"]),
                "{file}"
            );
            for time in [
                &rollout["properties"]["since"],
                &quarantined["properties"]["until"],
            ] {
                assert_eq!(time["format"], json!("date-time"), "{file}");
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

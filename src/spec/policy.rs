//! The trust model in code. The Composition's input is the platform team's
//! policy and is trusted; the XR (or the claim behind it) is a request from
//! an app team and is not. Every privilege an XR can ask for (the registry
//! read with the function's identity, IAM role names, OIDC providers,
//! service accounts, node roles, runtime configs) is checked here against
//! the input's allowlists before anything is read from AWS.
//!
//! An allowlist that is empty (or missing) means the XR may not set the
//! field at all; the input's own value or the built-in default is used.
//! `allowedRegistries` is the one exception: missing or empty (`[]`, read
//! as missing, see [`Input::allowed_registries`]) means any registry, since
//! the function's own AWS identity already bounds what it can read.

use super::activation::Definitions;
pub use super::glob::{glob_match, matches_any, path_match};
use super::input::{AllowedRegistry, AllowedServiceAccount, Input};
use super::xr::{Identity, RegistrySpec, ServiceAccount, XrSpec};
use crate::error::{Error, Result};

/// Who wrote the XR, and so whether the input's allowlists bound it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A RunFunction call: the XR is an app team's request.
    Request,
    /// `bootstrap`: the platform team runs it on its own XR.
    Platform,
}

/// Checks an XR's requests against an input's allowlists.
pub struct Policy<'a> {
    input: &'a Input,
    origin: Origin,
}

impl<'a> Policy<'a> {
    pub fn new(input: &'a Input, origin: Origin) -> Self {
        Self { input, origin }
    }

    /// Every check that needs nothing but the XR's spec: the registry and
    /// the runtime configs. IAM is checked as its settings are worked out.
    pub fn check_spec(&self, spec: &XrSpec) -> Result<()> {
        self.check_registry(&spec.registry)?;
        for (i, package) in spec.packages.iter().enumerate() {
            if let Some(runtime) = &package.runtime_config_name {
                self.check(
                    &format!("spec.packages[{i}].runtimeConfigName"),
                    runtime,
                    "allowedRuntimeConfigs",
                    &self.input.allowed_runtime_configs,
                )?;
            }
        }
        Ok(())
    }

    fn check_registry(&self, registry: &RegistrySpec) -> Result<()> {
        let Some(allowed) = &self.input.allowed_registries else {
            return Ok(());
        };
        if self.origin == Origin::Platform || registry_allowed(allowed, registry) {
            return Ok(());
        }
        Err(refused(
            "spec.registry",
            "allowedRegistries",
            format!(
                "account {:?} in region {:?} is not an allowed registry",
                registry.account_id, registry.region
            ),
        ))
    }

    /// `value`, set by the XR at `field`, must match one of `patterns`.
    pub fn check(
        &self,
        field: &str,
        value: &str,
        allowlist: &str,
        patterns: &[String],
    ) -> Result<()> {
        if self.origin == Origin::Platform || matches_any(patterns, value) {
            return Ok(());
        }
        Err(not_allowed(field, value, allowlist, patterns.is_empty()))
    }

    /// An entry of `spec.packages[].activate` must be within one of the
    /// input's `allowedActivations` (see [`Definitions::within`]).
    pub fn check_activation(&self, field: &str, asked: &Definitions) -> Result<()> {
        let allowed = &self.input.allowed_activations;
        if self.origin == Origin::Platform || allowed.iter().any(|a| asked.within(a)) {
            return Ok(());
        }
        Err(not_allowed(
            field,
            &asked.pattern(),
            "allowedActivations",
            allowed.is_empty(),
        ))
    }

    /// The identity an XR asks for must be in `iam.allowedIdentities`, or
    /// be `default` (the input's own, or the derived one) when that list
    /// is empty.
    pub fn check_identity(&self, asked: Identity, default: Identity) -> Result<()> {
        let listed = &self.input.iam.allowed_identities;
        let allowed = if listed.is_empty() {
            std::slice::from_ref(&default)
        } else {
            listed.as_slice()
        };
        if self.origin == Origin::Platform || allowed.contains(&asked) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|i| i.as_str()).collect();
        Err(refused(
            "spec.iam.identity",
            "iam.allowedIdentities",
            format!(
                "{:?} is not allowed (allowed: {})",
                asked.as_str(),
                names.join(", ")
            ),
        ))
    }

    /// Each service account the XR names must match one allowed pair.
    pub fn check_service_accounts(&self, accounts: &[ServiceAccount]) -> Result<()> {
        let allowed = &self.input.iam.allowed_service_accounts;
        for (i, account) in accounts.iter().enumerate() {
            if self.origin == Origin::Platform || service_account_allowed(allowed, account) {
                continue;
            }
            return Err(not_allowed(
                &format!("spec.iam.serviceAccounts[{i}]"),
                &format!("{}/{}", account.namespace, account.name),
                "iam.allowedServiceAccounts",
                allowed.is_empty(),
            ));
        }
        Ok(())
    }
}

fn registry_allowed(allowed: &[AllowedRegistry], registry: &RegistrySpec) -> bool {
    allowed.iter().any(|a| {
        glob_match(&a.account_id, &registry.account_id) && glob_match(&a.region, &registry.region)
    })
}

fn service_account_allowed(allowed: &[AllowedServiceAccount], sa: &ServiceAccount) -> bool {
    allowed
        .iter()
        .any(|a| glob_match(&a.namespace, &sa.namespace) && glob_match(&a.name, &sa.name))
}

fn not_allowed(field: &str, value: &str, allowlist: &str, empty: bool) -> Error {
    let message = if empty {
        "may not be set by the XR: the allowlist is empty".to_string()
    } else {
        format!("{value:?} is not allowed")
    };
    refused(field, allowlist, message)
}

fn refused(field: &str, allowlist: &str, message: String) -> Error {
    Error::Refused {
        field: field.to_string(),
        allowlist: allowlist.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use serde_json::json;

    fn spec(registry: serde_json::Value, runtime: Option<&str>) -> XrSpec {
        decode(json!({
            "registry": registry,
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v1", "runtimeConfigName": runtime}]
        }))
        .expect("spec")
    }

    #[test]
    fn registries_and_runtime_configs() {
        let input: Input = decode(json!({
            "allowedRegistries": [{"accountId": "111122223333", "region": "*"}, {"accountId": "*", "region": "eu-west-2"}],
            "allowedRuntimeConfigs": ["team-a-*"]
        }))
        .expect("input");
        let policy = Policy::new(&input, Origin::Request);
        let ok = |account: &str, region: &str, runtime: Option<&str>| {
            policy.check_spec(&spec(
                json!({"accountId": account, "region": region}),
                runtime,
            ))
        };
        assert!(ok("111122223333", "us-east-1", None).is_ok());
        assert!(ok("999999999999", "eu-west-2", Some("team-a-debug")).is_ok());
        let cases = [
            (
                ok("999999999999", "us-east-1", None),
                "spec.registry",
                "allowedRegistries",
            ),
            (
                ok("111122223333", "us-east-1", Some("admin")),
                "spec.packages[0].runtimeConfigName",
                "allowedRuntimeConfigs",
            ),
        ];
        for (result, field, list) in cases {
            match result {
                Err(Error::Refused {
                    field: f,
                    allowlist,
                    ..
                }) => assert_eq!((f.as_str(), allowlist.as_str()), (field, list)),
                other => panic!("{field}: {other:?}"),
            }
        }
        // Bootstrap runs the platform's own XR: the allowlists do not apply.
        let platform = Policy::new(&input, Origin::Platform);
        assert!(
            platform
                .check_spec(&spec(
                    json!({"accountId": "999999999999", "region": "us-east-1"}),
                    Some("admin")
                ))
                .is_ok()
        );
    }

    #[test]
    fn an_empty_allowlist_refuses_any_value() {
        let input = Input::default();
        let policy = Policy::new(&input, Origin::Request);
        let err = policy
            .check_spec(&spec(
                json!({"accountId": "111122223333", "region": "us-east-1"}),
                Some("rc"),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused at spec.packages[0].runtimeConfigName: may not be set by the XR: the allowlist is empty (see the Composition input's allowedRuntimeConfigs)"
        );
        // Without allowedRegistries any registry may be named.
        assert!(
            policy
                .check_spec(&spec(
                    json!({"accountId": "111122223333", "region": "us-east-1"}),
                    None
                ))
                .is_ok()
        );
        // `allowedRegistries: []` is the same as missing (README, CRD): any
        // registry, and no list that would let the status stand in.
        let empty: Input = decode(json!({"allowedRegistries": []})).expect("input");
        assert_eq!(empty.allowed_registries, None);
        assert!(
            Policy::new(&empty, Origin::Request)
                .check_spec(&spec(
                    json!({"accountId": "111122223333", "region": "us-east-1"}),
                    None
                ))
                .is_ok()
        );
    }

    #[test]
    fn identities_within_the_list_or_the_default() {
        use Identity::{Irsa, PodIdentity};
        let listed: Input =
            decode(json!({"iam": {"allowedIdentities": ["PodIdentity"]}})).expect("input");
        let both: Input =
            decode(json!({"iam": {"allowedIdentities": ["IRSA", "PodIdentity"]}})).expect("input");
        let unlisted = Input::default();
        // (input, asked, default, allowed)
        let cases = [
            (&unlisted, Irsa, Irsa, true),
            (&unlisted, PodIdentity, Irsa, false),
            (&unlisted, Irsa, PodIdentity, false),
            (&listed, PodIdentity, Irsa, true),
            (&listed, Irsa, Irsa, false),
            (&both, Irsa, PodIdentity, true),
            (&both, PodIdentity, Irsa, true),
        ];
        for (input, asked, default, allowed) in cases {
            let result = Policy::new(input, Origin::Request).check_identity(asked, default);
            match result {
                Ok(()) => assert!(allowed, "{asked} over {default} passed"),
                Err(Error::Refused {
                    field, allowlist, ..
                }) => {
                    assert!(!allowed, "{asked} over {default} refused");
                    assert_eq!(
                        (field.as_str(), allowlist.as_str()),
                        ("spec.iam.identity", "iam.allowedIdentities")
                    );
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        let err = Policy::new(&unlisted, Origin::Request)
            .check_identity(PodIdentity, Irsa)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused at spec.iam.identity: \"PodIdentity\" is not allowed (allowed: IRSA) (see the Composition input's iam.allowedIdentities)"
        );
        assert!(
            Policy::new(&listed, Origin::Platform)
                .check_identity(Irsa, Irsa)
                .is_ok()
        );
    }

    #[test]
    fn service_accounts_match_both_globs() {
        let input: Input = decode(json!({"iam": {"allowedServiceAccounts": [{"namespace": "crossplane-system", "name": "provider-aws-*"}]}})).expect("input");
        let policy = Policy::new(&input, Origin::Request);
        let sa = |ns: &str, name: &str| ServiceAccount {
            namespace: ns.into(),
            name: name.into(),
        };
        assert!(
            policy
                .check_service_accounts(&[sa("crossplane-system", "provider-aws-s3")])
                .is_ok()
        );
        let err = policy
            .check_service_accounts(&[
                sa("crossplane-system", "provider-aws-s3"),
                sa("kube-system", "provider-aws-s3"),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, Error::Refused { field, allowlist, .. } if field == "spec.iam.serviceAccounts[1]" && allowlist == "iam.allowedServiceAccounts"),
            "{err}"
        );
        assert!(
            err.to_string().contains("\"kube-system/provider-aws-s3\""),
            "{err}"
        );
    }
}

//! The trust model in code. The Composition's input is the platform team's
//! policy and is trusted; the XR (or the claim behind it) is a request from
//! an app team and is not. Every privilege an XR can ask for (the registry
//! read with the function's identity, IAM role names, OIDC providers,
//! service accounts, node roles, runtime configs) is checked here against
//! the input's allowlists before anything is read from AWS.
//!
//! An allowlist that is empty (or missing) means the XR may not set the
//! field at all; the input's own value or the built-in default is used.
//! `allowedRegistries` is the one exception: missing means any registry,
//! since the function's own AWS identity already bounds what it can read.

use super::input::{AllowedRegistry, AllowedServiceAccount, Input};
use super::xr::{RegistrySpec, ServiceAccount, XrSpec};
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

/// Whether `name` matches one of `patterns` (see [`glob_match`]).
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

/// Go's `path.Match` for `*` and `?`: neither crosses a `/`. Linear in the
/// pattern times the name at worst, with one backtrack point, so no input
/// can make it explode.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == n[ni] && p[pi] != '*' || p[pi] == '?' && n[ni] != '/') {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star
            && n[sn] != '/'
        {
            star = Some((sp, sn + 1));
            pi = sp + 1;
            ni = sn + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use serde_json::json;

    #[test]
    fn globs_follow_go_path_match() {
        let cases = [
            ("upbound/*", "upbound/provider-aws-s3", true),
            ("upbound/*", "upbound/sub/provider", false),
            ("*/*", "upbound/provider", true),
            ("upbound/provider-aws-*", "upbound/provider-aws-s3", true),
            ("upbound/provider-aws-*", "upbound/provider-gcp", false),
            ("upbound/provider-aws-s?", "upbound/provider-aws-s3", true),
            ("upbound/provider-aws-s?", "upbound/provider-aws-s34", false),
            ("*", "upbound/x", false),
            ("*", "", true),
            ("exact/name", "exact/name", true),
            ("exact/name", "exact/names", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

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

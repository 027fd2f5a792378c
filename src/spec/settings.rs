//! The effective settings of one reconcile: the XR's choices over the
//! platform team's defaults over the built-in ones, checked for consistency.

use std::time::Duration;

use super::input::{Input, ManagedResources, Mirror};
use super::xr::{Identity, ServiceAccount, Strategy, XrSpec};
use crate::aws::RegistryRef;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub registry: RegistryRef,
    pub strategy: Strategy,
    pub mirrors: Vec<Mirror>,
    pub resolve_dependencies: bool,
    pub pin_digests: bool,
    pub allowed_repositories: Vec<String>,
    /// None when IAM is disabled.
    pub iam: Option<IamSettings>,
    pub ttl: Duration,
    pub tag_cache_ttl: Duration,
    pub credentials_name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IamSettings {
    pub role_name: String,
    pub trust: Trust,
    pub service_accounts: Vec<ServiceAccount>,
    pub node_role_names: Vec<String>,
    pub managed_resources: ManagedResources,
    pub provider_config_name: String,
    /// Where namespaced managed resources live.
    pub namespace: String,
}

/// Who may assume the pull role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    Irsa { oidc_provider: String },
    PodIdentity,
}

/// IAM role names allow 64 characters.
const MAX_ROLE_NAME: usize = 64;

impl Settings {
    pub fn new(xr_name: &str, spec: &XrSpec, input: &Input) -> Result<Self> {
        if input.mirrors.is_empty() {
            return Err(Error::InvalidInput {
                field: "mirrors".to_string(),
                message: "at least one mirror is required".to_string(),
            });
        }
        for (i, mirror) in input.mirrors.iter().enumerate() {
            if mirror.upstream.is_empty() {
                return Err(Error::InvalidInput {
                    field: format!("mirrors[{i}].upstream"),
                    message: "must not be empty".to_string(),
                });
            }
        }
        Ok(Self {
            registry: RegistryRef::new(&spec.registry.account_id, &spec.registry.region),
            strategy: spec
                .strategy
                .or(input.strategy)
                .unwrap_or(Strategy::Rewrite),
            mirrors: input.mirrors.clone(),
            resolve_dependencies: input.resolve_dependencies,
            pin_digests: input.pin_digests,
            allowed_repositories: input.allowed_repositories.clone(),
            iam: iam_settings(xr_name, spec, input)?,
            ttl: input.ttl,
            tag_cache_ttl: input.tag_cache_ttl,
            credentials_name: input.credentials_name.clone(),
        })
    }

    /// The ECR repository an upstream package path is mirrored to, with the
    /// mirror used. The longest matching upstream prefix wins.
    pub fn repository_for(&self, upstream_path: &str) -> Option<(String, &Mirror)> {
        self.mirrors
            .iter()
            .filter(|m| upstream_path.starts_with(&m.upstream))
            .max_by_key(|m| m.upstream.len())
            .map(|m| {
                (
                    format!(
                        "{}{}",
                        m.repository_prefix,
                        &upstream_path[m.upstream.len()..]
                    ),
                    m,
                )
            })
    }

    /// The upstream package path a repository mirrors: the mirror with the
    /// longest matching repository prefix, the first listed on a tie, so the
    /// default mirrors read `upbound/x` as `xpkg.upbound.io/upbound/x`.
    pub fn upstream_for(&self, repository: &str) -> Option<(String, &Mirror)> {
        let mut best: Option<&Mirror> = None;
        for mirror in &self.mirrors {
            if repository.starts_with(&mirror.repository_prefix)
                && best.is_none_or(|b| mirror.repository_prefix.len() > b.repository_prefix.len())
            {
                best = Some(mirror);
            }
        }
        best.map(|m| {
            (
                format!("{}{}", m.upstream, &repository[m.repository_prefix.len()..]),
                m,
            )
        })
    }

    /// Whether the platform team allows installing from `repository`.
    pub fn is_allowed(&self, repository: &str) -> bool {
        self.allowed_repositories.is_empty()
            || self
                .allowed_repositories
                .iter()
                .any(|p| glob_match(p, repository))
    }
}

fn iam_settings(xr_name: &str, spec: &XrSpec, input: &Input) -> Result<Option<IamSettings>> {
    let xr_iam = spec.iam.clone().unwrap_or_default();
    if !xr_iam.enabled.unwrap_or(input.iam.enabled) {
        return Ok(None);
    }
    let oidc_provider = xr_iam.oidc_provider.filter(|p| !p.trim().is_empty());
    // With no explicit choice, an OIDC provider means IRSA; otherwise Pod
    // Identity, which needs nothing else from the user.
    let identity = xr_iam
        .identity
        .or(input.iam.identity)
        .unwrap_or(if oidc_provider.is_some() {
            Identity::Irsa
        } else {
            Identity::PodIdentity
        });
    let trust = match identity {
        Identity::Irsa => Trust::Irsa {
            oidc_provider: oidc_provider
                .map(|p| p.trim_start_matches("https://").to_string())
                .ok_or_else(|| Error::InvalidSpec {
                    field: "spec.iam.oidcProvider".to_string(),
                    message: "IRSA needs the cluster's OIDC provider, e.g. oidc.eks.eu-west-2.amazonaws.com/id/ABC".to_string(),
                })?,
        },
        Identity::PodIdentity => Trust::PodIdentity,
    };
    let role_name = xr_iam
        .role_name
        .or_else(|| input.iam.role_name.clone())
        .unwrap_or_else(|| default_role_name(xr_name));
    if role_name.is_empty()
        || role_name.len() > MAX_ROLE_NAME
        || !role_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(Error::InvalidSpec {
            field: "spec.iam.roleName".to_string(),
            message: format!(
                "{role_name:?} is not an IAM role name (1-64 of letters, digits and +=,.@_-)"
            ),
        });
    }
    Ok(Some(IamSettings {
        role_name,
        trust,
        service_accounts: xr_iam
            .service_accounts
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                vec![ServiceAccount {
                    namespace: "crossplane-system".to_string(),
                    name: "crossplane".to_string(),
                }]
            }),
        node_role_names: xr_iam.node_role_names,
        managed_resources: input.iam.managed_resources,
        provider_config_name: input.iam.provider_config_name.clone(),
        namespace: input
            .iam
            .namespace
            .clone()
            .unwrap_or_else(|| "crossplane-system".to_string()),
    }))
}

fn default_role_name(xr_name: &str) -> String {
    let suffix = "-ecr-pull";
    let keep = MAX_ROLE_NAME - suffix.len();
    let base: String = xr_name.chars().take(keep).collect();
    format!("{base}{suffix}")
}

/// Go's path.Match for `*` and `?`: neither crosses a `/`.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matcher with one backtrack point per `*`, bounded by the
    // pattern and name lengths, so no input can make it explode.
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
    use serde_json::{Value as Json, json};

    fn spec(extra: Json) -> XrSpec {
        let mut base = json!({
            "registry": {"accountId": "123456789012", "region": "eu-west-2"},
            "packages": [{"kind": "Provider", "repository": "upbound/provider-aws-s3", "version": "v2.2.0"}]
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        decode(base).expect("spec")
    }

    fn input(value: Json) -> Input {
        decode(value).expect("input")
    }

    #[test]
    fn xr_choices_win_over_input_defaults() {
        let s = Settings::new(
            "demo",
            &spec(json!({"strategy": "Skip"})),
            &input(json!({"strategy": "Rewrite"})),
        )
        .expect("ok");
        assert_eq!(s.strategy, Strategy::Skip);
        let s = Settings::new(
            "demo",
            &spec(json!({})),
            &input(json!({"strategy": "Skip"})),
        )
        .expect("ok");
        assert_eq!(s.strategy, Strategy::Skip);
        let s = Settings::new("demo", &spec(json!({})), &Input::default()).expect("ok");
        assert_eq!(s.strategy, Strategy::Rewrite);
    }

    #[test]
    fn iam_defaults() {
        let s = Settings::new("demo", &spec(json!({})), &Input::default()).expect("ok");
        let iam = s.iam.expect("enabled by default");
        assert_eq!(iam.role_name, "demo-ecr-pull");
        assert_eq!(iam.trust, Trust::PodIdentity);
        assert_eq!(
            iam.service_accounts,
            vec![ServiceAccount {
                namespace: "crossplane-system".into(),
                name: "crossplane".into()
            }]
        );

        let s = Settings::new(
            "demo",
            &spec(
                json!({"iam": {"oidcProvider": "https://oidc.eks.eu-west-2.amazonaws.com/id/ABC"}}),
            ),
            &Input::default(),
        )
        .expect("ok");
        assert_eq!(
            s.iam.expect("iam").trust,
            Trust::Irsa {
                oidc_provider: "oidc.eks.eu-west-2.amazonaws.com/id/ABC".into()
            }
        );

        let s = Settings::new(
            "demo",
            &spec(json!({"iam": {"enabled": false}})),
            &Input::default(),
        )
        .expect("ok");
        assert!(s.iam.is_none());
        let s = Settings::new(
            "demo",
            &spec(json!({})),
            &input(json!({"iam": {"enabled": false}})),
        )
        .expect("ok");
        assert!(s.iam.is_none());

        let long = "x".repeat(80);
        let s = Settings::new(&long, &spec(json!({})), &Input::default()).expect("ok");
        assert_eq!(s.iam.expect("iam").role_name.len(), 64);
    }

    #[test]
    fn iam_errors_name_the_field() {
        let err = Settings::new(
            "demo",
            &spec(json!({"iam": {"identity": "IRSA"}})),
            &Input::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.iam.oidcProvider"),
            "{err}"
        );
        let err = Settings::new(
            "demo",
            &spec(json!({"iam": {"roleName": "has space"}})),
            &Input::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSpec { field, .. } if field == "spec.iam.roleName"),
            "{err}"
        );
        let err =
            Settings::new("demo", &spec(json!({})), &input(json!({"mirrors": []}))).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "mirrors"),
            "{err}"
        );
    }

    #[test]
    fn mirrors_map_both_ways() {
        let s = Settings::new(
            "demo",
            &spec(json!({})),
            &input(json!({"mirrors": [
                {"upstream": "xpkg.upbound.io/", "repositoryPrefix": ""},
                {"upstream": "xpkg.crossplane.io/", "repositoryPrefix": ""},
                {"upstream": "xpkg.upbound.io/upbound/", "repositoryPrefix": "mirror/upbound/"}
            ]})),
        )
        .expect("ok");
        let cases = [
            (
                "xpkg.upbound.io/upbound/provider-family-aws",
                Some("mirror/upbound/provider-family-aws"),
            ),
            (
                "xpkg.upbound.io/crossplane-contrib/provider-x",
                Some("crossplane-contrib/provider-x"),
            ),
            (
                "xpkg.crossplane.io/crossplane-contrib/function-go-templating",
                Some("crossplane-contrib/function-go-templating"),
            ),
            ("ghcr.io/someone/provider", None),
            ("upbound/provider-family-aws", None),
        ];
        for (path, repo) in cases {
            assert_eq!(
                s.repository_for(path).map(|(r, _)| r),
                repo.map(str::to_string),
                "{path}"
            );
        }
        assert_eq!(
            s.upstream_for("mirror/upbound/provider-aws-s3")
                .map(|(u, _)| u)
                .as_deref(),
            Some("xpkg.upbound.io/upbound/provider-aws-s3")
        );
        assert_eq!(
            s.upstream_for("upbound/provider-aws-s3")
                .map(|(u, _)| u)
                .as_deref(),
            Some("xpkg.upbound.io/upbound/provider-aws-s3")
        );
    }

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
            ("exact/name", "exact/name", true),
            ("exact/name", "exact/names", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} ~ {name}");
        }
    }
}

//! The effective settings of one reconcile: the XR's choices over the
//! platform team's defaults over the built-in ones, checked for consistency.

use std::collections::BTreeMap;
use std::time::Duration;

use super::activation::{Activation, Definitions};
use super::crossplane;
use super::input::{IamDefaults, Input, ManagedResources, Mirror, RevisionHistoryLimit};
use super::package_fields::{CommonLabels, PullPolicy};
use super::policy::{Origin, Policy, matches_any};
use super::upgrades::Upgrades;
use super::xr::{IamSpec, Identity, ServiceAccount, Strategy, XrRef, XrSpec};
use crate::aws::RegistryRef;
use crate::error::{Error, Result};
use crate::names::{Grammar, object_name};
use crate::version::Dialect;

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub registry: RegistryRef,
    /// The host Crossplane pulls packages from: the input's `registryHost`
    /// for this registry, else the registry's standard ECR host.
    pub registry_host: String,
    pub strategy: Strategy,
    pub mirrors: Vec<Mirror>,
    pub resolve_dependencies: bool,
    pub pin_digests: bool,
    /// Whether existing objects with no controller are taken over.
    pub adopt_existing: bool,
    pub allowed_repositories: Vec<String>,
    /// None when IAM is disabled.
    pub iam: Option<IamSettings>,
    pub ttl: Duration,
    pub tag_cache_ttl: Duration,
    pub credentials_name: String,
    /// `spec.revisionHistoryLimit` of every package object.
    pub revision_history_limit: RevisionHistoryLimit,
    /// The input's `packagePullPolicy`, `commonLabels` and
    /// `ignoreCrossplaneConstraints`, composed on every package object.
    pub package_pull_policy: Option<PullPolicy>,
    pub common_labels: CommonLabels,
    pub ignore_crossplane_constraints: bool,
    /// How constraints are read: the input's `crossplaneVersion`'s dialect,
    /// or every dialect when it is unset.
    pub dialects: Vec<Dialect>,
    /// The input's `upgrades`: how installed packages move.
    pub upgrades: Upgrades,
    /// The XR's `spec.upgrades.paused`, which the input allows.
    pub paused: bool,
    /// What the XR's ManagedResourceActivationPolicy activates besides the
    /// IAM definitions; `None` when the input's `activation.enabled` is
    /// false (no policy is composed).
    pub activation: Option<Activation>,
    /// The input's `scan`: the supply-chain gate on ECR's image scans.
    pub scan: Option<super::scan::Scan>,
    /// The input's `verify`: the supply-chain gate on cosign signatures.
    /// Shared, so a signature check can run on a blocking thread.
    pub verify: Option<std::sync::Arc<super::verify::Verify>>,
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
    Irsa {
        oidc_provider: String,
    },
    /// EKS Pod Identity, bound to the cluster's account and, when the input
    /// names it, to the cluster.
    PodIdentity {
        /// `aws:SourceAccount`: the cluster's account, else the registry's.
        source_account: String,
        /// The input's `iam.clusterArn`.
        cluster_arn: Option<String>,
    },
}

/// IAM role names allow 64 characters.
const MAX_ROLE_NAME: usize = super::limits::MAX_ROLE_NAME_LEN;

impl Settings {
    /// The settings of a RunFunction call: the XR is an app team's request,
    /// bounded by the input's allowlists.
    pub fn new(xr: XrRef<'_>, spec: &XrSpec, input: &Input) -> Result<Self> {
        Self::with_origin(xr, spec, input, Origin::Request)
    }

    /// The settings for an XR of the given origin; `bootstrap` passes
    /// [`Origin::Platform`] since it runs the platform team's own XR.
    pub fn with_origin(
        xr: XrRef<'_>,
        spec: &XrSpec,
        input: &Input,
        origin: Origin,
    ) -> Result<Self> {
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
        let policy = Policy::new(input, origin);
        policy.check_spec(spec)?;
        let registry = RegistryRef::new(&spec.registry.account_id, &spec.registry.region);
        Ok(Self {
            registry_host: match &input.registry_host {
                Some(host) => host.for_registry(&registry),
                None => registry.host(),
            },
            registry,
            strategy: spec
                .strategy
                .or(input.strategy)
                .unwrap_or(Strategy::Rewrite),
            mirrors: input.mirrors.clone(),
            resolve_dependencies: input.resolve_dependencies,
            pin_digests: input.pin_digests,
            adopt_existing: input.adopt_existing,
            allowed_repositories: input.allowed_repositories.clone(),
            iam: iam_settings(xr, spec, input, &policy)?,
            ttl: input.ttl,
            tag_cache_ttl: input.tag_cache_ttl,
            credentials_name: input.credentials_name.clone(),
            revision_history_limit: input.revision_history_limit,
            package_pull_policy: input.package_pull_policy,
            common_labels: input.common_labels.clone(),
            ignore_crossplane_constraints: input.ignore_crossplane_constraints,
            dialects: crossplane::dialects(input.crossplane_version.as_ref()),
            upgrades: input.upgrades.clone(),
            paused: paused(spec, input)?,
            activation: activation(xr, spec, input, &policy)?,
            scan: input.scan.clone(),
            verify: input.verify.clone().map(std::sync::Arc::new),
        })
    }

    /// The ECR repository an upstream package path is mirrored to (see
    /// [`Mirror::repository_for`]).
    pub fn repository_for(&self, upstream_path: &str) -> Option<(String, &Mirror)> {
        Mirror::repository_for(&self.mirrors, upstream_path)
    }

    /// The mirror an upstream package path is pulled through (see
    /// [`Mirror::serving`]).
    pub fn mirror_for(&self, upstream_path: &str) -> Option<&Mirror> {
        Mirror::serving(&self.mirrors, upstream_path)
    }

    /// The upstream package path a repository mirrors (see
    /// [`Mirror::upstream_for`]).
    pub fn upstream_for(&self, repository: &str) -> Option<(String, &Mirror)> {
        Mirror::upstream_for(&self.mirrors, repository)
    }

    /// Whether the platform team allows installing from `repository`.
    pub fn is_allowed(&self, repository: &str) -> bool {
        self.allowed_repositories.is_empty() || matches_any(&self.allowed_repositories, repository)
    }
}

/// The XR's `spec.upgrades.paused`: pausing is the XR's to ask unless the
/// input's `upgrades.allowPause` is false, for an XR of any origin (the
/// input says what the platform runs; `bootstrap` has no rollouts to hold).
fn paused(spec: &XrSpec, input: &Input) -> Result<bool> {
    let paused = spec.upgrades.as_ref().is_some_and(|u| u.paused);
    if paused && !input.upgrades.allow_pause {
        return Err(Error::InvalidSpec {
            field: "spec.upgrades.paused".to_string(),
            message: "cannot be true: the platform does not allow pausing upgrades (input upgrades.allowPause is false)".to_string(),
        });
    }
    Ok(paused)
}

/// IAM as the XR asks within what the input allows. The input turning IAM
/// off wins; an XR can only turn it off. Every value the XR sets is checked
/// against its allowlist; what it leaves unset comes from the input, then
/// the built-in default.
fn iam_settings(
    xr: XrRef<'_>,
    spec: &XrSpec,
    input: &Input,
    policy: &Policy,
) -> Result<Option<IamSettings>> {
    let xr_iam = spec.iam.clone().unwrap_or_default();
    let platform = &input.iam;
    if !platform.enabled || xr_iam.enabled == Some(false) {
        return Ok(None);
    }

    let trust = trust(spec, &xr_iam, platform, policy)?;

    let role_name = role_name(xr, xr_iam.role_name, platform, policy)?;

    let service_accounts = match xr_iam.service_accounts.filter(|s| !s.is_empty()) {
        Some(accounts) => {
            policy.check_service_accounts(&accounts)?;
            accounts
        }
        None if !platform.service_accounts.is_empty() => platform.service_accounts.clone(),
        None => vec![ServiceAccount {
            namespace: "crossplane-system".to_string(),
            name: "crossplane".to_string(),
        }],
    };

    let node_role_names = if xr_iam.node_role_names.is_empty() {
        platform.node_role_names.clone()
    } else {
        for (i, role) in xr_iam.node_role_names.iter().enumerate() {
            policy.check(
                &format!("spec.iam.nodeRoleNames[{i}]"),
                role,
                "iam.allowedNodeRoleNames",
                &platform.allowed_node_role_names,
            )?;
        }
        xr_iam.node_role_names
    };

    Ok(Some(IamSettings {
        role_name,
        trust,
        service_accounts,
        node_role_names,
        managed_resources: platform.managed_resources,
        provider_config_name: platform.provider_config_name.clone(),
        namespace: platform
            .namespace
            .clone()
            .unwrap_or_else(|| "crossplane-system".to_string()),
    }))
}

/// Who may assume the role: IRSA through the cluster's OIDC provider, or
/// EKS Pod Identity; the XR chooses only within the input's allowlists.
fn trust(
    spec: &XrSpec,
    xr_iam: &IamSpec,
    platform: &IamDefaults,
    policy: &Policy,
) -> Result<Trust> {
    let xr_oidc = xr_iam.oidc_provider.as_deref().and_then(issuer);
    if let Some(provider) = &xr_oidc {
        policy.check(
            "spec.iam.oidcProvider",
            provider,
            "iam.allowedOidcProviders",
            &platform.allowed_oidc_providers,
        )?;
    }
    let oidc_provider = xr_oidc.or_else(|| platform.oidc_provider.as_deref().and_then(issuer));
    // The input's identity; with none, an OIDC provider means IRSA and
    // otherwise Pod Identity, which needs nothing else. The XR may choose
    // only what `allowedIdentities` lists (by default, just this one).
    let default = platform.identity.unwrap_or(if oidc_provider.is_some() {
        Identity::Irsa
    } else {
        Identity::PodIdentity
    });
    let identity = match xr_iam.identity {
        Some(asked) => {
            policy.check_identity(asked, default)?;
            asked
        }
        None => default,
    };
    Ok(match identity {
        Identity::Irsa => Trust::Irsa {
            oidc_provider: oidc_provider.ok_or_else(|| Error::InvalidSpec {
                    field: "spec.iam.oidcProvider".to_string(),
                    message: "IRSA needs the cluster's OIDC provider, e.g. oidc.eks.eu-west-2.amazonaws.com/id/ABC (in the XR, or in the Composition input's iam.oidcProvider)".to_string(),
                })?,
        },
        Identity::PodIdentity => Trust::PodIdentity {
            source_account: platform
                .cluster_arn
                .as_ref()
                .map_or(spec.registry.account_id.as_str(), |arn| arn.account_id())
                .to_string(),
            cluster_arn: platform.cluster_arn.as_ref().map(|arn| arn.as_str().to_string()),
        },
    })
}

/// The role's name. The requester chose it when the XR sets it, or when it
/// is the default that follows the XR and the platform lists role names;
/// then it must be on that list. The input's own name is the platform's
/// choice.
fn role_name(
    xr: XrRef<'_>,
    asked: Option<String>,
    platform: &IamDefaults,
    policy: &Policy,
) -> Result<String> {
    let (role_name, requested) = match (asked, &platform.role_name) {
        (Some(name), _) => (name, true),
        (None, Some(name)) => (name.clone(), false),
        (None, None) => (
            default_role_name(xr, platform.role_name_prefix.as_deref()),
            !platform.allowed_role_names.is_empty(),
        ),
    };
    if requested {
        policy.check(
            "spec.iam.roleName",
            &role_name,
            "iam.allowedRoleNames",
            &platform.allowed_role_names,
        )?;
    }
    check_role_name(&role_name)?;
    Ok(role_name)
}

/// An OIDC issuer as IAM names it (no scheme, no surrounding space); none
/// when blank.
fn issuer(provider: &str) -> Option<String> {
    let issuer = provider.trim().trim_start_matches("https://");
    (!issuer.is_empty()).then(|| issuer.to_string())
}

fn check_role_name(role_name: &str) -> Result<()> {
    if role_name.is_empty()
        || role_name.len() > MAX_ROLE_NAME
        || !role_name.chars().all(crate::names::is_role_name_char)
    {
        return Err(Error::InvalidSpec {
            field: "spec.iam.roleName".to_string(),
            message: format!(
                "{role_name:?} is not an IAM role name (1-64 of letters, digits and +=,.@_-)"
            ),
        });
    }
    Ok(())
}

/// `<readable>-<hash>`, within IAM's 64 characters: `readable` is the
/// input's `iam.roleNamePrefix`, else `<xr-name>-ecr-pull` (cut to fit),
/// and `hash` the first [`crate::names::HASH_LEN`] hex digits of the
/// SHA-256 of the XR's UID. Role names are account-wide and provider-aws
/// adopts an existing role by name, so two XRs that share a name (in two
/// clusters of one account, or one deleted and made again) must not share
/// a role: each would overwrite, and on deletion remove, the other's. An
/// XR without a UID (unit tests, `bootstrap` on a file) hashes its name.
pub fn default_role_name(xr: XrRef<'_>, prefix: Option<&str>) -> String {
    let hash = crate::names::hash(&[xr.uid.unwrap_or(xr.name)]);
    let readable = match prefix {
        Some(prefix) => prefix.to_string(),
        None => format!("{}-ecr-pull", xr.name),
    };
    let room = MAX_ROLE_NAME - 1 - hash.len();
    let mut cut = readable.len().min(room);
    while !readable.is_char_boundary(cut) {
        cut -= 1;
    }
    let readable = readable[..cut].trim_end_matches(['-', '.', '_']);
    if readable.is_empty() {
        return hash;
    }
    format!("{readable}-{hash}")
}

/// An XR's activation policy is named `ecr-packages-<XR name>`.
const ACTIVATION_POLICY_PREFIX: &str = "ecr-packages";

/// The activation an XR gets: `None` when the input turns it off (and the
/// XR asks for none); else every `activate` entry, read and checked
/// against the input's `allowedActivations`. The first bad entry is the
/// error, naming its field.
fn activation(
    xr: XrRef<'_>,
    spec: &XrSpec,
    input: &Input,
    policy: &Policy,
) -> Result<Option<Activation>> {
    let mut activation = Activation {
        policy_name: object_name(ACTIVATION_POLICY_PREFIX, xr.name, Grammar::Label),
        requested: BTreeMap::new(),
    };
    for (i, package) in spec.packages.iter().enumerate() {
        for (j, text) in package.activate.iter().enumerate() {
            let field = format!("spec.packages[{i}].activate[{j}]");
            if !input.activation.enabled {
                return Err(Error::InvalidSpec {
                    field,
                    message: "this platform activates definitions itself (the \
                              Composition input's activation.enabled is false)"
                        .to_string(),
                });
            }
            let definitions = Definitions::parse(text).map_err(|message| Error::InvalidSpec {
                field: field.clone(),
                message,
            })?;
            policy.check_activation(&field, &definitions)?;
            activation
                .requested
                .entry(package.repository.clone())
                .or_default()
                .push(definitions);
        }
    }
    Ok(input.activation.enabled.then_some(activation))
}

#[cfg(test)]
mod tests;

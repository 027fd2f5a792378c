//! The function's input: what the platform team sets once in the
//! Composition (`apiVersion: ecr.fn.crossplane.io/v1beta1, kind: Input`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;

use super::activation::ActivationInput;
use super::crossplane::CrossplaneVersion;
use super::duration;
use super::limits::{self, *};
use super::package_fields::{CommonLabels, PullPolicy};
use super::upgrades::Upgrades;
use super::xr::{Identity, ServiceAccount, Strategy};
use crate::aws::RegistryRef;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_API_VERSION_LEN, _>"
    )]
    pub api_version: Option<String>,
    #[serde(default, deserialize_with = "limits::option_string::<MAX_KIND_LEN, _>")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Option<Json>,
    /// Used when the XR does not choose.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(
        default = "default_mirrors",
        deserialize_with = "limits::list::<MAX_MIRRORS, _, _>"
    )]
    pub mirrors: Vec<Mirror>,
    #[serde(default = "yes")]
    pub resolve_dependencies: bool,
    #[serde(default)]
    pub pin_digests: bool,
    /// Whether an existing object with no controller (installed by a
    /// person, Helm or Crossplane's resolver) that an XR would compose is
    /// taken over. Off: it is shared read-only (see `ownership`).
    #[serde(default)]
    pub adopt_existing: bool,
    /// Glob patterns (`*` and `?`, not crossing `/`, as Go's path.Match).
    /// Empty allows every repository.
    #[serde(default, deserialize_with = "patterns")]
    pub allowed_repositories: Vec<String>,
    /// The registries (account and region) an XR may name. Missing or
    /// empty (`[]`) allows any: the function's own AWS identity is then the
    /// only bound. An empty list is read as missing (`None`) because Go
    /// tooling (`omitempty`) drops it on any round trip, so the two must
    /// never mean different things; and everything that keys off the list
    /// (the policy, whether the status may stand in for a registry) then
    /// agrees by construction.
    #[serde(default, deserialize_with = "allowed_registries")]
    pub allowed_registries: Option<Vec<AllowedRegistry>>,
    /// Globs for `spec.packages[].runtimeConfigName`; empty means an XR may
    /// not choose a DeploymentRuntimeConfig at all.
    #[serde(default, deserialize_with = "patterns")]
    pub allowed_runtime_configs: Vec<String>,
    /// Whether each XR gets a ManagedResourceActivationPolicy for the
    /// definitions its objects need (see `spec::activation`).
    #[serde(default)]
    pub activation: ActivationInput,
    /// Globs bounding `spec.packages[].activate`; empty means an XR may not
    /// ask for any definition to be activated.
    #[serde(default, deserialize_with = "patterns")]
    pub allowed_activations: Vec<String>,
    #[serde(default)]
    pub iam: IamDefaults,
    /// How long Crossplane may cache a response before calling again; a Go
    /// duration of at most [`MAX_DURATION`] (24h).
    #[serde(default = "default_ttl", deserialize_with = "duration::deserialize")]
    pub ttl: Duration,
    /// How long tag lists and tag digests are trusted before ECR is asked
    /// again; a Go duration of at most [`MAX_DURATION`] (24h).
    #[serde(
        rename = "tagCacheTTL",
        default = "default_tag_cache_ttl",
        deserialize_with = "duration::deserialize"
    )]
    pub tag_cache_ttl: Duration,
    /// The pipeline step credentials entry holding AWS keys, if any.
    #[serde(
        default = "default_credentials_name",
        deserialize_with = "limits::string::<MAX_OBJECT_NAME_LEN, _>"
    )]
    pub credentials_name: String,
    /// The registry host Crossplane pulls packages from (ImageConfig
    /// rewrites, `spec.package` under `Skip`), when it is not the standard
    /// ECR host of the XR's account and region: a dual-stack endpoint, a
    /// pull-through proxy in front of ECR. `{accountId}` and `{region}` are
    /// replaced by the XR's registry.
    #[serde(default)]
    pub registry_host: Option<RegistryHost>,
    /// `spec.revisionHistoryLimit` of every package object composed.
    #[serde(default)]
    pub revision_history_limit: RevisionHistoryLimit,
    /// `spec.packagePullPolicy` of every package object composed; unset,
    /// Crossplane's default (`IfNotPresent`).
    #[serde(default)]
    pub package_pull_policy: Option<PullPolicy>,
    /// `spec.commonLabels` of every package object composed.
    #[serde(default)]
    pub common_labels: CommonLabels,
    /// `spec.ignoreCrossplaneConstraints: true` on every package object
    /// composed: Crossplane installs a package whatever Crossplane version
    /// its metadata asks for. The platform's to decide, never the XR's.
    #[serde(default)]
    pub ignore_crossplane_constraints: bool,
    /// The Crossplane the platform runs (`v2.2`, `v2.4`): constraints are
    /// read as it reads them. Unset, as every Crossplane v2 does.
    #[serde(default)]
    pub crossplane_version: Option<CrossplaneVersion>,
    /// How installed packages move to new releases: order, deadlines,
    /// rollback and quarantine, pausing, windows.
    #[serde(default)]
    pub upgrades: Upgrades,
    /// Which packages must be clean by ECR's image scan (see `spec::scan`);
    /// none by default.
    #[serde(default)]
    pub scan: Option<super::scan::Scan>,
    /// Who must have signed which packages (see `spec::verify`); none by
    /// default.
    #[serde(default)]
    pub verify: Option<super::verify::Verify>,
}

/// `revisionHistoryLimit`: how many inactive revisions Crossplane keeps for
/// each package object, from 1 to [`MAX_REVISION_HISTORY_LIMIT`] (default
/// one, Crossplane's own). At least one, so that the revision a package was
/// on before an upgrade is still there to go back to (Crossplane v2.2 and
/// v2.3 reactivate the kept revision; v2.4 names revisions by digest and
/// generation, so it makes a new one, from the package it has cached).
/// Crossplane's 0 (never
/// collect) is refused: every weekly upgrade would leave one more revision,
/// with its CRDs, in the cluster for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevisionHistoryLimit(u32);

impl RevisionHistoryLimit {
    /// Checks a limit; the error says what is allowed.
    pub fn new(limit: u64) -> std::result::Result<Self, String> {
        match u32::try_from(limit) {
            Ok(limit @ 1..=MAX_REVISION_HISTORY_LIMIT) => Ok(Self(limit)),
            _ => Err(format!(
                "must be an integer from 1 to {MAX_REVISION_HISTORY_LIMIT}, got {limit}"
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for RevisionHistoryLimit {
    /// Crossplane's own default: the revision before the current one.
    fn default() -> Self {
        Self(1)
    }
}

impl<'de> Deserialize<'de> for RevisionHistoryLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let limit = u64::deserialize(d)?;
        RevisionHistoryLimit::new(limit).map_err(serde::de::Error::custom)
    }
}

/// `registryHost`: `host[:port]`, lowercase, optionally with `{accountId}`
/// and `{region}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryHost(String);

impl RegistryHost {
    /// Checks a template; the error says what is wrong without echoing it.
    pub fn parse(template: &str) -> std::result::Result<Self, String> {
        check_len(template, MAX_REGISTRY_HOST_LEN)?;
        let sample = template
            .replace("{accountId}", "123456789012")
            .replace("{region}", "us-east-1");
        let (host, port) = match sample.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (sample.as_str(), None),
        };
        if let Some(port) = port
            && !matches!(port.parse::<u16>(), Ok(p) if p > 0 && !port.starts_with('0'))
        {
            return Err("the port must be a number from 1 to 65535".to_string());
        }
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(
                "must be a lowercase DNS name or IPv4 address, optionally with :port and the \
                 placeholders {accountId} and {region}, without a scheme or path"
                    .to_string(),
            );
        }
        Ok(Self(template.to_string()))
    }

    /// The host for one registry.
    pub fn for_registry(&self, registry: &RegistryRef) -> String {
        self.0
            .replace("{accountId}", &registry.account_id)
            .replace("{region}", &registry.region)
    }
}

impl<'de> Deserialize<'de> for RegistryHost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RegistryHost::parse(&text).map_err(serde::de::Error::custom)
    }
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
            adopt_existing: false,
            allowed_repositories: Vec::new(),
            allowed_registries: None,
            allowed_runtime_configs: Vec::new(),
            activation: ActivationInput::default(),
            allowed_activations: Vec::new(),
            iam: IamDefaults::default(),
            ttl: default_ttl(),
            tag_cache_ttl: default_tag_cache_ttl(),
            credentials_name: default_credentials_name(),
            registry_host: None,
            revision_history_limit: RevisionHistoryLimit::default(),
            package_pull_policy: None,
            common_labels: CommonLabels::default(),
            ignore_crossplane_constraints: false,
            crossplane_version: None,
            upgrades: Upgrades::default(),
            scan: None,
            verify: None,
        }
    }
}

/// Maps an upstream package path prefix to a place in ECR.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mirror {
    /// e.g. `xpkg.upbound.io/`; matched as a plain prefix of the package path.
    #[serde(deserialize_with = "limits::string::<MAX_UPSTREAM_LEN, _>")]
    pub upstream: String,
    /// Prepended to the rest of the path to form the ECR repository name.
    #[serde(
        default,
        deserialize_with = "limits::string::<MAX_REPOSITORY_PREFIX_LEN, _>"
    )]
    pub repository_prefix: String,
}

impl Mirror {
    /// The ECR repository an upstream package path is mirrored to, with the
    /// mirror used. The longest matching upstream prefix wins.
    pub fn repository_for<'m>(
        mirrors: &'m [Mirror],
        upstream_path: &str,
    ) -> Option<(String, &'m Mirror)> {
        Mirror::serving(mirrors, upstream_path).map(|m| {
            let rest = &upstream_path[m.upstream.len()..];
            (format!("{}{rest}", m.repository_prefix), m)
        })
    }

    /// The mirror an upstream package path is pulled through, as
    /// [`Mirror::repository_for`] chooses it, without naming the
    /// repository: the longest matching upstream prefix, the last listed
    /// on a tie.
    pub fn serving<'m>(mirrors: &'m [Mirror], upstream_path: &str) -> Option<&'m Mirror> {
        mirrors
            .iter()
            .filter(|m| upstream_path.starts_with(&m.upstream))
            .max_by_key(|m| m.upstream.len())
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
/// `allowedRegistries`: bounded, and `[]` read as missing.
fn allowed_registries<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<AllowedRegistry>>, D::Error> {
    Ok(
        limits::option_list::<MAX_ALLOWLIST_ITEMS, AllowedRegistry, _>(d)?
            .filter(|list| !list.is_empty()),
    )
}

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
    #[serde(deserialize_with = "limits::string::<MAX_REGISTRY_PATTERN_LEN, _>")]
    pub account_id: String,
    #[serde(deserialize_with = "limits::string::<MAX_REGISTRY_PATTERN_LEN, _>")]
    pub region: String,
}

/// A service account an XR may federate the pull role to; both fields are
/// globs.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AllowedServiceAccount {
    #[serde(deserialize_with = "limits::string::<MAX_PATTERN_LEN, _>")]
    pub namespace: String,
    #[serde(deserialize_with = "limits::string::<MAX_PATTERN_LEN, _>")]
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
    /// Used when the XR names no role (default: see
    /// [`super::settings::default_role_name`]).
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_ROLE_NAME_LEN, _>"
    )]
    pub role_name: Option<String>,
    /// The readable start of the default role name, instead of
    /// `<xr-name>-ecr-pull`; the hash of the XR's UID follows it.
    #[serde(default, deserialize_with = "role_name_prefix")]
    pub role_name_prefix: Option<String>,
    /// The identity; wins over the XR's unless `allowedIdentities` lists
    /// the XR's choice.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The identities an XR may choose; empty: only the default one (this
    /// input's `identity`, else IRSA with an OIDC provider, else Pod
    /// Identity).
    #[serde(default, deserialize_with = "limits::list::<MAX_IDENTITIES, _, _>")]
    pub allowed_identities: Vec<Identity>,
    /// The EKS cluster whose Pod Identity associations may assume the role
    /// (and whose account is `aws:SourceAccount`); without it, any cluster
    /// in the registry's account.
    #[serde(default)]
    pub cluster_arn: Option<ClusterArn>,
    /// The cluster's OIDC provider (IRSA), when the XR names none.
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_OIDC_PROVIDER_LEN, _>"
    )]
    pub oidc_provider: Option<String>,
    /// Service accounts trusted under IRSA when the XR names none (default
    /// `crossplane-system/crossplane`).
    #[serde(
        default,
        deserialize_with = "limits::list::<MAX_SERVICE_ACCOUNTS, _, _>"
    )]
    pub service_accounts: Vec<ServiceAccount>,
    /// Node roles the pull policy is attached to when the XR names none.
    #[serde(
        default,
        deserialize_with = "limits::strings::<MAX_NODE_ROLES, MAX_ROLE_NAME_LEN, _>"
    )]
    pub node_role_names: Vec<String>,
    /// Globs an XR's `iam.roleName` must match; empty: the XR may not set it.
    #[serde(default, deserialize_with = "patterns")]
    pub allowed_role_names: Vec<String>,
    /// Globs each of an XR's `iam.nodeRoleNames` must match; empty: the XR
    /// may not set them.
    #[serde(default, deserialize_with = "patterns")]
    pub allowed_node_role_names: Vec<String>,
    /// Globs an XR's `iam.oidcProvider` must match; empty: the XR may not
    /// set it.
    #[serde(default, deserialize_with = "patterns")]
    pub allowed_oidc_providers: Vec<String>,
    /// Namespace and name globs each of an XR's `iam.serviceAccounts` must
    /// match; empty: the XR may not set them.
    #[serde(
        default,
        deserialize_with = "limits::list::<MAX_ALLOWLIST_ITEMS, _, _>"
    )]
    pub allowed_service_accounts: Vec<AllowedServiceAccount>,
    #[serde(default)]
    pub managed_resources: ManagedResources,
    #[serde(
        default = "default_provider_config_name",
        deserialize_with = "limits::string::<MAX_OBJECT_NAME_LEN, _>"
    )]
    pub provider_config_name: String,
    /// Namespace of namespaced managed resources.
    #[serde(
        default,
        deserialize_with = "limits::option_string::<MAX_NAMESPACE_LEN, _>"
    )]
    pub namespace: Option<String>,
}

impl Default for IamDefaults {
    fn default() -> Self {
        Self {
            enabled: true,
            role_name: None,
            role_name_prefix: None,
            identity: None,
            allowed_identities: Vec::new(),
            cluster_arn: None,
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

/// `iam.clusterArn`: `arn:<partition>:eks:<region>:<account>:cluster/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterArn(String);

impl ClusterArn {
    /// Checks an ARN; the error says what is wrong without echoing it.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        check_len(text, MAX_CLUSTER_ARN_LEN)?;
        let shape = "must be an EKS cluster ARN, arn:<partition>:eks:<region>:<12-digit account>:cluster/<name>";
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(shape.to_string());
        };
        let partition_ok = partition == "aws"
            || partition.strip_prefix("aws-").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .split('-')
                        .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
            });
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        // EKS: 1-100 of letters, digits, - and _, starting alphanumeric.
        let name_ok = resource.strip_prefix("cluster/").is_some_and(|name| {
            (1..=100).contains(&name.len())
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if arn != "arn"
            || service != "eks"
            || !partition_ok
            || !super::xr::is_region(region)
            || !account_ok
            || !name_ok
        {
            return Err(shape.to_string());
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cluster's AWS account.
    pub fn account_id(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for ClusterArn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ClusterArn::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `iam.roleNamePrefix`: IAM role name characters, at most
/// [`MAX_ROLE_NAME_PREFIX_LEN`]; the error does not echo the value.
fn role_name_prefix<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    let prefix = limits::option_string::<MAX_ROLE_NAME_PREFIX_LEN, D>(d)?;
    if let Some(prefix) = &prefix
        && (prefix.is_empty() || !prefix.chars().all(crate::names::is_role_name_char))
    {
        return Err(serde::de::Error::custom(
            "must be 1 or more of letters, digits and +=,.@_- (IAM role name characters)",
        ));
    }
    Ok(prefix)
}

fn yes() -> bool {
    true
}

/// An allowlist of globs: [`MAX_ALLOWLIST_ITEMS`] of [`MAX_PATTERN_LEN`].
fn patterns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    limits::strings::<MAX_ALLOWLIST_ITEMS, MAX_PATTERN_LEN, D>(d)
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
mod tests;

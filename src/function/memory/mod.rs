//! `status.packages`: what an entry holds, and what the XR's status
//! remembers from earlier reconciles, read back as a hint. The function writes `status.packages`, but it is stored on an
//! object users may edit, so every entry is checked again as if it were
//! fresh input before anything reads it: every entry, leaving or not, for
//! its bounds, name, repository grammar and allowlist as it is read (it may
//! drive a lookup or be written back), and each entry that may be composed
//! again for its digest, version and image path (registry and mirror) too.
//! An entry that fails is ignored, and said so without echoing more than a
//! short excerpt of what it holds.
//!
//! The memory serves three purposes: recomposing the last resolved set when
//! the registry cannot be read, keeping an installed dependency that no
//! longer resolves, and the dependency edges that order removals.

use std::collections::{BTreeMap, BTreeSet};

// Hashed for every listed package of every call: foldhash, not SipHash.
use foldhash::HashMap;
use std::sync::OnceLock;

use crate::sdk::protobuf::Value;
use crate::sdk::protobuf::value::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::compose::packages::package_resource_name;
use crate::function::observed::ObservedResources;
use crate::function::rollout::{Quarantined, Rollout, path_of, read_quarantined};
use crate::names::{is_digest, is_label, is_repository_name};
use crate::package::PackageKind;
use crate::resolve::Installed;
use crate::resolve::graph::{Graph, PackageNode};
use crate::resolve::scan::Skipped;
use crate::sdk::de::ValueDeserializer;
use crate::sdk::structs::{bool_value, list_value, object_value, string_value};
use crate::spec::limits::{
    MAX_DIGEST_LEN, MAX_PACKAGE_NAME_LEN, MAX_REPOSITORY_LEN, MAX_STATUS_PACKAGE_REF_LEN,
    MAX_STATUS_PACKAGES, MAX_VERSION_LEN,
};
use crate::spec::{Settings, XrSpec};
use crate::version::is_tag;

/// One entry of `status.packages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageStatus {
    pub name: String,
    pub kind: PackageKind,
    pub repository: String,
    pub version: String,
    pub digest: String,
    /// The `spec.package` of the package object.
    pub package: String,
    /// Names of the packages this one depends on, including edges still
    /// held from an earlier release until this one has settled.
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub ready: bool,
    /// No longer wanted, but still installed: kept here (with its edges)
    /// until it is gone, so its dependencies leave only after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaving: bool,
    /// Who holds the package object when this XR does not: another XR
    /// (`Kind/name`), or `no controller`. This XR shares it and never
    /// changes it (see `ownership`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<String>,
    /// While the package moves from one reference to another (see
    /// `rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// The highest release of the repository, where the constraints keep
    /// the package from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
    /// Higher versions the supply-chain gate skipped, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl PackageStatus {
    /// This entry as `status.packages` holds it, built straight into
    /// protobuf: what its serde form says, without JSON in between.
    pub fn to_value(&self) -> Value {
        let mut fields = vec![
            ("name", string_value(&self.name)),
            ("kind", string_value(self.kind.as_str())),
            ("repository", string_value(&self.repository)),
            ("version", string_value(&self.version)),
            ("digest", string_value(&self.digest)),
            ("package", string_value(&self.package)),
            (
                "dependsOn",
                list_value(self.depends_on.iter().map(|d| string_value(d)).collect()),
            ),
            ("ready", bool_value(self.ready)),
        ];
        if self.leaving {
            fields.push(("leaving", bool_value(true)));
        }
        if let Some(holder) = &self.shared_with {
            fields.push(("sharedWith", string_value(holder)));
        }
        if let Some(rollout) = &self.rollout {
            fields.push(("rollout", rollout.to_value()));
        }
        if let Some(available) = &self.available {
            fields.push(("available", string_value(available)));
        }
        if !self.skipped.is_empty() {
            let skipped = self.skipped.iter().map(|s| {
                object_value([
                    ("version", string_value(&s.version)),
                    ("reason", string_value(&s.reason)),
                ])
            });
            fields.push(("skipped", list_value(skipped.collect())));
        }
        object_value(fields)
    }
}

/// Entries read from `status.packages` at most: as many as resolution
/// composes and the XRDs admit, so a status this function wrote is read
/// whole (reading fewer would drop the rest when the registry is down).
pub const MAX_REMEMBERED: usize = MAX_STATUS_PACKAGES;

/// Characters of a status value a message quotes at most.
const MAX_QUOTED: usize = 64;

/// `status.packages[].sharedWith`, as the XRDs bound it.
const MAX_SHARED_WITH_LEN: usize = 512;

/// What the XR's observed status says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Previous {
    /// Entries that parsed, in the order the status lists them.
    pub packages: Vec<PackageStatus>,
    /// Why entries that did not parse were skipped.
    pub unreadable: Vec<String>,
    /// Each condition, by type.
    pub conditions: BTreeMap<String, Condition>,
    /// `status.quarantined`: releases rolled back, checked (see
    /// `rollout`).
    pub quarantined: Vec<Quarantined>,
}

/// One of the XR's conditions as it was observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The remembered packages that passed every check, as install-graph nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Remembered {
    /// By repository. Entries marked `leaving` are not here: they are on
    /// their way out and are never composed again.
    pub nodes: BTreeMap<String, PackageNode>,
    /// One line per entry that was ignored, saying which and why.
    pub ignored: Vec<String>,
}

impl Previous {
    /// Reads the observed XR's status leniently: a status this function did
    /// not write (or an older shape) is no memory, never an error, and one
    /// malformed entry costs only itself. Every entry, leaving or not, is
    /// held to what fresh input is before anything else sees it (see
    /// [`check_entry`]); one that fails is not read.
    ///
    /// `status.packages` is read from `packages`, as the request holds it
    /// (typed, without JSON between), the rest of the status from
    /// `composite`.
    pub fn read(composite: &Json, packages: Option<&Value>, settings: &Settings) -> Self {
        let entries = packages.and_then(|p| match &p.kind {
            Some(Kind::ListValue(list)) => Some(list.values.as_slice()),
            _ => None,
        });
        let mut packages = Vec::new();
        let mut unreadable = Vec::new();
        if let Some(entries) = entries {
            for (i, entry) in entries.iter().enumerate().take(MAX_REMEMBERED) {
                match PackageStatus::deserialize(ValueDeserializer(entry)) {
                    Ok(mut package) => match check_entry(settings, &package) {
                        Ok(()) => {
                            // A rollout that fails its checks costs only
                            // itself: the package is simply not moving.
                            let rollout =
                                package.rollout.as_ref().map(|r| r.check(&package.package));
                            if let Some(Err(why)) = rollout {
                                unreadable.push(format!(
                                    "ignoring status.packages[{i}].rollout ({}): {why}",
                                    quoted(&package.name)
                                ));
                                package.rollout = None;
                            }
                            packages.push(package);
                        }
                        Err(why) => unreadable.push(format!(
                            "ignoring status.packages[{i}] ({}): {why}",
                            quoted(&package.name)
                        )),
                    },
                    // serde quotes what it could not read: cut it short.
                    Err(e) => unreadable.push(format!(
                        "ignoring status.packages[{i}]: {}",
                        excerpt(&e.to_string(), 4 * MAX_QUOTED)
                    )),
                }
            }
            if entries.len() > MAX_REMEMBERED {
                unreadable.push(format!(
                    "status.packages: only the first {MAX_REMEMBERED} of {} entries are read",
                    entries.len()
                ));
            }
        }
        let conditions = composite
            .pointer("/status/conditions")
            .and_then(Json::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|c| {
                        let text = |k: &str| {
                            c.get(k)
                                .and_then(Json::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        let kind = c.get("type")?.as_str()?.to_string();
                        let condition = Condition {
                            status: text("status"),
                            reason: text("reason"),
                            message: text("message"),
                        };
                        Some((kind, condition))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (quarantined, ignored) = read_quarantined(composite);
        unreadable.extend(ignored);
        Self {
            packages,
            unreadable,
            conditions,
            quarantined,
        }
    }

    /// The rollouts the status shows, by package name.
    pub fn rollouts(&self) -> BTreeMap<String, Rollout> {
        self.packages
            .iter()
            .filter(|p| !p.leaving)
            .filter_map(|p| Some((p.name.clone(), p.rollout.clone()?)))
            .collect()
    }

    /// The entries that pass the same checks as fresh input, as nodes.
    pub fn remembered(&self, settings: &Settings, spec: &XrSpec) -> Remembered {
        let host = &settings.registry_host;
        let mut ignored = self.unreadable.clone();
        let mut checked: Vec<(&PackageStatus, PackageNode)> = Vec::new();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let mut repositories: BTreeSet<&str> = BTreeSet::new();
        // Each listed repository's runtime config, the first listing's:
        // looked up once per entry.
        let mut runtime_configs: HashMap<&str, Option<&String>> = HashMap::default();
        for listed in &spec.packages {
            runtime_configs
                .entry(listed.repository.as_str())
                .or_insert(listed.runtime_config_name.as_ref());
        }
        for (i, entry) in self.packages.iter().enumerate() {
            if entry.leaving {
                continue;
            }
            let checked_entry = check(settings, host, entry).and_then(|upstream| {
                if !names.insert(&entry.name) || !repositories.insert(&entry.repository) {
                    return Err("it repeats an earlier entry's name or repository".to_string());
                }
                Ok(upstream)
            });
            match checked_entry {
                Ok(upstream) => checked.push((
                    entry,
                    PackageNode {
                        repository: entry.repository.clone(),
                        kind: entry.kind,
                        upstream,
                        name: entry.name.clone(),
                        version: entry.version.clone(),
                        digest: entry.digest.clone(),
                        depends_on: BTreeSet::new(),
                        runtime_config_name: runtime_configs
                            .get(entry.repository.as_str())
                            .copied()
                            .flatten()
                            .cloned(),
                    },
                )),
                Err(why) => ignored.push(format!(
                    "ignoring status.packages[{i}] ({}): {why}",
                    quoted(&entry.name)
                )),
            }
        }
        let repository_of: BTreeMap<&str, &str> = checked
            .iter()
            .map(|(entry, _)| (entry.name.as_str(), entry.repository.as_str()))
            .collect();
        let nodes = checked
            .into_iter()
            .map(|(entry, mut node)| {
                node.depends_on = entry
                    .depends_on
                    .iter()
                    .filter_map(|d| repository_of.get(d.as_str()).map(|r| r.to_string()))
                    .collect();
                (node.repository.clone(), node)
            })
            .collect();
        Remembered { nodes, ignored }
    }

    /// Composition resource name -> the resource names it depended on when
    /// last composed, leaving packages included, so removal waits for
    /// dependents that are still installed.
    pub fn dependencies(&self) -> BTreeMap<String, Vec<String>> {
        self.packages
            .iter()
            .map(|p| {
                (
                    package_resource_name(&p.name),
                    p.depends_on
                        .iter()
                        .map(|d| package_resource_name(d))
                        .collect(),
                )
            })
            .collect()
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.get(kind)
    }
}

impl Remembered {
    /// The install graph as last resolved.
    pub fn graph(&self) -> crate::Result<Graph> {
        Graph::new(self.nodes.values().cloned())
    }
}

/// The status's memory, checked on first use: a call whose registry answers
/// reads it only where a dependency fails to resolve, so most calls never
/// pay for checking a thousand entries.
pub struct Recollection<'a> {
    previous: &'a Previous,
    settings: &'a Settings,
    spec: &'a XrSpec,
    remembered: OnceLock<Remembered>,
}

impl<'a> Recollection<'a> {
    pub fn of(previous: &'a Previous, settings: &'a Settings, spec: &'a XrSpec) -> Self {
        Self {
            previous,
            settings,
            spec,
            remembered: OnceLock::new(),
        }
    }

    /// What [`Previous::remembered`] makes of the status, made once.
    pub fn remembered(&self) -> &Remembered {
        self.remembered
            .get_or_init(|| self.previous.remembered(self.settings, self.spec))
    }

    /// The remembered packages whose objects exist, as a view.
    pub fn installed(&'a self, observed: &'a ObservedResources<'a>) -> InstalledView<'a> {
        InstalledView {
            recollection: self,
            observed,
        }
    }
}

/// The remembered packages whose package objects exist: what is installed.
/// A view, looked up only when a dependency fails to resolve.
#[derive(Clone, Copy)]
pub struct InstalledView<'a> {
    recollection: &'a Recollection<'a>,
    observed: &'a ObservedResources<'a>,
}

impl Installed for InstalledView<'_> {
    fn get(&self, repository: &str) -> Option<&PackageNode> {
        let remembered = self.recollection.remembered();
        remembered.nodes.get(repository).filter(|node| {
            self.observed
                .contains_key(&package_resource_name(&node.name))
        })
    }
}

/// `skipped` within the bounds the XRDs declare.
fn check_skipped(skipped: &[Skipped]) -> Result<(), String> {
    use crate::spec::limits::{MAX_SKIPPED, MAX_SKIPPED_REASON_LEN, check_len, too_many};
    if skipped.len() > MAX_SKIPPED {
        return Err(format!("skipped {}", too_many(MAX_SKIPPED, skipped.len())));
    }
    for (i, s) in skipped.iter().enumerate() {
        check_len(&s.version, MAX_VERSION_LEN).map_err(|e| format!("skipped[{i}].version {e}"))?;
        check_len(&s.reason, MAX_SKIPPED_REASON_LEN)
            .map_err(|e| format!("skipped[{i}].reason {e}"))?;
    }
    Ok(())
}

/// The checks every entry passes as it is read, leaving or not, since any
/// entry may drive a lookup (a leaving package object is asked for by kind
/// and name), hold a removal back (its `dependsOn`), or be written back:
/// each field within the bound the XRDs declare, the name and each
/// `dependsOn` a DNS label, the repository an ECR repository name the
/// input allows. The kind was checked as it was decoded.
fn check_entry(settings: &Settings, entry: &PackageStatus) -> Result<(), String> {
    let bounds = [
        ("name", &entry.name, MAX_PACKAGE_NAME_LEN),
        ("repository", &entry.repository, MAX_REPOSITORY_LEN),
        ("version", &entry.version, MAX_VERSION_LEN),
        ("digest", &entry.digest, MAX_DIGEST_LEN),
        ("package", &entry.package, MAX_STATUS_PACKAGE_REF_LEN),
    ];
    for (field, value, max) in bounds {
        crate::spec::limits::check_len(value, max).map_err(|e| format!("{field} {e}"))?;
    }
    if let Some(holder) = &entry.shared_with {
        crate::spec::limits::check_len(holder, MAX_SHARED_WITH_LEN)
            .map_err(|e| format!("sharedWith {e}"))?;
    }
    if let Some(available) = &entry.available {
        crate::spec::limits::check_len(available, MAX_VERSION_LEN)
            .map_err(|e| format!("available {e}"))?;
    }
    check_skipped(&entry.skipped)?;
    if entry.depends_on.len() > MAX_STATUS_PACKAGES {
        return Err(format!(
            "dependsOn {}",
            crate::spec::limits::too_many(MAX_STATUS_PACKAGES, entry.depends_on.len())
        ));
    }
    if !is_label(&entry.name) {
        return Err(format!("name {} is not a DNS label", quoted(&entry.name)));
    }
    if !is_repository_name(&entry.repository) {
        return Err(format!(
            "repository {} is not an ECR repository name",
            quoted(&entry.repository)
        ));
    }
    if !settings.is_allowed(&entry.repository) {
        return Err(format!(
            "repository {} is not in the input's allowedRepositories",
            quoted(&entry.repository)
        ));
    }
    for dependency in &entry.depends_on {
        if !is_label(dependency) {
            return Err(format!(
                "dependsOn {} is not a DNS label",
                quoted(dependency)
            ));
        }
    }
    Ok(())
}

/// The checks fresh input passes beyond [`check_entry`]'s, applied to one
/// remembered entry that may be composed again; on success, the upstream
/// path it is composed under. `host` is the XR's registry host.
fn check(settings: &Settings, host: &str, entry: &PackageStatus) -> Result<String, String> {
    if !is_digest(&entry.digest) {
        return Err(format!(
            "digest {} is not a sha256 digest",
            quoted(&entry.digest)
        ));
    }
    if !(is_tag(&entry.version) || entry.version == entry.digest) {
        return Err(format!(
            "version {} is neither a tag nor the entry's digest",
            quoted(&entry.version)
        ));
    }
    upstream(settings, host, entry)
}

/// A status value for a message: quoted, and cut to [`MAX_QUOTED`]
/// characters with `…` when longer.
fn quoted(value: &str) -> String {
    format!("{:?}", excerpt(value, MAX_QUOTED))
}

/// `text` cut to `max` characters, with `…` when cut.
fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The upstream path a remembered `package` stands for. It was written
/// either as the ECR path (strategy Skip) or as an upstream path that a
/// mirror maps to exactly this repository (Rewrite); anything else (another
/// registry, another repository) is refused.
fn upstream(settings: &Settings, host: &str, entry: &PackageStatus) -> Result<String, String> {
    let reference = &entry.package;
    let path = path_of(reference);
    let in_registry = path
        .strip_prefix(host)
        .and_then(|rest| rest.strip_prefix('/'));
    if in_registry == Some(entry.repository.as_str()) {
        return settings
            .upstream_for(&entry.repository)
            .map(|(upstream, _)| upstream)
            .ok_or_else(|| {
                format!(
                    "repository {:?} is under no mirror's repositoryPrefix",
                    entry.repository
                )
            });
    }
    match settings.repository_for(path) {
        Some((repository, _)) if repository == entry.repository => Ok(path.to_string()),
        _ => Err(format!(
            "package {} is neither {host}/{} nor an upstream path mirrored to it",
            quoted(reference),
            entry.repository
        )),
    }
}

#[cfg(test)]
mod tests;

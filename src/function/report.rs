//! The XR's status: the resolved packages in install order, and the two
//! conditions that say whether resolution worked and whether the packages
//! are up. What `status.packages` holds, and how it is read back as the
//! function's memory, is `memory`'s.

use std::collections::{BTreeMap, BTreeSet};

// Hashed for every package of every call: foldhash, not SipHash.
use foldhash::HashSet;

use crate::compose::packages::{
    PackageNames, package_name, package_reference, package_resource_name,
};
use crate::error::Error;
use crate::function::activation::Inactive;
use crate::function::admission::{Readiness, Waiting};
use crate::function::memory::{PackageStatus, Previous, Recollection};
use crate::function::observed::{Observed, ObservedResources, StatusFor};
use crate::function::ownership::{Ownership, Shared};
use crate::function::rollout::{Decisions, Quarantined, UPGRADED};
use crate::resolve::graph::Graph;
use crate::resolve::scan::Skipped;
use crate::resolve::{Blocked, Kept};
use crate::sdk::Response;
use crate::sdk::response::ConditionStatus;
use crate::sdk::structs::list_value;
use crate::spec::Settings;

/// `status.packages` for a graph, in install order, readiness observed
/// (and, for a package that asked for definitions, those active);
/// each with the edges `held` from earlier reconciles (resource names), and
/// then the remembered packages that are no longer wanted but still exist
/// (observed, or `lingering`: deleted but not gone), marked leaving. A
/// package object another XR (or nobody) holds is ready when it serves this
/// XR (see `ownership`), and says who holds it.
#[allow(clippy::too_many_arguments)]
pub fn package_statuses(
    settings: &Settings,
    graph: &Graph,
    observed: &ObservedResources,
    ownership: &Ownership,
    held: &BTreeMap<String, BTreeSet<String>>,
    lingering: &BTreeSet<String>,
    previous: &Previous,
    rollouts: &Decisions,
    available: &BTreeMap<String, String>,
    inactive: &Inactive,
    skipped: &BTreeMap<String, Vec<Skipped>>,
) -> Vec<PackageStatus> {
    // A long name's resource name is hashed: the held edges' names are
    // found among the names this call knows, indexed once (when any is held).
    let known = if held.is_empty() {
        PackageNames::default()
    } else {
        let names = graph.nodes().map(|n| n.name.as_str());
        PackageNames::of(names.chain(previous.packages.iter().map(|p| p.name.as_str())))
    };
    let mut statuses: Vec<PackageStatus> = graph
        .install_order()
        .into_iter()
        .map(|node| {
            let resource = package_resource_name(&node.name);
            let shared = ownership.shared(&resource);
            let mut depends_on: BTreeSet<String> = node
                .depends_on
                .iter()
                .filter_map(|d| graph.get(d).map(|n| n.name.clone()))
                .collect();
            depends_on.extend(held.get(&resource).into_iter().flatten().filter_map(|r| {
                known
                    .name_of(r)
                    .or_else(|| package_name(r))
                    .map(str::to_string)
            }));
            PackageStatus {
                name: node.name.clone(),
                kind: node.kind,
                repository: node.repository.clone(),
                version: node.version.clone(),
                digest: node.digest.clone(),
                package: package_reference(settings, node),
                depends_on: depends_on.into_iter().collect(),
                ready: Readiness {
                    observed: observed.get(&resource).is_some_and(Observed::is_ready),
                    moving: rollouts.moving.contains(&resource),
                    shared: shared.is_some_and(Shared::is_ready),
                    inactive: inactive.of(&resource).is_some(),
                }
                .is_ready(),
                leaving: false,
                shared_with: shared.map(|s| s.holder.to_string()),
                rollout: rollouts.rollouts.get(&node.name).cloned(),
                available: available.get(&node.name).cloned(),
                skipped: skipped.get(&node.name).cloned().unwrap_or_default(),
            }
        })
        .collect();
    // Looked up once per remembered entry: hashed, as the names share long
    // prefixes that make ordered lookups compare many bytes.
    let current: HashSet<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    let leaving: Vec<&PackageStatus> = previous
        .packages
        .iter()
        .filter(|entry| !current.contains(entry.name.as_str()))
        .collect();
    for entry in leaving {
        let resource = package_resource_name(&entry.name);
        let exists = observed.contains_key(&resource) || lingering.contains(&resource);
        if !exists {
            continue;
        }
        statuses.push(PackageStatus {
            ready: observed.get(&resource).is_some_and(Observed::is_ready),
            leaving: true,
            shared_with: None,
            rollout: None,
            available: None,
            skipped: Vec::new(),
            ..entry.clone()
        });
    }
    statuses
}

/// What a resolved set is compared by to tell whether it changed.
fn identity(s: &PackageStatus) -> (&str, &str, &str) {
    (&s.name, &s.version, &s.digest)
}

/// Says why a package is not ready yet, for the PackagesHealthy message.
pub fn describe_not_ready(
    name: &str,
    observed: Option<&Observed>,
    waiting_on: Option<&[String]>,
) -> String {
    match (observed, waiting_on) {
        (None, Some(needs)) => format!("{name} (waiting for {})", needs.join(", ")),
        (None, None) => format!("{name} (not created yet)"),
        (Some(object), _) => {
            let state = |kind: &str| match object.condition(kind) {
                Some((status, "")) => format!("{kind}={status}"),
                Some((status, reason)) => format!("{kind}={status} ({reason})"),
                None => format!("{kind} unknown"),
            };
            // Installed and Healthy that still describe the revision being
            // replaced (or an older spec) say so, or the message would read
            // healthy.
            let both_true = ["Installed", "Healthy"]
                .iter()
                .all(|kind| object.condition(kind).is_some_and(|(s, _)| s == "True"));
            let behind = match object.status_for() {
                _ if !both_true => "",
                StatusFor::Spec => "",
                StatusFor::OtherPackage => ", not yet on its spec.package",
                StatusFor::OlderGeneration => ", status not yet for its latest spec",
            };
            format!(
                "{name} ({}, {}{behind})",
                state("Installed"),
                state("Healthy")
            )
        }
    }
}

/// Writes `status.packages`, the `Resolved` and `PackagesHealthy`
/// conditions, and an event only when something changed since the status
/// the XR already shows (Crossplane turns every result into an event).
pub struct Report<'a> {
    pub settings: &'a Settings,
    pub graph: &'a Graph,
    pub observed: &'a ObservedResources<'a>,
    pub waiting: &'a [Waiting],
    /// Packages whose `activate` entries are not all active yet.
    pub inactive: &'a Inactive,
    pub held: &'a BTreeMap<String, BTreeSet<String>>,
    /// Leaving packages whose objects are deleted but not gone.
    pub lingering: &'a BTreeSet<String>,
    pub previous: &'a Previous,
    /// Why the registry could not be read this time, if it could not.
    pub failure: Option<&'a Error>,
    /// Installed dependencies kept because they no longer resolve.
    pub kept: &'a [Kept],
    /// The status entries that passed re-validation (checked only when the
    /// registry failed).
    pub remembered: &'a Recollection<'a>,
    /// Objects this XR would compose that another XR (or nobody) holds.
    pub ownership: &'a Ownership,
    /// What rollouts decided: each package's rollout, the quarantine, and
    /// the `Upgraded` condition.
    pub rollouts: &'a Decisions,
    /// By package name, the releases the constraints keep packages from.
    pub available: &'a BTreeMap<String, String>,
    /// Constraints the Crossplane v2 dialects read differently.
    pub dialects: &'a [String],
    /// By package name, the versions the supply-chain gate skipped.
    pub skipped: &'a BTreeMap<String, Vec<Skipped>>,
    /// Packages no version of which passes the supply-chain gate.
    pub blocked: &'a [Blocked],
}

impl Report<'_> {
    pub fn write(&self, response: &mut Response) {
        let packages = if self.graph.is_empty() && self.failure.is_some() {
            // Nothing resolved and the memory made no graph: keep what it
            // remembers that still passes the checks, rather than erase it.
            self.previous
                .packages
                .iter()
                .filter(|p| {
                    p.leaving
                        || self
                            .remembered
                            .remembered()
                            .nodes
                            .get(&p.repository)
                            .is_some_and(|n| n.name == p.name)
                })
                .cloned()
                .collect()
        } else {
            package_statuses(
                self.settings,
                self.graph,
                self.observed,
                self.ownership,
                self.held,
                self.lingering,
                self.previous,
                self.rollouts,
                self.available,
                self.inactive,
                self.skipped,
            )
        };
        let current: Vec<&PackageStatus> = packages.iter().filter(|p| !p.leaving).collect();
        self.resolved(response, &current);
        // Said once, with the resolution it is about.
        if self.failure.is_none() && self.changed(&current) {
            for warning in self.dialects {
                response.warning("ConstraintDialects", warning.clone());
            }
        }
        if self.failure.is_none() {
            self.gated(response, &current);
        }
        self.healthy(response, &current);
        let packages = list_value(packages.iter().map(PackageStatus::to_value).collect());
        response.set_composite_status([("packages".to_string(), packages)]);
        // Left out when empty: what the function no longer writes, Crossplane
        // removes from the status.
        if !self.rollouts.quarantined.is_empty() {
            let quarantined = self.rollouts.quarantined.iter().map(Quarantined::to_value);
            response.set_composite_status([(
                "quarantined".to_string(),
                list_value(quarantined.collect()),
            )]);
        }
        let upgraded = &self.rollouts.condition;
        response.condition(
            UPGRADED,
            upgraded.status,
            upgraded.reason,
            upgraded.message.clone(),
        );
    }

    fn resolved(&self, response: &mut Response, packages: &[&PackageStatus]) {
        let conflicts = self.ownership.conflicts();
        match self.failure {
            None if !conflicts.is_empty() => {
                let shown = conflicts.len().min(MAX_CONFLICTS_SHOWN);
                let mut message = format!(
                    "resolved {} packages from {}; {}",
                    packages.len(),
                    self.settings.registry,
                    conflicts[..shown].join("; ")
                );
                if conflicts.len() > shown {
                    message.push_str(&format!("; and {} more", conflicts.len() - shown));
                }
                self.once(response, CONFLICT, &message, &[message.clone()]);
                response.condition(RESOLVED, ConditionStatus::False, CONFLICT, message);
            }
            None if !self.blocked.is_empty() => {
                let blocked: Vec<String> = self.blocked.iter().map(Blocked::to_string).collect();
                let kept = self.kept.iter().map(Kept::to_string);
                let message = format!(
                    "resolved {} packages from {}; {}",
                    packages.len(),
                    self.settings.registry,
                    blocked
                        .iter()
                        .cloned()
                        .chain(kept)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                self.once(response, SUPPLY_CHAIN, &message, &blocked);
                response.condition(RESOLVED, ConditionStatus::False, SUPPLY_CHAIN, message);
            }
            None if !self.kept.is_empty() => {
                let kept: Vec<String> = self.kept.iter().map(Kept::to_string).collect();
                let message = format!(
                    "resolved {} packages from {}; {}",
                    packages.len(),
                    self.settings.registry,
                    kept.join("; ")
                );
                let gated = self
                    .kept
                    .iter()
                    .any(|k| matches!(k.reason, Error::SupplyChain { .. }));
                let reason = if gated {
                    SUPPLY_CHAIN
                } else {
                    "DependencyUnresolvable"
                };
                self.once(response, reason, &message, &kept);
                response.condition(RESOLVED, ConditionStatus::False, reason, message);
            }
            None => {
                response.condition(
                    RESOLVED,
                    ConditionStatus::True,
                    "Resolved",
                    format!(
                        "resolved {} packages from {}",
                        packages.len(),
                        self.settings.registry
                    ),
                );
                if self.changed(packages) {
                    let list: Vec<String> = packages
                        .iter()
                        .map(|p| format!("{} {}", p.name, p.version))
                        .collect();
                    response.normal("Resolved", format!("resolved {}", list.join(", ")));
                }
            }
            Some(error) => {
                let reason = failure_reason(error);
                let message = if packages.is_empty() {
                    format!("{error}; nothing resolved yet, will retry")
                } else {
                    format!(
                        "{error}; keeping the last resolved set of {} packages, will retry",
                        packages.len()
                    )
                };
                // The memory stood in for the registry: say what of it was
                // not trusted.
                let mut warnings = vec![message.clone()];
                warnings.extend(self.remembered.remembered().ignored.iter().cloned());
                self.once(response, reason, &message, &warnings);
                response.condition(RESOLVED, ConditionStatus::False, reason, message);
            }
        }
    }

    /// A Warning for each package whose skipped versions changed since the
    /// status the XR shows: it stays below a release the gate refused.
    fn gated(&self, response: &mut Response, packages: &[&PackageStatus]) {
        for p in packages.iter().filter(|p| !p.skipped.is_empty()) {
            let before = self.previous.packages.iter().find(|b| b.name == p.name);
            if before.is_some_and(|b| b.skipped == p.skipped) {
                continue;
            }
            let skipped: Vec<String> = p.skipped.iter().map(Skipped::to_string).collect();
            response.warning(
                SUPPLY_CHAIN,
                format!(
                    "{} stays at {}: the supply-chain gate skipped {}",
                    p.name,
                    p.version,
                    skipped.join("; ")
                ),
            );
        }
    }

    /// Whether the resolved set (without packages that are only leaving)
    /// differs from the one the status shows.
    fn changed(&self, packages: &[&PackageStatus]) -> bool {
        let before = self.previous.packages.iter().filter(|s| !s.leaving);
        !packages
            .iter()
            .copied()
            .map(identity)
            .eq(before.map(identity))
    }

    /// Emits `warnings` unless the XR already shows `Resolved=False` with
    /// this reason and message: Crossplane turns every result into an event,
    /// and an unchanged problem is not news.
    fn once(&self, response: &mut Response, reason: &str, message: &str, warnings: &[String]) {
        let seen = self
            .previous
            .condition(RESOLVED)
            .is_some_and(|c| c.status == "False" && c.reason == reason && c.message == message);
        if !seen {
            for warning in warnings {
                response.warning(reason, warning.clone());
            }
        }
    }

    fn healthy(&self, response: &mut Response, packages: &[&PackageStatus]) {
        if packages.is_empty() {
            response.condition(
                PACKAGES_HEALTHY,
                ConditionStatus::Unknown,
                "NotResolved",
                "no packages resolved yet",
            );
            return;
        }
        let waiting: BTreeMap<&str, &[String]> = self
            .waiting
            .iter()
            .map(|w| (w.name.as_str(), w.needs.as_slice()))
            .collect();
        let mut unhealthy = false;
        let not_ready: Vec<String> = packages
            .iter()
            .filter(|p| !p.ready)
            .map(|p| {
                let resource = package_resource_name(&p.name);
                let object = self.observed.get(&resource);
                unhealthy |= object
                    .and_then(|o| o.condition("Healthy"))
                    .is_some_and(|(s, _)| s == "False");
                if let Some(entries) = self.inactive.of(&resource) {
                    return format!(
                        "{} (waiting for definitions to be activated: {})",
                        p.name,
                        entries.join(", ")
                    );
                }
                match self.ownership.shared(&resource) {
                    Some(shared) if shared.is_conflict() => {
                        format!("{} (held by {}, see Resolved)", p.name, shared.holder)
                    }
                    Some(shared) => {
                        format!("{} (shared with {}, not ready)", p.name, shared.holder)
                    }
                    None => {
                        describe_not_ready(&p.name, object, waiting.get(resource.as_str()).copied())
                    }
                }
            })
            .collect();
        if not_ready.is_empty() {
            response.condition(
                PACKAGES_HEALTHY,
                ConditionStatus::True,
                "Healthy",
                format!("all {} packages are installed and healthy", packages.len()),
            );
        } else {
            response.condition(
                PACKAGES_HEALTHY,
                ConditionStatus::False,
                if unhealthy { "Unhealthy" } else { "Installing" },
                format!("not ready: {}", not_ready.join("; ")),
            );
        }
    }
}

pub const RESOLVED: &str = "Resolved";
/// The `Resolved` reason and the Warning's while the supply-chain gate
/// holds a package back.
pub const SUPPLY_CHAIN: &str = "SupplyChain";
/// The `Resolved` reason while another XR (or nobody) holds an object this
/// XR would compose differently.
pub const CONFLICT: &str = "Conflict";
/// Conflicts a condition names at most; the rest are counted.
const MAX_CONFLICTS_SHOWN: usize = 5;
pub const PACKAGES_HEALTHY: &str = "PackagesHealthy";

/// The PascalCase reason for a failure the function rides out.
fn failure_reason(error: &Error) -> &'static str {
    match error {
        Error::DeadlineExceeded { .. } => "RegistryTimeout",
        Error::Credentials(_) => "NoCredentials",
        Error::InvalidPackage { .. } => "InvalidPackage",
        Error::SupplyChain { .. } => SUPPLY_CHAIN,
        // Nothing was recomposed from the status, for the same cause.
        Error::NotRecomposed { cause, .. } => failure_reason(cause),
        _ => "RegistryUnavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn not_ready_descriptions_say_what_is_missing() {
        let object = json!({"status": {"conditions": [{"type": "Installed", "status": "True"}, {"type": "Healthy", "status": "False", "reason": "UnhealthyPackageRevision"}]}});
        assert_eq!(
            describe_not_ready("p", Some(&Observed::from_json(&object)), None),
            "p (Installed=True, Healthy=False (UnhealthyPackageRevision))"
        );
        assert_eq!(
            describe_not_ready("p", None, Some(&["iam-attachment".to_string()])),
            "p (waiting for iam-attachment)"
        );
        assert_eq!(
            describe_not_ready("p", Some(&Observed::from_json(&json!({}))), None),
            "p (Installed unknown, Healthy unknown)"
        );
        let mut moved = crate::function::observed::with_conditions(&[
            ("Installed", "True"),
            ("Healthy", "True"),
        ]);
        moved["spec"]["package"] = json!("x:v2");
        assert_eq!(
            describe_not_ready("p", Some(&Observed::from_json(&moved)), None),
            "p (Installed=True (R), Healthy=True (R), not yet on its spec.package)"
        );
        moved["status"]["currentIdentifier"] = json!("x:v2");
        moved["metadata"]["generation"] = json!(2);
        assert_eq!(
            describe_not_ready("p", Some(&Observed::from_json(&moved)), None),
            "p (Installed=True (R), Healthy=True (R), status not yet for its latest spec)"
        );
    }
}

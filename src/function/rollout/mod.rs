//! Rollouts: how an installed package moves to a new release without
//! breaking the control plane. Crossplane activates a new revision whether
//! or not it turns healthy and has no rollback, so the function paces and
//! watches every change of `spec.package` itself, like a Deployment
//! controller:
//!
//! - **What "on" means.** A package is on a reference once its object's
//!   status is for it and it is installed and healthy (see
//!   [`Observed::is_ready`]); a package whose `spec.package` this call
//!   changes is on nothing new yet, so it is [`Decisions::moving`] and
//!   nothing that needs it goes ahead in the same call.
//! - **Order.** A package whose resolved reference differs from the one its
//!   object has *wants* to move. It starts only when every package it
//!   depends on is on its own resolved reference, fewer than
//!   `maxInFlight` packages of the XR are in transition, the XR is not
//!   paused, a window (if any) is open, and the release is not
//!   quarantined; else it is *held*: composed with the reference it has.
//!   New packages install as ever; only installed ones are paced.
//! - **Deadline and rollback.** A package in transition has
//!   `progressDeadline` to be on its new reference, and `healthyGrace` once
//!   it reports `Healthy=False` for the new reference. Past either, its
//!   `spec.package` returns to where it was (`from`), and the release is
//!   quarantined for `quarantine`: resolution skips it, and the rollout
//!   shows `RolledBack` until the package next moves.
//!
//! What a call decides depends on what it observes, the XR's status (the
//! rollouts and quarantine it remembers, re-checked, see [`record`]), the
//! input's policy, and the time. [`Decisions::wake`] says when the time
//! alone would change a decision, so Crossplane is asked back then.

mod record;
mod time;

use std::collections::{BTreeMap, BTreeSet};

// Hashed for every package of every call: foldhash, not SipHash.
use foldhash::HashMap;
use std::fmt::Write as _;

use serde_json::Value as Json;

pub use self::record::{Phase, Quarantined, Rollout, path_of, read_quarantined, version_of};
pub use self::time::{Clock, SystemClock, Timestamp};
use crate::compose::Planned;
use crate::compose::packages::package_resource_name;
use crate::function::observed::{Observed, ObservedResources, StatusFor};
use crate::resolve::graph::{Graph, PackageNode};
use crate::sdk::response::ConditionStatus;
use crate::spec::Upgrades;
use crate::spec::duration;

/// The condition this module reports on the XR.
pub const UPGRADED: &str = "Upgraded";

/// Packages a condition message names at most; the rest are counted.
const MAX_NAMED: usize = 5;

/// What a call knows that rollouts depend on.
pub struct Rollouts<'a> {
    pub policy: &'a Upgrades,
    /// The XR asks to freeze installed packages (and may: see `Settings`).
    pub paused: bool,
    pub now: Timestamp,
    pub observed: &'a ObservedResources<'a>,
    pub graph: &'a Graph,
    /// The rollouts the XR's status remembers, by package name (checked).
    pub remembered: &'a BTreeMap<String, Rollout>,
    /// `status.quarantined`, checked.
    pub quarantined: &'a [Quarantined],
}

/// What rollouts decided in one call.
#[derive(Debug, Default, PartialEq)]
pub struct Decisions {
    /// By package name: the rollout to show in `status.packages[].rollout`.
    pub rollouts: BTreeMap<String, Rollout>,
    /// `status.quarantined`: the entries still in force, and new ones.
    pub quarantined: Vec<Quarantined>,
    /// Composition resource names whose `spec.package` this call changes:
    /// not ready for anything that needs them.
    pub moving: BTreeSet<String>,
    pub events: Vec<Event>,
    /// The earliest time at which a decision changes with nothing else
    /// changing (a deadline, a grace, a window opening, a quarantine's end).
    pub wake: Option<Timestamp>,
    pub condition: Upgraded,
}

/// The `Upgraded` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgraded {
    pub status: ConditionStatus,
    pub reason: &'static str,
    pub message: String,
}

impl Default for Upgraded {
    fn default() -> Self {
        Self {
            status: ConditionStatus::True,
            reason: "UpToDate",
            message: "every package is on its resolved version".to_string(),
        }
    }
}

/// An event to emit (Crossplane turns each result into one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub severity: Severity,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// Why a package that wants to move is held where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hold {
    /// Its release is quarantined (pinned exactly, so resolution could
    /// not skip it).
    Quarantined,
    Paused,
    OutsideWindow,
    /// `maxInFlight` packages are in transition.
    Busy,
    /// A package it depends on is not on its resolved reference yet.
    Dependencies,
}

/// What `decide` counts as it goes.
#[derive(Default)]
struct Tally {
    /// Packages in transition, against `maxInFlight`.
    in_flight: usize,
    /// Packages held, by why.
    holds: BTreeMap<Hold, Vec<String>>,
    /// Composition resource name -> the `spec.package` to compose when it
    /// is not the plan's.
    at: BTreeMap<String, String>,
    /// "name to reference" of what is rolling out, for the condition.
    moving: Vec<String>,
}

/// One package object of the plan that exists already.
struct Package<'p> {
    resource: &'p str,
    node: &'p PackageNode,
    observed: &'p Observed<'p>,
    /// What the object's `spec.package` is.
    at: &'p str,
    /// What the plan resolved it to.
    wanted: &'p str,
}

/// Where a package stands before anything starts.
enum Step {
    /// On what it should be, or installing for the first time: nothing to
    /// pace.
    Steady,
    /// In transition toward `rollout.to` (or back to `rollout.from`): kept
    /// at `at`, counted against `maxInFlight`.
    InFlight { at: String, rollout: Rollout },
    /// Wants to move from where it is to the plan's reference.
    Wants { since: Option<Timestamp> },
}

/// How a package in transition is doing.
enum Verdict {
    On,
    Waiting { until: Timestamp },
    Failed { reason: String },
}

impl Rollouts<'_> {
    /// Decides, for every package object of `plan` that exists, what
    /// `spec.package` it is composed with, and rewrites `plan` to match.
    pub fn decide(&self, plan: &mut [Planned]) -> Decisions {
        let mut decisions = Decisions {
            quarantined: self
                .quarantined
                .iter()
                .filter(|q| self.now < q.until)
                .cloned()
                .collect(),
            ..Decisions::default()
        };
        let ends: Vec<Timestamp> = decisions.quarantined.iter().map(|q| q.until).collect();
        for until in ends {
            decisions.wake_at(until);
        }
        let packages = self.packages(plan);
        // What is in transition first, so that starts see every slot taken.
        let steps: Vec<Step> = packages
            .iter()
            .map(|p| self.step(p, &mut decisions))
            .collect();
        // Only a package that wants to move reads what the plan wants of
        // its dependencies: a steady reconcile does not index the plan.
        let wanted: BTreeMap<&str, &str> = if steps.iter().any(|s| matches!(s, Step::Wants { .. }))
        {
            plan.iter()
                .filter_map(|p| Some((p.name.as_str(), reference(p)?)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut tally = Tally {
            in_flight: steps
                .iter()
                .filter(|s| matches!(s, Step::InFlight { .. }))
                .count(),
            ..Tally::default()
        };
        for (package, step) in packages.iter().zip(steps) {
            let name = &package.node.name;
            match step {
                Step::Steady => {}
                Step::InFlight { at, rollout } => {
                    // On its way back, it is reported as rolled back.
                    if rollout.phase == Phase::Progressing {
                        tally.moving.push(format!("{name} to {}", rollout.to));
                    }
                    if at != package.at {
                        decisions.moving.insert(package.resource.to_string());
                    }
                    tally.at.insert(package.resource.to_string(), at);
                    decisions.rollouts.insert(name.clone(), rollout);
                }
                Step::Wants { since } => {
                    let rollout =
                        self.start_or_hold(package, since, &wanted, &mut tally, &mut decisions);
                    decisions.rollouts.insert(name.clone(), rollout);
                }
            }
        }
        for planned in plan.iter_mut() {
            if let Some(reference) = tally.at.remove(&planned.name) {
                set_reference(planned, reference);
            }
        }
        if tally.holds.contains_key(&Hold::OutsideWindow)
            && let Some(opening) = self.policy.next_opening(self.now.to_system_time())
        {
            decisions.wake_at(Timestamp::of(opening));
        }
        decisions.condition = self.condition(&decisions, &tally.moving, &tally.holds);
        decisions
    }

    /// The package objects of `plan` that exist, with where they are and
    /// where the plan wants them.
    fn packages<'p>(&'p self, plan: &'p [Planned]) -> Vec<Package<'p>> {
        // Looked up by name only: hashed, as the names share long prefixes.
        let nodes: HashMap<String, &PackageNode> = self
            .graph
            .nodes()
            .map(|n| (package_resource_name(&n.name), n))
            .collect();
        plan.iter()
            .filter_map(|p| {
                let observed = self.observed.get(&p.name)?;
                Some(Package {
                    resource: &p.name,
                    node: nodes.get(&p.name)?,
                    observed,
                    at: observed.package()?,
                    wanted: reference(p)?,
                })
            })
            .collect()
    }

    /// Starts `package`'s rollout when nothing holds it, else keeps it where
    /// it is; the rollout to show either way.
    fn start_or_hold(
        &self,
        package: &Package,
        since: Option<Timestamp>,
        wanted: &BTreeMap<&str, &str>,
        tally: &mut Tally,
        decisions: &mut Decisions,
    ) -> Rollout {
        let name = &package.node.name;
        let on_dependencies = package.node.depends_on.iter().all(|d| {
            let Some(dependency) = self.graph.get(d) else {
                return true;
            };
            let resource = package_resource_name(&dependency.name);
            self.observed.get(&resource).is_some_and(|o| {
                o.is_ready() && o.package() == wanted.get(resource.as_str()).copied()
            })
        });
        if let Some(hold) = self.hold(package, decisions, tally.in_flight, on_dependencies) {
            tally.holds.entry(hold).or_default().push(name.clone());
            tally
                .at
                .insert(package.resource.to_string(), package.at.to_string());
            return Rollout {
                from: package.at.to_string(),
                to: package.wanted.to_string(),
                phase: Phase::Pending,
                since: since.unwrap_or(self.now),
            };
        }
        tally.in_flight += 1;
        tally.moving.push(format!("{name} to {}", package.wanted));
        decisions.moving.insert(package.resource.to_string());
        decisions.events.push(Event {
            severity: Severity::Normal,
            reason: "RolloutStarted",
            message: format!(
                "{name}: rolling out {} (from {})",
                package.wanted, package.at
            ),
        });
        decisions.wake_at(self.now.plus(self.policy.progress_deadline));
        Rollout {
            from: package.at.to_string(),
            to: package.wanted.to_string(),
            phase: Phase::Progressing,
            since: self.now,
        }
    }

    /// Where `package` stands, before anything starts; rolls back (noting
    /// it in `decisions`) what is past its deadline or grace.
    fn step(&self, package: &Package, decisions: &mut Decisions) -> Step {
        let name = &package.node.name;
        let remembered = self.remembered.get(name).filter(|r| {
            // A rollout that is not about where the object is, or where it
            // should go, is stale.
            r.to == package.at || r.to == package.wanted || r.from == package.at
        });
        let on = package.observed.is_ready();
        match remembered {
            Some(r) if r.phase == Phase::Progressing && r.to == package.at => {
                match self.verdict(package, r) {
                    Verdict::On => {
                        decisions.events.push(Event {
                            severity: Severity::Normal,
                            reason: "RolloutFinished",
                            message: format!("{name}: on {} (from {})", r.to, r.from),
                        });
                        self.wants(package, None)
                    }
                    Verdict::Waiting { until } => {
                        decisions.wake_at(until);
                        Step::InFlight {
                            at: package.at.to_string(),
                            rollout: r.clone(),
                        }
                    }
                    Verdict::Failed { reason } => self.roll_back(package, r, reason, decisions),
                }
            }
            Some(r) if r.phase == Phase::RolledBack && r.from == package.at && !on => {
                // Going back: nothing better to do than wait for it.
                Step::InFlight {
                    at: package.at.to_string(),
                    rollout: r.clone(),
                }
            }
            Some(r) if r.phase == Phase::RolledBack && package.at == package.wanted => {
                // Back where it was: the rollout stays on show while its
                // release is quarantined.
                if self.is_quarantined(name, &r.to, &decisions.quarantined) {
                    decisions.rollouts.insert(name.clone(), r.clone());
                }
                Step::Steady
            }
            Some(r) if r.phase == Phase::Pending && r.to == package.wanted => {
                self.wants(package, Some(r.since))
            }
            _ => self.wants(package, None),
        }
    }

    /// A package not in transition: steady when it has what the plan
    /// wants, else wanting to move (pending since `since`, if it was).
    fn wants(&self, package: &Package, since: Option<Timestamp>) -> Step {
        if package.at == package.wanted {
            Step::Steady
        } else {
            Step::Wants { since }
        }
    }

    /// How the package in transition `rollout` is doing on `rollout.to`.
    fn verdict(&self, package: &Package, rollout: &Rollout) -> Verdict {
        let observed = package.observed;
        if observed.is_ready() {
            return Verdict::On;
        }
        let since = rollout.since.min(self.now);
        let deadline = since.plus(self.policy.progress_deadline);
        if self.now >= deadline {
            return Verdict::Failed {
                reason: format!(
                    "not on {} within progressDeadline {}",
                    rollout.to,
                    duration::format(self.policy.progress_deadline)
                ),
            };
        }
        let installed = observed.condition("Installed").map(|(s, _)| s) == Some("True");
        let unhealthy = observed.condition("Healthy").filter(|(s, _)| *s == "False");
        if let (true, StatusFor::Spec, Some((_, why))) =
            (installed, observed.status_for(), unhealthy)
        {
            let turned = observed
                .condition_since("Healthy")
                .and_then(|t| Timestamp::parse(t).ok())
                .map_or(since, |t| t.max(since).min(self.now));
            let grace = turned.plus(self.policy.healthy_grace);
            if self.now >= grace {
                return Verdict::Failed {
                    reason: format!(
                        "Healthy=False ({why}) for longer than healthyGrace {}",
                        duration::format(self.policy.healthy_grace)
                    ),
                };
            }
            return Verdict::Waiting {
                until: grace.min(deadline),
            };
        }
        Verdict::Waiting { until: deadline }
    }

    /// Sends `package` back to `rollout.from` and quarantines `rollout.to`.
    /// Without a reference to go back to (it was installed at `to`),
    /// nothing moves: it stays in transition, past its deadline.
    fn roll_back(
        &self,
        package: &Package,
        rollout: &Rollout,
        reason: String,
        decisions: &mut Decisions,
    ) -> Step {
        let name = &package.node.name;
        if rollout.from == rollout.to {
            return Step::InFlight {
                at: package.at.to_string(),
                rollout: rollout.clone(),
            };
        }
        // The release: the plan's when it is the one that failed, else
        // what the reference itself says.
        let (version, digest) = if rollout.to == package.wanted {
            (package.node.version.clone(), package.node.digest.clone())
        } else {
            let version = version_of(&rollout.to).unwrap_or_default().to_string();
            let digest = if version.starts_with("sha256:") {
                version.clone()
            } else {
                String::new()
            };
            (version, digest)
        };
        let until = self.now.plus(self.policy.quarantine);
        if !digest.is_empty() && until > self.now {
            decisions
                .quarantined
                .retain(|q| !(q.name == *name && q.version == version && q.digest == digest));
            decisions.quarantined.push(Quarantined {
                name: name.clone(),
                version: version.clone(),
                digest,
                reason: reason.clone(),
                until,
            });
            decisions.wake_at(until);
        }
        decisions.events.push(Event {
            severity: Severity::Warning,
            reason: "RolledBack",
            message: format!(
                "{name}: rolled back from {} to {}: {reason}; {version} is skipped until {until}",
                rollout.to, rollout.from
            ),
        });
        Step::InFlight {
            at: rollout.from.clone(),
            rollout: Rollout {
                from: rollout.from.clone(),
                to: rollout.to.clone(),
                phase: Phase::RolledBack,
                since: self.now,
            },
        }
    }

    /// Why `package`, which wants to move, may not start now, if it may not.
    fn hold(
        &self,
        package: &Package,
        decisions: &Decisions,
        in_flight: usize,
        on_dependencies: bool,
    ) -> Option<Hold> {
        let node = package.node;
        let quarantined = decisions
            .quarantined
            .iter()
            .any(|q| q.holds(&node.name, &node.version, &node.digest, self.now));
        if quarantined {
            Some(Hold::Quarantined)
        } else if self.paused {
            Some(Hold::Paused)
        } else if !self.policy.is_open(self.now.to_system_time()) {
            Some(Hold::OutsideWindow)
        } else if in_flight >= self.policy.max_in_flight as usize {
            Some(Hold::Busy)
        } else if !on_dependencies {
            Some(Hold::Dependencies)
        } else {
            None
        }
    }

    fn is_quarantined(&self, name: &str, reference: &str, quarantined: &[Quarantined]) -> bool {
        let version = version_of(reference).unwrap_or_default();
        quarantined
            .iter()
            .any(|q| q.name == name && (q.version == version || q.digest == version))
    }

    /// `Upgraded`: what is moving first, then what holds packages back,
    /// then what was rolled back; True when every package is on its
    /// resolved reference.
    fn condition(
        &self,
        decisions: &Decisions,
        moving: &[String],
        holds: &BTreeMap<Hold, Vec<String>>,
    ) -> Upgraded {
        let held = |hold: Hold| holds.get(&hold).filter(|names| !names.is_empty());
        if !moving.is_empty() || held(Hold::Busy).is_some() || held(Hold::Dependencies).is_some() {
            let waiting: Vec<String> = [Hold::Busy, Hold::Dependencies]
                .into_iter()
                .filter_map(held)
                .flatten()
                .cloned()
                .collect();
            let mut parts = Vec::new();
            if !moving.is_empty() {
                parts.push(format!("rolling out {}", named(moving)));
            }
            if !waiting.is_empty() {
                parts.push(format!("waiting their turn: {}", named(&waiting)));
            }
            let message = parts.join("; ");
            return Upgraded {
                status: ConditionStatus::False,
                reason: "Progressing",
                message,
            };
        }
        if let Some(names) = held(Hold::Paused) {
            return Upgraded {
                status: ConditionStatus::False,
                reason: "Paused",
                message: format!(
                    "spec.upgrades.paused holds {} at what they are on",
                    named(names)
                ),
            };
        }
        if let Some(names) = held(Hold::OutsideWindow) {
            let next = self
                .policy
                .next_opening(self.now.to_system_time())
                .map(Timestamp::of);
            let mut message = format!("outside every upgrade window: {} wait", named(names));
            if let Some(next) = next {
                let _ = write!(message, " until {next}");
            }
            return Upgraded {
                status: ConditionStatus::False,
                reason: "OutsideWindow",
                message,
            };
        }
        let rolled_back: Vec<String> = decisions
            .rollouts
            .iter()
            .filter(|(_, r)| r.phase == Phase::RolledBack)
            .map(|(name, r)| format!("{name} {}", version_of(&r.to).unwrap_or(&r.to)))
            .chain(held(Hold::Quarantined).into_iter().flatten().cloned())
            .collect();
        if !rolled_back.is_empty() {
            return Upgraded {
                status: ConditionStatus::False,
                reason: "RolledBack",
                message: format!(
                    "rolled back, and skipped while quarantined (status.quarantined): {}",
                    named(&rolled_back)
                ),
            };
        }
        Upgraded::default()
    }
}

impl Decisions {
    fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
}

/// `spec.package` of a planned package object.
fn reference(planned: &Planned) -> Option<&str> {
    planned.object.get("spec")?.get("package")?.as_str()
}

fn set_reference(planned: &mut Planned, reference: String) {
    if let Some(Json::Object(spec)) = planned.object.get_mut("spec") {
        spec.insert("package".to_string(), Json::String(reference));
    }
}

/// At most [`MAX_NAMED`] names, then how many more.
fn named(names: &[String]) -> String {
    let shown = names.len().min(MAX_NAMED);
    let mut text = names[..shown].join(", ");
    if names.len() > shown {
        let _ = write!(text, " and {} more", names.len() - shown);
    }
    text
}

#[cfg(test)]
mod tests;

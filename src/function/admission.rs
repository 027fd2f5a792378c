//! Gating, one rule for everything: a resource enters desired once
//! everything it needs is observed ready (by the rule for its kind, see
//! `observed`), and anything already observed stays in desired. Removal
//! runs the other way: an observed package the plan no longer wants leaves
//! only once nothing still present depends on it.
//!
//! Ready for dependents asks more of two kinds of object: a package whose
//! `spec.package` this call changes is ready for nothing (see `rollout`),
//! and so is a package, or the activation policy, whose definitions are
//! not all active yet (see `activation`).
//!
//! "Depends on" includes what a package depended on when it was last
//! composed (remembered in the XR's status): such an edge holds while the
//! dependent exists and has not settled on what the plan now wants for it
//! (the same package reference, installed and healthy). So a leaving
//! package keeps its dependencies until it is gone, and a dependency that a
//! newer release dropped stays until that release is up. It also includes
//! what Crossplane's package Lock says (see `package_lock`): a leaving package stays
//! while any package in the Lock still declares it as a dependency.

use std::collections::{BTreeMap, BTreeSet};

// Hashed for every planned object of every call: foldhash, not SipHash.
use foldhash::HashMap;

use serde_json::{Map, Value as Json};

use crate::compose::{Planned, is_owned};
use crate::function::observed::{Observed, ObservedResources};
use crate::function::package_lock::Lock;

/// A composed resource this reconcile returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The composition resource name.
    pub name: String,
    pub object: Map<String, Json>,
    /// Whether it is observed ready (by the rule for its kind) or, when
    /// another XR holds it, ready for this XR's dependents.
    pub ready: bool,
}

/// A planned resource held back, and the resources it still waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The composition resource name.
    pub name: String,
    pub needs: Vec<String>,
}

/// Whether the plan holds everything the XR needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanScope {
    /// Resolved from the registry: an observed resource of ours that the
    /// plan lacks is leaving.
    Complete,
    /// The registry failed and the plan may be incomplete: every observed
    /// resource of ours stays.
    Partial,
}

/// What the gating rule reads of one resource; the status reports the
/// same readiness the gate admits by.
pub struct Readiness {
    /// Observed, and ready by the rule for its kind.
    pub observed: bool,
    /// A package object this call moves: what is observed is the
    /// reference it leaves.
    pub moving: bool,
    /// Held by another XR (or nobody) and ready for this XR's dependents.
    pub shared: bool,
    /// Waiting for definitions to be activated.
    pub inactive: bool,
}

impl Readiness {
    /// Observed ready and not moving, or shared and ready; and never while
    /// its definitions are inactive.
    pub fn is_ready(&self) -> bool {
        ((self.observed && !self.moving) || self.shared) && !self.inactive
    }
}

/// What the gate knows besides the plan.
pub struct Gate<'a> {
    pub observed: &'a ObservedResources<'a>,
    /// The resources another XR (or nobody) holds that are ready for this
    /// XR's dependents (see `ownership`).
    pub shared: &'a BTreeSet<String>,
    /// Composition resource name -> the names it depended on when it was
    /// composed (from the XR's status).
    pub dependencies: &'a BTreeMap<String, Vec<String>>,
    /// Those no longer composed whose objects still exist (see `leaving`).
    pub lingering: &'a BTreeSet<String>,
    /// What this call knows of Crossplane's package Lock.
    pub lock: &'a Lock,
    pub scope: PlanScope,
    /// Package objects whose `spec.package` this call changes (see
    /// `rollout`): what is observed of them is the reference they leave,
    /// so they are ready for nothing.
    pub moving: &'a BTreeSet<String>,
    /// Resources whose definitions are not all active yet (see
    /// `activation`): the activation policy while an IAM definition is
    /// missing, a package while one of its `activate` entries is. Ready
    /// for nothing, observed or shared.
    pub inactive: &'a BTreeSet<String>,
}

/// The desired composed resources of this reconcile and why others wait.
#[derive(Debug, Default, PartialEq)]
pub struct Admission {
    pub desired: Vec<Desired>,
    /// Planned resources held back, with what each still waits for.
    pub waiting: Vec<Waiting>,
    /// Remembered edges still in force, dependent -> dependencies (resource
    /// names), for the status to carry into the next reconcile.
    pub held: BTreeMap<String, BTreeSet<String>>,
    /// Leaving packages kept because Crossplane's Lock still lists packages
    /// that declare them: resource name -> the dependents' sources.
    pub locked: BTreeMap<String, Vec<String>>,
    /// Whether an observed package of ours is not planned (leaving), which
    /// is when the Lock is worth reading.
    pub removing: bool,
}

impl Gate<'_> {
    /// Applies the gating rule to `plan` (see the module's documentation).
    pub fn admit(&self, plan: Vec<Planned>) -> Admission {
        let mut admission = Admission::default();
        // Whether each planned resource is admitted, and then whether it is
        // ready. Every package needs the same few gates (the IAM
        // attachment, the mirrors): each need is judged once.
        let mut admitted: Vec<Option<bool>> = Vec::with_capacity(plan.len());
        let mut judged: HashMap<&str, bool> = HashMap::default();
        for planned in &plan {
            let missing: Vec<String> = planned
                .needs
                .iter()
                .filter(|n| !*judged.entry(n.as_str()).or_insert_with(|| self.is_ready(n)))
                .cloned()
                .collect();
            let observed = self.observed.get(&planned.name);
            let admit = observed.is_some() || missing.is_empty();
            if !admit {
                admission.waiting.push(Waiting {
                    name: planned.name.clone(),
                    needs: missing,
                });
            }
            admitted.push(admit.then(|| self.readiness(&planned.name, observed)));
        }
        // Looked up by name only, never walked in order: hashed, as the
        // names share long prefixes.
        let planned: HashMap<&str, &Planned> = plan.iter().map(|p| (p.name.as_str(), p)).collect();
        admission.held = self.held(&planned);
        let retained = self.retain(&plan, &planned, &mut admission);

        // The admitted objects move out of the plan, in its order, before
        // what is only retained.
        admission.desired = plan
            .into_iter()
            .zip(admitted)
            .filter_map(|(p, ready)| {
                Some(Desired {
                    name: p.name,
                    object: p.object,
                    ready: ready?,
                })
            })
            .chain(retained)
            .collect();
        admission
    }

    /// Ready for this XR's dependents, by [`Readiness`].
    fn is_ready(&self, name: &str) -> bool {
        self.readiness(name, self.observed.get(name))
    }

    /// [`Gate::is_ready`] for `name`, observed as `observed` (looked up
    /// once by a caller that needs it too).
    fn readiness(&self, name: &str, observed: Option<&Observed>) -> bool {
        Readiness {
            observed: observed.is_some_and(Observed::is_ready),
            moving: self.moving.contains(name),
            shared: self.shared.contains(name),
            inactive: self.inactive.contains(name),
        }
        .is_ready()
    }

    /// The remembered edges still in force: a dependent that exists and has
    /// not settled on what the plan wants for it (planned, observed with
    /// the package reference the plan wants, and ready) holds the
    /// dependencies it had that are still present.
    fn held(&self, planned: &HashMap<&str, &Planned>) -> BTreeMap<String, BTreeSet<String>> {
        let settled = |name: &str, observed: Option<&Observed>| {
            planned.get(name).is_some_and(|p| {
                self.readiness(name, observed)
                    && observed.is_some_and(|o| same_package(&p.object, o))
            })
        };
        let mut held = BTreeMap::new();
        for (dependent, needs) in self.dependencies {
            let observed = self.observed.get(dependent);
            let exists = observed.is_some() || self.lingering.contains(dependent);
            if !exists || settled(dependent, observed) {
                continue;
            }
            let present: BTreeSet<String> = needs
                .iter()
                .filter(|n| *n != dependent && self.observed.contains_key(*n))
                .cloned()
                .collect();
            if !present.is_empty() {
                held.insert(dependent.clone(), present);
            }
        }
        held
    }

    /// The observed resources of ours that the plan lacks and that stay:
    /// needed by something still present (a held edge, a planned resource,
    /// a package in Crossplane's Lock, another XR's Usage), or everything
    /// when the plan may be incomplete. Notes in `admission` what leaves
    /// and what the Lock keeps.
    fn retain(
        &self,
        plan: &[Planned],
        planned: &HashMap<&str, &Planned>,
        admission: &mut Admission,
    ) -> Vec<Desired> {
        let unplanned = self
            .observed
            .iter()
            .filter(|(name, _)| is_owned(name) && !planned.contains_key(name.as_str()));
        let mut retained = Vec::new();
        for (name, object) in unplanned {
            let is_package = object.is_package();
            admission.removing |= is_package;
            let declared_by = if is_package {
                object
                    .package()
                    .map(|package| self.lock.dependents_of(package))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            // Another XR protects it with a Usage while it uses it: deleting
            // it would be refused, so it stays ours until that XR lets it go.
            let needed_by_someone = admission.held.values().any(|needs| needs.contains(name))
                || plan.iter().any(|p| p.needs.contains(name))
                || !declared_by.is_empty()
                || object.is_in_use();
            if !declared_by.is_empty() {
                admission.locked.insert(name.clone(), declared_by);
            }
            if self.scope == PlanScope::Partial || needed_by_someone {
                retained.push(Desired {
                    name: name.clone(),
                    object: object.carry_over(),
                    ready: object.is_ready(),
                });
            }
        }
        retained
    }
}

/// Whether an observed object carries the package reference `planned` asks
/// for (objects without one, like IAM resources, always do).
fn same_package(planned: &Map<String, Json>, observed: &Observed) -> bool {
    let wanted = planned.get("spec").and_then(|s| s.get("package"));
    wanted.is_none_or(|wanted| wanted.as_str() == observed.package())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::observed::{observe, with_conditions};
    use serde_json::json;

    /// A planned IAM attachment (`iam-*`) or package, by name.
    fn planned(name: &str, needs: &[&str]) -> Planned {
        let object = if name.starts_with("iam-") {
            json!({"apiVersion": "iam.aws.upbound.io/v1beta1", "kind": "RolePolicyAttachment"})
        } else {
            json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider"})
        };
        Planned {
            name: name.to_string(),
            object: object.as_object().cloned().unwrap_or_default(),
            needs: needs.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// `admit` with nothing lingering and no Lock known.
    /// The gate with every input spelled out, as the tests vary them.
    fn admit(
        plan: Vec<Planned>,
        observed: &ObservedResources,
        shared: &BTreeSet<String>,
        dependencies: &BTreeMap<String, Vec<String>>,
        lingering: &BTreeSet<String>,
        lock: &Lock,
        keep_everything: bool,
    ) -> Admission {
        let scope = if keep_everything {
            PlanScope::Partial
        } else {
            PlanScope::Complete
        };
        Gate {
            observed,
            shared,
            dependencies,
            lingering,
            lock,
            scope,
            moving: &BTreeSet::new(),
            inactive: &BTreeSet::new(),
        }
        .admit(plan)
    }

    fn admit_by_status(
        plan: &[Planned],
        observed: &BTreeMap<String, Json>,
        dependencies: &BTreeMap<String, Vec<String>>,
        keep_everything: bool,
    ) -> Admission {
        admit(
            plan.to_vec(),
            &observe(observed),
            &BTreeSet::new(),
            dependencies,
            &BTreeSet::new(),
            &Lock::Unavailable,
            keep_everything,
        )
    }

    /// Desired resources that the plan does not name: the ones kept only
    /// because they exist.
    fn retained<'a>(admission: &'a Admission, plan: &[Planned]) -> Vec<&'a str> {
        admission
            .desired
            .iter()
            .map(|d| d.name.as_str())
            .filter(|name| !plan.iter().any(|p| p.name == *name))
            .collect()
    }

    /// An observed managed resource with these conditions.
    fn managed(conditions: &[(&str, &str)]) -> Json {
        let mut object = with_conditions(conditions);
        object["apiVersion"] = json!("iam.aws.upbound.io/v1beta1");
        object["kind"] = json!("RolePolicyAttachment");
        object
    }

    #[test]
    fn a_moving_package_is_ready_for_nothing() {
        // The family is observed ready, but on the release it leaves: this
        // call changes its spec.package, so S3 (not yet created) waits.
        let plan = vec![
            planned("package-family", &[]),
            planned("package-s3", &["package-family"]),
        ];
        let observed = observe(&BTreeMap::from([(
            "package-family".to_string(),
            with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
        )]));
        let gate = |moving: &BTreeSet<String>| {
            Gate {
                observed: &observed,
                shared: &BTreeSet::new(),
                dependencies: &BTreeMap::new(),
                lingering: &BTreeSet::new(),
                lock: &Lock::Unavailable,
                scope: PlanScope::Complete,
                moving,
                inactive: &BTreeSet::new(),
            }
            .admit(plan.clone())
        };
        let still = gate(&BTreeSet::new());
        assert!(still.waiting.is_empty(), "{still:?}");
        let moving = gate(&BTreeSet::from(["package-family".to_string()]));
        assert_eq!(
            moving.waiting,
            vec![Waiting {
                name: "package-s3".to_string(),
                needs: vec!["package-family".to_string()],
            }]
        );
        assert_eq!(moving.desired.len(), 1);
        assert!(!moving.desired[0].ready, "{moving:?}");
    }

    #[test]
    fn a_package_whose_definitions_are_inactive_is_ready_for_nothing() {
        // The family is installed and healthy, observed or shared, but
        // what its XR asked to activate is not active yet: S3 waits, and
        // the family is not ready for the XR either.
        let plan = vec![
            planned("package-family", &[]),
            planned("package-s3", &["package-family"]),
        ];
        let healthy = BTreeMap::from([(
            "package-family".to_string(),
            with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
        )]);
        let family = BTreeSet::from(["package-family".to_string()]);
        let cases = [
            ("observed", observe(&healthy), BTreeSet::new()),
            ("shared", observe(&BTreeMap::new()), family.clone()),
        ];
        for (case, observed, shared) in cases {
            let gate = |inactive: &BTreeSet<String>| {
                Gate {
                    observed: &observed,
                    shared: &shared,
                    dependencies: &BTreeMap::new(),
                    lingering: &BTreeSet::new(),
                    lock: &Lock::Unavailable,
                    scope: PlanScope::Complete,
                    moving: &BTreeSet::new(),
                    inactive,
                }
                .admit(plan.clone())
            };
            let active = gate(&BTreeSet::new());
            assert!(active.waiting.is_empty(), "{case}: {active:?}");
            let inactive = gate(&family);
            assert_eq!(
                inactive.waiting,
                vec![Waiting {
                    name: "package-s3".to_string(),
                    needs: vec!["package-family".to_string()],
                }],
                "{case}"
            );
            assert!(
                inactive.desired.iter().all(|d| !d.ready),
                "{case}: {inactive:?}"
            );
        }
    }

    #[test]
    fn waits_until_needs_are_ready() {
        let plan = [
            planned("iam-attachment", &[]),
            planned("package-family", &["iam-attachment"]),
            planned("package-s3", &["iam-attachment", "package-family"]),
        ];
        let none = BTreeMap::new();
        let a = admit_by_status(&plan, &BTreeMap::new(), &none, false);
        assert_eq!(
            a.desired
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["iam-attachment"]
        );
        assert_eq!(
            a.waiting[0],
            Waiting {
                name: "package-family".to_string(),
                needs: vec!["iam-attachment".to_string()]
            }
        );

        let observed =
            BTreeMap::from([("iam-attachment".to_string(), managed(&[("Ready", "True")]))]);
        let a = admit_by_status(&plan, &observed, &none, false);
        assert_eq!(
            a.desired
                .iter()
                .map(|d| (d.name.as_str(), d.ready))
                .collect::<Vec<_>>(),
            [("iam-attachment", true), ("package-family", false)]
        );

        let observed = BTreeMap::from([
            ("iam-attachment".to_string(), managed(&[("Ready", "True")])),
            (
                "package-family".to_string(),
                with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
            ),
        ]);
        let a = admit_by_status(&plan, &observed, &none, false);
        assert_eq!(a.desired.len(), 3);
        assert!(a.waiting.is_empty());
    }

    #[test]
    fn observed_resources_stay_even_when_their_needs_regress() {
        let plan = [
            planned("iam-attachment", &[]),
            planned("package-s3", &["iam-attachment"]),
        ];
        let observed = BTreeMap::from([
            ("iam-attachment".to_string(), managed(&[("Ready", "False")])),
            ("package-s3".to_string(), with_conditions(&[])),
        ]);
        let a = admit_by_status(&plan, &observed, &BTreeMap::new(), false);
        assert_eq!(a.desired.len(), 2);
    }

    #[test]
    fn dependents_leave_first() {
        let plan = [planned("iam-attachment", &[])];
        let deps = BTreeMap::from([("package-s3".to_string(), vec!["package-family".to_string()])]);
        let observed = BTreeMap::from([
            ("iam-attachment".to_string(), managed(&[("Ready", "True")])),
            (
                "package-family".to_string(),
                with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
            ),
            (
                "package-s3".to_string(),
                with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
            ),
            ("someone-elses".to_string(), json!({})),
        ]);
        let a = admit_by_status(&plan, &observed, &deps, false);
        assert_eq!(retained(&a, &plan), ["package-family"]);
        let kept = a
            .desired
            .iter()
            .find(|d| d.name == "package-family")
            .expect("kept");
        assert_eq!(
            Json::Object(kept.object.clone()),
            json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "p"}, "spec": {"package": "x"}})
        );

        let observed: BTreeMap<String, Json> = observed
            .into_iter()
            .filter(|(k, _)| k != "package-s3")
            .collect();
        // No longer observed, but its object is still being deleted.
        let lingering = BTreeSet::from(["package-s3".to_string()]);
        let a = admit(
            plan.to_vec(),
            &observe(&observed),
            &BTreeSet::new(),
            &deps,
            &lingering,
            &Lock::Unavailable,
            false,
        );
        assert_eq!(retained(&a, &plan), ["package-family"]);

        let a = admit_by_status(&plan, &observed, &deps, false);
        assert!(retained(&a, &plan).is_empty());
        assert_eq!(a.desired.len(), 1);
    }

    #[test]
    fn everything_observed_stays_when_asked() {
        let observed = BTreeMap::from([
            ("package-a".to_string(), with_conditions(&[])),
            ("image-config-x".to_string(), json!({"kind": "ImageConfig"})),
        ]);
        let a = admit_by_status(&[], &observed, &BTreeMap::new(), true);
        assert_eq!(retained(&a, &[]), ["image-config-x", "package-a"]);
    }

    /// A remembered edge holds until its dependent is observed on the
    /// planned package reference and ready.
    #[test]
    fn remembered_edges_hold_until_the_dependent_settles() {
        let mut s3 = planned("package-s3", &[]);
        s3.object
            .insert("spec".to_string(), json!({"package": "x/s3:v2"}));
        let plan = [s3];
        let deps = BTreeMap::from([("package-s3".to_string(), vec!["package-family".to_string()])]);
        let healthy = [("Installed", "True"), ("Healthy", "True")];
        let observed_s3 = |package: &str, conditions: &[(&str, &str)]| {
            let mut object = with_conditions(conditions);
            object["spec"]["package"] = json!(package);
            object["status"]["currentIdentifier"] = json!(package);
            object
        };
        let cases = [
            ("old release", observed_s3("x/s3:v1", &healthy), true),
            (
                "new release, unhealthy",
                observed_s3("x/s3:v2", &[("Installed", "True"), ("Healthy", "False")]),
                true,
            ),
            (
                "new release, healthy",
                observed_s3("x/s3:v2", &healthy),
                false,
            ),
        ];
        for (case, s3, held) in cases {
            let observed = BTreeMap::from([
                ("package-s3".to_string(), s3),
                ("package-family".to_string(), with_conditions(&healthy)),
            ]);
            let a = admit_by_status(&plan, &observed, &deps, false);
            assert_eq!(retained(&a, &plan) == ["package-family"], held, "{case}");
            assert_eq!(a.held.contains_key("package-s3"), held, "{case}");
        }
    }

    /// A need held by someone else (see `ownership`) counts as ready when
    /// it serves this XR; the shared object itself is never composed here.
    #[test]
    fn a_shared_need_that_serves_this_xr_lets_dependents_in() {
        let plan = [planned("package-s3", &["package-family"])];
        for (shared, admitted) in [
            (BTreeSet::new(), false),
            (BTreeSet::from(["package-family".to_string()]), true),
        ] {
            let a = admit(
                plan.to_vec(),
                &observe(&BTreeMap::new()),
                &shared,
                &BTreeMap::new(),
                &BTreeSet::new(),
                &Lock::Unavailable,
                false,
            );
            assert_eq!(a.desired.len() == 1, admitted);
            assert_eq!(a.waiting.is_empty(), admitted);
        }
    }

    /// A package of ours that another XR uses (Crossplane labels it in use)
    /// stays until the label goes, though the plan no longer has it.
    #[test]
    fn an_unplanned_package_in_use_stays() {
        let mut in_use = with_conditions(&[("Installed", "True"), ("Healthy", "True")]);
        in_use["metadata"]["labels"] = json!({"crossplane.io/in-use": "true"});
        for (labelled, kept) in [(in_use, true), (with_conditions(&[]), false)] {
            let observed = BTreeMap::from([("package-family".to_string(), labelled)]);
            let a = admit_by_status(&[], &observed, &BTreeMap::new(), false);
            assert_eq!(retained(&a, &[]) == ["package-family"], kept);
        }
    }

    /// A leaving package stays while Crossplane's Lock lists a package that
    /// declares it, whatever the XR's status remembers.
    #[test]
    fn the_lock_holds_what_installed_packages_declare() {
        let family = "xpkg.upbound.io/upbound/provider-family-aws";
        let observed = BTreeMap::from([
            (
                "package-family".to_string(),
                json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                   "metadata": {"name": "family"}, "spec": {"package": format!("{family}:v1.20.0")}}),
            ),
            (
                "image-config-x".to_string(),
                json!({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "ImageConfig"}),
            ),
        ]);
        let known = |declared: &[(&str, &str)]| {
            let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (dependency, by) in declared {
                map.entry(dependency.to_string())
                    .or_default()
                    .insert(by.to_string());
            }
            Lock::Known(map)
        };
        let s3 = "xpkg.upbound.io/upbound/provider-aws-s3";
        let cases = [
            ("no Lock known", Lock::Unavailable, vec![]),
            (
                "Lock not read yet",
                Lock::Pending,
                vec!["Crossplane's Lock (not read yet)"],
            ),
            ("s3 still declares it", known(&[(family, s3)]), vec![s3]),
            ("nothing declares it", known(&[("other/repo", s3)]), vec![]),
        ];
        for (case, lock, declared_by) in cases {
            let a = admit(
                Vec::new(),
                &observe(&observed),
                &BTreeSet::new(),
                &BTreeMap::new(),
                &BTreeSet::new(),
                &lock,
                false,
            );
            assert!(a.removing, "{case}");
            let kept = !declared_by.is_empty();
            assert_eq!(retained(&a, &[]) == ["package-family"], kept, "{case}");
            assert_eq!(
                a.locked.get("package-family").cloned().unwrap_or_default(),
                declared_by,
                "{case}"
            );
        }
        let only_image_config: BTreeMap<String, Json> = observed
            .into_iter()
            .filter(|(k, _)| k.starts_with("image-config"))
            .collect();
        let a = admit(
            Vec::new(),
            &observe(&only_image_config),
            &BTreeSet::new(),
            &BTreeMap::new(),
            &BTreeSet::new(),
            &Lock::Pending,
            false,
        );
        assert!(!a.removing && retained(&a, &[]).is_empty());
    }
}

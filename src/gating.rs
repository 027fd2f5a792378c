//! Gating and readiness, one rule for everything: a resource enters desired
//! once everything it needs is observed ready, and anything already observed
//! stays in desired. Removal runs the other way: an observed package the
//! plan no longer wants leaves only once nothing still present depends on it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use crate::compose::{Planned, Readiness, is_owned};

/// The desired composed resources of this reconcile and why others wait.
#[derive(Debug, Default, PartialEq)]
pub struct Admission {
    /// Composition resource name, object, observed-ready.
    pub desired: Vec<(String, Map<String, Json>, bool)>,
    /// Planned resources held back, with what each still waits for.
    pub waiting: Vec<(String, Vec<String>)>,
    /// Observed resources kept although no longer planned.
    pub retained: Vec<String>,
}

/// Whether an observed object is ready in the sense its dependents need.
pub fn is_ready(observed: &Json, readiness: Readiness) -> bool {
    match readiness {
        Readiness::Exists => true,
        Readiness::ReadyCondition => condition_is_true(observed, "Ready"),
        Readiness::InstalledAndHealthy => {
            condition_is_true(observed, "Installed") && condition_is_true(observed, "Healthy")
        }
    }
}

/// The `status` and `reason` of a condition on an observed object.
pub fn condition<'a>(observed: &'a Json, kind: &str) -> Option<(&'a str, &'a str)> {
    observed
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Json::as_str) == Some(kind))
        .map(|c| {
            (
                c.get("status").and_then(Json::as_str).unwrap_or("Unknown"),
                c.get("reason").and_then(Json::as_str).unwrap_or(""),
            )
        })
}

fn condition_is_true(observed: &Json, kind: &str) -> bool {
    condition(observed, kind).is_some_and(|(status, _)| status == "True")
}

/// Applies the gating rule to `plan`.
///
/// `dependencies` maps a composition resource name to the names it depended
/// on when it was composed (from the XR's status), so packages that are no
/// longer planned still leave dependents first. With `keep_everything`, as
/// when the registry failed and the plan may be incomplete, every observed
/// resource of ours stays.
pub fn admit(
    plan: &[Planned],
    observed: &BTreeMap<String, Json>,
    dependencies: &BTreeMap<String, Vec<String>>,
    keep_everything: bool,
) -> Admission {
    let readiness: BTreeMap<&str, Readiness> = plan
        .iter()
        .map(|p| (p.name.as_str(), p.readiness))
        .collect();
    let ready = |name: &str| -> bool {
        observed.get(name).is_some_and(|o| {
            is_ready(
                o,
                readiness
                    .get(name)
                    .copied()
                    .unwrap_or(Readiness::InstalledAndHealthy),
            )
        })
    };
    let mut admission = Admission::default();
    for planned in plan {
        let missing: Vec<String> = planned
            .needs
            .iter()
            .filter(|n| !ready(n))
            .cloned()
            .collect();
        if observed.contains_key(&planned.name) || missing.is_empty() {
            admission.desired.push((
                planned.name.clone(),
                planned.object.clone(),
                ready(&planned.name),
            ));
        } else {
            admission.waiting.push((planned.name.clone(), missing));
        }
    }

    let planned_names: BTreeSet<&str> = plan.iter().map(|p| p.name.as_str()).collect();
    let unplanned: Vec<&String> = observed
        .keys()
        .filter(|name| is_owned(name) && !planned_names.contains(name.as_str()))
        .collect();
    for name in unplanned {
        let needed_by_someone = observed.keys().any(|other| {
            other != name
                && (dependencies
                    .get(other)
                    .is_some_and(|deps| deps.contains(name))
                    || plan
                        .iter()
                        .any(|p| &p.name == other && p.needs.contains(name)))
        });
        if keep_everything || needed_by_someone {
            admission
                .desired
                .push((name.clone(), carry_over(&observed[name]), ready(name)));
            admission.retained.push(name.clone());
        }
    }
    admission
}

/// The desired form of an observed object we keep without re-planning it:
/// what we would have set (identity and spec), none of what the API server
/// or controllers own.
fn carry_over(observed: &Json) -> Map<String, Json> {
    let mut out = Map::new();
    for key in ["apiVersion", "kind", "spec"] {
        if let Some(value) = observed.get(key) {
            out.insert(key.to_string(), value.clone());
        }
    }
    let mut metadata = Map::new();
    for key in ["name", "namespace"] {
        if let Some(value) = observed.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.to_string(), value.clone());
        }
    }
    if let Some(external) = observed.pointer("/metadata/annotations/crossplane.io~1external-name") {
        metadata.insert(
            "annotations".to_string(),
            serde_json::json!({"crossplane.io/external-name": external}),
        );
    }
    out.insert("metadata".to_string(), Json::Object(metadata));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn planned(name: &str, readiness: Readiness, needs: &[&str]) -> Planned {
        Planned {
            name: name.to_string(),
            object: Map::from_iter([("kind".to_string(), json!(name))]),
            readiness,
            needs: needs.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn with_conditions(conditions: &[(&str, &str)]) -> Json {
        json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": {"name": "p", "uid": "u", "resourceVersion": "7"},
            "spec": {"package": "x"},
            "status": {"conditions": conditions.iter().map(|(t, s)| json!({"type": t, "status": s, "reason": "R"})).collect::<Vec<_>>()}
        })
    }

    #[test]
    fn readiness_rules() {
        let cases = [
            (Readiness::Exists, vec![], true),
            (Readiness::ReadyCondition, vec![("Ready", "True")], true),
            (Readiness::ReadyCondition, vec![("Ready", "False")], false),
            (Readiness::ReadyCondition, vec![("Synced", "True")], false),
            (
                Readiness::InstalledAndHealthy,
                vec![("Installed", "True"), ("Healthy", "True")],
                true,
            ),
            (
                Readiness::InstalledAndHealthy,
                vec![("Installed", "True"), ("Healthy", "False")],
                false,
            ),
            (
                Readiness::InstalledAndHealthy,
                vec![("Installed", "True")],
                false,
            ),
            (
                Readiness::InstalledAndHealthy,
                vec![("Ready", "True")],
                false,
            ),
        ];
        for (readiness, conditions, expected) in cases {
            assert_eq!(
                is_ready(&with_conditions(&conditions), readiness),
                expected,
                "{readiness:?} {conditions:?}"
            );
        }
        assert!(!is_ready(
            &json!({"status": {"conditions": "junk"}}),
            Readiness::ReadyCondition
        ));
    }

    #[test]
    fn waits_until_needs_are_ready() {
        let plan = [
            planned("iam-attachment", Readiness::ReadyCondition, &[]),
            planned(
                "package-family",
                Readiness::InstalledAndHealthy,
                &["iam-attachment"],
            ),
            planned(
                "package-s3",
                Readiness::InstalledAndHealthy,
                &["iam-attachment", "package-family"],
            ),
        ];
        let none = BTreeMap::new();
        let a = admit(&plan, &BTreeMap::new(), &none, false);
        assert_eq!(
            a.desired.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
            ["iam-attachment"]
        );
        assert_eq!(
            a.waiting[0],
            (
                "package-family".to_string(),
                vec!["iam-attachment".to_string()]
            )
        );

        let observed = BTreeMap::from([(
            "iam-attachment".to_string(),
            with_conditions(&[("Ready", "True")]),
        )]);
        let a = admit(&plan, &observed, &none, false);
        assert_eq!(
            a.desired
                .iter()
                .map(|d| (d.0.as_str(), d.2))
                .collect::<Vec<_>>(),
            [("iam-attachment", true), ("package-family", false)]
        );

        let observed = BTreeMap::from([
            (
                "iam-attachment".to_string(),
                with_conditions(&[("Ready", "True")]),
            ),
            (
                "package-family".to_string(),
                with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
            ),
        ]);
        let a = admit(&plan, &observed, &none, false);
        assert_eq!(a.desired.len(), 3);
        assert!(a.waiting.is_empty());
    }

    #[test]
    fn observed_resources_stay_even_when_their_needs_regress() {
        let plan = [
            planned("iam-attachment", Readiness::ReadyCondition, &[]),
            planned(
                "package-s3",
                Readiness::InstalledAndHealthy,
                &["iam-attachment"],
            ),
        ];
        let observed = BTreeMap::from([
            (
                "iam-attachment".to_string(),
                with_conditions(&[("Ready", "False")]),
            ),
            ("package-s3".to_string(), with_conditions(&[])),
        ]);
        let a = admit(&plan, &observed, &BTreeMap::new(), false);
        assert_eq!(a.desired.len(), 2);
    }

    #[test]
    fn dependents_leave_first() {
        let plan = [planned("iam-attachment", Readiness::ReadyCondition, &[])];
        let deps = BTreeMap::from([("package-s3".to_string(), vec!["package-family".to_string()])]);
        let observed = BTreeMap::from([
            (
                "iam-attachment".to_string(),
                with_conditions(&[("Ready", "True")]),
            ),
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
        let a = admit(&plan, &observed, &deps, false);
        assert_eq!(a.retained, ["package-family"]);
        let kept = a
            .desired
            .iter()
            .find(|d| d.0 == "package-family")
            .expect("kept");
        assert_eq!(
            Json::Object(kept.1.clone()),
            json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "p"}, "spec": {"package": "x"}})
        );

        let observed: BTreeMap<String, Json> = observed
            .into_iter()
            .filter(|(k, _)| k != "package-s3")
            .collect();
        let a = admit(&plan, &observed, &deps, false);
        assert!(a.retained.is_empty());
        assert_eq!(a.desired.len(), 1);
    }

    #[test]
    fn everything_observed_stays_when_asked() {
        let observed = BTreeMap::from([
            ("package-a".to_string(), with_conditions(&[])),
            ("image-config-x".to_string(), json!({"kind": "ImageConfig"})),
        ]);
        let a = admit(&[], &observed, &BTreeMap::new(), true);
        assert_eq!(a.retained, ["image-config-x", "package-a"]);
    }
}

//! Observed composed resources, read once per call: each one's readiness
//! (judged by the rule for its kind), its package reference and its
//! conditions, read straight from the request's protobuf. The rest of the
//! object stays there: it is converted to JSON only for an object the
//! function keeps without planning it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::sdk::protobuf::Struct;
use crate::sdk::protobuf::value::Kind;
use serde_json::{Map, Value as Json};

use crate::sdk::structs::{as_str, str_at, strings_at, value_to_json};

/// The label Crossplane's Usage controller puts on an object in use.
pub const IN_USE_LABEL: &str = "crossplane.io/in-use";

/// Observed composed resources by composition resource name.
pub type ObservedResources<'a> = BTreeMap<String, Observed<'a>>;

/// What "ready" means for an object its dependents wait on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Existing is enough (an ImageConfig or a core `v1` Secret has no
    /// status to wait for).
    Exists,
    /// A managed resource: condition `Ready=True`.
    ReadyCondition,
    /// Crossplane's activation policy: condition `Healthy=True` (every
    /// definition it matches was activated).
    HealthyCondition,
    /// A package: *on* its `spec.package` (see [`StatusFor`]), Installed
    /// and Healthy. Conditions alone are not enough: right after
    /// `spec.package` changes they still describe the revision being
    /// replaced, so a dependent would move before what it needs.
    OnItsPackage,
}

impl Readiness {
    /// The rule for an object of this apiVersion and kind.
    pub fn of(api_version: &str, kind: &str) -> Self {
        let group = api_version.split_once('/').map_or("", |(group, _)| group);
        match (group, kind) {
            ("pkg.crossplane.io", "ImageConfig") | ("", "Secret") => Readiness::Exists,
            ("pkg.crossplane.io", _) => Readiness::OnItsPackage,
            ("apiextensions.crossplane.io", "ManagedResourceActivationPolicy") => {
                Readiness::HealthyCondition
            }
            _ => Readiness::ReadyCondition,
        }
    }

    fn met_by(self, object: &Struct) -> bool {
        let is_true = |kind| condition(object, kind).is_some_and(|(status, _)| status == "True");
        match self {
            Readiness::Exists => true,
            Readiness::ReadyCondition => is_true("Ready"),
            Readiness::HealthyCondition => is_true("Healthy"),
            Readiness::OnItsPackage => {
                // Both conditions found in one pass, for the status and
                // the readiness alike.
                let [installed, healthy] = find_conditions(object, ["Installed", "Healthy"]);
                let is_true = |found: Option<&Struct>| {
                    found.is_some_and(|c| status_and_reason(c).0 == "True")
                };
                StatusFor::with(object, [installed, healthy]) == StatusFor::Spec
                    && is_true(installed)
                    && is_true(healthy)
            }
        }
    }
}

/// What a package object's status describes, as Crossplane v2.2 to v2.4
/// write it: once a revision of `spec.package` is active, the package
/// manager sets `status.currentIdentifier` to `spec.package` exactly (the
/// reference as written, before any ImageConfig rewrite), and every
/// condition it writes carries `observedGeneration`, the
/// `metadata.generation` it acted on. Both are needed: the identifier says
/// which reference the revision is for, the generation that the
/// `Installed` and `Healthy` beside it were written after the last change
/// of the spec (`Healthy` of the old revision survives a change of
/// `spec.package` until the manager reconciles again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFor {
    /// The current spec: `currentIdentifier` is `spec.package`, and no
    /// `Installed` or `Healthy` condition names another generation.
    Spec,
    /// Another reference, or none yet: `currentIdentifier` is missing (no
    /// revision installed yet; Crossplane v2.2 writes it with the first
    /// active revision) or differs from `spec.package` (the revision of
    /// the reference before; the new one is still being fetched or failed
    /// to be).
    OtherPackage,
    /// The right reference, but conditions written for an older (or
    /// unknown) generation of the spec.
    OlderGeneration,
}

impl StatusFor {
    fn of(object: &Struct) -> Self {
        StatusFor::with(object, find_conditions(object, ["Installed", "Healthy"]))
    }

    /// What `object`'s status describes, given its `Installed` and
    /// `Healthy` conditions.
    fn with(object: &Struct, conditions: [Option<&Struct>; 2]) -> Self {
        let package = str_at(object, &["spec", "package"]);
        let current = str_at(object, &["status", "currentIdentifier"]);
        if package.is_none() || current != package {
            return StatusFor::OtherPackage;
        }
        let generation = number_at(object, &["metadata", "generation"]);
        let stale = conditions.into_iter().flatten().any(|condition| {
            number_field(condition, "observedGeneration")
                .is_some_and(|observed| Some(observed) != generation)
        });
        if stale {
            StatusFor::OlderGeneration
        } else {
            StatusFor::Spec
        }
    }
}

/// One observed composed resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed<'a> {
    resource: Cow<'a, Struct>,
    readiness: Readiness,
    ready: bool,
}

impl<'a> Observed<'a> {
    pub fn new(resource: Cow<'a, Struct>) -> Self {
        let text = |key| str_at(&resource, &[key]).unwrap_or_default();
        let readiness = Readiness::of(text("apiVersion"), text("kind"));
        let ready = readiness.met_by(&resource);
        Self {
            resource,
            readiness,
            ready,
        }
    }

    /// An observed object given as JSON (anything but an object reads as
    /// an empty one); for tests.
    #[cfg(test)]
    pub fn from_json(object: &Json) -> Observed<'static> {
        let resource = crate::sdk::structs::json_to_struct(object).unwrap_or_default();
        Observed::new(Cow::Owned(resource))
    }

    /// Whether it is ready in the sense its dependents need.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether it is a package object (Provider, Function, Configuration).
    pub fn is_package(&self) -> bool {
        self.readiness == Readiness::OnItsPackage
    }

    /// What its status describes; meaningful for package objects only.
    pub fn status_for(&self) -> StatusFor {
        StatusFor::of(&self.resource)
    }

    /// Its `spec.package`.
    pub fn package(&self) -> Option<&str> {
        str_at(&self.resource, &["spec", "package"])
    }

    /// Whether Crossplane marks it in use (label `crossplane.io/in-use`):
    /// a Usage protects it from deletion.
    pub fn is_in_use(&self) -> bool {
        str_at(&self.resource, &["metadata", "labels", IN_USE_LABEL]) == Some("true")
    }

    /// The strings of the list at `path`, such as an activation policy's
    /// `status.activated`.
    pub fn strings(&self, path: &[&str]) -> Vec<&str> {
        strings_at(&self.resource, path)
    }

    /// The `status` and `reason` of its condition of type `kind`.
    pub fn condition(&self, kind: &str) -> Option<(&str, &str)> {
        condition(&self.resource, kind)
    }

    /// When its condition of type `kind` last changed status
    /// (`lastTransitionTime`), as written.
    pub fn condition_since(&self, kind: &str) -> Option<&str> {
        find_condition(&self.resource, kind)?
            .fields
            .get("lastTransitionTime")
            .and_then(as_str)
    }

    /// The desired form of the object when it is kept without being
    /// planned again: what we would have set (identity and spec), none of
    /// what the API server or controllers own.
    pub fn carry_over(&self) -> Map<String, Json> {
        let fields = &self.resource.fields;
        let mut out = Map::new();
        for key in ["apiVersion", "kind", "spec"] {
            if let Some(value) = fields.get(key) {
                out.insert(key.to_string(), value_to_json(value));
            }
        }
        let mut metadata = Map::new();
        for key in ["name", "namespace"] {
            if let Some(value) = str_at(&self.resource, &["metadata", key]) {
                metadata.insert(key.to_string(), Json::String(value.to_string()));
            }
        }
        let external = ["metadata", "annotations", "crossplane.io/external-name"];
        if let Some(external) = str_at(&self.resource, &external) {
            metadata.insert(
                "annotations".to_string(),
                serde_json::json!({"crossplane.io/external-name": external}),
            );
        }
        out.insert("metadata".to_string(), Json::Object(metadata));
        out
    }
}

/// A Provider observed with these (type, status) conditions; for tests.
/// The rest of its status is what Crossplane writes once a revision of its
/// `spec.package` is active: `currentIdentifier` is `spec.package`, and
/// every condition carries the generation it was written for. A test that
/// changes `spec.package` sets `status.currentIdentifier` with it, or the
/// object is not on it.
#[cfg(test)]
pub fn with_conditions(conditions: &[(&str, &str)]) -> Json {
    serde_json::json!({
        "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
        "metadata": {"name": "p", "uid": "u", "resourceVersion": "7", "generation": 1},
        "spec": {"package": "x"},
        "status": {
            "currentIdentifier": "x",
            "currentRevision": "p-0123456789ab",
            "conditions": conditions.iter().map(|(t, s)| serde_json::json!({"type": t, "status": s, "reason": "R", "observedGeneration": 1})).collect::<Vec<_>>()
        }
    })
}

/// Reads the observed composed resources of a request.
pub fn read<'a>(resources: impl Iterator<Item = (&'a str, &'a Struct)>) -> ObservedResources<'a> {
    resources
        .map(|(name, resource)| (name.to_string(), Observed::new(Cow::Borrowed(resource))))
        .collect()
}

/// Observed resources given as JSON; for tests.
#[cfg(test)]
pub fn observe(objects: &BTreeMap<String, Json>) -> ObservedResources<'static> {
    objects
        .iter()
        .map(|(name, object)| (name.clone(), Observed::from_json(object)))
        .collect()
}

/// The `status` ("Unknown" when unset) and `reason` of the first condition
/// of type `kind` in `status.conditions`.
fn condition<'a>(object: &'a Struct, kind: &str) -> Option<(&'a str, &'a str)> {
    find_condition(object, kind).map(status_and_reason)
}

/// The `status` ("Unknown" when unset) and `reason` of a condition.
fn status_and_reason(condition: &Struct) -> (&str, &str) {
    let text = |key| condition.fields.get(key).and_then(as_str);
    (
        text("status").unwrap_or("Unknown"),
        text("reason").unwrap_or(""),
    )
}

/// The number `field` of a condition, if it has one.
fn number_field(condition: &Struct, field: &str) -> Option<f64> {
    match condition.fields.get(field)?.kind {
        Some(Kind::NumberValue(n)) => Some(n),
        _ => None,
    }
}

/// The first condition of type `kind` in `status.conditions`.
fn find_condition<'a>(object: &'a Struct, kind: &str) -> Option<&'a Struct> {
    let [found] = find_conditions(object, [kind]);
    found
}

/// The first condition of each type of `kinds` in `status.conditions`,
/// found in one pass.
fn find_conditions<'a, const N: usize>(
    object: &'a Struct,
    kinds: [&str; N],
) -> [Option<&'a Struct>; N] {
    let mut found = [None; N];
    let Some(Kind::StructValue(status)) = object.fields.get("status").and_then(|s| s.kind.as_ref())
    else {
        return found;
    };
    let Some(Kind::ListValue(conditions)) = status
        .fields
        .get("conditions")
        .and_then(|c| c.kind.as_ref())
    else {
        return found;
    };
    for condition in &conditions.values {
        let Some(Kind::StructValue(condition)) = &condition.kind else {
            continue;
        };
        let Some(kind) = condition.fields.get("type").and_then(as_str) else {
            continue;
        };
        for (slot, wanted) in found.iter_mut().zip(kinds) {
            if slot.is_none() && kind == wanted {
                *slot = Some(condition);
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found
}

/// The number at `path`, if it is one.
fn number_at(object: &Struct, path: &[&str]) -> Option<f64> {
    let (last, parents) = path.split_last()?;
    let mut here = object;
    for key in parents {
        let Some(Kind::StructValue(next)) = &here.fields.get(*key)?.kind else {
            return None;
        };
        here = next;
    }
    match here.fields.get(*last)?.kind {
        Some(Kind::NumberValue(n)) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(api_version: &str, kind: &str, conditions: &[(&str, &str)]) -> Json {
        let mut object = with_conditions(conditions);
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        object
    }

    #[test]
    fn conditions_are_found_by_type_first_one_wins() {
        let object = |conditions: Json| {
            crate::sdk::structs::json_to_struct(&json!({"status": {"conditions": conditions}}))
                .unwrap_or_default()
        };
        let cases = [
            (json!([]), [None, None]),
            (json!("not a list"), [None, None]),
            (
                json!([{"type": "Healthy", "status": "False"}, {"type": "Installed", "status": "True"}]),
                [Some("True"), Some("False")],
            ),
            (
                json!([7, {"status": "True"}, {"type": "Installed", "status": "False"}, {"type": "Installed", "status": "True"}]),
                [Some("False"), None],
            ),
            (
                json!([{"type": "Healthy"}, {"type": "Healthy", "status": "True"}]),
                [None, Some("Unknown")],
            ),
        ];
        for (conditions, want) in cases {
            let object = object(conditions.clone());
            let found = find_conditions(&object, ["Installed", "Healthy"]);
            let got = found.map(|c| c.map(|c| status_and_reason(c).0));
            assert_eq!(got, want, "{conditions}");
            for (kind, want) in ["Installed", "Healthy"].into_iter().zip(want) {
                assert_eq!(condition(&object, kind).map(|c| c.0), want, "{conditions}");
            }
        }
    }

    #[test]
    fn readiness_rules() {
        let managed = |c: &[(&str, &str)]| kind("iam.aws.upbound.io/v1beta1", "Role", c);
        let cases = [
            (kind("pkg.crossplane.io/v1beta1", "ImageConfig", &[]), true),
            (managed(&[("Ready", "True")]), true),
            (managed(&[("Ready", "False")]), false),
            (managed(&[("Synced", "True")]), false),
            (managed(&[]), false),
            (
                with_conditions(&[("Installed", "True"), ("Healthy", "True")]),
                true,
            ),
            (
                with_conditions(&[("Installed", "True"), ("Healthy", "False")]),
                false,
            ),
            (with_conditions(&[("Installed", "True")]), false),
            (with_conditions(&[("Ready", "True")]), false),
            (json!({"status": {"conditions": "junk"}}), false),
            (
                json!({"status": {"conditions": ["junk", {"type": 1}]}}),
                false,
            ),
            (json!({"status": "junk"}), false),
            (json!({}), false),
        ];
        for (object, ready) in cases {
            assert_eq!(Observed::from_json(&object).is_ready(), ready, "{object}");
        }
    }

    /// A package is ready only when its status is about its current
    /// `spec.package` and generation, as Crossplane writes it.
    #[test]
    fn a_package_is_ready_only_on_its_package() {
        let cases: [Case; 6] = [
            ("healthy and current", |_| {}, StatusFor::Spec, true),
            (
                "spec.package changed, status still for the old one",
                |o| o["spec"]["package"] = json!("x:v2"),
                StatusFor::OtherPackage,
                false,
            ),
            (
                "spec.package changed and picked up",
                |o| {
                    o["spec"]["package"] = json!("x:v2");
                    o["status"]["currentIdentifier"] = json!("x:v2");
                },
                StatusFor::Spec,
                true,
            ),
            (
                "no currentIdentifier (no active revision yet)",
                |o| {
                    o["status"]
                        .as_object_mut()
                        .expect("status")
                        .remove("currentIdentifier");
                },
                StatusFor::OtherPackage,
                false,
            ),
            (
                "currentIdentifier not a string",
                |o| o["status"]["currentIdentifier"] = json!(7),
                StatusFor::OtherPackage,
                false,
            ),
            (
                "no spec.package",
                |o| o["spec"] = json!({}),
                StatusFor::OtherPackage,
                false,
            ),
        ];
        check_readiness(&cases);
    }

    /// A package is ready only when its conditions are about its current
    /// generation and say Installed and Healthy.
    #[test]
    fn a_package_is_ready_only_on_its_generation_and_conditions() {
        let cases: [Case; 6] = [
            (
                "generation bumped, conditions not yet written for it",
                |o| o["metadata"]["generation"] = json!(2),
                StatusFor::OlderGeneration,
                false,
            ),
            (
                "Healthy alone written for an older generation",
                |o| o["status"]["conditions"][1]["observedGeneration"] = json!(0),
                StatusFor::OlderGeneration,
                false,
            ),
            (
                "observedGeneration but no metadata.generation",
                |o| {
                    o["metadata"]
                        .as_object_mut()
                        .expect("metadata")
                        .remove("generation");
                },
                StatusFor::OlderGeneration,
                false,
            ),
            (
                "no observedGeneration (older writers): the identifier decides",
                |o| {
                    for c in o["status"]["conditions"]
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                    {
                        c.as_object_mut()
                            .expect("condition")
                            .remove("observedGeneration");
                    }
                },
                StatusFor::Spec,
                true,
            ),
            (
                "current, but Healthy=False",
                |o| o["status"]["conditions"][1]["status"] = json!("False"),
                StatusFor::Spec,
                false,
            ),
            (
                "current, but Installed missing",
                |o| {
                    o["status"]["conditions"] =
                        json!([{"type": "Healthy", "status": "True", "observedGeneration": 1}])
                },
                StatusFor::Spec,
                false,
            ),
        ];
        check_readiness(&cases);
    }

    /// What a case does to a healthy, current package object, what its
    /// status is then about and whether it is ready.
    type Case = (&'static str, fn(&mut Json), StatusFor, bool);

    fn check_readiness(cases: &[Case]) {
        let healthy = [("Installed", "True"), ("Healthy", "True")];
        for (what, change, status_for, ready) in cases {
            let mut object = with_conditions(&healthy);
            change(&mut object);
            let observed = Observed::from_json(&object);
            assert_eq!(observed.status_for(), *status_for, "{what}");
            assert_eq!(observed.is_ready(), *ready, "{what}");
        }
    }

    #[test]
    fn the_rule_follows_the_kind() {
        let cases = [
            ("pkg.crossplane.io/v1", "Provider", Readiness::OnItsPackage),
            ("pkg.crossplane.io/v1", "Function", Readiness::OnItsPackage),
            (
                "pkg.crossplane.io/v1",
                "Configuration",
                Readiness::OnItsPackage,
            ),
            (
                "pkg.crossplane.io/v1beta1",
                "ImageConfig",
                Readiness::Exists,
            ),
            (
                "iam.aws.upbound.io/v1beta1",
                "RolePolicyAttachment",
                Readiness::ReadyCondition,
            ),
            (
                "iam.aws.m.upbound.io/v1beta1",
                "Role",
                Readiness::ReadyCondition,
            ),
            ("", "", Readiness::ReadyCondition),
        ];
        for (api_version, kind, readiness) in cases {
            assert_eq!(Readiness::of(api_version, kind), readiness, "{kind}");
            let object = json!({"apiVersion": api_version, "kind": kind});
            assert_eq!(Observed::from_json(&object).readiness, readiness, "{kind}");
        }
    }

    #[test]
    fn conditions_are_read_by_type() {
        let object = Observed::from_json(&json!({"status": {"conditions": [
            {"type": "Installed", "status": "True", "reason": "ActivePackageRevision"},
            {"type": "Healthy"},
            {"type": "Healthy", "status": "False"},
        ]}}));
        let cases = [
            ("Installed", Some(("True", "ActivePackageRevision"))),
            ("Healthy", Some(("Unknown", ""))),
            ("Ready", None),
        ];
        for (kind, expected) in cases {
            assert_eq!(object.condition(kind), expected, "{kind}");
        }
    }

    /// A kept object carries over its identity, spec and external name;
    /// never status, managedFields or other annotations.
    #[test]
    fn what_is_carried_over() {
        let full = json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": {"name": "p", "namespace": "n", "uid": "u", "generation": 3,
                         "managedFields": [{"manager": "crossplane", "fieldsV1": {"f:spec": {}}}],
                         "annotations": {"crossplane.io/external-name": "e", "crossplane.io/composition-resource-name": "r"}},
            "spec": {"package": "x:v1", "revisionHistoryLimit": 1},
            "status": {"conditions": [{"type": "Healthy", "status": "True"}], "currentRevision": "p-1"}
        });
        let observed = Observed::from_json(&full);
        assert_eq!(observed.package(), Some("x:v1"));
        assert_eq!(
            Json::Object(observed.carry_over()),
            json!({
                "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                "metadata": {"name": "p", "namespace": "n", "annotations": {"crossplane.io/external-name": "e"}},
                "spec": {"package": "x:v1", "revisionHistoryLimit": 1}
            })
        );
        let bare = Observed::from_json(&json!({"kind": "Thing", "metadata": {"name": 3}}));
        assert_eq!(bare.package(), None);
        assert_eq!(
            Json::Object(bare.carry_over()),
            json!({"kind": "Thing", "metadata": {}})
        );
    }
}

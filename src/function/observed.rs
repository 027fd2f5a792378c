//! Observed composed resources, read once per call: each one's readiness
//! (judged by the rule for its kind), its package reference and its
//! conditions, read straight from the request's protobuf. The rest of the
//! object stays there: it is converted to JSON only for an object the
//! function keeps without planning it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use prost_types::Struct;
use prost_types::value::Kind;
use serde_json::{Map, Value as Json};

use crate::sdk::structs::{as_str, str_at, value_to_json};

/// The label Crossplane's Usage controller puts on an object in use.
pub const IN_USE_LABEL: &str = "crossplane.io/in-use";

/// Observed composed resources by composition resource name.
pub type ObservedResources<'a> = BTreeMap<String, Observed<'a>>;

/// What "ready" means for an object its dependents wait on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Existing is enough (an ImageConfig has no status to wait for).
    Exists,
    /// A managed resource: condition `Ready=True`.
    ReadyCondition,
    /// A package: conditions `Installed=True` and `Healthy=True`.
    InstalledAndHealthy,
}

impl Readiness {
    /// The rule for an object of this apiVersion and kind.
    pub fn of(api_version: &str, kind: &str) -> Self {
        match (api_version.starts_with("pkg.crossplane.io/"), kind) {
            (true, "ImageConfig") => Readiness::Exists,
            (true, _) => Readiness::InstalledAndHealthy,
            (false, _) => Readiness::ReadyCondition,
        }
    }

    fn met_by(self, object: &Struct) -> bool {
        let is_true = |kind| condition(object, kind).is_some_and(|(status, _)| status == "True");
        match self {
            Readiness::Exists => true,
            Readiness::ReadyCondition => is_true("Ready"),
            Readiness::InstalledAndHealthy => is_true("Installed") && is_true("Healthy"),
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
        self.readiness == Readiness::InstalledAndHealthy
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

    /// The `status` and `reason` of its condition of type `kind`.
    pub fn condition(&self, kind: &str) -> Option<(&str, &str)> {
        condition(&self.resource, kind)
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
#[cfg(test)]
pub fn with_conditions(conditions: &[(&str, &str)]) -> Json {
    serde_json::json!({
        "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
        "metadata": {"name": "p", "uid": "u", "resourceVersion": "7"},
        "spec": {"package": "x"},
        "status": {"conditions": conditions.iter().map(|(t, s)| serde_json::json!({"type": t, "status": s, "reason": "R"})).collect::<Vec<_>>()}
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
    let Some(Kind::StructValue(status)) = &object.fields.get("status")?.kind else {
        return None;
    };
    let Some(Kind::ListValue(conditions)) = &status.fields.get("conditions")?.kind else {
        return None;
    };
    conditions.values.iter().find_map(|c| {
        let Some(Kind::StructValue(c)) = &c.kind else {
            return None;
        };
        let text = |key| c.fields.get(key).and_then(as_str);
        (text("type") == Some(kind)).then(|| {
            (
                text("status").unwrap_or("Unknown"),
                text("reason").unwrap_or(""),
            )
        })
    })
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

    #[test]
    fn the_rule_follows_the_kind() {
        let cases = [
            (
                "pkg.crossplane.io/v1",
                "Provider",
                Readiness::InstalledAndHealthy,
            ),
            (
                "pkg.crossplane.io/v1",
                "Function",
                Readiness::InstalledAndHealthy,
            ),
            (
                "pkg.crossplane.io/v1",
                "Configuration",
                Readiness::InstalledAndHealthy,
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

//! Ownership: which XR controls each object this XR would compose.
//!
//! Package objects, ImageConfigs and IAM objects are singletons (a package
//! object or an ImageConfig per cluster, an IAM name per account), and many
//! XRs from many teams share one cluster. So no XR takes over an object it
//! did not create. Before composing an object it does not observe yet, the
//! function asks Crossplane for it by kind and name (a required resource;
//! Crossplane sends it whatever its controller). Then:
//!
//! - absent, or controlled by this XR: composed;
//! - with no controller (installed by a person, by Helm, or by Crossplane's
//!   dependency resolver): adopted only when the input says
//!   `adoptExisting: true`, else **shared**;
//! - controlled by another XR: **shared**.
//!
//! A shared object is never composed, so nothing is fought over or deleted.
//! It *satisfies* this XR when it already is what this XR would compose
//! (every field of the planned `spec` has the same value in the object:
//! the same package reference, the same ImageConfig rewrite, the same IAM
//! parameters) and it is ready by the rule for its kind; then this XR's
//! dependents go ahead, and a Crossplane Usage (see [`usage`]) keeps the
//! object while this XR uses it. Otherwise it is a **conflict**: its
//! dependents wait and the XR says who holds it, what is there and what it
//! asks for.
//!
//! Nothing is asked while every planned object is observed, so a steady
//! reconcile of an XR that shares nothing stays one call.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::sdk::protobuf::Struct;
use crate::sdk::protobuf::value::Kind;
use serde_json::{Map, Value as Json, json};

use crate::compose::Planned;
use crate::compose::USAGE_PREFIX;
use crate::function::observed::{Observed, ObservedResources};
use crate::names::{Grammar, hash, object_name};
use crate::proto::v1::RunFunctionRequest;
use crate::sdk::Response;
use crate::sdk::request::can_send_required_resources;
use crate::sdk::structs::{str_at, value_to_json};
use crate::spec::xr::XrRef;

/// Requirement names are the composition resource name with this prefix.
const REQUIREMENT_PREFIX: &str = "existing-";

/// Characters of a value read from the cluster that a message may quote.
const MAX_QUOTED: usize = 200;

/// Who controls an existing object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Another XR (or any other controller): `Kind/name`.
    Controller(String),
    /// Nobody: installed by a person, Helm or Crossplane's resolver.
    Nobody,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Controller(owner) => f.write_str(owner),
            Holder::Nobody => f.write_str("no controller"),
        }
    }
}

/// Whether a shared object serves this XR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is what this XR would compose; `ready` by the rule for its kind.
    Satisfies { ready: bool },
    /// It is something else: `installed` says what, bounded.
    Conflict { installed: String },
}

/// An existing object this XR would compose but does not control.
#[derive(Clone, Debug, PartialEq)]
pub struct Shared {
    /// The composition resource name this XR would give it.
    pub resource: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub holder: Holder,
    /// What this XR asks for, bounded (for packages, `spec.package`).
    pub wanted: String,
    pub verdict: Verdict,
    /// A package of this XR that needs it, if any: its Usage names that
    /// package as the user (see [`usage`]).
    pub needed_by: Option<ObjectRef>,
}

/// A cluster-scoped object by apiVersion, kind and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

impl Shared {
    /// Whether its dependents may go ahead.
    pub fn is_ready(&self) -> bool {
        matches!(self.verdict, Verdict::Satisfies { ready: true })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self.verdict, Verdict::Conflict { .. })
    }

    /// One line for a Warning and the `Resolved` condition.
    pub fn describe_conflict(&self) -> Option<String> {
        let Verdict::Conflict { installed } = &self.verdict else {
            return None;
        };
        Some(format!(
            "{} {} is held by {} with {installed}, and this XR asks for {}: not composing it (nothing is taken over); what needs it waits",
            self.kind, self.name, self.holder, self.wanted
        ))
    }
}

/// What this call learned of the objects it plans but does not observe.
#[derive(Debug, Default)]
pub struct Ownership {
    /// Objects asked about: requirement name, apiVersion, kind, name,
    /// namespace.
    asked: Vec<Question>,
    /// Planned objects whose answer is still to come (the first call of a
    /// reconcile): not composed on this call.
    pub pending: BTreeSet<String>,
    /// Existing objects this XR would compose but does not control.
    pub shared: Vec<Shared>,
}

#[derive(Debug)]
struct Question {
    requirement: String,
    api_version: String,
    kind: String,
    name: String,
    namespace: Option<String>,
}

/// Whether an existing object that no controller holds may be taken over
/// (input `adoptExisting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// Shared read-only, as another XR's would be.
    Never,
    /// Composed, so this XR becomes its controller.
    Unowned,
}

impl Adoption {
    pub fn allowed(adopt_existing: bool) -> Self {
        if adopt_existing {
            Adoption::Unowned
        } else {
            Adoption::Never
        }
    }
}

impl Ownership {
    /// Leaves in `plan` what this XR composes, and takes out what it must
    /// leave to others. A caller that cannot send required resources is not
    /// asked, and everything planned is composed (Crossplane itself refuses
    /// to apply over another controller). Nor is anything asked about the
    /// objects in `unknown_kinds`, which wait for their kinds to exist.
    pub fn sort(
        request: &RunFunctionRequest,
        plan: &mut Vec<Planned>,
        observed: &ObservedResources,
        composite: XrRef,
        adoption: Adoption,
        unknown_kinds: &BTreeSet<String>,
    ) -> Ownership {
        let mut ownership = Ownership::default();
        if !can_send_required_resources(request) {
            return ownership;
        }
        let all = std::mem::take(plan);
        // Who needs what matters only for objects that may turn out shared:
        // a steady reconcile, everything observed, skips it.
        let needed_by = if all.iter().all(|p| observed.contains_key(&p.name)) {
            BTreeMap::new()
        } else {
            first_dependents(&all)
        };
        let mut composed = Vec::with_capacity(all.len());
        for planned in all {
            // Observed, or of a kind that may not exist yet (it waits for
            // its definition; the gate holds it): nothing to ask.
            if observed.contains_key(&planned.name) || unknown_kinds.contains(&planned.name) {
                composed.push(planned);
                continue;
            }
            let question = Question::about(&planned);
            let answer = request
                .required_resources
                .get(&question.requirement)
                .map(|answer| answer.items.iter().find_map(|i| i.resource.as_ref()));
            match answer {
                None => {
                    ownership.pending.insert(planned.name.clone());
                }
                Some(None) => composed.push(planned),
                Some(Some(existing)) => match holder(existing, composite.uid) {
                    None => composed.push(planned),
                    Some(Holder::Nobody) if adoption == Adoption::Unowned => composed.push(planned),
                    Some(holder) => {
                        let mut shared = judge(&planned, &question, existing, holder);
                        shared.needed_by = needed_by.get(&planned.name).cloned();
                        ownership.shared.push(shared);
                    }
                },
            }
            ownership.asked.push(question);
        }
        *plan = composed;
        ownership
    }

    /// Asks Crossplane for every planned object not observed (again on the
    /// call that reads them, so the requirements settle).
    pub fn ask(&self, response: &mut Response) {
        for q in &self.asked {
            response.require_object(
                &q.requirement,
                &q.api_version,
                &q.kind,
                &q.name,
                q.namespace.as_deref(),
            );
        }
    }

    /// The shared object composed under `resource`, if any.
    pub fn shared(&self, resource: &str) -> Option<&Shared> {
        self.shared.iter().find(|s| s.resource == resource)
    }

    /// Composition resource names whose shared object is ready for this
    /// XR's dependents.
    pub fn ready(&self) -> BTreeSet<String> {
        self.shared
            .iter()
            .filter(|s| s.is_ready())
            .map(|s| s.resource.clone())
            .collect()
    }

    /// Whether every object this XR shares serves it and is ready, and
    /// nothing is still being asked about.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.shared.iter().all(Shared::is_ready)
    }

    /// The conflicts, one line each.
    pub fn conflicts(&self) -> Vec<String> {
        self.shared
            .iter()
            .filter_map(Shared::describe_conflict)
            .collect()
    }

    /// A Usage for each shared object that satisfies this XR, so deleting
    /// its owner does not remove what this XR still needs.
    pub fn usages(&self, composite: XrRef) -> Vec<Planned> {
        self.shared
            .iter()
            .filter(|s| matches!(s.verdict, Verdict::Satisfies { .. }))
            .map(|s| usage(s, composite))
            .collect()
    }
}

impl Question {
    fn about(planned: &Planned) -> Self {
        let text = |path: &[&str]| {
            let mut value = planned.object.get(path[0]);
            for step in &path[1..] {
                value = value.and_then(|v| v.get(step));
            }
            value.and_then(Json::as_str).map(str::to_string)
        };
        Question {
            requirement: format!("{REQUIREMENT_PREFIX}{}", planned.name),
            api_version: text(&["apiVersion"]).unwrap_or_default(),
            kind: text(&["kind"]).unwrap_or_default(),
            name: text(&["metadata", "name"]).unwrap_or_default(),
            namespace: text(&["metadata", "namespace"]),
        }
    }
}

/// Who controls `object`; `None` when it is this XR (the one with `uid`).
fn holder(object: &Struct, uid: Option<&str>) -> Option<Holder> {
    let Some(Kind::StructValue(metadata)) =
        object.fields.get("metadata").and_then(|m| m.kind.as_ref())
    else {
        return Some(Holder::Nobody);
    };
    let Some(Kind::ListValue(owners)) = metadata
        .fields
        .get("ownerReferences")
        .and_then(|o| o.kind.as_ref())
    else {
        return Some(Holder::Nobody);
    };
    let controller = owners.values.iter().find_map(|owner| match &owner.kind {
        Some(Kind::StructValue(owner))
            if owner
                .fields
                .get("controller")
                .is_some_and(|c| matches!(c.kind, Some(Kind::BoolValue(true)))) =>
        {
            Some(owner)
        }
        _ => None,
    });
    let Some(controller) = controller else {
        return Some(Holder::Nobody);
    };
    let field = |key| str_at(controller, &[key]).unwrap_or_default();
    if uid.is_some_and(|uid| field("uid") == uid) {
        return None;
    }
    Some(Holder::Controller(bounded(&format!(
        "{}/{}",
        field("kind"),
        field("name")
    ))))
}

/// Whether the existing object is what `planned` would make it: its
/// `spec`, or for an object without one (a Secret) its `data`.
fn judge(planned: &Planned, question: &Question, existing: &Struct, holder: Holder) -> Shared {
    let field = if planned.object.contains_key("spec") {
        "spec"
    } else {
        "data"
    };
    let wanted = planned.object.get(field).cloned().unwrap_or(Json::Null);
    let spec = existing
        .fields
        .get(field)
        .map(value_to_json)
        .unwrap_or(Json::Null);
    // A package object is told by its reference; anything else by its spec.
    let package = |spec: &Json| spec.get("package").and_then(Json::as_str).map(bounded);
    let verdict = if is_within(&wanted, &spec) {
        Verdict::Satisfies {
            ready: Observed::new(Cow::Borrowed(existing)).is_ready(),
        }
    } else {
        Verdict::Conflict {
            installed: package(&spec).unwrap_or_else(|| "another spec".to_string()),
        }
    };
    Shared {
        resource: planned.name.clone(),
        api_version: question.api_version.clone(),
        kind: question.kind.clone(),
        name: question.name.clone(),
        namespace: question.namespace.clone(),
        holder,
        wanted: package(&wanted).unwrap_or_else(|| "its own spec".to_string()),
        verdict,
        needed_by: None,
    }
}

/// For each composition resource name that a planned package object needs,
/// the first such package (in plan order, so dependencies before
/// dependents).
fn first_dependents(plan: &[Planned]) -> BTreeMap<String, ObjectRef> {
    let mut first = BTreeMap::new();
    for planned in plan {
        let question = Question::about(planned);
        let is_package = question.api_version.starts_with("pkg.crossplane.io/")
            && question.kind != "ImageConfig";
        if !is_package {
            continue;
        }
        for need in &planned.needs {
            first.entry(need.clone()).or_insert_with(|| ObjectRef {
                api_version: question.api_version.clone(),
                kind: question.kind.clone(),
                name: question.name.clone(),
            });
        }
    }
    first
}

/// Whether every field of `wanted` has the same value in `actual`: objects
/// compare key by key (fields the API server or a controller added are
/// allowed), everything else exactly.
fn is_within(wanted: &Json, actual: &Json) -> bool {
    match (wanted, actual) {
        (Json::Object(wanted), Json::Object(actual)) => wanted
            .iter()
            .all(|(k, v)| actual.get(k).is_some_and(|a| is_within(v, a))),
        _ => wanted == actual,
    }
}

/// A value read from the cluster, cut for a message.
fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_QUOTED).collect();
    format!("{cut}…")
}

/// A Crossplane Usage of `shared` by this XR: a ClusterUsage for a
/// cluster-scoped object, a Usage in its namespace otherwise
/// (`protection.crossplane.io/v1beta1`). Crossplane's admission webhook
/// refuses to delete an object while a Usage of it exists; with
/// `replayDeletion` the deletion its owner's garbage collection tried is
/// carried out once the last Usage is gone.
///
/// A cluster-scoped object that a package of this XR needs names that
/// package as its user (`spec.by`). Crossplane then makes the package an
/// owner of the Usage too, and the garbage collector deletes an object only
/// once all its owners are gone: so when this XR is deleted, the Usage of
/// a dependency outlives its dependent, and dependencies are let go after
/// what needs them, as Crossplane's resolver requires (deleted together, it
/// would reinstall the dependency for a dependent still in its Lock).
fn usage(shared: &Shared, composite: XrRef) -> Planned {
    let tag = hash(&[composite.uid.unwrap_or(composite.name)]);
    let mut metadata = Map::new();
    metadata.insert(
        "name".to_string(),
        json!(object_name(
            "usage",
            &format!("{}-{tag}", shared.name),
            Grammar::Label
        )),
    );
    let kind = match &shared.namespace {
        Some(namespace) => {
            metadata.insert("namespace".to_string(), json!(namespace));
            "Usage"
        }
        None => "ClusterUsage",
    };
    let mut spec = json!({
        "of": {
            "apiVersion": shared.api_version,
            "kind": shared.kind,
            "resourceRef": {"name": shared.name},
        },
        "replayDeletion": true,
    });
    match (&shared.namespace, &shared.needed_by) {
        (None, Some(user)) => {
            spec["by"] = json!({
                "apiVersion": user.api_version,
                "kind": user.kind,
                "resourceRef": {"name": user.name},
            });
        }
        _ => {
            spec["reason"] = json!(bounded(&format!(
                "used by {}/{} (function-ecr-packages)",
                composite.kind, composite.name
            )));
        }
    }
    let object = json!({
        "apiVersion": "protection.crossplane.io/v1beta1",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    });
    Planned {
        name: object_name(
            USAGE_PREFIX.trim_end_matches('-'),
            &shared.resource,
            Grammar::Label,
        ),
        object: match object {
            Json::Object(map) => map,
            _ => Map::new(),
        },
        needs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ownership::sort` over a plan it owns, as the tests spell it.
    fn sort(
        request: &RunFunctionRequest,
        mut plan: Vec<Planned>,
        observed: &ObservedResources,
        composite: XrRef,
        adopt_existing: bool,
    ) -> (Vec<Planned>, Ownership) {
        let adoption = Adoption::allowed(adopt_existing);
        let ownership = Ownership::sort(
            request,
            &mut plan,
            observed,
            composite,
            adoption,
            &BTreeSet::new(),
        );
        (plan, ownership)
    }
    use crate::function::observed::observe;
    use crate::proto::v1::{Resource, Resources};
    use crate::sdk::request::request_from;
    use crate::sdk::structs::json_to_struct;

    const XR: XrRef = XrRef {
        kind: "XEcrPackages",
        name: "team-b",
        uid: Some("uid-b"),
    };

    fn provider(resource: &str, package: &str) -> Planned {
        Planned {
            name: resource.to_string(),
            object: match json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                   "metadata": {"name": resource.trim_start_matches("package-")},
                   "spec": {"package": package}})
            {
                Json::Object(map) => map,
                _ => unreachable!(),
            },
            needs: vec![],
        }
    }

    fn existing(package: &str, controller: Option<(&str, &str)>, healthy: bool) -> Json {
        let mut object = json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": {"name": "s3"},
            "spec": {"package": package, "revisionHistoryLimit": 1},
            "status": {"currentIdentifier": package, "conditions": [
                {"type": "Installed", "status": "True"},
                {"type": "Healthy", "status": if healthy { "True" } else { "False" }}]}});
        if let Some((name, uid)) = controller {
            object["metadata"]["ownerReferences"] = json!([
                {"apiVersion": "ecr.example.org/v1", "kind": "XEcrPackages", "name": name, "uid": uid, "controller": true},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "x"}
            ]);
        }
        object
    }

    /// A request from Crossplane that answers `package-s3` with `objects`
    /// (`None`: not answered yet).
    fn request(answer: Option<Vec<Json>>) -> RunFunctionRequest {
        let mut request = request_from(true);
        if let Some(objects) = answer {
            request.required_resources.insert(
                "existing-package-s3".to_string(),
                Resources {
                    items: objects
                        .iter()
                        .map(|o| Resource {
                            resource: json_to_struct(o),
                            ..Default::default()
                        })
                        .collect(),
                },
            );
        }
        request
    }

    #[test]
    fn who_holds_what_decides_what_is_composed() {
        let wanted = "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0";
        let other = "xpkg.upbound.io/upbound/provider-aws-s3:v2.1.0";
        let shared = |ready| Some(Verdict::Satisfies { ready });
        let conflict = Some(Verdict::Conflict {
            installed: other.to_string(),
        });
        type Case = (&'static str, Option<Vec<Json>>, bool, bool, Option<Verdict>);
        let cases: Vec<Case> = vec![
            // case, answer, adoptExisting, composed, shared verdict
            ("not answered yet", None, false, false, None),
            ("absent", Some(vec![]), false, true, None),
            (
                "ours",
                Some(vec![existing(wanted, Some(("team-b", "uid-b")), true)]),
                false,
                true,
                None,
            ),
            (
                "another XR's, the same",
                Some(vec![existing(wanted, Some(("team-a", "uid-a")), true)]),
                false,
                false,
                shared(true),
            ),
            (
                "another XR's, not healthy yet",
                Some(vec![existing(wanted, Some(("team-a", "uid-a")), false)]),
                false,
                false,
                shared(false),
            ),
            (
                "another XR's, another version",
                Some(vec![existing(other, Some(("team-a", "uid-a")), true)]),
                false,
                false,
                conflict.clone(),
            ),
            (
                "another XR's, adoptExisting changes nothing",
                Some(vec![existing(other, Some(("team-a", "uid-a")), true)]),
                true,
                false,
                conflict.clone(),
            ),
            (
                "unowned",
                Some(vec![existing(other, None, true)]),
                false,
                false,
                conflict,
            ),
            (
                "unowned, adopted",
                Some(vec![existing(other, None, true)]),
                true,
                true,
                None,
            ),
        ];
        for (case, answer, adopt, composed, verdict) in cases {
            let pending = answer.is_none();
            let (plan, ownership) = sort(
                &request(answer),
                vec![provider("package-s3", wanted)],
                &observe(&BTreeMap::new()),
                XR,
                adopt,
            );
            assert_eq!(plan.len() == 1, composed, "{case}");
            assert_eq!(ownership.pending.contains("package-s3"), pending, "{case}");
            assert_eq!(
                ownership.shared.first().map(|s| s.verdict.clone()),
                verdict,
                "{case}"
            );
            assert_eq!(ownership.asked.len(), 1, "{case}: asked once");
            let settled = !pending && ownership.shared.iter().all(Shared::is_ready);
            assert_eq!(ownership.is_settled(), settled, "{case}");
        }
    }

    #[test]
    fn nothing_is_asked_about_what_is_observed_or_by_a_caller_that_cannot_answer() {
        let plan = vec![provider("package-s3", "x:v1")];
        let observed = BTreeMap::from([("package-s3".to_string(), existing("x:v1", None, true))]);
        let (composed, ownership) =
            sort(&request(None), plan.clone(), &observe(&observed), XR, false);
        assert_eq!(composed, plan);
        assert!(ownership.asked.is_empty());
        let (composed, ownership) = sort(
            &request_from(false),
            plan.clone(),
            &observe(&BTreeMap::new()),
            XR,
            false,
        );
        assert_eq!(composed, plan);
        assert!(ownership.asked.is_empty() && ownership.pending.is_empty());
    }

    #[test]
    fn conflicts_name_the_object_its_holder_and_both_versions() {
        let (_, ownership) = sort(
            &request(Some(vec![existing(
                "xpkg.upbound.io/upbound/provider-aws-s3:v2.1.0",
                Some(("team-a", "uid-a")),
                true,
            )])),
            vec![provider(
                "package-s3",
                "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0",
            )],
            &observe(&BTreeMap::new()),
            XR,
            false,
        );
        assert_eq!(
            ownership.conflicts(),
            [
                "Provider s3 is held by XEcrPackages/team-a with xpkg.upbound.io/upbound/provider-aws-s3:v2.1.0, and this XR asks for xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0: not composing it (nothing is taken over); what needs it waits"
            ]
        );
        assert!(ownership.usages(XR).is_empty());
        assert!(ownership.ready().is_empty());
    }

    #[test]
    fn a_used_object_is_protected_by_a_usage_named_for_this_xr() {
        let wanted = "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0";
        let answer = request(Some(vec![existing(
            wanted,
            Some(("team-a", "uid-a")),
            true,
        )]));
        let (_, ownership) = sort(
            &answer,
            vec![provider("package-s3", wanted)],
            &observe(&BTreeMap::new()),
            XR,
            false,
        );
        assert_eq!(
            ownership.ready(),
            BTreeSet::from(["package-s3".to_string()])
        );
        let usages = ownership.usages(XR);
        assert_eq!(usages.len(), 1);
        assert_eq!(usages[0].name, "usage-package-s3");
        let object = Json::Object(usages[0].object.clone());
        assert_eq!(object["kind"], "ClusterUsage");
        assert_eq!(
            object["spec"]["of"],
            json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "resourceRef": {"name": "s3"}})
        );
        assert_eq!(object["spec"]["replayDeletion"], true);
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        assert!(crate::names::is_label(name), "{name}");
        // Another XR's Usage of the same object has another name.
        let other = XrRef {
            uid: Some("uid-c"),
            ..XR
        };
        let theirs = Json::Object(ownership.usages(other)[0].object.clone());
        assert_ne!(theirs["metadata"]["name"], object["metadata"]["name"]);
    }

    /// A shared object that a package of this XR needs names that package
    /// as its user, so the Usage outlives the dependent when the XR goes;
    /// one nothing needs names this XR in its reason.
    #[test]
    fn a_usage_names_the_package_that_needs_the_object() {
        let wanted = "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0";
        let mut storage = provider("package-storage", "xpkg.upbound.io/acme/storage:v1");
        storage
            .object
            .insert("kind".to_string(), json!("Configuration"));
        storage.needs = vec!["package-s3".to_string()];
        let answer = request(Some(vec![existing(
            wanted,
            Some(("team-a", "uid-a")),
            true,
        )]));
        for (plan, by) in [
            (vec![provider("package-s3", wanted), storage.clone()], true),
            (vec![provider("package-s3", wanted)], false),
        ] {
            let (_, ownership) = sort(&answer, plan, &observe(&BTreeMap::new()), XR, false);
            let usage = Json::Object(ownership.usages(XR)[0].object.clone());
            if by {
                assert_eq!(
                    usage["spec"]["by"],
                    json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration", "resourceRef": {"name": "storage"}})
                );
                assert!(usage["spec"].get("reason").is_none());
            } else {
                assert!(usage["spec"].get("by").is_none());
                assert_eq!(
                    usage["spec"]["reason"],
                    "used by XEcrPackages/team-b (function-ecr-packages)"
                );
            }
        }
    }

    #[test]
    fn fields_added_by_the_cluster_do_not_make_a_conflict() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1, "b": 2}), true),
            (json!({"a": {"x": 1}}), json!({"a": {"x": 1, "y": 2}}), true),
            (json!({"a": [1, 2]}), json!({"a": [1, 2, 3]}), false),
            (json!({"a": 1}), json!({}), false),
            (json!({"a": "1"}), json!({"a": 1}), false),
        ];
        for (wanted, actual, within) in cases {
            assert_eq!(is_within(&wanted, &actual), within, "{wanted} in {actual}");
        }
    }

    #[test]
    fn quoted_values_are_bounded() {
        let long = "x".repeat(10_000);
        let object = existing(&long, Some((&long, "uid-a")), true);
        let (_, ownership) = sort(
            &request(Some(vec![object])),
            vec![provider("package-s3", "x:v1")],
            &observe(&BTreeMap::new()),
            XR,
            false,
        );
        let conflict = &ownership.conflicts()[0];
        assert!(conflict.len() < 1000, "{}", conflict.len());
    }

    /// A Secret (a verification key, `compose::verification`) has no spec:
    /// it is asked about in its namespace, judged by its `data`, ready once
    /// it exists, and protected by a namespaced Usage.
    #[test]
    fn a_secret_is_judged_by_its_data_in_its_namespace() {
        let secret = |data: &str, owner: Option<(&str, &str)>| {
            let mut object = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "ecr-verify-key-1", "namespace": "crossplane-system"},
                "type": "Opaque", "data": {"cosign.pub": data}});
            if let Some((name, uid)) = owner {
                object["metadata"]["ownerReferences"] = json!([{"apiVersion": "ecr.example.org/v1",
                    "kind": "XEcrPackages", "name": name, "uid": uid, "controller": true}]);
            }
            object
        };
        // Under the one resource name `request` answers.
        let planned = Planned {
            name: "package-s3".to_string(),
            object: match secret("QQ==", None) {
                Json::Object(map) => map,
                _ => unreachable!(),
            },
            needs: vec![],
        };
        for (answer, verdict) in [
            (
                secret("QQ==", Some(("team-a", "uid-a"))),
                Verdict::Satisfies { ready: true },
            ),
            (
                secret("Qg==", Some(("team-a", "uid-a"))),
                Verdict::Conflict {
                    installed: "another spec".to_string(),
                },
            ),
        ] {
            let (plan, ownership) = sort(
                &request(Some(vec![answer])),
                vec![planned.clone()],
                &observe(&BTreeMap::new()),
                XR,
                false,
            );
            assert!(plan.is_empty());
            assert_eq!(
                ownership.asked[0].namespace.as_deref(),
                Some("crossplane-system")
            );
            assert_eq!(ownership.shared[0].verdict, verdict);
            let usages = ownership.usages(XR);
            if ownership.shared[0].is_ready() {
                assert_eq!(usages[0].object["kind"], json!("Usage"));
                assert_eq!(
                    usages[0].object["metadata"]["namespace"],
                    json!("crossplane-system")
                );
            } else {
                assert!(usages.is_empty());
            }
        }
    }
}

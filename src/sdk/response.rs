//! Building a RunFunctionResponse the way Crossplane expects: tag echoed,
//! desired state carried over from the request, only `status` set on the
//! composite, results and conditions well formed.

use std::time::Duration;

use crate::sdk::protobuf::{Struct, Value, value::Kind};
use serde_json::{Map, Value as Json};

use super::structs::into_struct;
use crate::proto::v1::{
    Condition, Ready, Requirements, Resource, ResourceSelector, ResponseMeta, Result as FnResult,
    RunFunctionRequest, RunFunctionResponse, Severity, State, Status, Target,
    resource_selector::Match,
};

/// Whether a condition holds, in Kubernetes' three-valued sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    fn proto(self) -> Status {
        match self {
            ConditionStatus::True => Status::ConditionTrue,
            ConditionStatus::False => Status::ConditionFalse,
            ConditionStatus::Unknown => Status::ConditionUnknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

pub struct Response {
    inner: RunFunctionResponse,
}

impl Response {
    /// A response that echoes the request's tag and passes every desired
    /// resource from earlier pipeline steps through untouched.
    pub fn to(request: &RunFunctionRequest) -> Self {
        Self {
            inner: RunFunctionResponse {
                meta: Some(ResponseMeta {
                    tag: request
                        .meta
                        .as_ref()
                        .map(|m| m.tag.clone())
                        .unwrap_or_default(),
                    ttl: None,
                }),
                desired: Some(request.desired.clone().unwrap_or_default()),
                ..Default::default()
            },
        }
    }

    /// How long Crossplane may cache this response; also when it calls again.
    pub fn set_ttl(&mut self, ttl: Duration) {
        if let Some(meta) = self.inner.meta.as_mut() {
            meta.ttl = Some(prost_types::Duration {
                seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(ttl.subsec_nanos()).unwrap_or(0),
            });
        }
    }

    /// Stops the pipeline; Crossplane applies nothing from this reconcile.
    pub fn fatal(&mut self, message: impl Into<String>) {
        self.result(Severity::Fatal, message.into(), None);
    }

    /// Becomes a Warning event on the composite (and claim).
    pub fn warning(&mut self, reason: &str, message: impl Into<String>) {
        self.result(Severity::Warning, message.into(), Some(reason));
    }

    /// Becomes a Normal event on the composite (and claim).
    pub fn normal(&mut self, reason: &str, message: impl Into<String>) {
        self.result(Severity::Normal, message.into(), Some(reason));
    }

    fn result(&mut self, severity: Severity, message: String, reason: Option<&str>) {
        self.inner.results.push(FnResult {
            severity: severity as i32,
            message,
            reason: reason.map(str::to_string),
            target: Some(Target::CompositeAndClaim as i32),
        });
    }

    /// Sets a condition on the composite and its claim. Reasons are PascalCase
    /// and never empty, as Kubernetes conventions require.
    pub fn condition(
        &mut self,
        kind: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) {
        debug_assert!(is_pascal_case(reason), "condition reason {reason:?}");
        self.inner.conditions.push(Condition {
            r#type: kind.to_string(),
            status: status.proto() as i32,
            reason: reason.to_string(),
            message: Some(message.into()),
            target: Some(Target::CompositeAndClaim as i32),
        });
    }

    pub fn results(&self) -> &[FnResult] {
        &self.inner.results
    }

    fn desired(&mut self) -> &mut State {
        self.inner.desired.get_or_insert_with(State::default)
    }

    /// Merges `status` into the desired composite's status. Only status: a
    /// function that sets the composite's spec or metadata fights the user.
    pub fn set_composite_status(&mut self, status: impl IntoIterator<Item = (String, Value)>) {
        let composite = self
            .desired()
            .composite
            .get_or_insert_with(Resource::default);
        let object = composite.resource.get_or_insert_with(Struct::default);
        if object.fields.get("status").is_none() {
            object.fields.insert("status".to_string(), Value::default());
        }
        let Some(entry) = object.fields.get_mut("status") else {
            return;
        };
        if !matches!(entry.kind, Some(Kind::StructValue(_))) {
            entry.kind = Some(Kind::StructValue(Struct::default()));
        }
        if let Some(Kind::StructValue(existing)) = &mut entry.kind {
            existing.fields.extend(status);
        }
    }

    /// Overrides the composite's readiness. Crossplane otherwise derives it
    /// from the composed resources alone, which would call the XR ready while
    /// packages are still held back behind their dependencies.
    pub fn set_composite_ready(&mut self, ready: bool) {
        let composite = self
            .desired()
            .composite
            .get_or_insert_with(Resource::default);
        composite.ready = ready_value(ready) as i32;
    }

    /// Adds or replaces one desired composed resource.
    pub fn set_desired_resource(&mut self, name: &str, resource: Map<String, Json>, ready: bool) {
        self.desired().resources.insert(
            name.to_string(),
            Resource {
                resource: Some(into_struct(resource)),
                connection_details: Default::default(),
                ready: ready_value(ready) as i32,
            },
        );
    }

    /// Asks Crossplane for one cluster-scoped resource by name, sent back
    /// under `requirement` in the next call's `required_resources`.
    /// Crossplane calls again until the requirements of two calls in a row
    /// are equal, so a call that reads it must ask for it again.
    pub fn require_resource(
        &mut self,
        requirement: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) {
        self.require_object(requirement, api_version, kind, name, None);
    }

    /// Asks Crossplane for one resource by name, in `namespace` when it is
    /// namespaced (see [`Response::require_resource`]).
    pub fn require_object(
        &mut self,
        requirement: &str,
        api_version: &str,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) {
        self.inner
            .requirements
            .get_or_insert_with(Requirements::default)
            .resources
            .insert(
                requirement.to_string(),
                ResourceSelector {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                    r#match: Some(Match::MatchName(name.to_string())),
                    namespace: namespace.map(str::to_string),
                },
            );
    }

    pub fn finish(self) -> RunFunctionResponse {
        self.inner
    }
}

fn ready_value(ready: bool) -> Ready {
    if ready { Ready::True } else { Ready::False }
}

/// `PackagesHealthy`, not `packages-healthy` or ``.
pub fn is_pascal_case(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::RequestMeta;
    use crate::sdk::structs::{json_to_struct, json_to_value, struct_to_json};
    use serde_json::json;

    fn request() -> RunFunctionRequest {
        let mut desired = State::default();
        desired.resources.insert(
            "from-earlier-step".to_string(),
            Resource {
                resource: json_to_struct(
                    &json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"n": 1}}),
                ),
                ..Default::default()
            },
        );
        desired.composite = Some(Resource {
            resource: json_to_struct(
                &json!({"apiVersion": "x/v1", "kind": "X", "status": {"kept": true}}),
            ),
            ..Default::default()
        });
        RunFunctionRequest {
            meta: Some(RequestMeta {
                tag: "abc".to_string(),
                capabilities: vec![],
            }),
            desired: Some(desired),
            ..Default::default()
        }
    }

    #[test]
    fn echoes_the_tag_and_passes_desired_through() {
        let req = request();
        let rsp = Response::to(&req).finish();
        assert_eq!(rsp.meta.as_ref().map(|m| m.tag.as_str()), Some("abc"));
        assert_eq!(rsp.desired, req.desired);
    }

    #[test]
    fn ttl_is_set() {
        let mut rsp = Response::to(&request());
        rsp.set_ttl(Duration::from_millis(1500));
        let ttl = rsp.finish().meta.and_then(|m| m.ttl).expect("ttl");
        assert_eq!((ttl.seconds, ttl.nanos), (1, 500_000_000));
    }

    #[test]
    fn composite_status_merges_and_touches_nothing_else() {
        let mut rsp = Response::to(&request());
        let packages = json_to_value(&json!([{"name": "a"}]));
        rsp.set_composite_status([("packages".to_string(), packages)]);
        let composite = rsp
            .finish()
            .desired
            .and_then(|d| d.composite)
            .and_then(|c| c.resource);
        assert_eq!(
            struct_to_json(&composite.expect("composite")),
            json!({"apiVersion": "x/v1", "kind": "X", "status": {"kept": true, "packages": [{"name": "a"}]}})
        );
    }

    #[test]
    fn results_and_conditions_are_well_formed() {
        let mut rsp = Response::to(&request());
        rsp.warning("RegistryUnavailable", "ECR did not answer");
        rsp.normal("Resolved", "3 packages");
        rsp.fatal("bad input");
        rsp.condition(
            "Resolved",
            ConditionStatus::False,
            "RegistryUnavailable",
            "ECR did not answer",
        );
        let out = rsp.finish();
        let severities: Vec<i32> = out.results.iter().map(|r| r.severity).collect();
        assert_eq!(
            severities,
            vec![
                Severity::Warning as i32,
                Severity::Normal as i32,
                Severity::Fatal as i32
            ]
        );
        assert_eq!(
            out.results[0].reason.as_deref(),
            Some("RegistryUnavailable")
        );
        let c = &out.conditions[0];
        assert_eq!(
            (c.r#type.as_str(), c.status, c.reason.as_str()),
            (
                "Resolved",
                Status::ConditionFalse as i32,
                "RegistryUnavailable"
            )
        );
    }

    #[test]
    fn pascal_case() {
        for (s, ok) in [
            ("Resolved", true),
            ("PackagesHealthy", true),
            ("", false),
            ("resolved", false),
            ("Not-Ok", false),
            ("With Space", false),
        ] {
            assert_eq!(is_pascal_case(s), ok, "{s:?}");
        }
    }

    #[test]
    fn desired_resources_carry_readiness() {
        let mut rsp = Response::to(&request());
        let mut obj = Map::new();
        obj.insert("kind".to_string(), json!("Provider"));
        rsp.set_desired_resource("package-a", obj, true);
        let out = rsp.finish();
        let desired = out.desired.expect("desired");
        assert_eq!(desired.resources.len(), 2, "earlier steps' resources stay");
        assert_eq!(desired.resources["package-a"].ready, Ready::True as i32);
    }
}

//! Read access to a RunFunctionRequest: as JSON, or typed straight from
//! its protobuf where the documents are large.

use std::collections::BTreeMap;

use crate::sdk::protobuf::value::Kind;
use crate::sdk::protobuf::{Struct, Value};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::de::ValueDeserializer;
use super::structs::{project, struct_to_json};
use crate::error::{Error, Result};
use crate::proto::v1::{Capability, RunFunctionRequest, credentials::Source};

/// A field-level decoding failure: where in the document, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Decodes JSON into `T`, reporting the dotted path of the first bad field
/// (`packages[1].kind`) rather than serde's position-free message.
pub fn decode<T: DeserializeOwned>(value: Json) -> std::result::Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| FieldError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// [`decode`] of a JSON document the caller keeps.
pub fn decode_ref<T: DeserializeOwned>(value: &Json) -> std::result::Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| FieldError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// [`decode`] of a protobuf Value, read as its JSON would be (see
/// [`super::de`]) without building that JSON.
pub fn decode_value<T: DeserializeOwned>(value: &Value) -> std::result::Result<T, FieldError> {
    serde_path_to_error::deserialize(ValueDeserializer(value)).map_err(|e| FieldError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

pub struct Request {
    inner: RunFunctionRequest,
}

/// What the function reads of the observed composite as JSON: its identity
/// and the small parts of the status it wrote (never `managedFields` or
/// labels). `spec` and `status.packages`, large in a large XR, are read
/// typed from the protobuf ([`Request::composite_value`]).
const COMPOSITE_PATHS: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "uid"],
    &["status", "quarantined"],
    &["status", "conditions"],
];

/// Whether the caller says it can send required resources (Crossplane v2
/// does; a caller that says nothing is never asked for any).
pub fn can_send_required_resources(request: &RunFunctionRequest) -> bool {
    request.meta.as_ref().is_some_and(|m| {
        m.capabilities
            .contains(&(Capability::RequiredResources as i32))
    })
}

/// A request from a caller that does, or does not, advertise required
/// resources; for tests.
#[cfg(test)]
pub(crate) fn request_from(can_send_required_resources: bool) -> RunFunctionRequest {
    RunFunctionRequest {
        meta: Some(crate::proto::v1::RequestMeta {
            tag: String::new(),
            capabilities: if can_send_required_resources {
                vec![Capability::RequiredResources as i32]
            } else {
                vec![]
            },
        }),
        ..Default::default()
    }
}

impl Request {
    pub fn new(inner: RunFunctionRequest) -> Self {
        Self { inner }
    }

    pub fn proto(&self) -> &RunFunctionRequest {
        &self.inner
    }

    /// The observed composite resource, which every reconcile must carry:
    /// the parts the function reads (`COMPOSITE_PATHS`).
    pub fn observed_composite(&self) -> Result<Json> {
        self.inner
            .observed
            .as_ref()
            .and_then(|s| s.composite.as_ref())
            .and_then(|c| c.resource.as_ref())
            .map(|s| project(s, COMPOSITE_PATHS))
            .ok_or_else(|| {
                Error::InvalidRequest("observed.composite.resource is missing".to_string())
            })
    }

    /// The value at `path` (keys from the top) of the observed composite,
    /// as the request holds it; `None` when a step is missing or not an
    /// object.
    pub fn composite_value(&self, path: &[&str]) -> Option<&Value> {
        let (last, steps) = path.split_last()?;
        let mut fields = &self
            .inner
            .observed
            .as_ref()?
            .composite
            .as_ref()?
            .resource
            .as_ref()?
            .fields;
        for step in steps {
            match &fields.get(*step)?.kind {
                Some(Kind::StructValue(inner)) => fields = &inner.fields,
                _ => return None,
            }
        }
        fields.get(*last)
    }

    /// Observed composed resources by their composition resource name, as
    /// the request holds them (see `function::observed` for what is read of them).
    pub fn observed_resources(&self) -> impl Iterator<Item = (&str, &Struct)> {
        self.inner
            .observed
            .iter()
            .flat_map(|s| &s.resources)
            .filter_map(|(name, r)| r.resource.as_ref().map(|s| (name.as_str(), s)))
    }

    /// The function input decoded into `T`; an absent input decodes from `{}`
    /// so that every field's default applies.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T> {
        let json = self
            .inner
            .input
            .as_ref()
            .map(struct_to_json)
            .unwrap_or_else(|| Json::Object(Default::default()));
        decode(json).map_err(|e| Error::InvalidInput {
            field: e.path,
            message: e.message,
        })
    }

    /// The credentials the pipeline step passed under `name`, if any.
    pub fn credentials(&self, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.inner
            .credentials
            .get(name)
            .and_then(|c| c.source.as_ref())
            .map(|Source::CredentialData(data)| &data.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{Resource, State};
    use crate::sdk::structs::{json_to_struct, value_to_json};
    use serde::Deserialize;
    use serde_json::json;

    fn request_with(composite: Option<Json>, input: Option<Json>) -> Request {
        Request::new(RunFunctionRequest {
            observed: Some(State {
                composite: composite.map(|c| Resource {
                    resource: json_to_struct(&c),
                    ..Default::default()
                }),
                resources: Default::default(),
            }),
            input: input.as_ref().and_then(json_to_struct),
            ..Default::default()
        })
    }

    /// Only what the function reads of the composite is converted: its
    /// identity (the uid names it as a controller), never managedFields or
    /// other status.
    #[test]
    fn the_composite_is_read_only_where_the_function_looks() {
        let full = json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": {"name": "p", "uid": "u", "generation": 3,
                         "managedFields": [{"manager": "crossplane", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"package": "x:v1", "revisionHistoryLimit": 1},
            "status": {"conditions": [{"type": "Healthy", "status": "True"}], "currentRevision": "p-1"}
        });
        let request = request_with(Some(full.clone()), None);
        let composite = request.observed_composite().expect("composite");
        assert_eq!(composite["metadata"], json!({"name": "p", "uid": "u"}));
        assert_eq!(composite.get("spec"), None, "spec is read typed");
        assert_eq!(
            composite["status"],
            json!({"conditions": full["status"]["conditions"]})
        );
        let spec = request.composite_value(&["spec"]).map(value_to_json);
        assert_eq!(spec.as_ref(), Some(&full["spec"]));
        let package = request.composite_value(&["spec", "package"]);
        assert_eq!(package.map(value_to_json), Some(json!("x:v1")));
        assert_eq!(request.composite_value(&["spec", "package", "x"]), None);
        assert_eq!(request.composite_value(&["status", "packages"]), None);
    }

    #[test]
    fn observed_resources_are_those_with_an_object() {
        let mut request = request_with(None, None).inner;
        if let Some(observed) = request.observed.as_mut() {
            for (name, object) in [("a", Some(json!({"kind": "A"}))), ("b", None)] {
                observed.resources.insert(
                    name.to_string(),
                    Resource {
                        resource: object.as_ref().and_then(json_to_struct),
                        ..Default::default()
                    },
                );
            }
        }
        let request = Request::new(request);
        let names: Vec<&str> = request.observed_resources().map(|(n, _)| n).collect();
        assert_eq!(names, ["a"]);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        count: u32,
    }

    #[test]
    fn input_errors_name_the_bad_field() {
        let cases = [
            (json!({"name": 3}), "name", "invalid type"),
            (
                json!({"items": [{"count": 1}, {"count": "x"}]}),
                "items[1].count",
                "invalid type",
            ),
            (
                json!({"items": [{"count": 1, "extra": 1}]}),
                "items[0].extra",
                "unknown field `extra`",
            ),
            (json!({"nmae": "x"}), "nmae", "unknown field `nmae`"),
        ];
        for (input, field, message) in cases {
            match request_with(None, Some(input.clone())).input::<Sample>() {
                Err(Error::InvalidInput {
                    field: f,
                    message: m,
                }) => {
                    assert_eq!(f, field, "{input}");
                    assert!(m.contains(message), "{input}: {m}");
                }
                other => panic!("{input}: expected InvalidInput, got {other:?}"),
            }
        }
    }

    #[test]
    fn absent_input_takes_defaults() {
        let parsed: Sample = request_with(None, None).input().expect("defaults");
        assert_eq!(
            parsed,
            Sample {
                name: String::new(),
                items: vec![]
            }
        );
    }

    #[test]
    fn absent_composite_is_an_error_not_a_panic() {
        let err = request_with(None, None).observed_composite().unwrap_err();
        assert!(
            err.to_string().contains("observed.composite.resource"),
            "{err}"
        );
        let empty = Request::new(RunFunctionRequest::default());
        assert!(empty.observed_composite().is_err());
        assert_eq!(empty.observed_resources().count(), 0);
    }
}

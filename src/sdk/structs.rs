//! Exact conversion between `google.protobuf.Struct` and `serde_json::Value`.
//!
//! protobuf has one number type (a double). Kubernetes objects are full of
//! integers (ports, replicas, generations), so whole numbers come back as JSON
//! integers; otherwise a round trip would turn `replicas: 1` into `1.0` and
//! every apply would look like a change.

use crate::sdk::protobuf::value::Kind;
use crate::sdk::protobuf::{ListValue, Struct, Value};
use serde_json::{Map, Number, Value as Json};

/// Largest magnitude at which every whole f64 is exactly an integer.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

pub fn struct_to_json(s: &Struct) -> Json {
    Json::Object(struct_to_map(s))
}

fn struct_to_map(s: &Struct) -> Map<String, Json> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

/// Converts only the fields at `paths` (each a list of keys from the top;
/// a path converts everything under its last key) and leaves the rest of
/// the Struct, such as `metadata.managedFields`, unread. A path that is not
/// there, or runs into something other than an object, is left out.
pub fn project(s: &Struct, paths: &[&[&str]]) -> Json {
    let mut out = Map::new();
    for (key, value) in &s.fields {
        let below: Vec<&[&str]> = paths
            .iter()
            .filter(|p| p.first() == Some(&key.as_str()))
            .map(|p| &p[1..])
            .collect();
        if below.is_empty() {
            continue;
        }
        if below.iter().any(|rest| rest.is_empty()) {
            out.insert(key.clone(), value_to_json(value));
        } else if let Some(Kind::StructValue(inner)) = &value.kind {
            out.insert(key.clone(), project(inner, &below));
        }
    }
    Json::Object(out)
}

pub fn value_to_json(v: &Value) -> Json {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(value_to_json).collect()),
    }
}

fn number_to_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        // The range check above makes the cast exact.
        return Json::Number(Number::from(n as i64));
    }
    // NaN and infinities have no JSON form; Kubernetes would reject them too.
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

/// Converts a JSON object to a Struct; `None` for anything else, since a
/// Struct can only hold an object.
pub fn json_to_struct(j: &Json) -> Option<Struct> {
    match j {
        Json::Object(map) => Some(into_struct(map.clone())),
        _ => None,
    }
}

pub fn json_to_value(j: &Json) -> Value {
    into_value(j.clone())
}

/// Converts a JSON object to a Struct, moving its keys and strings rather
/// than copying them.
pub fn into_struct(map: Map<String, Json>) -> Struct {
    Struct {
        fields: map.into_iter().map(|(k, v)| (k, into_value(v))).collect(),
    }
}

fn into_value(j: Json) -> Value {
    let kind = match j {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(into_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(into_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// The string at `path` (keys from the top) of a Struct, if every step is
/// there and the last is a string.
pub fn str_at<'a>(object: &'a Struct, path: &[&str]) -> Option<&'a str> {
    let (last, steps) = path.split_last()?;
    let mut fields = &object.fields;
    for step in steps {
        match &fields.get(*step)?.kind {
            Some(Kind::StructValue(inner)) => fields = &inner.fields,
            _ => return None,
        }
    }
    as_str(fields.get(*last)?)
}

/// The strings of the list at `path` (keys from the top) of a Struct;
/// nothing when a step is missing, and only the items that are strings.
pub fn strings_at<'a>(object: &'a Struct, path: &[&str]) -> Vec<&'a str> {
    let Some((last, steps)) = path.split_last() else {
        return Vec::new();
    };
    let mut fields = &object.fields;
    for step in steps {
        match fields.get(*step).and_then(|v| v.kind.as_ref()) {
            Some(Kind::StructValue(inner)) => fields = &inner.fields,
            _ => return Vec::new(),
        }
    }
    match fields.get(*last).and_then(|v| v.kind.as_ref()) {
        Some(Kind::ListValue(list)) => list.values.iter().filter_map(as_str).collect(),
        _ => Vec::new(),
    }
}

/// The string a Value holds, if it holds one.
pub fn as_str(value: &Value) -> Option<&str> {
    match &value.kind {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// A string as a protobuf Value.
pub fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

pub fn bool_value(b: bool) -> Value {
    Value {
        kind: Some(Kind::BoolValue(b)),
    }
}

pub fn list_value(values: Vec<Value>) -> Value {
    Value {
        kind: Some(Kind::ListValue(ListValue { values })),
    }
}

/// An object as a protobuf Value, from its fields.
pub fn object_value<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projections_convert_only_the_paths_asked_for() {
        let object = json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": {"name": "p", "uid": "u", "managedFields": [{"manager": "crossplane"}],
                         "annotations": {"crossplane.io/external-name": "e", "other": "o"}},
            "spec": {"package": "x", "n": 1},
            "status": {"conditions": [{"type": "Healthy"}], "resolvedPackage": "y"}
        });
        let s = json_to_struct(&object).expect("an object");
        let paths: &[&[&str]] = &[
            &["apiVersion"],
            &["metadata", "name"],
            &["metadata", "annotations", "crossplane.io/external-name"],
            &["spec"],
            &["status", "conditions"],
            &["kind", "deeper"],
            &["absent"],
        ];
        assert_eq!(
            project(&s, paths),
            json!({
                "apiVersion": "pkg.crossplane.io/v1",
                "metadata": {"name": "p", "annotations": {"crossplane.io/external-name": "e"}},
                "spec": {"package": "x", "n": 1},
                "status": {"conditions": [{"type": "Healthy"}]}
            })
        );
        assert_eq!(project(&s, &[]), json!({}));
        assert_eq!(project(&s, &[&[]]), json!({}));
    }

    #[test]
    fn round_trips_are_exact() {
        let cases = [
            json!({}),
            json!({"a": 1, "b": -7, "c": 0}),
            json!({"ratio": 0.5, "neg": -2.25}),
            json!({"big": 9_007_199_254_740_992_i64, "bigneg": -9_007_199_254_740_992_i64}),
            json!({"nested": {"list": [1, "two", null, true, [false, {"x": [[]]}]]}}),
            json!({"null": null, "t": true, "f": false, "s": ""}),
            json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                   "metadata": {"name": "p", "generation": 3},
                   "spec": {"package": "xpkg.upbound.io/upbound/provider-aws-s3:v2.2.0"}}),
        ];
        for case in cases {
            let s = json_to_struct(&case).expect("object");
            assert_eq!(struct_to_json(&s), case);
        }
    }

    #[test]
    fn whole_numbers_come_back_as_integers() {
        let s = json_to_struct(&json!({"n": 3.0})).expect("object");
        let back = struct_to_json(&s);
        assert!(back["n"].is_i64(), "{back}");
        assert_eq!(back["n"], json!(3));
    }

    #[test]
    fn numbers_without_a_json_form_become_null() {
        for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let v = Value {
                kind: Some(Kind::NumberValue(n)),
            };
            assert_eq!(value_to_json(&v), Json::Null);
        }
    }

    #[test]
    fn an_unset_kind_is_null() {
        assert_eq!(value_to_json(&Value { kind: None }), Json::Null);
    }

    #[test]
    fn non_objects_are_not_structs() {
        for j in [json!(1), json!("s"), json!([1]), json!(null)] {
            assert!(json_to_struct(&j).is_none(), "{j}");
        }
    }
}

//! Typed values read straight from a protobuf `Value` with serde, exactly
//! as they would be read from the JSON [`super::structs::value_to_json`]
//! makes of it (serde_json's `&Value` deserializer, mirrored): the same
//! visits, the same numbers (a whole number within 2^53 is an integer,
//! NaN and infinities are null), the same error messages. Reading a large
//! spec or status this way skips building the JSON tree in between.

use super::protobuf;
use super::protobuf::value::Kind;
use super::protobuf::{Struct, Value};
use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{
    DeserializeSeed, EnumAccess, Error as _, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::{Deserialize, Deserializer};
// serde_json's own error, so that messages read exactly as its (`null`,
// its float format).
use serde_json::Error;

/// Largest magnitude at which every whole f64 is exactly an integer.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// A serde deserializer over one protobuf `Value`.
#[derive(Clone, Copy, Debug)]
pub struct ValueDeserializer<'de>(pub &'de Value);

/// What a Value holds, as its JSON form would.
enum Shape<'de> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(&'de str),
    Seq(&'de [Value]),
    Map(&'de Struct),
}

impl<'de> ValueDeserializer<'de> {
    fn shape(self) -> Shape<'de> {
        match &self.0.kind {
            None | Some(Kind::NullValue(_)) => Shape::Null,
            Some(Kind::BoolValue(b)) => Shape::Bool(*b),
            Some(Kind::StringValue(s)) => Shape::Str(s),
            Some(Kind::NumberValue(n)) => number(*n),
            Some(Kind::ListValue(l)) => Shape::Seq(&l.values),
            Some(Kind::StructValue(s)) => Shape::Map(s),
        }
    }

    fn invalid_type(self, expected: &dyn Expected) -> Error {
        let unexpected = match self.shape() {
            Shape::Null => Unexpected::Unit,
            Shape::Bool(b) => Unexpected::Bool(b),
            Shape::Unsigned(u) => Unexpected::Unsigned(u),
            Shape::Signed(i) => Unexpected::Signed(i),
            Shape::Float(f) => Unexpected::Float(f),
            Shape::Str(s) => Unexpected::Str(s),
            Shape::Seq(_) => Unexpected::Seq,
            Shape::Map(_) => Unexpected::Map,
        };
        Error::invalid_type(unexpected, expected)
    }

    fn number<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Unsigned(u) => visitor.visit_u64(u),
            Shape::Signed(i) => visitor.visit_i64(i),
            Shape::Float(f) => visitor.visit_f64(f),
            _ => Err(self.invalid_type(&visitor)),
        }
    }
}

/// A number as `number_to_json` converts it.
fn number<'de>(n: f64) -> Shape<'de> {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        // The range check above makes the cast exact.
        let whole = n as i64;
        return match u64::try_from(whole) {
            Ok(u) => Shape::Unsigned(u),
            Err(_) => Shape::Signed(whole),
        };
    }
    if n.is_finite() {
        Shape::Float(n)
    } else {
        Shape::Null
    }
}

fn visit_seq<'de, V: Visitor<'de>>(values: &'de [Value], visitor: V) -> Result<V::Value, Error> {
    let len = values.len();
    let mut seq = Seq {
        iter: values.iter(),
    };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 {
        Ok(out)
    } else {
        Err(Error::invalid_length(len, &"fewer elements in array"))
    }
}

fn visit_map<'de, V: Visitor<'de>>(object: &'de Struct, visitor: V) -> Result<V::Value, Error> {
    // One look for repeated keys, not one for the length and one to iterate.
    let iter = object.fields.iter();
    let len = iter.len();
    let mut map = Map { iter, value: None };
    let out = visitor.visit_map(&mut map)?;
    if map.iter.len() == 0 {
        Ok(out)
    } else {
        Err(Error::invalid_length(len, &"fewer elements in map"))
    }
}

macro_rules! numbers {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.number(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Null => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::Unsigned(u) => visitor.visit_u64(u),
            Shape::Signed(i) => visitor.visit_i64(i),
            Shape::Float(f) => visitor.visit_f64(f),
            Shape::Str(s) => visitor.visit_borrowed_str(s),
            Shape::Seq(values) => visit_seq(values, visitor),
            Shape::Map(object) => visit_map(object, visitor),
        }
    }

    numbers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Str(variant) => visitor.visit_enum(Enum {
                variant,
                value: None,
            }),
            Shape::Map(object) => {
                let mut fields = object.fields.iter();
                match (fields.next(), fields.next()) {
                    (Some((variant, value)), None) => visitor.visit_enum(Enum {
                        variant,
                        value: Some(value),
                    }),
                    _ => Err(Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Str(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Str(s) => visitor.visit_borrowed_str(s),
            Shape::Seq(values) => visit_seq(values, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Null => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Seq(values) => visit_seq(values, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Map(object) => visit_map(object, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Seq(values) => visit_seq(values, visitor),
            Shape::Map(object) => visit_map(object, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Seq<'de> {
    iter: std::slice::Iter<'de, Value>,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => seed.deserialize(ValueDeserializer(value)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Map<'de> {
    iter: protobuf::Iter<'de>,
    value: Option<&'de Value>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(ValueDeserializer(value)),
            None => Err(Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum variant by name, with the value of a single-key map.
struct Enum<'de> {
    variant: &'de str,
    value: Option<&'de Value>,
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Variant<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Variant<'de>), Error> {
        let variant: StrDeserializer<'_, Error> = self.variant.into_deserializer();
        let value = seed.deserialize(variant)?;
        Ok((value, Variant { value: self.value }))
    }
}

struct Variant<'de> {
    value: Option<&'de Value>,
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(value) => <()>::deserialize(ValueDeserializer(value)),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(ValueDeserializer(value)),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value.map(|v| ValueDeserializer(v).shape()) {
            Some(Shape::Seq([])) => visitor.visit_unit(),
            Some(Shape::Seq(values)) => visit_seq(values, visitor),
            Some(_) => Err(self.invalid(&"tuple variant")),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value.map(|v| ValueDeserializer(v).shape()) {
            Some(Shape::Map(object)) => visit_map(object, visitor),
            Some(_) => Err(self.invalid(&"struct variant")),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

impl Variant<'_> {
    fn invalid(&self, expected: &dyn Expected) -> Error {
        match self.value {
            Some(value) => ValueDeserializer(value).invalid_type(expected),
            None => Error::invalid_type(Unexpected::UnitVariant, expected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::structs::{json_to_value, value_to_json};
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Sample {
        name: String,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        offset: Option<i64>,
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        kind: Option<Kind2>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        anything: Option<Json>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: u8,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Kind2 {
        Provider,
        #[serde(rename = "IRSA")]
        Irsa,
    }

    /// Reading the Value and reading its JSON agree on every document,
    /// good or bad, down to the error message and the path it names.
    #[test]
    fn reads_as_the_json_of_the_value_reads() {
        let cases = [
            json!({"name": "a"}),
            json!({"name": "a", "count": 3, "ratio": 0.5, "offset": -4, "flag": true,
                   "kind": "IRSA", "items": [{"id": 1}, {"id": 2}], "labels": {"x": "y"},
                   "anything": {"deep": [1, 2.5, null, "s", {"k": false}]}}),
            json!({"name": "a", "ratio": 2}),
            json!({"name": 3}),
            json!({"name": "a", "count": -1}),
            json!({"name": "a", "count": 1.5}),
            json!({"name": "a", "count": 4294967296_u64}),
            json!({"name": "a", "items": [{"id": 300}]}),
            json!({"name": "a", "items": [{"id": 1, "extra": 1}]}),
            json!({"name": "a", "items": {"id": 1}}),
            json!({"name": "a", "kind": "Nope"}),
            json!({"name": "a", "kind": {"Provider": null}}),
            json!({"name": "a", "kind": {"Provider": 1}}),
            json!({"name": "a", "kind": {"Provider": null, "IRSA": null}}),
            json!({"name": "a", "kind": 1}),
            json!({"name": "a", "flag": "yes"}),
            json!({"name": "a", "labels": {"x": 1}}),
            json!({"name": null}),
            json!({"count": 1}),
            json!({"name": "a", "typo": 1}),
            json!(["a"]),
            json!("a"),
        ];
        for case in cases {
            let value = json_to_value(&case);
            let via_json = crate::sdk::request::decode::<Sample>(value_to_json(&value));
            let direct = crate::sdk::request::decode_value::<Sample>(&value);
            assert_eq!(direct, via_json, "{case}");
        }
    }

    #[test]
    fn numbers_read_as_their_json_does() {
        for n in [
            0.0,
            1.0,
            -1.0,
            1.5,
            -2.5,
            9_007_199_254_740_993.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            let value = Value {
                kind: Some(Kind::NumberValue(n)),
            };
            let direct = Json::deserialize(ValueDeserializer(&value)).expect("any number");
            assert_eq!(direct, value_to_json(&value), "{n}");
        }
    }

    /// Any JSON document, its keys mostly `Sample`'s, nested a few deep.
    fn any_document() -> impl Strategy<Value = Json> {
        let keys = prop::sample::select(vec![
            "name", "count", "ratio", "offset", "flag", "kind", "items", "labels", "anything",
            "id", "x", "Provider", "IRSA",
        ]);
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<f64>().prop_map(|f| json!(f)),
            any::<i64>().prop_map(|i| json!(i)),
            (0u64..300).prop_map(|u| json!(u)),
            "\\PC{0,8}".prop_map(Json::String),
            prop::sample::select(vec!["a", "IRSA", "Provider"]).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
                prop::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..6)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Reading a Value and reading its JSON agree on any document:
        /// the typed result or the error and its path, and the JSON read
        /// back.
        #[test]
        fn any_document_reads_as_its_json_does(document in any_document()) {
            let value = json_to_value(&document);
            let json = value_to_json(&value);
            prop_assert_eq!(
                crate::sdk::request::decode_value::<Sample>(&value),
                crate::sdk::request::decode::<Sample>(json.clone())
            );
            prop_assert_eq!(Json::deserialize(ValueDeserializer(&value)).ok(), Some(json));
        }
    }
}

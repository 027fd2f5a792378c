//! `google.protobuf.Struct`, `Value` and `ListValue`, wire-compatible with
//! prost_types' but with a Struct's fields kept as a list of entries
//! ([`Fields`]) rather than a `BTreeMap`: a request carries thousands of
//! small objects, and decoding each into B-tree nodes, comparing keys on
//! every insert and freeing the nodes again cost more than reading them.
//!
//! A protobuf map is a repeated `{1: key, 2: value}` message on the wire,
//! and when a key repeats the last entry wins. Decoding keeps every entry
//! as sent (it cannot tell where a Struct ends, so it cannot dedupe there);
//! every read of [`Fields`] gives the last entry for a key and hides the
//! ones before it, in linear time however many keys a sender packs in.
//! Encoding writes the entries as they are stored, duplicates included,
//! which any reader takes as the same map.
//!
//! Objects built here ([`Fields`]' `FromIterator`) are sorted by key, as the
//! `BTreeMap` sorted them, so the same answer is the same bytes.

// Hashed over every key of a large struct: foldhash, not SipHash.
use foldhash::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

/// `google.protobuf.Value`: one JSON value.
#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(oneof = "value::Kind", tags = "1, 2, 3, 4, 5, 6")]
    pub kind: Option<value::Kind>,
}

/// What a [`Value`] holds, as prost_types names it.
pub mod value {
    /// The kinds of a JSON value; an unset kind reads as null.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(enumeration = "super::NullValue", tag = "1")]
        NullValue(i32),
        #[prost(double, tag = "2")]
        NumberValue(f64),
        #[prost(string, tag = "3")]
        StringValue(String),
        #[prost(bool, tag = "4")]
        BoolValue(bool),
        #[prost(message, tag = "5")]
        StructValue(crate::sdk::protobuf::Struct),
        #[prost(message, tag = "6")]
        ListValue(crate::sdk::protobuf::ListValue),
    }
}

/// `google.protobuf.ListValue`: a JSON array.
#[derive(Clone, PartialEq, Message)]
pub struct ListValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<Value>,
}

/// `google.protobuf.NullValue`: JSON's null.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum NullValue {
    NullValue = 0,
}

/// `google.protobuf.Struct`: a JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Struct {
    pub fields: Fields,
}

/// One map entry as the wire carries it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Entry {
    key: String,
    value: Value,
}

/// A Struct's fields: at most one value per key as read (the last one
/// sent wins), in the order they were decoded or, when built here, sorted.
#[derive(Default)]
pub struct Fields {
    entries: Vec<Entry>,
    /// The encoded length of these fields once asked, [`UNSIZED`] until
    /// then and again after any change (see [`Fields::entries_mut`]).
    size: Size,
}

/// A cached encoded length. prost asks a nested message for its length
/// once per enclosing level (to write each length prefix), so without it
/// encoding an object costs its depth times its size; Go's protobuf keeps
/// the same cache (`sizecache`) for the same reason.
struct Size(AtomicUsize);

/// No length cached.
const UNSIZED: usize = usize::MAX;

impl Default for Size {
    fn default() -> Self {
        Self(AtomicUsize::new(UNSIZED))
    }
}

impl Clone for Fields {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            // The same entries have the same length.
            size: Size(AtomicUsize::new(self.size.0.load(Ordering::Relaxed))),
        }
    }
}

/// Up to this many entries, finding repeated keys compares every pair;
/// beyond it, a hash set does it in linear time.
const PAIRWISE: usize = 8;

impl Fields {
    /// The entries, to change: forgets the cached length. Every change goes
    /// through here, and a change deeper down needs `&mut` to each
    /// enclosing `Fields` first, so no cached length outlives its content.
    fn entries_mut(&mut self) -> &mut Vec<Entry> {
        *self.size.0.get_mut() = UNSIZED;
        &mut self.entries
    }

    /// The encoded length of these fields as one Struct's field 1, computed
    /// once until they change.
    fn encoded_len(&self) -> usize {
        match self.size.0.load(Ordering::Relaxed) {
            UNSIZED => {
                let len = prost::encoding::message::encoded_len_repeated(1, &self.entries);
                self.size.0.store(len, Ordering::Relaxed);
                len
            }
            len => len,
        }
    }

    /// The value of `key`: the last one sent for it.
    pub fn get<K: AsRef<str> + ?Sized>(&self, key: &K) -> Option<&Value> {
        let key = key.as_ref();
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut<K: AsRef<str> + ?Sized>(&mut self, key: &K) -> Option<&mut Value> {
        let key = key.as_ref();
        self.entries_mut()
            .iter_mut()
            .rev()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    pub fn contains_key<K: AsRef<str> + ?Sized>(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the value it replaces. A new key
    /// goes last.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries_mut().push(Entry { key, value });
                None
            }
        }
    }

    /// Removes `key` and every earlier entry it hid, returning its value.
    pub fn remove<K: AsRef<str> + ?Sized>(&mut self, key: &K) -> Option<Value> {
        let key = key.as_ref();
        let last = self.entries.iter().rposition(|e| e.key == key)?;
        let entries = self.entries_mut();
        let removed = entries.remove(last);
        entries.retain(|e| e.key != key);
        Some(removed.value)
    }

    /// How many keys there are, each counted once.
    pub fn len(&self) -> usize {
        match shadowed(&self.entries) {
            Some(mask) => mask.iter().filter(|hidden| !**hidden).count(),
            None => self.entries.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each key once, with its winning value, in stored order.
    pub fn iter(&self) -> Iter<'_> {
        let shadowed = shadowed(&self.entries);
        let remaining = match &shadowed {
            Some(mask) => mask.iter().filter(|hidden| !**hidden).count(),
            None => self.entries.len(),
        };
        Iter {
            entries: self.entries.iter().enumerate(),
            shadowed,
            remaining,
        }
    }
}

/// Which entries a later entry with the same key hides; `None` when no
/// key repeats (always so for objects built here).
fn shadowed(entries: &[Entry]) -> Option<Vec<bool>> {
    let n = entries.len();
    if entries.windows(2).all(|pair| pair[0].key < pair[1].key) {
        return None;
    }
    if n <= PAIRWISE {
        let mut mask: Option<Vec<bool>> = None;
        for (i, entry) in entries.iter().enumerate() {
            if entries[i + 1..].iter().any(|later| later.key == entry.key) {
                mask.get_or_insert_with(|| vec![false; n])[i] = true;
            }
        }
        return mask;
    }
    let mut last: HashMap<&str, usize> = HashMap::with_capacity_and_hasher(n, Default::default());
    for (i, entry) in entries.iter().enumerate() {
        last.insert(&entry.key, i);
    }
    (last.len() != n).then(|| {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| last.get(e.key.as_str()) != Some(&i))
            .collect()
    })
}

/// The fields of a [`Fields`], each key once (see [`Fields::iter`]).
pub struct Iter<'a> {
    entries: std::iter::Enumerate<std::slice::Iter<'a, Entry>>,
    shadowed: Option<Vec<bool>>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        for (i, entry) in self.entries.by_ref() {
            if !is_hidden(self.shadowed.as_deref(), i) {
                self.remaining = self.remaining.saturating_sub(1);
                return Some((&entry.key, &entry.value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Fields {
    type Item = (String, Value);
    type IntoIter = IntoIter;

    /// Each key once, with its winning value, in stored order.
    fn into_iter(self) -> IntoIter {
        let shadowed = shadowed(&self.entries);
        IntoIter {
            entries: self.entries.into_iter().enumerate(),
            shadowed,
        }
    }
}

/// The fields of a [`Fields`] it is taken apart into, each key once.
pub struct IntoIter {
    entries: std::iter::Enumerate<std::vec::IntoIter<Entry>>,
    shadowed: Option<Vec<bool>>,
}

impl Iterator for IntoIter {
    type Item = (String, Value);

    fn next(&mut self) -> Option<Self::Item> {
        for (i, entry) in self.entries.by_ref() {
            if !is_hidden(self.shadowed.as_deref(), i) {
                return Some((entry.key, entry.value));
            }
        }
        None
    }
}

fn is_hidden(shadowed: Option<&[bool]>, i: usize) -> bool {
    shadowed.is_some_and(|mask| mask.get(i).copied().unwrap_or(false))
}

/// Sorted by key, the last value for a repeated key kept: what collecting
/// into a `BTreeMap` gave, so built objects encode the same bytes.
impl FromIterator<(String, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut entries: Vec<Entry> = iter
            .into_iter()
            .map(|(key, value)| Entry { key, value })
            .collect();
        if !entries.is_sorted_by(|a, b| a.key < b.key) {
            // Stable: among equal keys the last sent stays last.
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            let mut deduped: Vec<Entry> = Vec::with_capacity(entries.len());
            for entry in entries {
                match deduped.last_mut() {
                    Some(previous) if previous.key == entry.key => *previous = entry,
                    _ => deduped.push(entry),
                }
            }
            entries = deduped;
        }
        Self {
            entries,
            size: Size::default(),
        }
    }
}

/// Inserts each in turn, as [`Fields::insert`] does.
impl Extend<(String, Value)> for Fields {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

/// Equal when they read the same: the same keys with the same winning
/// values, in any order.
impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        if self.entries == other.entries {
            return true;
        }
        if self.len() != other.len() {
            return false;
        }
        let theirs: HashMap<&String, &Value> = other.iter().collect();
        self.iter().all(|(k, v)| theirs.get(k) == Some(&v))
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Message for Entry {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        // As prost writes a map entry: a default key or value is left out.
        if !self.key.is_empty() {
            prost::encoding::string::encode(1, &self.key, buf);
        }
        if self.value.kind.is_some() {
            prost::encoding::message::encode(2, &self.value, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => prost::encoding::string::merge(wire_type, &mut self.key, buf, ctx),
            2 => prost::encoding::message::merge(wire_type, &mut self.value, buf, ctx),
            _ => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let key = if self.key.is_empty() {
            0
        } else {
            prost::encoding::string::encoded_len(1, &self.key)
        };
        let value = if self.value.kind.is_some() {
            prost::encoding::message::encoded_len(2, &self.value)
        } else {
            0
        };
        key + value
    }

    fn clear(&mut self) {
        self.key.clear();
        self.value.clear();
    }
}

impl Message for Struct {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        prost::encoding::message::encode_repeated(1, &self.fields.entries, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => prost::encoding::message::merge_repeated(
                wire_type,
                self.fields.entries_mut(),
                buf,
                ctx,
            ),
            _ => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.fields.encoded_len()
    }

    fn clear(&mut self) {
        self.fields.entries_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::value::Kind;
    use super::*;
    use crate::sdk::structs::{json_to_struct, struct_to_json};
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    fn ours(document: &Json) -> Struct {
        json_to_struct(document).expect("an object")
    }

    /// prost_types' reading of `bytes`, written back: sorted, deduped.
    fn through_prost_types(bytes: &[u8]) -> Vec<u8> {
        prost_types::Struct::decode(bytes)
            .expect("prost_types reads it")
            .encode_to_vec()
    }

    fn documents() -> Vec<Json> {
        vec![
            json!({}),
            json!({"": "empty key", "b": null, "a": ""}),
            json!({"n": 1, "f": -2.5, "t": true, "f2": false, "s": "x", "z": null}),
            json!({"list": [1, "two", null, [], {}, [{"deep": {"er": [true]}}]]}),
            json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                   "metadata": {"name": "p", "annotations": {"a/b": "c"}, "generation": 3},
                   "spec": {"package": "x:v1"},
                   "status": {"conditions": [{"type": "Healthy", "status": "True"}]}}),
        ]
    }

    /// The bytes ours writes are the bytes prost_types writes for the same
    /// object, and each reads the other's back to the same JSON.
    #[test]
    fn reads_and_writes_as_prost_types_does() {
        for document in documents() {
            let bytes = ours(&document).encode_to_vec();
            let theirs = through_prost_types(&bytes);
            assert_eq!(bytes, theirs, "{document}");
            let back = Struct::decode(theirs.as_slice()).expect("ours reads it");
            assert_eq!(struct_to_json(&back), document);
        }
    }

    /// Two objects on the wire one after the other are one object, the
    /// later one's value winning for a key both have; every read agrees.
    #[test]
    fn the_last_entry_for_a_key_wins() {
        let first = ours(&json!({"a": 1, "b": {"x": 1}, "c": 3}));
        let second = ours(&json!({"b": "two", "a": 10}));
        let mut bytes = first.encode_to_vec();
        bytes.extend(second.encode_to_vec());
        let merged = Struct::decode(bytes.as_slice()).expect("reads");
        let expected = json!({"a": 10, "b": "two", "c": 3});
        assert_eq!(struct_to_json(&merged), expected);
        assert_eq!(merged.fields.len(), 3);
        assert_eq!(merged.fields.iter().len(), 3);
        let keys: Vec<&str> = merged.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["c", "a", "b"],
            "stored order, earlier entries hidden"
        );
        assert_eq!(
            merged.fields.get("a"),
            ours(&json!({"a": 10})).fields.get("a")
        );
        assert_eq!(merged, ours(&expected), "equal as maps");
        assert_eq!(
            Struct::decode(through_prost_types(&bytes).as_slice()).expect("reads"),
            merged
        );
        let owned: Fields = merged.fields.clone().into_iter().collect();
        assert_eq!(owned, ours(&expected).fields);

        let mut removed = merged.clone();
        assert_eq!(
            removed.fields.remove("a").and_then(|v| v.kind),
            Some(Kind::NumberValue(10.0))
        );
        assert_eq!(removed.fields.get("a"), None, "no earlier entry shows");
        assert_eq!(removed.fields.len(), 2);

        let mut replaced = merged;
        let old = replaced.fields.insert("b".into(), Value::default());
        assert_eq!(
            old.and_then(|v| v.kind),
            Some(Kind::StringValue("two".into()))
        );
        assert_eq!(replaced.fields.get("b"), Some(&Value::default()));
        assert_eq!(replaced.fields.len(), 3);
    }

    /// A serde read of an object with a repeated key sees the key once, as
    /// it would in the JSON.
    #[test]
    fn serde_reads_see_each_key_once() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Named {
            name: String,
        }
        let mut bytes = ours(&json!({"name": "a"})).encode_to_vec();
        bytes.extend(ours(&json!({"name": "b"})).encode_to_vec());
        let value = Value {
            kind: Some(Kind::StructValue(
                Struct::decode(bytes.as_slice()).expect("reads"),
            )),
        };
        let read = crate::sdk::request::decode_value::<Named>(&value);
        assert_eq!(read, Ok(Named { name: "b".into() }));
    }

    /// Many keys, many repeated: every read stays linear (this would take
    /// minutes if one were quadratic).
    #[test]
    fn many_repeated_keys_read_in_linear_time() {
        let n = 100_000;
        let fields = Fields {
            entries: (0..n)
                .map(|i| Entry {
                    key: format!("k{}", i % (n / 2)),
                    value: Value {
                        kind: Some(Kind::NumberValue(f64::from(i))),
                    },
                })
                .collect(),
            size: Size::default(),
        };
        let object = Struct { fields };
        assert_eq!(object.fields.len(), n as usize / 2);
        let json = struct_to_json(&object);
        assert_eq!(json["k0"], json!(n / 2));
        let rebuilt: Fields = object.fields.clone().into_iter().collect();
        assert_eq!(rebuilt.len(), n as usize / 2);
        assert_eq!(rebuilt, object.fields);
    }

    /// The encoding of `object` as one built afresh from its JSON, with no
    /// cached length in it, would be.
    fn encodes_as_built_afresh(object: &Struct, step: &str) {
        let afresh = ours(&struct_to_json(object));
        assert_eq!(object.encode_to_vec(), afresh.encode_to_vec(), "{step}");
        assert_eq!(object.encoded_len(), afresh.encoded_len(), "{step}");
    }

    /// A cached length never outlives the content it measured: every way
    /// to change a Struct, however deep, leaves it encoding the same bytes
    /// as a fresh copy, after its length was asked (and cached) before.
    #[test]
    fn cached_lengths_follow_every_change() {
        let document = json!({"metadata": {"name": "p", "labels": {"a": "b"}},
                              "spec": {"list": [{"deep": "x"}, "y"]}});
        let mut object = ours(&document);
        let nested = |object: &mut Struct, key: &str| -> Struct {
            match object.fields.get(key).and_then(|v| v.kind.clone()) {
                Some(Kind::StructValue(s)) => s,
                _ => panic!("{key} is an object"),
            }
        };
        encodes_as_built_afresh(&object, "as built");

        let text = |s: &str| Value {
            kind: Some(Kind::StringValue(s.to_string())),
        };
        // Two levels down, through get_mut.
        let _ = object.encoded_len();
        if let Some(Value {
            kind: Some(Kind::StructValue(metadata)),
        }) = object.fields.get_mut("metadata")
            && let Some(Value {
                kind: Some(Kind::StructValue(labels)),
            }) = metadata.fields.get_mut("labels")
        {
            labels.fields.insert("longer-label".into(), text("value"));
        }
        assert_eq!(nested(&mut object, "metadata").fields.len(), 2);
        encodes_as_built_afresh(&object, "a label inserted two levels down");

        // Inside a list inside an object.
        let _ = object.encoded_len();
        if let Some(Value {
            kind: Some(Kind::StructValue(spec)),
        }) = object.fields.get_mut("spec")
            && let Some(Value {
                kind: Some(Kind::ListValue(list)),
            }) = spec.fields.get_mut("list")
            && let Some(Value {
                kind: Some(Kind::StructValue(first)),
            }) = list.values.first_mut()
        {
            first
                .fields
                .insert("deep".into(), text("a much longer value than x"));
        }
        encodes_as_built_afresh(&object, "an object in a list changed");

        // Removed, replaced, cleared, and merged into.
        let _ = object.encoded_len();
        object.fields.remove("spec");
        encodes_as_built_afresh(&object, "a key removed");
        let _ = object.encoded_len();
        object.fields.insert("metadata".into(), text("flat"));
        encodes_as_built_afresh(&object, "a key replaced");
        let _ = object.encoded_len();
        let extra = ours(&json!({"more": {"x": 1}})).encode_to_vec();
        object.merge(extra.as_slice()).expect("merges");
        encodes_as_built_afresh(&object, "merged into");
        let _ = object.encoded_len();
        object.clear();
        encodes_as_built_afresh(&object, "cleared");
        let copy = object.clone();
        encodes_as_built_afresh(&copy, "a clone");
    }

    /// Nesting past prost's recursion limit is an error, not a crash.
    #[test]
    fn deep_nesting_is_refused() {
        let mut document = json!({});
        for _ in 0..200 {
            document = json!({ "a": document });
        }
        let bytes = ours(&document).encode_to_vec();
        assert!(Struct::decode(bytes.as_slice()).is_err());
        assert!(prost_types::Struct::decode(bytes.as_slice()).is_err());
    }

    #[test]
    fn built_objects_are_sorted_and_deduped() {
        let fields: Fields = [("b", 1.0), ("a", 2.0), ("b", 3.0)]
            .into_iter()
            .map(|(k, n)| {
                let value = Value {
                    kind: Some(Kind::NumberValue(n)),
                };
                (k.to_string(), value)
            })
            .collect();
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(fields.entries.len(), 2);
        assert_eq!(
            fields.get("b").and_then(|v| v.kind.clone()),
            Some(Kind::NumberValue(3.0))
        );
    }

    /// Any JSON object, nested a few deep, its keys often repeated.
    fn any_object() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            "\\PC{0,6}".prop_map(Json::String),
        ];
        let document = leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
                prop::collection::btree_map("[a-d]{0,2}", inner, 0..6)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-e]{0,2}", document, 0..8)
            .prop_map(|m| Json::Object(m.into_iter().collect()))
    }

    proptest! {
        /// Ours and prost_types write the same bytes for any object and
        /// read each other's; two objects merged read as prost_types reads
        /// them.
        #[test]
        fn any_object_is_wire_compatible(a in any_object(), b in any_object()) {
            let bytes = ours(&a).encode_to_vec();
            prop_assert_eq!(&through_prost_types(&bytes), &bytes);
            let back = Struct::decode(bytes.as_slice()).expect("reads");
            prop_assert_eq!(struct_to_json(&back), a.clone());

            let mut merged = bytes;
            merged.extend(ours(&b).encode_to_vec());
            let read = Struct::decode(merged.as_slice()).expect("reads");
            let theirs = Struct::decode(through_prost_types(&merged).as_slice()).expect("reads");
            prop_assert_eq!(struct_to_json(&read), struct_to_json(&theirs));
            prop_assert_eq!(read, theirs);
        }
    }
}

//! `package.yaml` as it streams: split into YAML documents, the first
//! `meta.pkg.crossplane.io` one kept, bounded in depth and size, and read
//! into [`PackageMeta`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::package::{Dependency, PackageKind, PackageMeta};
use crate::spec::limits::{self, check_len};

use super::invalid::{Invalid, Res, invalid};
use super::limits::{LayerLimits, META_GROUP, PACKAGE_FILE, SKIP_LINE_KEEP};

#[derive(PartialEq, Eq)]
pub(super) enum DocState {
    /// No top-level `apiVersion:` line seen yet: collect (bounded).
    Unknown,
    /// The document is a meta document: collect it all (bounded).
    Meta,
    /// Some other document: skip to the next separator.
    Other,
}

/// Splits package.yaml into documents as it streams and parses the first meta
/// document.
pub(super) struct MetaScanner {
    pub(super) limits: LayerLimits,
    pub(super) line: Vec<u8>,
    pub(super) line_len: usize,
    pub(super) doc: Vec<u8>,
    pub(super) state: DocState,
    pub(super) skipped_unknown: usize,
    pub(super) documents: usize,
}

impl MetaScanner {
    pub(super) fn new(limits: LayerLimits) -> Self {
        Self {
            limits,
            line: Vec::new(),
            line_len: 0,
            doc: Vec::new(),
            state: DocState::Unknown,
            skipped_unknown: 0,
            documents: 0,
        }
    }

    pub(super) fn line_keep(&self) -> usize {
        match self.state {
            DocState::Other => SKIP_LINE_KEEP,
            _ => self.limits.max_meta_document_bytes + 1,
        }
    }

    /// Feeds file bytes; `Some` once the meta document is found.
    pub(super) fn push(&mut self, mut data: &[u8]) -> Res<Option<PackageMeta>> {
        while !data.is_empty() {
            let (part, complete) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], true),
                None => (data, false),
            };
            data = if complete {
                &data[part.len() + 1..]
            } else {
                &[]
            };
            let keep = self
                .line_keep()
                .saturating_sub(self.line.len())
                .min(part.len());
            self.line.extend_from_slice(&part[..keep]);
            self.line_len += part.len();
            if complete {
                let line = std::mem::take(&mut self.line);
                let len = std::mem::replace(&mut self.line_len, 0);
                if let Some(found) = self.on_line(&line, len)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// End of package.yaml.
    pub(super) fn finish(mut self) -> Res<PackageMeta> {
        if self.line_len > 0 {
            let line = std::mem::take(&mut self.line);
            let len = self.line_len;
            if let Some(found) = self.on_line(&line, len)? {
                return Ok(found);
            }
        }
        if let Some(found) = self.end_document()? {
            return Ok(found);
        }
        let mut msg = format!(
            "{PACKAGE_FILE} has no {META_GROUP}* document ({} documents read)",
            self.documents
        );
        if self.skipped_unknown > 0 {
            msg.push_str(&format!(
                "; {} document(s) without a leading apiVersion line were larger than {} bytes and skipped",
                self.skipped_unknown, self.limits.max_meta_document_bytes
            ));
        }
        invalid(msg)
    }

    pub(super) fn on_line(&mut self, line: &[u8], len: usize) -> Res<Option<PackageMeta>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = marker(line, b"---") {
            let found = self.end_document()?;
            if found.is_some() {
                return Ok(found);
            }
            if !rest.is_empty() {
                return self.doc_line(rest, rest.len());
            }
            return Ok(None);
        }
        if marker(line, b"...").is_some() {
            let found = self.end_document()?;
            // Content after "..." would be a comment; the next document
            // starts on the next line.
            return Ok(found);
        }
        self.doc_line(line, len)
    }

    pub(super) fn doc_line(&mut self, line: &[u8], len: usize) -> Res<Option<PackageMeta>> {
        if self.state == DocState::Other {
            return Ok(None);
        }
        if self.state == DocState::Unknown
            && let Some(value) = line.strip_prefix(b"apiVersion:")
        {
            let value = String::from_utf8_lossy(value);
            let value = value.split(" #").next().unwrap_or("").trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            if value.starts_with(META_GROUP) {
                self.state = DocState::Meta;
            } else {
                self.state = DocState::Other;
                self.doc = Vec::new();
                return Ok(None);
            }
        }
        if self.doc.len() + len + 1 > self.limits.max_meta_document_bytes {
            if self.state == DocState::Meta {
                return invalid(format!(
                    "the {META_GROUP}* document of {PACKAGE_FILE} is larger than {} bytes",
                    self.limits.max_meta_document_bytes
                ));
            }
            self.skipped_unknown += 1;
            self.state = DocState::Other;
            self.doc = Vec::new();
            return Ok(None);
        }
        self.doc.extend_from_slice(line);
        self.doc.push(b'\n');
        Ok(None)
    }

    /// A document ended: parse it if it may be the meta document.
    pub(super) fn end_document(&mut self) -> Res<Option<PackageMeta>> {
        let doc = std::mem::take(&mut self.doc);
        let state = std::mem::replace(&mut self.state, DocState::Unknown);
        let blank = doc.split(|&b| b == b'\n').all(|l| {
            l.iter().all(u8::is_ascii_whitespace) || l.trim_ascii_start().starts_with(b"#")
        });
        if state != DocState::Other && blank {
            return Ok(None);
        }
        self.documents += 1;
        match state {
            DocState::Other => Ok(None),
            DocState::Meta => parse_meta(&doc, self.limits.max_yaml_depth).map(Some),
            DocState::Unknown => {
                // No block-style apiVersion line: flow style, JSON, or not a
                // Kubernetes object at all. Look closer.
                let Ok(text) = std::str::from_utf8(&doc) else {
                    return Ok(None);
                };
                if check_depth(text, self.limits.max_yaml_depth).is_err() {
                    return Ok(None);
                }
                #[derive(Deserialize)]
                struct Head {
                    #[serde(rename = "apiVersion")]
                    api_version: Option<String>,
                }
                match serde_norway::from_str::<Head>(text) {
                    Ok(Head {
                        api_version: Some(v),
                    }) if v.starts_with(META_GROUP) => {
                        parse_meta(&doc, self.limits.max_yaml_depth).map(Some)
                    }
                    _ => Ok(None),
                }
            }
        }
    }
}

/// When `line` is the document marker `m` (alone or followed by blanks and
/// content), the rest of the line.
pub(super) fn marker<'a>(line: &'a [u8], m: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(m)?;
    match rest.first() {
        None => Some(rest),
        Some(b' ' | b'\t') => Some(rest.trim_ascii()),
        Some(_) => None,
    }
}

#[derive(Deserialize)]
pub(super) struct MetaDocument {
    #[serde(rename = "apiVersion")]
    pub(super) api_version: String,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) metadata: Option<MetaObject>,
    #[serde(default)]
    pub(super) spec: Option<MetaSpec>,
}

#[derive(Deserialize, Default)]
pub(super) struct MetaObject {
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct MetaSpec {
    #[serde(default, rename = "dependsOn")]
    pub(super) depends_on: Option<Vec<RawDependency>>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawDependency {
    #[serde(default, deserialize_with = "scalar")]
    pub(super) kind: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub(super) package: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub(super) version: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub(super) provider: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub(super) configuration: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub(super) function: Option<String>,
}

/// A scalar (string, number or bool) as text; `null` as `None`.
pub(super) fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

/// Parses a meta document into what the resolver needs.
pub(super) fn parse_meta(doc: &[u8], max_depth: usize) -> Res<PackageMeta> {
    let text = std::str::from_utf8(doc).map_err(|_| {
        Invalid(format!(
            "the {META_GROUP}* document of {PACKAGE_FILE} is not UTF-8"
        ))
    })?;
    check_depth(text, max_depth)?;
    let meta: MetaDocument = serde_norway::from_str(text)
        .map_err(|e| Invalid(format!("the {META_GROUP}* document of {PACKAGE_FILE}: {e}")))?;
    // Bounds first: nothing longer than its limit is quoted in a message
    // or kept.
    check_len(&meta.api_version, limits::MAX_API_VERSION_LEN)
        .map_err(|e| Invalid(format!("apiVersion {e}")))?;
    if !meta.api_version.starts_with(META_GROUP) {
        return invalid(format!("unexpected meta apiVersion {:?}", meta.api_version));
    }
    check_len(&meta.kind, limits::MAX_ENUM_LEN).map_err(|e| Invalid(format!("kind {e}")))?;
    let name = meta.metadata.unwrap_or_default().name.unwrap_or_default();
    check_len(&name, limits::MAX_OBJECT_NAME_LEN)
        .map_err(|e| Invalid(format!("metadata.name {e}")))?;
    let raw = meta.spec.unwrap_or_default().depends_on.unwrap_or_default();
    if raw.len() > limits::MAX_DEPENDENCIES {
        return invalid(format!(
            "spec.dependsOn {}",
            limits::too_many(limits::MAX_DEPENDENCIES, raw.len())
        ));
    }
    let depends_on = raw
        .into_iter()
        .enumerate()
        .map(|(i, raw)| dependency(i, raw))
        .collect::<Res<Vec<_>>>()?;
    Ok(PackageMeta {
        kind: meta.kind.parse().ok(),
        name,
        depends_on,
    })
}

pub(super) fn dependency(i: usize, raw: RawDependency) -> Res<Dependency> {
    let (path, version, kind) = (
        limits::MAX_DEPENDENCY_PATH_LEN,
        limits::MAX_DEPENDENCY_VERSION_LEN,
        limits::MAX_ENUM_LEN,
    );
    for (field, value, max) in [
        ("package", &raw.package, path),
        ("provider", &raw.provider, path),
        ("configuration", &raw.configuration, path),
        ("function", &raw.function, path),
        ("version", &raw.version, version),
        ("kind", &raw.kind, kind),
    ] {
        if let Some(value) = value {
            check_len(value, max)
                .map_err(|e| Invalid(format!("spec.dependsOn[{i}].{field} {e}")))?;
        }
    }
    let version = raw.version.unwrap_or_default();
    if let Some(package) = raw.package.filter(|p| !p.is_empty()) {
        let kind = raw.kind.ok_or_else(|| {
            Invalid(format!(
                "spec.dependsOn[{i}] ({package}) has a package but no kind"
            ))
        })?;
        let kind: PackageKind = kind
            .parse()
            .map_err(|e: String| Invalid(format!("spec.dependsOn[{i}] ({package}): {e}")))?;
        return Ok(Dependency {
            package,
            kind,
            version,
        });
    }
    let older = [
        (raw.provider, PackageKind::Provider),
        (raw.configuration, PackageKind::Configuration),
        (raw.function, PackageKind::Function),
    ];
    for (package, kind) in older {
        if let Some(package) = package.filter(|p| !p.is_empty()) {
            return Ok(Dependency {
                package,
                kind,
                version,
            });
        }
    }
    invalid(format!(
        "spec.dependsOn[{i}] names no package (expected package and kind, or provider, \
         configuration or function)"
    ))
}

/// Rejects YAML nested deeper than `max` mappings/sequences.
pub(super) fn check_depth(text: &str, max: usize) -> Res<()> {
    let de = serde_norway::Deserializer::from_str(text);
    Depth(max).deserialize(de).map_err(|e| {
        Invalid(format!(
            "the {META_GROUP}* document of {PACKAGE_FILE} is not acceptable YAML: {e}"
        ))
    })
}

/// Walks any value, failing when nested deeper than the number it holds.
pub(super) struct Depth(usize);

impl Depth {
    pub(super) fn deeper<E: de::Error>(&self) -> Result<Depth, E> {
        self.0
            .checked_sub(1)
            .map(Depth)
            .ok_or_else(|| E::custom("nested too deeply"))
    }
}

impl<'de> DeserializeSeed<'de> for Depth {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Depth {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(Depth(inner.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while map.next_key_seed(Depth(inner.0))?.is_some() {
            map.next_value_seed(Depth(inner.0))?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use de::VariantAccess;
        let inner = self.deeper()?;
        let (_, variant): (IgnoredAny, _) = data.variant()?;
        variant.newtype_variant_seed(inner)
    }
}

//! What the XR's status says about rollouts, and how it is read back:
//! `status.packages[].rollout` (`{from, to, phase, since}`, while a package
//! moves) and `status.quarantined[]` (`{name, version, digest, reason,
//! until}`, releases rolled back). Like every status field these are hints
//! an XR's owner can edit, so each is checked as it is read, and what fails
//! is dropped with a reason. What they can do is bounded: a rollout's
//! `from` is only ever a reference to the same package path as the
//! package's own (so a rollback cannot point anywhere new), and a
//! quarantine entry can only hold a release back, never admit one.

use crate::sdk::protobuf::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::time::Timestamp;
use crate::names::{is_digest, is_label};
use crate::sdk::structs::{object_value, string_value};
use crate::spec::limits::{
    MAX_DIGEST_LEN, MAX_PACKAGE_NAME_LEN, MAX_QUARANTINE_REASON_LEN as MAX_REASON_LEN,
    MAX_QUARANTINED, MAX_STATUS_PACKAGE_REF_LEN, MAX_VERSION_LEN, check_len,
};
use crate::version::is_tag;

/// Where a package is in its rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Wanted, not started: paused, outside a window, waiting for its
    /// dependencies, or for a slot under `maxInFlight`.
    Pending,
    /// `spec.package` is `to`; not yet on it.
    Progressing,
    /// `to` did not become healthy in time; `spec.package` went back to
    /// `from`, and `to` is quarantined.
    RolledBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::RolledBack => "RolledBack",
        }
    }
}

/// `status.packages[].rollout`: a package moving from one reference to
/// another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The reference it was on (`spec.package` as written).
    pub from: String,
    /// The reference it is moving to.
    pub to: String,
    pub phase: Phase,
    /// When it entered `phase`, RFC 3339.
    #[serde(with = "timestamp_text")]
    pub since: Timestamp,
}

impl Rollout {
    pub fn to_value(&self) -> Value {
        object_value([
            ("from", string_value(&self.from)),
            ("to", string_value(&self.to)),
            ("phase", string_value(self.phase.as_str())),
            ("since", string_value(&self.since.to_string())),
        ])
    }

    /// Checks a rollout read from the status of the package entry whose
    /// `spec.package` is `package`: `from` and `to` within bounds and
    /// references to the same path as `package`.
    pub fn check(&self, package: &str) -> Result<(), String> {
        let path = path_of(package);
        for (field, reference) in [("from", &self.from), ("to", &self.to)] {
            check_len(reference, MAX_STATUS_PACKAGE_REF_LEN)
                .map_err(|e| format!("rollout.{field} {e}"))?;
            if path_of(reference) != path || !has_version(reference) {
                return Err(format!(
                    "rollout.{field} is not a tag or digest of {}",
                    excerpt(path)
                ));
            }
        }
        Ok(())
    }
}

/// `status.quarantined[]`: a release that was rolled back, skipped until
/// `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantined {
    /// The package object's name.
    pub name: String,
    pub version: String,
    pub digest: String,
    #[serde(default)]
    pub reason: String,
    #[serde(with = "timestamp_text")]
    pub until: Timestamp,
}

impl Quarantined {
    pub fn to_value(&self) -> Value {
        object_value([
            ("name", string_value(&self.name)),
            ("version", string_value(&self.version)),
            ("digest", string_value(&self.digest)),
            ("reason", string_value(&self.reason)),
            ("until", string_value(&self.until.to_string())),
        ])
    }

    /// Whether this entry holds back `version` at `digest` of package
    /// `name` at `now`.
    pub fn holds(&self, name: &str, version: &str, digest: &str, now: Timestamp) -> bool {
        self.name == name && self.version == version && self.digest == digest && now < self.until
    }

    fn check(&self) -> Result<(), String> {
        let bounds = [
            ("name", &self.name, MAX_PACKAGE_NAME_LEN),
            ("version", &self.version, MAX_VERSION_LEN),
            ("digest", &self.digest, MAX_DIGEST_LEN),
            ("reason", &self.reason, MAX_REASON_LEN),
        ];
        for (field, value, max) in bounds {
            check_len(value, max).map_err(|e| format!("{field} {e}"))?;
        }
        if !is_label(&self.name) {
            return Err("name is not a DNS label".to_string());
        }
        if !is_digest(&self.digest) {
            return Err("digest is not a sha256 digest".to_string());
        }
        if !(is_tag(&self.version) || self.version == self.digest) {
            return Err("version is neither a tag nor the entry's digest".to_string());
        }
        Ok(())
    }
}

/// The entries of `status.quarantined` that parse and pass the checks,
/// and one line per entry that did not.
pub fn read_quarantined(composite: &Json) -> (Vec<Quarantined>, Vec<String>) {
    let mut entries = Vec::new();
    let mut unreadable = Vec::new();
    let Some(all) = composite
        .pointer("/status/quarantined")
        .and_then(Json::as_array)
    else {
        return (entries, unreadable);
    };
    for (i, entry) in all.iter().enumerate().take(MAX_QUARANTINED) {
        match Quarantined::deserialize(entry).map_err(|e| excerpt(&e.to_string()).to_string()) {
            Ok(q) => match q.check() {
                Ok(()) => entries.push(q),
                Err(why) => unreadable.push(format!("ignoring status.quarantined[{i}]: {why}")),
            },
            Err(why) => unreadable.push(format!("ignoring status.quarantined[{i}]: {why}")),
        }
    }
    if all.len() > MAX_QUARANTINED {
        unreadable.push(format!(
            "status.quarantined: only the first {MAX_QUARANTINED} of {} entries are read",
            all.len()
        ));
    }
    (entries, unreadable)
}

/// The path of a package reference: what precedes `@digest` or `:tag`.
pub fn path_of(reference: &str) -> &str {
    if let Some((path, _)) = reference.split_once('@') {
        return path;
    }
    match reference.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => path,
        _ => reference,
    }
}

/// The version a reference names: its tag, or its digest.
pub fn version_of(reference: &str) -> Option<&str> {
    if let Some((_, digest)) = reference.split_once('@') {
        return Some(digest);
    }
    match reference.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => Some(tag),
        _ => None,
    }
}

fn has_version(reference: &str) -> bool {
    version_of(reference).is_some_and(|v| is_tag(v) || is_digest(v))
}

/// At most 64 characters of a status value, for a message.
fn excerpt(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// `Timestamp` as RFC 3339 text in serde.
mod timestamp_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Timestamp;

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(time)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn a_rollout_stays_on_its_package_path() {
        let rollout = |from: &str, to: &str| Rollout {
            from: from.to_string(),
            to: to.to_string(),
            phase: Phase::Progressing,
            since: Timestamp::from_secs(0),
        };
        let package = "xpkg.upbound.io/upbound/provider-family-aws:v2.1.0";
        let cases = [
            ("xpkg.upbound.io/upbound/provider-family-aws:v2.0.0", true),
            (
                &*format!("xpkg.upbound.io/upbound/provider-family-aws@{DIGEST}"),
                true,
            ),
            ("xpkg.upbound.io/evil/provider-family-aws:v2.0.0", false),
            ("xpkg.upbound.io/upbound/provider-family-aws", false),
            (
                "xpkg.upbound.io/upbound/provider-family-aws:not a tag",
                false,
            ),
            ("127.0.0.1:5000/upbound/provider-family-aws:v2.0.0", false),
        ];
        for (from, ok) in cases {
            assert_eq!(rollout(from, package).check(package).is_ok(), ok, "{from}");
            assert_eq!(rollout(package, from).check(package).is_ok(), ok, "{from}");
        }
    }

    #[test]
    fn quarantined_entries_are_checked_as_read() {
        let good = json!({"name": "family", "version": "v2.1.0", "digest": DIGEST,
                          "reason": "r", "until": "2026-12-05T03:20:16Z"});
        let mut bad_time = good.clone();
        bad_time["until"] = json!("tomorrow");
        let mut bad_name = good.clone();
        bad_name["name"] = json!("Not A Label");
        let mut bad_digest = good.clone();
        bad_digest["digest"] = json!("sha256:short");
        let mut long_reason = good.clone();
        long_reason["reason"] = json!("x".repeat(MAX_REASON_LEN + 1));
        let composite =
            json!({"status": {"quarantined": [good, bad_time, bad_name, bad_digest, long_reason]}});
        let (entries, unreadable) = read_quarantined(&composite);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].version, "v2.1.0");
        assert_eq!(unreadable.len(), 4, "{unreadable:?}");
        assert!(unreadable.iter().all(|u| u.len() < 300), "{unreadable:?}");
        let until = entries[0].until;
        assert!(entries[0].holds("family", "v2.1.0", DIGEST, Timestamp::from_secs(0)));
        assert!(!entries[0].holds("family", "v2.1.0", DIGEST, until));
        assert!(!entries[0].holds("family", "v2.1.0", "sha256:other", Timestamp::from_secs(0)));
    }

    #[test]
    fn references_split_into_path_and_version() {
        let cases = [
            ("a/b:v1", "a/b", Some("v1")),
            ("host:5000/a/b:v1", "host:5000/a/b", Some("v1")),
            ("host:5000/a/b", "host:5000/a/b", None),
            (&*format!("a/b@{DIGEST}"), "a/b", Some(DIGEST)),
        ];
        for (reference, path, version) in cases {
            assert_eq!(path_of(reference), path, "{reference}");
            assert_eq!(version_of(reference), version, "{reference}");
        }
    }
}

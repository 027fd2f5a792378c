//! The input's `scan`: the platform's policy for ECR's image scans (basic
//! or enhanced). A package whose repository matches one of `repositories`
//! is installed only at a version whose scan, read with
//! `DescribeImageScanFindings`, shows no finding above `maxSeverity` that
//! `ignore` does not name; `whenMissing` says what a version with no
//! finished scan gets. The gate itself is `resolve::scan`'s.
//!
//! Read straight into its validated form: every field is checked, with its
//! bound, as it is decoded, and an error names the field
//! (`scan.repositories[2]`). A glob that Go's `path.Match` would refuse is
//! refused here: one that matched nothing would leave packages ungated.

use serde::{Deserialize, Deserializer, de};

use super::glob::{glob_match, path_match};
use super::limits::{
    self, MAX_ALLOWLIST_ITEMS, MAX_FINDING_NAME_LEN, MAX_PATTERN_LEN, MAX_SCAN_IGNORE,
};

/// `scan`: which packages must be clean by ECR's scan, and how clean.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scan {
    /// Globs (Go's `path.Match`, as `allowedRepositories`) of the ECR
    /// repositories gated; at least one (`*/*` and `*` cover one- and
    /// two-segment names).
    #[serde(deserialize_with = "repositories")]
    pub repositories: Vec<String>,
    /// The highest severity tolerated.
    pub max_severity: MaxSeverity,
    /// Finding names (`CVE-2024-1234`) that never count.
    #[serde(default, deserialize_with = "ignore")]
    pub ignore: Vec<String>,
    /// What a version with no finished scan gets (default `Wait`).
    #[serde(default)]
    pub when_missing: WhenMissing,
}

impl Scan {
    /// Whether packages of `repository` are gated.
    pub fn covers(&self, repository: &str) -> bool {
        self.repositories.iter().any(|p| glob_match(p, repository))
    }

    /// Whether the finding `name` is ignored.
    pub fn ignores(&self, name: &str) -> bool {
        self.ignore.iter().any(|i| i == name)
    }
}

/// `scan.maxSeverity`: the highest severity a finding may have and not
/// count; ordered from `None` (no finding tolerated) to `Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MaxSeverity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

/// `scan.whenMissing`: what a version gets while its scan is not finished
/// (never started, in progress, failed, unsupported).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum WhenMissing {
    /// Skipped, as `scan pending`, until a scan is complete.
    #[default]
    Wait,
    /// Installed as if clean.
    Allow,
}

/// `scan.repositories`: 1 to [`MAX_ALLOWLIST_ITEMS`] globs of
/// [`MAX_PATTERN_LEN`], each one Go's `path.Match` accepts.
pub(super) fn repositories<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let globs = limits::strings::<MAX_ALLOWLIST_ITEMS, MAX_PATTERN_LEN, D>(d)?;
    if globs.is_empty() {
        return Err(de::Error::custom(
            "must list at least one repository glob (\"*/*\" for every two-segment name)",
        ));
    }
    if let Some(i) = globs
        .iter()
        .position(|g| path_match(g.as_bytes(), b"").is_err())
    {
        return Err(de::Error::custom(format!(
            "item {i} is not a valid glob (an unclosed [, an empty class or a trailing \\)"
        )));
    }
    Ok(globs)
}

/// `scan.ignore`: at most [`MAX_SCAN_IGNORE`] finding names of
/// [`MAX_FINDING_NAME_LEN`], none empty.
fn ignore<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = limits::strings::<MAX_SCAN_IGNORE, MAX_FINDING_NAME_LEN, D>(d)?;
    if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
        return Err(de::Error::custom(format!("item {i} is empty")));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use serde_json::json;

    #[test]
    fn reads_a_full_policy_and_defaults_to_wait() {
        let scan: Scan = decode(json!({
            "repositories": ["upbound/*"], "maxSeverity": "HIGH", "ignore": ["CVE-2024-1"]
        }))
        .expect("valid");
        assert_eq!(scan.max_severity, MaxSeverity::High);
        assert_eq!(scan.when_missing, WhenMissing::Wait);
        assert!(scan.covers("upbound/provider-aws-s3"));
        assert!(!scan.covers("team/provider"));
        assert!(scan.ignores("CVE-2024-1"));
        assert!(!scan.ignores("CVE-2024-2"));
        assert!(MaxSeverity::None < MaxSeverity::Low && MaxSeverity::High < MaxSeverity::Critical);
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok = |extra: serde_json::Value| {
            let mut v = json!({"repositories": ["*"], "maxSeverity": "LOW"});
            for (k, x) in extra.as_object().expect("object") {
                v[k] = x.clone();
            }
            v
        };
        let cases = [
            (
                json!({"maxSeverity": "LOW"}),
                ".",
                "missing field `repositories`",
            ),
            (
                ok(json!({"repositories": []})),
                "repositories",
                "at least one",
            ),
            (
                ok(json!({"repositories": ["a/[b"]})),
                "repositories",
                "item 0 is not a valid glob",
            ),
            (
                ok(json!({"repositories": ["x".repeat(MAX_PATTERN_LEN + 1)]})),
                "repositories[0]",
                "at most",
            ),
            (
                json!({"repositories": ["*"]}),
                ".",
                "missing field `maxSeverity`",
            ),
            (
                ok(json!({"maxSeverity": "SEVERE"})),
                "maxSeverity",
                "unknown variant",
            ),
            (
                ok(json!({"maxSeverity": "low"})),
                "maxSeverity",
                "unknown variant",
            ),
            (
                ok(json!({"whenMissing": "Never"})),
                "whenMissing",
                "unknown variant",
            ),
            (ok(json!({"ignore": [""]})), "ignore", "item 0 is empty"),
            (
                ok(json!({"ignore": ["x".repeat(MAX_FINDING_NAME_LEN + 1)]})),
                "ignore[0]",
                "at most",
            ),
            (
                ok(json!({"ignore": vec!["CVE"; MAX_SCAN_IGNORE + 1]})),
                "ignore",
                "at most",
            ),
            (ok(json!({"severity": "LOW"})), "severity", "unknown field"),
        ];
        for (value, path, message) in cases {
            let err = decode::<Scan>(value.clone()).unwrap_err();
            assert_eq!(err.path, path, "{value}: {}", err.message);
            assert!(err.message.contains(message), "{path}: {}", err.message);
        }
    }
}

//! Versions the way Crossplane's package manager sees them.
//!
//! Crossplane resolves `dependsOn[].version` with the constraint language of
//! Masterminds/semver v3 (not Cargo's, so `semver::VersionReq` is no use
//! here) and picks among a repository's tags with its own rule for which tags
//! count. This module reproduces both, so a package set resolved here is the
//! one Crossplane would have installed:
//!
//! - [`Constraint`]: a Masterminds v3 constraint (`constraint.rs`).
//! - [`parse_tag`] and [`select_highest`]: which tags count and which one a
//!   set of constraints picks (`tag.rs`).
//! - [`VersionSpec`]: a `dependsOn` version, which is a digest or a
//!   constraint.

mod constraint;
mod tag;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::names::is_digest;

pub use constraint::{Constraint, MAX_ALTERNATIVES};
pub use tag::{is_tag, parse_tag, select_highest};

/// The longest version or constraint string accepted, in bytes, wherever it
/// comes from: an XR's `spec.packages[].version`, a package.yaml
/// `dependsOn[].version`, or the command line. It is checked before
/// anything else, so a longer string costs one length comparison and is
/// refused with [`Error::InvalidConstraint`] naming this limit. 256 is
/// Masterminds' own `MaxVersionLen` and half its `MaxConstraintLen` (512):
/// real constraints are a few dozen bytes, and a constraint between 257 and
/// 512 bytes that Masterminds would accept is refused here on purpose.
pub const MAX_VERSION_LEN: usize = 256;

/// The error for a string over [`MAX_VERSION_LEN`]; the string itself is
/// shown cut short, so the error stays small whatever was sent.
pub(crate) fn too_long(text: &str) -> Error {
    let mut end = 32.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Error::InvalidConstraint {
        constraint: format!("{}...", &text[..end]),
        message: format!(
            "{} bytes is too long: a version or constraint may be at most {MAX_VERSION_LEN} bytes \
             (MAX_VERSION_LEN)",
            text.len()
        ),
    }
}

/// What a `dependsOn[].version` (or any version field with the same meaning)
/// asks for.
///
/// Crossplane (`internal/controller/pkg/resolver`, v1.18 and later, v2) first
/// tries the string as an OCI digest with go-containerregistry's
/// `v1.NewHash`; only if that fails does it hand the string to
/// `semver.NewConstraint`. There is no third case: an exact version such as
/// `v2.2.0` is the constraint `=2.2.0`, so it is resolved against the listed
/// tags like any other constraint and is satisfied by the tag `2.2.0` as well
/// as `v2.2.0`. That is why there is no "exact tag" variant: fetching the tag
/// literally would fail where Crossplane succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VersionSpec {
    /// `sha256:` followed by 64 lowercase hex digits, kept as written.
    Digest(String),
    Constraint(Constraint),
}

impl VersionSpec {
    /// Refuses anything longer than [`MAX_VERSION_LEN`] before looking at it.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_VERSION_LEN {
            return Err(too_long(text));
        }
        if is_digest(text) {
            return Ok(VersionSpec::Digest(text.to_owned()));
        }
        // No constraint can contain a colon, so anything with one was meant
        // as a digest; saying so beats "not a version".
        if text.contains(':') {
            return Err(Error::InvalidConstraint {
                constraint: text.to_owned(),
                message: "not a valid digest: expected \"sha256:\" followed by 64 lowercase hex \
                          digits (the only form Crossplane accepts)"
                    .to_owned(),
            });
        }
        Constraint::parse(text).map(VersionSpec::Constraint)
    }
}

impl FromStr for VersionSpec {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        VersionSpec::parse(text)
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Digest(digest) => f.write_str(digest),
            VersionSpec::Constraint(constraint) => constraint.fmt(f),
        }
    }
}

/// Masterminds' `Version.Compare`: major, minor, patch, then prerelease (a
/// release sorts above its prereleases); build metadata never counts.
fn precedence(a: [u64; 3], a_pre: &str, b: [u64; 3], b_pre: &str) -> Ordering {
    a.cmp(&b)
        .then_with(|| match (a_pre.is_empty(), b_pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prerelease(a_pre, b_pre),
        })
}

/// Identifier by identifier; when one list runs out first it is the lower.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match compare_identifier(x, y) {
                Ordering::Equal => continue,
                unequal => return unequal,
            },
        }
    }
}

/// Numbers compare as numbers and below words; words compare bytewise. A
/// number too large for u64 is a word, as Go's `ParseUint` makes it there.
fn compare_identifier(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Digits only (no sign, unlike `u64::from_str`), within u64.
fn numeric(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digests() {
        let digest = format!("sha256:{HEX}");
        assert_eq!(
            VersionSpec::parse(&digest),
            Ok(VersionSpec::Digest(digest.clone()))
        );
        assert_eq!(
            VersionSpec::parse(&digest).map(|s| s.to_string()),
            Ok(digest)
        );

        let rejected = [
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha256:{}", &HEX[1..]),
            format!("sha256:{HEX}0"),
            format!("sha512:{HEX}{HEX}"),
            format!(" sha256:{HEX}"),
            format!("sha256:{HEX} "),
            format!("sha256:{HEX}:"),
            format!("SHA256:{HEX}"),
            format!("sha256:{}g", &HEX[1..]),
            "sha256:".to_owned(),
        ];
        for text in rejected {
            match VersionSpec::parse(&text) {
                Err(Error::InvalidConstraint {
                    constraint,
                    message,
                }) => {
                    assert_eq!(constraint, text);
                    assert!(message.contains("sha256:"), "{text:?}: {message}");
                }
                other => panic!("{text:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn everything_else_is_a_constraint() {
        // Exact versions are constraints in Crossplane, not tags.
        let cases = [
            ("v2.2.0", "2.2.0", true),
            ("v2.2.0", "2.2.1", false),
            ("2.2.0", "2.2.0", true),
            ("v2.2.0-rc.1", "2.2.0-rc.1", true),
            (">=v1.0.0", "1.4.0", true),
            ("^1.2", "1.9.0", true),
            ("1.x", "2.0.0", false),
        ];
        for (text, version, want) in cases {
            let spec = VersionSpec::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let VersionSpec::Constraint(c) = &spec else {
                panic!("{text:?} is not a constraint: {spec:?}");
            };
            let v = semver::Version::parse(version).expect("test version");
            assert_eq!(c.matches(&v), want, "{text:?} vs {version}");
            assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn invalid_specs() {
        for text in ["", "latest", "main", "v1.2.3.4", ">= 1.0 ||"] {
            assert!(
                matches!(
                    VersionSpec::parse(text),
                    Err(Error::InvalidConstraint { ref constraint, .. }) if constraint == text
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn length_is_checked_first() {
        let digestish = format!("sha256:{}", "0".repeat(MAX_VERSION_LEN));
        for text in [
            "1".repeat(MAX_VERSION_LEN + 1),
            "x".repeat(100_000),
            digestish,
        ] {
            match VersionSpec::parse(&text) {
                Err(Error::InvalidConstraint {
                    constraint,
                    message,
                }) => {
                    assert!(constraint.len() <= 35, "{constraint}");
                    assert!(message.contains("MAX_VERSION_LEN"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let widest = format!("{}1", " ".repeat(MAX_VERSION_LEN - 1));
        assert!(VersionSpec::parse(&widest).is_ok());
        // Cut on a character boundary.
        let text = "é".repeat(MAX_VERSION_LEN);
        assert!(VersionSpec::parse(&text).is_err());
    }

    #[test]
    fn precedence_matches_masterminds() {
        use Ordering::*;
        let cases = [
            ([1, 0, 0], "", [1, 0, 0], "", Equal),
            ([1, 0, 0], "", [1, 0, 0], "alpha", Greater),
            ([1, 0, 0], "alpha", [1, 0, 0], "alpha.1", Less),
            ([1, 0, 0], "alpha.1", [1, 0, 0], "alpha.beta", Less),
            ([1, 0, 0], "alpha.beta", [1, 0, 0], "beta", Less),
            ([1, 0, 0], "beta.2", [1, 0, 0], "beta.11", Less),
            ([1, 0, 0], "beta.11", [1, 0, 0], "rc.1", Less),
            ([1, 0, 0], "1", [1, 0, 0], "a", Less),
            ([1, 0, 0], "99999999999999999999", [1, 0, 0], "a", Less),
            ([1, 2, 3], "", [1, 10, 0], "", Less),
            ([2, 0, 0], "alpha", [1, 9, 9], "", Greater),
        ];
        for (a, ap, b, bp, want) in cases {
            assert_eq!(precedence(a, ap, b, bp), want, "{a:?}-{ap} vs {b:?}-{bp}");
            assert_eq!(
                precedence(b, bp, a, ap),
                want.reverse(),
                "{b:?}-{bp} vs {a:?}-{ap}"
            );
        }
    }
}

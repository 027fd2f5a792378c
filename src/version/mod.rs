//! Versions the way Crossplane's package manager sees them.
//!
//! Crossplane resolves `dependsOn[].version` with the constraint language of
//! Masterminds/semver (not Cargo's, so `semver::VersionReq` is no use
//! here) and picks among a repository's tags with its own rule for which tags
//! count. This module reproduces both, so a package set resolved here is the
//! one Crossplane would have installed:
//!
//! - [`Constraint`]: a Masterminds v3 constraint (`constraint.rs`).
//! - [`Dialect`]: which Masterminds a Crossplane minor uses (v1.5.0 up to
//!   v2.2, v3.4.0 in v2.3, v3.5.0 from v2.4), a constraint read in each
//!   ([`DialectConstraint`]; v1.5.0 in `v1.rs`), and [`select_highest_in`],
//!   the highest tag every given dialect accepts, over tags read once
//!   ([`Versions`]) when a caller chooses among them more than once
//!   (`dialect.rs`).
//! - [`parse_tag`] and [`select_highest`]: which tags count and which one a
//!   set of constraints picks (`tag.rs`).
//! - [`VersionSpec`]: a `dependsOn` version, which is a digest or a
//!   constraint.
//! - Masterminds' order of versions (`precedence.rs`), the grammar v1.5.0
//!   and v3 share (`grammar.rs`), and the one length limit every version
//!   string passes first (`length.rs`).

mod constraint;
mod dialect;
mod grammar;
mod length;
mod precedence;
mod tag;
mod v1;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::names::is_digest;

pub use constraint::{Constraint, MAX_ALTERNATIVES};
pub use dialect::{
    Dialect, DialectConstraint, Readings, Versions, highest_per_dialect, select_highest_in,
};
pub use length::MAX_VERSION_LEN;
use length::too_long;
pub use tag::{is_tag, parse_tag, select_highest};

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
}

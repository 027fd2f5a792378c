//! Masterminds/semver v3 constraints (the `NewConstraint` / `Check` pair that
//! Crossplane calls), reproduced quirk for quirk.
//!
//! Masterminds parses with regular expressions in four passes, and the exact
//! set of accepted strings falls out of their interplay, so the passes are
//! kept here one for one:
//!
//! 1. Hyphen ranges `A - B` are rewritten to `>= A, <= B ` by plain text
//!    substitution before anything else. The rewrite swallows the whitespace
//!    around the range, so a range cannot follow an operator (`>1 - 2`) nor,
//!    without a comma, another comparator (`1.0 2 - 3`).
//! 2. The text is split on `||` into alternatives.
//! 3. Each alternative is a list of comparators separated by whitespace or by
//!    a comma (with optional whitespace either side).
//! 4. Each comparator is an operator (possibly none) and a version, where any
//!    of major, minor and patch may be `x`, `X` or `*` and minor and patch may
//!    be missing.
//!
//! Which Masterminds: Crossplane v2.3 pins v3.4.0 and its main branch v3.5.0
//! (the same behaviour, plus v3.5.0's limits, which are kept here: at most
//! 32 `||` alternatives, and [`MAX_VERSION_LEN`] bytes, stricter than its
//! 512). Crossplane v2.0 to v2.2 still import Masterminds/semver v1.5.0,
//! whose language is narrower (a comma is the only AND, so `>=1 <2` is an
//! error there) and whose `^0.x` and prerelease rules differ; that one is
//! `v1.rs`, and `dialect.rs` says which Crossplane reads which.
//! `tests/fuzz.rs` checks each against its Go library. The operators, the
//! version regex and the range rewrite of pass 1 are in `grammar.rs`.
//!
//! Matching, per Masterminds v3.4+: a prerelease
//! version only satisfies an alternative in which some comparator carries a
//! prerelease. Then every comparator of that alternative admits
//! prereleases, so `>=1.2.3-beta, <2` admits `1.5.0-alpha`. Hence `*` and
//! `>=0.0.0` reject all prereleases while `>=0.0.0-0` admits everything.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use semver::Version;

use super::grammar::{
    Op, RangeEnd, Wildcard, is_space, read_op, rewrite_ranges, skip_spaces, version_prefix,
};
use super::length::{MAX_VERSION_LEN, too_long};
use super::precedence::{compare, compare_prerelease, numeric};
use crate::error::{Error, Result};

/// The most `||` alternatives a constraint may have, as Masterminds v3.5.0
/// (`MaxConstraintGroups`) allows.
pub const MAX_ALTERNATIVES: usize = 32;

/// A parsed Masterminds v3 constraint. Displays as the text it came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    text: String,
    alternatives: Vec<Alternative>,
}

/// One `||` branch: every comparator must hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Alternative {
    comparators: Vec<Comparator>,
    admits_prereleases: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Comparator {
    op: Op,
    /// The version with wildcards and missing parts read as 0.
    core: [u64; 3],
    pre: String,
    wildcard: Wildcard,
}

impl Constraint {
    /// Refuses anything longer than [`MAX_VERSION_LEN`] before looking at
    /// it; otherwise linear in the length (the hyphen-range substitution
    /// aside, see `rewrite_ranges`).
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_VERSION_LEN {
            return Err(too_long(text));
        }
        let invalid = |message: String| Error::InvalidConstraint {
            constraint: text.to_owned(),
            message,
        };
        if text.bytes().all(is_space) {
            return Err(invalid(
                "the constraint is empty; Crossplane rejects an empty version, so write \"*\" \
                 for any release or \">=0.0.0-0\" to include prereleases"
                    .to_owned(),
            ));
        }
        let (rewritten, ranges) = rewrite_ranges(text, RangeEnd::Space);
        let branches: Vec<&str> = rewritten.split("||").collect();
        if branches.len() > MAX_ALTERNATIVES {
            return Err(invalid(format!(
                "{} alternatives joined by \"||\"; at most {MAX_ALTERNATIVES} are allowed \
                 (Masterminds' MaxConstraintGroups)",
                branches.len()
            )));
        }
        let mut alternatives = Vec::with_capacity(branches.len());
        for (index, branch) in branches.iter().enumerate() {
            let alternative = parse_alternative(branch).map_err(|message| {
                let message = if branches.len() > 1 {
                    format!("alternative {} of the \"||\" list: {message}", index + 1)
                } else {
                    message
                };
                let range = ranges
                    .iter()
                    .find(|(low, high)| branch.contains(&format!(">= {low}, <= {high} ")));
                invalid(match range {
                    Some((low, high)) => format!(
                        "{message} (after rewriting the hyphen range \"{low} - {high}\" to \
                         \">= {low}, <= {high}\": a hyphen range cannot follow an operator, and \
                         needs a comma after a preceding comparator)"
                    ),
                    None => message,
                })
            })?;
            alternatives.push(alternative);
        }
        Ok(Constraint {
            text: text.to_owned(),
            alternatives,
        })
    }

    /// Masterminds' `Constraints.Check` with `IncludePrerelease` off, as
    /// Crossplane leaves it. Build metadata never matters.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|alternative| {
            alternative
                .comparators
                .iter()
                .all(|c| c.admits(version, alternative.admits_prereleases))
        })
    }

    /// The text the constraint was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Constraint {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Constraint::parse(text)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Comparator {
    fn admits(&self, v: &Version, prereleases: bool) -> bool {
        let v_pre = v.pre.as_str();
        if !v_pre.is_empty() && !prereleases {
            return false;
        }
        let vc = [v.major, v.minor, v.patch];
        let cmp = compare(vc, v_pre, self.core, &self.pre);
        let [major, minor, patch] = self.core;
        match self.op {
            Op::Exact if self.wildcard == Wildcard::None => cmp == Ordering::Equal,
            Op::Exact | Op::Tilde => self.tilde(vc, cmp),
            Op::NotEqual => self.not_equal(vc, v_pre, cmp),
            Op::Greater => match self.wildcard {
                Wildcard::None => cmp == Ordering::Greater,
                _ if vc[0] != major => vc[0] > major,
                Wildcard::Minor => false,
                Wildcard::Patch => vc[1] > minor,
                Wildcard::Major => cmp == Ordering::Greater,
            },
            Op::Less => cmp == Ordering::Less,
            Op::GreaterEqual => cmp != Ordering::Less,
            Op::LessEqual => match self.wildcard {
                Wildcard::None => cmp != Ordering::Greater,
                _ if vc[0] != major => vc[0] < major,
                Wildcard::Minor => true,
                _ => vc[1] <= minor,
            },
            Op::Caret => {
                if cmp == Ordering::Less {
                    false
                } else if major > 0 || self.wildcard == Wildcard::Minor {
                    vc[0] == major
                } else if vc[0] > 0 {
                    false
                } else if minor > 0 || self.wildcard == Wildcard::Patch {
                    vc[1] == minor
                } else {
                    // `^0.0.z`, and also `^*`, which Masterminds documents as
                    // "any" but in fact pins to 0.0.0.
                    vc[1] == 0 && vc[2] == patch
                }
            }
        }
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`, `~1` and `1.x` are `>=1.0.0 <2.0.0`, and
    /// a bound of 0.0.0 without a minor or patch wildcard (`~0.0.0`, `*`)
    /// admits everything from there up.
    fn tilde(&self, vc: [u64; 3], cmp: Ordering) -> bool {
        if cmp == Ordering::Less {
            return false;
        }
        if self.core == [0, 0, 0] && matches!(self.wildcard, Wildcard::None | Wildcard::Major) {
            return true;
        }
        vc[0] == self.core[0] && (self.wildcard == Wildcard::Minor || vc[1] == self.core[1])
    }

    /// `!=4.x` excludes all of 4, `!=4.1` all of 4.1; with a patch wildcard
    /// a differing prerelease still counts as different.
    fn not_equal(&self, vc: [u64; 3], v_pre: &str, cmp: Ordering) -> bool {
        if self.wildcard != Wildcard::None {
            if vc[0] != self.core[0] {
                return true;
            }
            if self.wildcard == Wildcard::Minor {
                return false;
            }
            if vc[1] != self.core[1] {
                return true;
            }
            if self.wildcard == Wildcard::Patch {
                return (!v_pre.is_empty() || !self.pre.is_empty())
                    && compare_prerelease(v_pre, &self.pre) != Ordering::Equal;
            }
            if vc[2] != self.core[2] {
                return true;
            }
        }
        cmp != Ordering::Equal
    }
}

/// Passes 3 and 4 for one `||` branch.
fn parse_alternative(branch: &str) -> std::result::Result<Alternative, String> {
    let b = branch.as_bytes();
    let mut comparators = Vec::new();
    let mut i = skip_spaces(b, 0);
    loop {
        let (op, op_len) = read_op(&b[i..]);
        let op_text = &branch[i..i + op_len];
        let version_start = skip_spaces(b, i + op_len);
        let version_end = (version_start..b.len())
            .find(|&j| is_space(b[j]) || b[j] == b',')
            .unwrap_or(b.len());
        let version = &branch[version_start..version_end];
        if version.is_empty() {
            return Err(match (b.get(version_start), op_text) {
                (Some(_), "") => "expected a version before \",\"".to_owned(),
                (Some(_), op) => format!("expected a version after \"{op}\", found \",\""),
                (None, "") if comparators.is_empty() => "expected a version".to_owned(),
                (None, "") => "expected a version after the trailing \",\"".to_owned(),
                (None, op) => format!("expected a version after \"{op}\""),
            });
        }
        comparators.push(parse_comparator(op, version)?);
        let next = skip_spaces(b, version_end);
        if next == b.len() {
            break;
        }
        // The version ended at whitespace or a comma; either separates.
        i = if b[next] == b',' {
            skip_spaces(b, next + 1)
        } else {
            next
        };
    }
    let admits_prereleases = comparators.iter().any(|c| !c.pre.is_empty());
    Ok(Alternative {
        comparators,
        admits_prereleases,
    })
}

const VERSION_SHAPE: &str = "expected [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], each of MAJOR, MINOR, PATCH a \
     number or x, X, *";

fn parse_comparator(op: Op, text: &str) -> std::result::Result<Comparator, String> {
    let b = text.as_bytes();
    let length = version_prefix(b);
    if length != b.len() {
        let what = match &text[length..].chars().next() {
            Some(c) if length > 0 => format!("unexpected {c:?} after \"{}\"", &text[..length]),
            _ => VERSION_SHAPE.to_owned(),
        };
        return Err(format!("\"{text}\" is not a version: {what}"));
    }
    // The grammar has matched, so the splits below find what it found.
    let body = text.strip_prefix('v').unwrap_or(text);
    let body = body.split('+').next().unwrap_or(body);
    let (core, pre) = body.split_once('-').unwrap_or((body, ""));
    let parts: Vec<&str> = core.split('.').collect();
    let is_x = |part: &str| matches!(part, "x" | "X" | "*");
    let number = |part: &str| {
        numeric(part).ok_or_else(|| {
            if part.bytes().all(|c| c.is_ascii_digit()) {
                format!("\"{part}\" in \"{text}\" is too large")
            } else {
                format!("\"{part}\" in \"{text}\" is neither a number nor x, X, *")
            }
        })
    };
    let minor = parts.get(1).copied().filter(|p| !is_x(p));
    let patch = parts.get(2).copied().filter(|p| !is_x(p));
    // Only parts before the first wildcard are read; later ones are ignored
    // whatever they hold, as in Masterminds.
    let (core, wildcard) = if is_x(parts[0]) {
        ([0, 0, 0], Wildcard::Major)
    } else if let Some(minor) = minor {
        let (major, minor) = (number(parts[0])?, number(minor)?);
        match patch {
            Some(patch) => ([major, minor, number(patch)?], Wildcard::None),
            None => ([major, minor, 0], Wildcard::Patch),
        }
    } else {
        ([number(parts[0])?, 0, 0], Wildcard::Minor)
    };
    if let Some(zeroed) = pre
        .split('.')
        .find(|id| id.len() > 1 && id.starts_with('0') && id.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "prerelease identifier \"{zeroed}\" in \"{text}\" has a leading zero"
        ));
    }
    Ok(Comparator {
        op,
        core,
        pre: pre.to_owned(),
        wildcard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, &str, bool)]) {
        for &(constraint, version, want) in cases {
            let c = Constraint::parse(constraint)
                .unwrap_or_else(|e| panic!("{constraint:?} should parse: {e}"));
            let v = Version::parse(version).expect("test versions are valid semver");
            assert_eq!(c.matches(&v), want, "{constraint:?} against {version}");
        }
    }

    #[test]
    fn exact() {
        check(&[
            ("1.2.3", "1.2.3", true),
            ("1.2.3", "1.2.4", false),
            ("=1.2.3", "1.2.3", true),
            ("= 1.2.3", "1.2.2", false),
            ("v1.2.3", "1.2.3", true),
            ("=v1.2.3", "1.2.3", true),
            ("1.2.3", "1.2.3+build.7", true),
            ("1.2.3+build.1", "1.2.3", true),
            ("1.2.3-rc.1", "1.2.3-rc.1", true),
            ("1.2.3-rc.1", "1.2.3-rc.2", false),
            ("1.2.3-rc.1", "1.2.3", false),
            ("1.2.3", "1.2.3-rc.1", false),
            ("01.002.03", "1.2.3", true),
            ("  1.2.3  ", "1.2.3", true),
            ("\t=\t1.2.3\n", "1.2.3", true),
        ]);
    }

    #[test]
    fn partial_versions_are_ranges() {
        check(&[
            ("1", "1.0.0", true),
            ("1", "1.9.9", true),
            ("1", "2.0.0", false),
            ("1", "0.9.0", false),
            ("1.2", "1.2.0", true),
            ("1.2", "1.2.9", true),
            ("1.2", "1.3.0", false),
            ("=1.2", "1.2.5", true),
            ("v1", "1.4.0", true),
            ("0", "0.3.0", true),
            ("0", "1.0.0", false),
        ]);
    }

    #[test]
    fn wildcards() {
        check(&[
            ("*", "0.0.0", true),
            ("*", "7.3.1", true),
            ("*", "1.2.3-alpha.1", false),
            ("x", "4.5.6", true),
            ("X", "4.5.6", true),
            ("v*", "2.0.0", true),
            ("1.x", "1.0.0", true),
            ("1.x", "1.99.3", true),
            ("1.x", "2.0.0", false),
            ("1.X", "0.9.9", false),
            ("1.*", "1.4.0", true),
            ("1.2.x", "1.2.9", true),
            ("1.2.x", "1.3.0", false),
            ("1.2.*", "1.2.0", true),
            ("1.x.x", "1.5.5", true),
            ("0.x", "0.9.0", true),
            ("0.x", "1.0.0", false),
            ("0.0.x", "0.0.7", true),
            ("0.0.x", "0.1.0", false),
            // After a wildcard the remaining parts are ignored.
            ("1.x.3", "1.7.0", true),
            ("x.2.3", "9.0.0", true),
            ("*.|.|", "3.0.0", true),
            ("*-0", "1.2.3-alpha.1", true),
            ("*-0", "0.0.0-0", true),
            ("1.x-0", "1.5.0-rc.1", true),
            ("1.x-0", "2.0.0-rc.1", false),
        ]);
    }

    #[test]
    fn not_equal() {
        check(&[
            ("!=1.2.3", "1.2.3", false),
            ("!=1.2.3", "1.2.4", true),
            ("!= 1.2.3", "1.2.3+meta", false),
            ("!=1.2", "1.2.0", false),
            ("!=1.2", "1.2.7", false),
            ("!=1.2", "1.3.0", true),
            ("!=1.2", "2.2.0", true),
            ("!=1.x", "1.9.0", false),
            ("!=1.x", "2.0.0", true),
            ("!=1.2.x", "1.2.3", false),
            ("!=1.2.x", "1.3.3", true),
            ("!=1.2-alpha", "1.2.0-alpha", false),
            ("!=1.2-alpha", "1.2.5-alpha", false),
            ("!=1.2-alpha", "1.2.0-beta", true),
            ("!=1.2-alpha", "1.2.0", true),
            ("!=1.2.3", "1.2.4-alpha", false),
            // `!=*` only excludes 0.0.0.
            ("!=*", "0.0.0", false),
            ("!=*", "0.0.1", true),
            ("!=*", "3.0.0", true),
        ]);
    }

    #[test]
    fn greater_than() {
        check(&[
            (">1.2.3", "1.2.4", true),
            (">1.2.3", "1.2.3", false),
            ("> 1.2.3", "1.2.3+meta", false),
            (">1.2.3", "2.0.0", true),
            (">1.2.3", "1.3.0-alpha", false),
            (">1.2", "1.2.9", false),
            (">1.2", "1.3.0", true),
            (">1.2.x", "1.2.9", false),
            (">1", "1.9.9", false),
            (">1", "2.0.0", true),
            (">1.x", "1.5.0", false),
            (">0", "0.0.1", false),
            (">0", "1.0.0", true),
            (">*", "0.0.0", false),
            (">*", "0.0.1", true),
            (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
            (">1.2.3-alpha.1", "1.2.3-alpha.1", false),
            (">1.2.3-alpha.1", "1.2.3", true),
            (">1.2.3-alpha.1", "1.3.0-alpha.0", true),
            (">0.0.0-0", "0.0.0-alpha", true),
        ]);
    }

    #[test]
    fn greater_or_equal() {
        check(&[
            (">=1.2.3", "1.2.3", true),
            (">=1.2.3", "1.2.2", false),
            (">=1.2.3", "5.0.0", true),
            ("=>1.2.3", "1.2.3", true),
            ("=> 1.2.3", "1.2.2", false),
            (">=1.2", "1.2.0", true),
            (">=1.2", "1.1.9", false),
            (">=1.x", "1.0.0", true),
            (">=1", "0.9.9", false),
            (">=v1.0.0", "1.0.0", true),
            (">=1.2.3", "1.2.4-beta", false),
            (">=0.0.0", "0.0.1-alpha", false),
            (">=0.0.0-0", "0.0.1-alpha", true),
            (">=0.0.0-0", "0.0.0-0", true),
            (">=0.0.0-0", "7.8.9-rc.1", true),
            (">=0.0.0-0", "7.8.9", true),
            (">= 0-0", "0.0.0-alpha", true),
            (">=1.2.3-beta", "1.2.3-alpha", false),
            (">=1.2.3-beta", "1.2.3-beta", true),
            (">=1.2.3-beta", "1.2.3", true),
        ]);
    }

    #[test]
    fn less_than() {
        check(&[
            ("<1.2.3", "1.2.2", true),
            ("<1.2.3", "1.2.3", false),
            ("<1.2.3", "0.0.1", true),
            ("<1.2.3", "1.2.3-beta", false),
            ("<1.2.3-0", "1.2.2-beta", true),
            ("<1.2.3-0", "1.2.3-beta", false),
            ("<1.2", "1.1.9", true),
            ("<1.2", "1.2.0", false),
            ("<1.x", "0.9.9", true),
            ("<1.x", "1.0.0", false),
            ("<1.2.x", "1.2.0", false),
            ("<2", "1.99.99", true),
            ("<0-z", "0.0.0-alpha", true),
            ("<0", "0.0.0", false),
        ]);
    }

    #[test]
    fn less_or_equal() {
        check(&[
            ("<=1.2.3", "1.2.3", true),
            ("<=1.2.3", "1.2.4", false),
            ("=<1.2.3", "1.2.3", true),
            ("=< 1.2.3", "1.3.0", false),
            // Wildcarded upper bounds include the whole wildcarded range.
            ("<=1.2", "1.2.99", true),
            ("<=1.2", "1.3.0", false),
            ("<=1.2.x", "1.2.5", true),
            ("<=1", "1.99.0", true),
            ("<=1.x", "1.99.0", true),
            ("<=1", "2.0.0", false),
            ("<=1.2", "0.9.0", true),
            ("<=1.2", "1.1.0-alpha", false),
            ("<=1.2-alpha", "1.1.0-beta", true),
            // `<=*` keeps only 0.0.x.
            ("<=*", "0.0.5", true),
            ("<=*", "0.1.0", false),
            ("<=*", "1.0.0", false),
        ]);
    }

    #[test]
    fn tilde() {
        check(&[
            ("~1.2.3", "1.2.3", true),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.2.2", false),
            ("~1.2.3", "1.3.0", false),
            ("~>1.2.3", "1.2.5", true),
            ("~> 1.2.3", "1.3.0", false),
            ("~1.2", "1.2.0", true),
            ("~1.2", "1.3.0", false),
            ("~1", "1.9.0", true),
            ("~1", "2.0.0", false),
            ("~1.x", "1.4.0", true),
            ("~0.2.3", "0.2.4", true),
            ("~0.2.3", "0.3.0", false),
            ("~0.0.0", "5.6.7", true),
            ("~*", "5.6.7", true),
            ("~0", "0.5.0", true),
            ("~0", "1.0.0", false),
            ("~1.2.3", "1.2.4-alpha", false),
            ("~1.2.3-beta.2", "1.2.3-beta.4", true),
            ("~1.2.3-beta.2", "1.2.3-beta.1", false),
            // Unlike npm, a prerelease bound admits prereleases of later patches.
            ("~1.2.3-beta.2", "1.2.8-alpha", true),
            ("~1.2.3-beta.2", "1.3.0-alpha", false),
        ]);
    }

    #[test]
    fn caret() {
        check(&[
            ("^1.2.3", "1.2.3", true),
            ("^1.2.3", "1.9.9", true),
            ("^1.2.3", "1.2.2", false),
            ("^1.2.3", "2.0.0", false),
            ("^1.2", "1.2.0", true),
            ("^1.2", "1.1.9", false),
            ("^1", "1.0.0", true),
            ("^1", "2.0.0", false),
            ("^1.x", "1.7.0", true),
            ("^v1.2.3", "1.4.0", true),
            ("^0.2.3", "0.2.3", true),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.2.3", "0.2.2", false),
            ("^0.2", "0.2.9", true),
            ("^0.2", "0.3.0", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0.3", "0.1.3", false),
            ("^0.0", "0.0.9", true),
            ("^0.0", "0.1.0", false),
            ("^0.0.x", "0.0.4", true),
            ("^0", "0.9.9", true),
            ("^0", "1.0.0", false),
            ("^0.x", "0.5.0", true),
            ("^0.0.0", "0.0.0", true),
            ("^0.0.0", "0.0.1", false),
            // Documented as "any" by Masterminds, but only 0.0.0 passes.
            ("^*", "0.0.0", true),
            ("^*", "0.1.0", false),
            ("^*", "1.0.0", false),
            ("^1.2.3", "1.5.0-alpha", false),
            ("^1.2.3-beta", "1.2.3-beta.2", true),
            ("^1.2.3-beta", "1.2.3-alpha", false),
            ("^1.2.3-beta", "1.5.0-alpha", true),
            ("^1.2.3-beta", "2.0.0-alpha", false),
            ("^0.2.3-beta", "0.2.9-rc.1", true),
            ("^0.2.3-beta", "0.3.0-rc.1", false),
        ]);
    }

    #[test]
    fn hyphen_ranges() {
        check(&[
            ("1.2.3 - 2.3.4", "1.2.3", true),
            ("1.2.3 - 2.3.4", "2.3.4", true),
            ("1.2.3 - 2.3.4", "2.3.5", false),
            ("1.2.3 - 2.3.4", "1.2.2", false),
            ("1.2 - 1.4.5", "1.2.0", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            // An upper bound with missing parts covers them all.
            ("1 - 2", "2.9.9", true),
            ("1 - 2", "3.0.0", false),
            ("1.x - 2.x", "2.5.0", true),
            ("v1.0.0 - v2.0.0", "1.5.0", true),
            ("1.0.0   -   2.0.0", "1.5.0", true),
            ("1.0.0 - 2.0.0", "1.5.0-alpha", false),
            ("1.0.0-0 - 2.0.0", "1.5.0-alpha", true),
            ("1.0.0 - 2.0.0 <=1.5.0", "1.6.0", false),
            ("1.0.0 - 2.0.0, !=1.5.0", "1.5.0", false),
            (">=0.1, 1.0.0 - 2.0.0", "1.5.0", true),
            ("1 - 2 || 5 - 6", "5.5.0", true),
            ("1 - 2 || 5 - 6", "4.0.0", false),
            // Without whitespace around it the dash starts a prerelease.
            ("1.1-3", "1.1.0-3", true),
            ("1.1-3", "4.3.2", false),
            // The rewrite leaves a trailing space, so this is two comparators.
            ("1 - 2>1.5", "1.7.0", true),
            ("1 - 2>1.5", "1.5.5", false),
        ]);
    }

    #[test]
    fn and_or() {
        check(&[
            (">=1.2.3, <2.0.0", "1.9.0", true),
            (">=1.2.3, <2.0.0", "2.0.0", false),
            (">=1.2.3 <2.0.0", "1.2.3", true),
            (">= 1.2.3 < 2.0.0", "1.2.2", false),
            (">=1.2.3 , <2.0.0", "1.5.0", true),
            (">=1.2.3,<2.0.0", "1.5.0", true),
            (">1.1 <3 !=2.0.0", "2.0.0", false),
            (">1.1 <3 !=2.0.0", "2.0.1", true),
            (">1.1, <3, !=2.0.0", "2.5.0", true),
            ("1.2.3 || 2.3.4", "2.3.4", true),
            ("1.2.3 || 2.3.4", "1.2.3", true),
            ("1.2.3 || 2.3.4", "1.2.4", false),
            ("1.2.3||2.3.4", "2.3.4", true),
            ("<1 || >=3, <4", "3.5.0", true),
            ("<1 || >=3, <4", "4.0.0", false),
            ("<1 || >=3, <4", "0.5.0", true),
            ("^1.2 || ^2.0", "2.7.0", true),
            ("~1.2 || ~1.4", "1.3.0", false),
        ]);
    }

    #[test]
    fn prereleases_follow_the_alternative() {
        check(&[
            // One comparator with a prerelease lets the whole group admit them.
            (">=1.2.3-beta, <2.0.0", "1.5.0-alpha", true),
            (">=1.2.3-beta <2.0.0", "1.2.3-alpha", false),
            (">=1.0.0 <=2.0.0-beta", "1.0.1-beta", true),
            (">=1.0.0 <=2.0.0-beta", "2.0.0-rc", false),
            (">=1.0.0 <=2.0.0-beta != 1.0.1-beta", "1.0.1-beta", false),
            (">= 1.0.0 <= 2.0.0-beta || > 3", "3.0.1-beta", false),
            (">= 1.0.0 <= 2.0.0-beta || > 3", "1.0.1-beta", true),
            (">=3.0.0-0 || <1", "3.1.0-rc.1", true),
            (">=3.0.0-0 || <1", "0.5.0-rc.1", false),
            (">=1.0.0, ~1.2-0", "1.2.5-rc.1", true),
            ("~1.2", "1.2.5-rc.1", false),
            ("!=1.2.3", "1.2.4-rc.1", false),
        ]);
    }

    #[test]
    fn limits() {
        let long = format!(">={}", "1".repeat(MAX_VERSION_LEN));
        match Constraint::parse(&long) {
            Err(Error::InvalidConstraint {
                constraint,
                message,
            }) => {
                assert!(constraint.len() < 40, "{constraint}");
                assert!(message.contains("at most 256 bytes"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let longest = format!("{}1", " ".repeat(MAX_VERSION_LEN - 1));
        assert!(Constraint::parse(&longest).is_ok());
        let many = vec!["1"; MAX_ALTERNATIVES].join("||");
        assert!(Constraint::parse(&many).is_ok());
        let too_many = vec!["1"; MAX_ALTERNATIVES + 1].join("||");
        match Constraint::parse(&too_many) {
            Err(Error::InvalidConstraint { message, .. }) => {
                assert!(message.contains("at most 32"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let huge = "1".repeat(100_000);
        assert!(Constraint::parse(&huge).is_err());
    }

    #[test]
    fn display_and_fromstr() {
        for text in [">= 1.2.3, < 2", "^1.2 || ~0.3", "  1.x  ", "1 - 2"] {
            let c: Constraint = text.parse().expect("valid constraint");
            assert_eq!(c.to_string(), text);
            assert_eq!(c.as_str(), text);
        }
    }

    #[test]
    fn invalid() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("latest", "\"latest\" is not a version"),
            ("foo 1.2.3", "\"foo\" is not a version"),
            ("1.2.3.4", "unexpected '.' after \"1.2.3\""),
            ("1.2.3 4.5.6.7", "unexpected '.' after \"4.5.6\""),
            ("V1.2.3", "\"V1.2.3\" is not a version"),
            ("vv1", "\"vv1\" is not a version"),
            ("v", "\"v\" is not a version"),
            ("1.2.3-", "unexpected '-' after \"1.2.3\""),
            ("1.2.3-beta..1", "unexpected '.' after \"1.2.3-beta\""),
            (
                "1.2.3-beta.01",
                "\"01\" in \"1.2.3-beta.01\" has a leading zero",
            ),
            ("*-00", "\"00\" in \"*-00\" has a leading zero"),
            ("1.2.3+", "unexpected '+' after \"1.2.3\""),
            ("1.2x", "\"2x\" in \"1.2x\" is neither a number nor x, X, *"),
            ("xx", "\"xx\" in \"xx\" is neither a number nor x, X, *"),
            ("1|2", "\"1|2\" in \"1|2\" is neither a number nor x, X, *"),
            ("1.2.3|", "\"3|\" in \"1.2.3|\""),
            ("99999999999999999999.0.0", "is too large"),
            (">=", "expected a version after \">=\""),
            (">= ,1.0", "expected a version after \">=\", found \",\""),
            ("1.0,", "expected a version after the trailing \",\""),
            ("1.0,,2.0", "expected a version before \",\""),
            (",1.0", "expected a version before \",\""),
            ("> = 1.0", "\"=\" is not a version"),
            (">>1.0", "\">1.0\" is not a version"),
            ("=>=1.0", "\"=1.0\" is not a version"),
            ("!1.0", "\"!1.0\" is not a version"),
            ("<1.0>0.5", "unexpected '>' after \"1.0\""),
            (">=1.0<2.0", "unexpected '<' after \"1.0\""),
            (
                "1.0 ||",
                "alternative 2 of the \"||\" list: expected a version",
            ),
            ("|| 1.0", "alternative 1 of the \"||\" list"),
            (
                "1.0 ||| 2.0",
                "alternative 2 of the \"||\" list: \"|\" in \"|\" is neither",
            ),
            ("1.0 | 2.0", "\"|\" in \"|\" is neither"),
            ("1.0 && 2.0", "\"&&\" is not a version"),
            // A range cannot follow an operator or, without a comma, a comparator.
            (">1 - 2", "cannot follow an operator"),
            ("^1.0 - 2.0", "hyphen range \"1.0 - 2.0\""),
            ("2.0 1 - 2", "needs a comma"),
            ("1 - 2 - 3", "hyphen range \"1 - 2\""),
            ("1 -2", "\"-2\" is not a version"),
            ("1 - ", "\"-\" is not a version"),
            ("1.2.3 - 2.3.4.5", "\".5\" is not a version"),
            ("sha256:abc", "\"sha256:abc\" is not a version"),
            ("1.0.0\u{b}", "unexpected '\\u{b}' after \"1.0.0\""),
            ("1.0.0\u{a0}", "unexpected '\\u{a0}' after \"1.0.0\""),
        ];
        for (text, fragment) in cases {
            match Constraint::parse(text) {
                Err(Error::InvalidConstraint {
                    constraint,
                    message,
                }) => {
                    assert_eq!(constraint, text);
                    assert!(
                        message.contains(fragment),
                        "{text:?}: message {message:?} lacks {fragment:?}"
                    );
                }
                other => panic!("{text:?} should be rejected, got {other:?}"),
            }
        }
    }
}

//! Masterminds/semver v1.5.0 constraints, the dialect of Crossplane v2.0 to
//! v2.2 (their go.mod requires `github.com/Masterminds/semver v1.5.0`, the
//! module without `/v3`), reproduced quirk for quirk, and which tags that
//! Crossplane counts as versions.
//!
//! The grammar is the v3 one (`grammar.rs`: same operators, same version
//! regex, same hyphen-range search) used more narrowly:
//!
//! 1. Hyphen ranges become `>= A, <= B`, with no space after, so a range
//!    followed by anything but `,` or `||` is an error (`1 - 2 <3`).
//! 2. The text is split on `||`, then each alternative on `,`. A comma is
//!    the only AND: `>=1.0.0 <2.0.0` is an error.
//! 3. Each piece is whitespace, an operator, whitespace, one version,
//!    whitespace; nothing else, not even an empty piece (`1,` is an error).
//!
//! Reading a version differs from v3 in what counts as a wildcard: only an
//! `x`, `X` or `*`, or a missing minor, is one. A missing patch is not, so
//! `1.2` is exactly 1.2.0 (`>1.2` admits 1.2.5, `<=1.2` does not, `1.2`
//! matches only 1.2.0), while `1` is still `1.x`. A wildcard major drops the
//! prerelease (`*-0` is `*`). Numbers are Go `int64`s, so a part above
//! 9223372036854775807 is an error, and a prerelease identifier may have
//! leading zeros.
//!
//! Matching differs more:
//! - The prerelease rule is per comparator: a comparator whose version has
//!   no prerelease rejects every prerelease, except a plain `!=` (no
//!   wildcard), which never looks. So `>=1.0.0-0, <2.0.0` rejects 1.5.0-rc.1
//!   and `!=1.2.3` admits 1.2.4-rc.1.
//! - `^` only keeps the major: `^0.2.3` admits 0.3.0, `^*` all of 0.x.
//! - `>` ignores wildcards (`>1.x` admits 1.5.0); wildcarded `<` and `<=`
//!   compare major then minor, each on its own: `<1.x` admits 1.5.0, and
//!   `<1.2.x` rejects 0.9.0 because 9 > 2.
//! - `!=` with a wildcard only looks at major and minor: `!=*` rejects all of
//!   0.0.x, `!=1.2.x` all of 1.2.
//! - `~0.0` (no wildcard in v1.5.0) admits everything from 0.0.0 up, as `~*`.

use std::cmp::Ordering;

use super::grammar::{
    Op, RangeEnd, Wildcard, is_ident_char, is_space, read_op, rewrite_ranges, skip_spaces,
    version_prefix,
};
use super::length::{MAX_VERSION_LEN, too_long};
use super::precedence::compare;
use crate::error::{Error, Result};

/// The most `||` alternatives accepted. Masterminds v1.5.0 has no limit;
/// this is the v3.5.0 one (`MAX_ALTERNATIVES`), kept for every dialect.
const MAX_ALTERNATIVES: usize = super::constraint::MAX_ALTERNATIVES;

/// Go's `int64` bound on every part of a v1.5.0 version.
const MAX_PART: u64 = i64::MAX as u64;

/// A parsed Masterminds v1.5.0 constraint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Constraint {
    /// `||` alternatives, each a list of comparators that must all hold.
    alternatives: Vec<Vec<Comparator>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Comparator {
    op: Op,
    /// The version with wildcards and missing parts read as 0.
    core: [u64; 3],
    /// Empty under a wildcard major, whatever was written.
    pre: String,
    wildcard: Wildcard,
}

impl Constraint {
    /// `NewConstraint` of v1.5.0, after the common length limit and the
    /// v3.5.0 limit on alternatives. Each piece is matched in time linear
    /// in its length; the range rewrite is bounded as for v3.
    pub(super) fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_VERSION_LEN {
            return Err(too_long(text));
        }
        let invalid = |message: String| Error::InvalidConstraint {
            constraint: text.to_owned(),
            message,
        };
        let (rewritten, ranges) = rewrite_ranges(text, RangeEnd::Tight);
        let branches: Vec<&str> = rewritten.split("||").collect();
        if branches.len() > MAX_ALTERNATIVES {
            return Err(invalid(format!(
                "{} alternatives joined by \"||\"; at most {MAX_ALTERNATIVES} are allowed \
                 (Masterminds v3.5.0's MaxConstraintGroups, applied to every dialect)",
                branches.len()
            )));
        }
        let mut alternatives = Vec::with_capacity(branches.len());
        for (index, branch) in branches.iter().enumerate() {
            let pieces: Vec<&str> = branch.split(',').collect();
            let mut comparators = Vec::with_capacity(pieces.len());
            for (at, piece) in pieces.iter().enumerate() {
                let comparator = parse_piece(piece, at, pieces.len()).map_err(|message| {
                    let message = if branches.len() > 1 {
                        format!("alternative {} of the \"||\" list: {message}", index + 1)
                    } else {
                        message
                    };
                    let range = ranges.iter().find(|(low, high)| {
                        piece.contains(&format!("<= {high}")) && {
                            branch.contains(&format!(">= {low}, <= {high}"))
                        }
                    });
                    invalid(match range {
                        Some((low, high)) => format!(
                            "{message} (after rewriting the hyphen range \"{low} - {high}\" to \
                             \">= {low}, <= {high}\", which Masterminds v1.5.0 follows with \
                             nothing: only \",\" or \"||\" may come next)"
                        ),
                        None => message,
                    })
                })?;
                comparators.push(comparator);
            }
            alternatives.push(comparators);
        }
        Ok(Constraint { alternatives })
    }

    /// `Constraints.Check` of v1.5.0 on a version it could hold (every part
    /// at most `i64::MAX`; anything larger never matches, as v1.5.0 cannot
    /// parse it). Build metadata never matters.
    pub(super) fn matches(&self, core: [u64; 3], pre: &str) -> bool {
        if core.iter().any(|&part| part > MAX_PART) {
            return false;
        }
        self.alternatives
            .iter()
            .any(|comparators| comparators.iter().all(|c| c.admits(core, pre)))
    }
}

impl Comparator {
    fn admits(&self, vc: [u64; 3], v_pre: &str) -> bool {
        let cmp = compare(vc, v_pre, self.core, &self.pre);
        let [major, minor, _] = self.core;
        // Every function but a plain `!=` first turns a prerelease away
        // unless this comparator's own version has one.
        let turned_away = !v_pre.is_empty() && self.pre.is_empty();
        match self.op {
            Op::NotEqual if self.wildcard == Wildcard::None => cmp != Ordering::Equal,
            _ if turned_away => false,
            Op::NotEqual => vc[0] != major || (self.wildcard != Wildcard::Minor && vc[1] != minor),
            Op::Greater => cmp == Ordering::Greater,
            Op::GreaterEqual => cmp != Ordering::Less,
            Op::Less if self.wildcard == Wildcard::None => cmp == Ordering::Less,
            Op::LessEqual if self.wildcard == Wildcard::None => cmp != Ordering::Greater,
            // Major, then minor, each against its own bound: not an order.
            Op::Less | Op::LessEqual => {
                vc[0] <= major && (self.wildcard == Wildcard::Minor || vc[1] <= minor)
            }
            Op::Exact if self.wildcard == Wildcard::None => cmp == Ordering::Equal,
            Op::Exact | Op::Tilde => {
                cmp != Ordering::Less
                    && ((self.core == [0, 0, 0]
                        && matches!(self.wildcard, Wildcard::None | Wildcard::Major))
                        || (vc[0] == major && (self.wildcard == Wildcard::Minor || vc[1] == minor)))
            }
            Op::Caret => cmp != Ordering::Less && vc[0] == major,
        }
    }
}

/// One comma-separated piece: `\s*OP\s*VERSION\s*`, nothing more.
fn parse_piece(piece: &str, at: usize, of: usize) -> std::result::Result<Comparator, String> {
    let b = piece.as_bytes();
    let start = skip_spaces(b, 0);
    let (op, op_len) = read_op(&b[start..]);
    let op_text = &piece[start..start + op_len];
    let version_start = skip_spaces(b, start + op_len);
    let mut end = b.len();
    while end > version_start && is_space(b[end - 1]) {
        end -= 1;
    }
    let version = &piece[version_start..end];
    if version.is_empty() {
        return Err(match (op_text, of) {
            ("", 1) => "expected a version".to_owned(),
            ("", _) if at + 1 == of => "expected a version after the trailing \",\"".to_owned(),
            ("", _) => "expected a version before \",\"".to_owned(),
            (op, _) => format!("expected a version after \"{op}\""),
        });
    }
    if let Some(gap) = version.bytes().position(is_space) {
        return Err(format!(
            "\"{}\" and \"{}\" are separated by whitespace, which Masterminds v1.5.0 \
             (Crossplane v2.0 to v2.2) does not read as AND: join comparators with \",\"",
            &version[..gap],
            version[gap..].trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
        ));
    }
    parse_version(op, version)
}

fn is_x(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

fn parse_version(op: Op, text: &str) -> std::result::Result<Comparator, String> {
    let length = version_prefix(text.as_bytes());
    if length != text.len() {
        let what = match text[length..].chars().next() {
            Some(c) if length > 0 => format!("unexpected {c:?} after \"{}\"", &text[..length]),
            _ => "expected [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], each of MAJOR, \
                  MINOR, PATCH a number or x, X, *"
                .to_owned(),
        };
        return Err(format!("\"{text}\" is not a version: {what}"));
    }
    // The grammar has matched, so these splits find what it found.
    let body = text.strip_prefix('v').unwrap_or(text);
    let body = body.split('+').next().unwrap_or(body);
    let (core, pre) = body.split_once('-').unwrap_or((body, ""));
    let parts: Vec<&str> = core.split('.').collect();
    let number = |part: &str| {
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "\"{part}\" in \"{text}\" is neither a number nor x, X, *"
            ));
        }
        part.parse::<i64>().map(|n| n as u64).map_err(|_| {
            format!(
                "\"{part}\" in \"{text}\" is too large: Masterminds v1.5.0 reads numbers as \
                 int64 (at most {MAX_PART})"
            )
        })
    };
    let (minor, patch) = (parts.get(1).copied(), parts.get(2).copied());
    let (core, pre, wildcard) = if is_x(parts[0]) {
        // `x.1.2-rc` is read as "0.0.0": the rest, prerelease too, is gone.
        ([0, 0, 0], "", Wildcard::Major)
    } else if minor.is_none_or(is_x) {
        ([number(parts[0])?, 0, 0], pre, Wildcard::Minor)
    } else if let (Some(minor), Some(true)) = (minor, patch.map(is_x)) {
        ([number(parts[0])?, number(minor)?, 0], pre, Wildcard::Patch)
    } else {
        let minor = number(minor.unwrap_or("0"))?;
        let patch = patch.map_or(Ok(0), number)?;
        ([number(parts[0])?, minor, patch], pre, Wildcard::None)
    };
    Ok(Comparator {
        op,
        core,
        pre: pre.to_owned(),
        wildcard,
    })
}

/// Whether Crossplane v2.0 to v2.2 count `tag` as a version, and which: its
/// resolver keeps a tag that v1.5.0's `NewVersion` parses and whose
/// canonical form is the tag minus one leading `v`. That is
/// `MAJOR.MINOR.PATCH` without leading zeros, each at most `i64::MAX`, and
/// an optional prerelease and build of dot-separated `[0-9A-Za-z-]+`
/// identifiers; unlike v3, a numeric prerelease identifier may have leading
/// zeros (`1.2.3-01` counts). Returns the core and the prerelease.
pub(super) fn parse_tag(tag: &str) -> Option<([u64; 3], &str)> {
    let body = tag.strip_prefix('v').unwrap_or(tag);
    let (rest, build) = match body.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (body, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let identifiers = |text: &str| {
        text.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(is_ident_char))
    };
    if !pre.is_none_or(identifiers) || !build.is_none_or(identifiers) {
        return None;
    }
    let mut parts = core.split('.');
    let mut number = || {
        let part = parts.next()?;
        let canonical = part == "0" || !part.starts_with('0');
        let digits = !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit());
        (canonical && digits)
            .then(|| part.parse::<i64>().ok())
            .flatten()
            .map(|n| n as u64)
    };
    let version = [number()?, number()?, number()?];
    parts
        .next()
        .is_none()
        .then_some((version, pre.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, &str, bool)]) {
        for &(constraint, version, want) in cases {
            let c = Constraint::parse(constraint)
                .unwrap_or_else(|e| panic!("{constraint:?} should parse: {e}"));
            let (core, pre) = parse_tag(version).expect("test versions count");
            assert_eq!(
                c.matches(core, pre),
                want,
                "{constraint:?} against {version}"
            );
        }
    }

    #[test]
    fn exact_and_partial() {
        check(&[
            ("1.2.3", "1.2.3", true),
            ("=v1.2.3+b", "1.2.3", true),
            ("  = 1.2.3  ", "1.2.3", true),
            ("01.002.03", "1.2.3", true),
            // A missing patch is not a wildcard.
            ("1.2", "1.2.0", true),
            ("1.2", "1.2.5", false),
            ("=1.2", "1.2.5", false),
            // A missing minor is.
            ("1", "1.9.0", true),
            ("1", "2.0.0", false),
            ("1.x", "1.9.0", true),
            ("1.2.x", "1.2.7", true),
            ("*", "7.0.0", true),
        ]);
    }

    #[test]
    fn comparisons() {
        check(&[
            (">1.2", "1.2.5", true),
            (">1.2", "1.2.0", false),
            (">1.x", "1.5.0", true),
            (">=1.2", "1.2.0", true),
            ("<1.2", "1.1.9", true),
            ("<1.2", "1.2.0", false),
            ("<=1.2", "1.2.5", false),
            ("<=1.2", "1.2.0", true),
            ("<=1.2.x", "1.2.5", true),
            ("<1.x", "1.5.0", true),
            ("<1.x", "2.0.0", false),
            ("<1.2.x", "1.2.9", true),
            ("<1.2.x", "0.9.0", false),
            ("<1.2.x", "0.1.0", true),
            ("<*", "0.0.5", true),
            ("<*", "0.1.0", false),
            ("!=1.2.3", "1.2.3", false),
            ("!=1.2", "1.2.5", true),
            ("!=1.2.x", "1.2.5", false),
            ("!=1.2.x", "1.3.0", true),
            ("!=1.x", "1.3.0", false),
            ("!=*", "0.0.5", false),
            ("!=*", "0.1.0", true),
        ]);
    }

    #[test]
    fn tilde_and_caret() {
        check(&[
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1.2", "1.2.9", true),
            ("~1", "1.9.0", true),
            ("~0.0", "5.0.0", true),
            ("~0.0.x", "0.1.0", false),
            ("~*", "5.0.0", true),
            ("^1.2.3", "1.9.0", true),
            ("^1.2.3", "2.0.0", false),
            ("^0.2.3", "0.3.0", true),
            ("^0.2.3", "0.2.2", false),
            ("^0.0.3", "0.0.4", true),
            ("^0.0.3", "1.0.0", false),
            ("^*", "0.5.0", true),
            ("^*", "1.0.0", false),
        ]);
    }

    #[test]
    fn prereleases_per_comparator() {
        check(&[
            (">=1.0.0-0", "1.5.0-rc.1", true),
            (">=1.0.0-0, <2.0.0", "1.5.0-rc.1", false),
            (">=1.0.0-0, <2.0.0-0", "1.5.0-rc.1", true),
            ("!=1.2.3", "1.2.4-rc.1", true),
            ("!=1.2.x", "1.2.4-rc.1", false),
            ("*-0", "1.0.0-rc.1", false),
            ("1.x-0", "1.5.0-rc.1", true),
            // v1.5.0 reads `01`, and puts it below `1` and `1` below it
            // (its comparePrePart; both checked against the oracle).
            ("1.2.3-beta.01", "1.2.3-beta.1", false),
            ("=1.2.3-beta.1", "1.2.3-beta.01", false),
            (">0.1.1-01", "0.1.1-1.alpha", false),
            ("<1.0.0 || >=2.0.0-0", "2.1.0-rc.1", true),
            ("<1.0.0-0 || >=2.0.0", "2.1.0-rc.1", false),
        ]);
    }

    #[test]
    fn lists_and_ranges() {
        check(&[
            (">=1.0.0, <2.0.0", "1.5.0", true),
            (">=1.0.0,<2.0.0", "2.0.0", false),
            ("1 - 2", "2.9.0", true),
            ("1.0.0 - 2.0.0", "2.0.1", false),
            ("1 - 2 || 5 - 6", "5.5.0", true),
            ("1 - 2, !=1.5.0", "1.5.0", false),
            ("^1 || ~0.3", "0.3.9", true),
        ]);
    }

    #[test]
    fn invalid() {
        let cases = [
            ("", "expected a version"),
            ("   ", "expected a version"),
            (">=1.0.0 <2.0.0", "does not read as AND"),
            ("1.0.0 - 2.0.0 <3", "follows with nothing"),
            ("1.0,", "after the trailing \",\""),
            (",1.0", "before \",\""),
            (">=", "after \">=\""),
            ("1 ||", "alternative 2 of the \"||\" list"),
            ("latest", "\"latest\" is not a version"),
            ("1.2.3.4", "unexpected '.'"),
            ("1.2x", "neither a number"),
            ("9223372036854775808", "too large"),
            ("1.9223372036854775808.0", "too large"),
            ("1|2", "neither a number"),
        ];
        for (text, fragment) in cases {
            match Constraint::parse(text) {
                Err(Error::InvalidConstraint { message, .. }) => {
                    assert!(message.contains(fragment), "{text:?}: {message}")
                }
                other => panic!("{text:?} should be rejected, got {other:?}"),
            }
        }
        for text in [
            "9223372036854775807",
            "*.99999999999999999999",
            "1.x.|",
            "1.2.3-01",
            "x-01",
        ] {
            assert!(Constraint::parse(text).is_ok(), "{text:?}");
        }
        let many = vec!["1"; MAX_ALTERNATIVES + 1].join("||");
        assert!(Constraint::parse(&many).is_err());
        assert!(Constraint::parse(&"1".repeat(MAX_VERSION_LEN + 1)).is_err());
    }

    #[test]
    fn tags() {
        let cases = [
            ("1.2.3", Some(([1, 2, 3], ""))),
            ("v1.2.3-rc.1+b", Some(([1, 2, 3], "rc.1"))),
            ("1.2.3-01", Some(([1, 2, 3], "01"))),
            ("1.2.3-a-b.c", Some(([1, 2, 3], "a-b.c"))),
            ("9223372036854775807.0.0", Some(([MAX_PART, 0, 0], ""))),
            ("9223372036854775808.0.0", None),
            ("01.2.3", None),
            ("1.2", None),
            ("v1", None),
            ("vv1.2.3", None),
            ("1.2.3-", None),
            ("1.2.3+", None),
            ("1.2.3-a..b", None),
            ("1.2.3+a+b", None),
            ("1.2.3.4", None),
            ("latest", None),
            ("", None),
        ];
        for (tag, want) in cases {
            assert_eq!(parse_tag(tag), want, "{tag:?}");
        }
    }
}

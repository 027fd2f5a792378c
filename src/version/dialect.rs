//! Which Masterminds/semver a Crossplane reads constraints with, and
//! reading a constraint (and counting a tag) the way each one does.
//!
//! Each Crossplane v2 minor pins one library in its go.mod, and its package
//! manager uses it both to parse `dependsOn[].version` and to decide which
//! tags of a repository are versions at all:
//!
//! | Crossplane   | library                        | [`Dialect`] |
//! |--------------|--------------------------------|-------------|
//! | v2.0 to v2.2 | `Masterminds/semver` v1.5.0    | `V1_5`      |
//! | v2.3         | `Masterminds/semver/v3` v3.4.0 | `V3_4`      |
//! | v2.4 on      | `Masterminds/semver/v3` v3.5.0 | `V3_5`      |
//!
//! v3.4.0 and v3.5.0 differ only in v3.5.0's limits (512 bytes, 32 `||`
//! alternatives, 256-byte versions), which this crate applies to every
//! dialect ([`MAX_VERSION_LEN`](super::MAX_VERSION_LEN),
//! [`MAX_ALTERNATIVES`]), so within them the two read every constraint and
//! tag alike. v1.5.0 differs on real constraints (see `v1.rs`): `^0.2.3`
//! admits 0.3.0 there, `>=1.0.0 <2.0.0` is an error there, `>1.2` admits
//! 1.2.5 there and `<=1.2` does not, and a prerelease passes a v1.5.0
//! alternative only if every comparator of it carries one.
//!
//! [`select_highest_in`] picks a version every given dialect agrees on:
//! one that each of those Crossplanes would accept.

use std::fmt;

use semver::Version;

use super::constraint::{Constraint, MAX_ALTERNATIVES};
use super::precedence::{by_precedence, precedence};
use super::tag::parse_tag;
use super::v1;
use crate::error::{Error, Result};

/// A Masterminds/semver constraint language, named by its library version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// `github.com/Masterminds/semver` v1.5.0: Crossplane v2.0 to v2.2.
    V1_5,
    /// `github.com/Masterminds/semver/v3` v3.4.0: Crossplane v2.3.
    V3_4,
    /// `github.com/Masterminds/semver/v3` v3.5.0: Crossplane v2.4 and later.
    V3_5,
}

impl Dialect {
    /// Every dialect, oldest first.
    pub const ALL: [Dialect; 3] = [Dialect::V1_5, Dialect::V3_4, Dialect::V3_5];

    /// The dialect of a Crossplane v2 minor: `v2.2` or `2.2` (a patch, as in
    /// `v2.2.0`, is allowed and ignored). `None` for anything else,
    /// including other majors and leading zeros. Minors after v2.4 are
    /// taken to keep v3.5.0 until a release says otherwise.
    pub fn for_crossplane(minor: &str) -> Option<Dialect> {
        let text = minor.strip_prefix('v').unwrap_or(minor);
        let mut parts = text.split('.');
        let number = |part: Option<&str>| {
            part.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .filter(|p| *p == "0" || !p.starts_with('0'))
                .and_then(|p| p.parse::<u64>().ok())
        };
        let (major, minor) = (number(parts.next())?, number(parts.next())?);
        if let Some(patch) = parts.next() {
            number(Some(patch))?;
        }
        if major != 2 || parts.next().is_some() {
            return None;
        }
        Some(match minor {
            0..=2 => Dialect::V1_5,
            3 => Dialect::V3_4,
            _ => Dialect::V3_5,
        })
    }

    /// The Go module and version, as go.mod spells them.
    pub fn library(self) -> &'static str {
        match self {
            Dialect::V1_5 => "github.com/Masterminds/semver v1.5.0",
            Dialect::V3_4 => "github.com/Masterminds/semver/v3 v3.4.0",
            Dialect::V3_5 => "github.com/Masterminds/semver/v3 v3.5.0",
        }
    }

    /// The Crossplane minors that read constraints this way.
    pub fn crossplane(self) -> &'static str {
        match self {
            Dialect::V1_5 => "v2.0 to v2.2",
            Dialect::V3_4 => "v2.3",
            Dialect::V3_5 => "v2.4 and later",
        }
    }

    /// `NewConstraint` of this dialect's library, within the crate's limits
    /// (an error there names the limit). The error message says which
    /// library refused the text.
    pub fn parse(self, text: &str) -> Result<DialectConstraint> {
        let reading = match self {
            Dialect::V1_5 => v1::Constraint::parse(text).map(Reading::V1),
            Dialect::V3_4 | Dialect::V3_5 => Constraint::parse(text).map(Reading::V3),
        };
        match reading {
            Ok(reading) => Ok(DialectConstraint {
                dialect: self,
                text: text.to_owned(),
                reading,
            }),
            Err(Error::InvalidConstraint {
                constraint,
                message,
            }) => Err(Error::InvalidConstraint {
                constraint,
                message: format!("{message} (read as {self})"),
            }),
            Err(other) => Err(other),
        }
    }

    /// Whether this dialect's Crossplane counts `tag` as a version when it
    /// lists a repository's tags, and the version it stands for: its core
    /// and prerelease. v3 counts strict SemVer 2.0 ([`parse_tag`]); v1.5.0
    /// also counts a prerelease with leading zeros (`1.2.3-01`) and does
    /// not count a part above `i64::MAX`.
    pub fn tag_version(self, tag: &str) -> Option<([u64; 3], String)> {
        let counted = Counted::of(tag);
        counted.counts_in(self).then(|| {
            let (core, pre) = counted.parts();
            (core, pre.to_owned())
        })
    }

    /// Whether this dialect's Crossplane would accept `tag` for the
    /// constraint: the tag counts and the constraint's `Check` holds. A
    /// constraint this dialect cannot parse is the error.
    pub fn matches(self, constraint_text: &str, tag: &str) -> Result<bool> {
        Ok(self.parse(constraint_text)?.matches_tag(tag))
    }
}

impl fmt::Display for Dialect {
    /// `Masterminds/semver v1.5.0 (Crossplane v2.0 to v2.2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let library = self.library().trim_start_matches("github.com/");
        write!(f, "{library} (Crossplane {})", self.crossplane())
    }
}

/// A constraint as one dialect reads it. Displays as its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialectConstraint {
    dialect: Dialect,
    text: String,
    reading: Reading,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Reading {
    V1(v1::Constraint),
    V3(Constraint),
}

impl DialectConstraint {
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `Constraints.Check` (prereleases not forced in, as Crossplane
    /// leaves it). Under v1.5.0 a version with a part above `i64::MAX`,
    /// which that library cannot hold, never matches.
    pub fn matches(&self, version: &Version) -> bool {
        match &self.reading {
            Reading::V1(c) => c.matches(
                [version.major, version.minor, version.patch],
                version.pre.as_str(),
            ),
            Reading::V3(c) => c.matches(version),
        }
    }

    /// Whether the tag counts in this dialect and satisfies the constraint.
    pub fn matches_tag(&self, tag: &str) -> bool {
        self.matches_counted(&Counted::of(tag))
    }

    fn matches_counted(&self, tag: &Counted) -> bool {
        match (&self.reading, tag) {
            (
                Reading::V1(c),
                Counted {
                    v1: Some((core, pre)),
                    ..
                },
            ) => c.matches(*core, pre),
            (Reading::V3(c), Counted { v3: Some(v), .. }) => c.matches(v),
            _ => false,
        }
    }
}

/// A tag as each library reads it, when it counts there.
#[derive(Clone)]
struct Counted<'a> {
    v1: Option<([u64; 3], &'a str)>,
    v3: Option<Version>,
}

impl<'a> Counted<'a> {
    fn of(tag: &'a str) -> Self {
        Counted {
            v1: v1::parse_tag(tag),
            v3: parse_tag(tag),
        }
    }

    fn counts_in(&self, dialect: Dialect) -> bool {
        match dialect {
            Dialect::V1_5 => self.v1.is_some(),
            Dialect::V3_4 | Dialect::V3_5 => self.v3.is_some(),
        }
    }

    /// Core and prerelease; where both libraries count the tag they agree.
    fn parts(&self) -> ([u64; 3], &str) {
        match (&self.v3, &self.v1) {
            (Some(v), _) => ([v.major, v.minor, v.patch], v.pre.as_str()),
            (None, Some((core, pre))) => (*core, pre),
            (None, None) => ([0; 3], ""),
        }
    }
}

impl fmt::Display for DialectConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The highest tag that counts as a version in every one of `dialects` and
/// satisfies every one of `constraint_texts` as each of them reads it:
/// a version any of those Crossplanes would accept. No dialects means all
/// of them ([`Dialect::ALL`]); no constraints means every tag that counts.
///
/// A constraint that one of the dialects cannot parse is the error (that
/// Crossplane would refuse the dependency outright), naming the dialect.
/// Order and ties are [`select_highest`](super::select_highest)'s:
/// Masterminds' precedence, then the greatest tag string.
pub fn select_highest_in<'a>(
    dialects: &[Dialect],
    constraint_texts: &[&str],
    tags: impl IntoIterator<Item = &'a str>,
) -> Result<Option<&'a str>> {
    Readings::of(constraint_texts).select_highest_in(dialects, tags)
}

/// What each dialect alone would take from `tags` under
/// `constraint_texts`, found in one pass over the tags (each read once):
/// `None` for a dialect that cannot parse one of the constraints,
/// `Some(None)` for one that takes no tag. Order and ties as
/// [`select_highest_in`]'s.
pub fn highest_per_dialect<'a>(
    constraint_texts: &[&str],
    tags: impl IntoIterator<Item = &'a str>,
) -> [(Dialect, Option<Option<&'a str>>); 3] {
    Readings::of(constraint_texts).highest_per_dialect(tags)
}

/// Constraint texts read once under every dialect, for choosing among tags
/// more than once ([`select_highest_in`], [`highest_per_dialect`]) without
/// parsing them again.
#[derive(Clone, Debug)]
pub struct Readings {
    /// By [`Dialect::ALL`]'s order: every text read by that dialect, or
    /// the error of the first text it cannot parse.
    by_dialect: [Result<Vec<DialectConstraint>>; 3],
}

impl Readings {
    pub fn of(constraint_texts: &[&str]) -> Self {
        let read = |dialect: Dialect| -> Result<Vec<DialectConstraint>> {
            constraint_texts.iter().map(|t| dialect.parse(t)).collect()
        };
        Self {
            by_dialect: Dialect::ALL.map(read),
        }
    }

    fn of_dialect(&self, dialect: Dialect) -> &Result<Vec<DialectConstraint>> {
        let i = Dialect::ALL.iter().position(|&d| d == dialect);
        &self.by_dialect[i.unwrap_or_default()]
    }

    /// [`select_highest_in`] of these texts.
    pub fn select_highest_in<'a>(
        &self,
        dialects: &[Dialect],
        tags: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<&'a str>> {
        self.select_highest_among(dialects, &Versions::of(tags), |_| false)
    }

    /// [`select_highest_in`] of these texts over tags already read, passing
    /// over those `skip` names: a caller that asks again with one more tag
    /// skipped reads no tag twice.
    pub fn select_highest_among<'a>(
        &self,
        dialects: &[Dialect],
        versions: &Versions<'a>,
        skip: impl Fn(&str) -> bool,
    ) -> Result<Option<&'a str>> {
        let dialects = if dialects.is_empty() {
            &Dialect::ALL[..]
        } else {
            dialects
        };
        let mut readings: Vec<&DialectConstraint> = Vec::new();
        for &dialect in dialects {
            match self.of_dialect(dialect) {
                Ok(read) => readings.extend(read),
                Err(error) => return Err(error.clone()),
            }
        }
        Ok(versions
            .tags
            .iter()
            .filter(|(tag, _)| !skip(tag))
            .filter(|(_, counted)| dialects.iter().all(|&d| counted.counts_in(d)))
            .filter(|(_, counted)| readings.iter().all(|c| c.matches_counted(counted)))
            .max_by(|(a_tag, a), (b_tag, b)| {
                let ((a, a_pre), (b, b_pre)) = (a.parts(), b.parts());
                precedence(a, a_pre, b, b_pre).then_with(|| a_tag.cmp(b_tag))
            })
            .map(|(tag, _)| *tag))
    }

    /// [`highest_per_dialect`] of these texts.
    pub fn highest_per_dialect<'a>(
        &self,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> [(Dialect, Option<Option<&'a str>>); 3] {
        self.highest_per_dialect_among(&Versions::of(tags))
    }

    /// [`highest_per_dialect`] of these texts over tags already read.
    pub fn highest_per_dialect_among<'a>(
        &self,
        versions: &Versions<'a>,
    ) -> [(Dialect, Option<Option<&'a str>>); 3] {
        let readings: [Option<&Vec<DialectConstraint>>; 3] =
            [0, 1, 2].map(|i| self.by_dialect[i].as_ref().ok());
        let mut best: [Option<(&'a str, &Counted<'a>)>; 3] = [None, None, None];
        for (tag, counted) in &versions.tags {
            let tag: &'a str = tag;
            for (i, &dialect) in Dialect::ALL.iter().enumerate() {
                let Some(readings) = readings[i] else {
                    continue;
                };
                if !counted.counts_in(dialect)
                    || !readings.iter().all(|c| c.matches_counted(counted))
                {
                    continue;
                }
                let higher = best[i].is_none_or(|(best_tag, best_counted)| {
                    let ((a, a_pre), (b, b_pre)) = (counted.parts(), best_counted.parts());
                    precedence(a, a_pre, b, b_pre)
                        .then_with(|| tag.cmp(best_tag))
                        .is_gt()
                });
                if higher {
                    best[i] = Some((tag, counted));
                }
            }
        }
        let pick = |i: usize| readings[i].map(|_| best[i].map(|(t, _)| t));
        [
            (Dialect::ALL[0], pick(0)),
            (Dialect::ALL[1], pick(1)),
            (Dialect::ALL[2], pick(2)),
        ]
    }
}

/// A repository's tags, each read once as every dialect counts it, for
/// choosing among them more than once (each pass of a pick, the dialects'
/// disagreement, the highest release) without reading them again.
pub struct Versions<'a> {
    tags: Vec<(&'a str, Counted<'a>)>,
}

impl<'a> Versions<'a> {
    pub fn of(tags: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            tags: tags
                .into_iter()
                .map(|tag| (tag, Counted::of(tag)))
                .collect(),
        }
    }

    /// The highest release (a tag that counts as strict SemVer, without a
    /// prerelease) when it is higher than `chosen`, in
    /// [`select_highest`](super::select_highest)'s order: what a
    /// constraint keeps the package from.
    pub fn release_above(&self, chosen: &str) -> Option<&'a str> {
        let (highest, top) = self
            .tags
            .iter()
            .filter_map(|(tag, counted)| Some((*tag, counted.v3.as_ref()?)))
            .filter(|(_, v)| v.pre.is_empty())
            .max_by(|(a_tag, a), (b_tag, b)| by_precedence(a, b).then_with(|| a_tag.cmp(b_tag)))?;
        if highest == chosen {
            return None;
        }
        // A chosen tag strict SemVer does not count (one only v1.5.0
        // reads) is below any release.
        let higher = parse_tag(chosen).is_none_or(|chosen_version| {
            by_precedence(top, &chosen_version)
                .then_with(|| highest.cmp(chosen))
                .is_gt()
        });
        higher.then_some(highest)
    }
}

/// Kept in step with the v3 limit, which every dialect applies.
const _: () = assert!(MAX_ALTERNATIVES == 32);

#[cfg(test)]
mod tests {
    use super::*;
    use Dialect::*;

    #[test]
    fn one_pass_per_dialect_agrees_with_each_alone() {
        let tags = [
            "v0.2.5",
            "v0.3.0",
            "v1.2.5",
            "v1.2.0",
            "v2.0.0-rc.1",
            "junk",
            "1.2.3-01",
        ];
        for texts in [
            &["^v0.2.3"][..],
            &[">1.2"],
            &["<=1.2"],
            &[">=1.0.0 <2.0.0"],
            &[">=0.0.0-0"],
            &[],
            &["^0.2.3", "<0.3.0"],
        ] {
            for (dialect, pick) in highest_per_dialect(texts, tags) {
                let alone = select_highest_in(&[dialect], texts, tags).ok();
                assert_eq!(pick, alone, "{texts:?} in {dialect}");
            }
        }
    }

    #[test]
    fn crossplane_minors() {
        let cases = [
            ("v2.0", Some(V1_5)),
            ("2.1", Some(V1_5)),
            ("v2.2", Some(V1_5)),
            ("2.2", Some(V1_5)),
            ("v2.2.0", Some(V1_5)),
            ("v2.3", Some(V3_4)),
            ("v2.3.4", Some(V3_4)),
            ("v2.4", Some(V3_5)),
            ("2.4.0", Some(V3_5)),
            ("v2.9", Some(V3_5)),
            ("v2.10", Some(V3_5)),
            ("v1.20", None),
            ("v3.0", None),
            ("v2", None),
            ("v2.", None),
            ("v2.02", None),
            ("V2.2", None),
            ("vv2.2", None),
            ("v2.2.0.1", None),
            ("v2.2.x", None),
            ("v2.2-rc.1", None),
            (" v2.2", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(Dialect::for_crossplane(text), want, "{text:?}");
        }
    }

    /// Each known disagreement, with what each library says (checked
    /// against the Go libraries by tests/fuzz.rs). `None` is a parse error.
    #[test]
    fn disagreements() {
        type Case = (&'static str, &'static str, Option<bool>, Option<bool>);
        // (constraint, tag, v1.5.0, v3.4.0 = v3.5.0)
        let cases: &[Case] = &[
            // ^ on 0.x: v1.5.0 keeps only the major.
            ("^0.2.3", "0.3.0", Some(true), Some(false)),
            ("^0.2.3", "0.2.9", Some(true), Some(true)),
            ("^0.0.3", "0.0.4", Some(true), Some(false)),
            ("^*", "0.5.0", Some(true), Some(false)),
            // Whitespace is AND only in v3.
            (">=1.0.0 <2.0.0", "1.5.0", None, Some(true)),
            (">=1.0.0, <2.0.0", "1.5.0", Some(true), Some(true)),
            ("1.0.0 - 2.0.0 <1.5.0", "1.2.0", None, Some(true)),
            // A missing patch is a wildcard only in v3.
            (">1.2", "1.2.5", Some(true), Some(false)),
            ("<=1.2", "1.2.5", Some(false), Some(true)),
            ("1.2", "1.2.5", Some(false), Some(true)),
            ("!=1.2", "1.2.5", Some(true), Some(false)),
            ("~0.0", "1.0.0", Some(true), Some(false)),
            // Wildcards under > and <.
            (">1.x", "1.5.0", Some(true), Some(false)),
            (">0", "0.0.1", Some(true), Some(false)),
            ("<1.x", "1.5.0", Some(true), Some(false)),
            ("<1.2.x", "0.9.0", Some(false), Some(true)),
            ("!=*", "0.0.5", Some(false), Some(true)),
            // Prereleases: per comparator in v1.5.0, per alternative in v3.
            (">=1.0.0-0, <2.0.0", "1.5.0-rc.1", Some(false), Some(true)),
            (">=1.0.0-0 <2.0.0 || >=3", "1.5.0-rc.1", None, Some(true)),
            (
                "<1.0.0-0, >0.1 || >=2.0.0-0",
                "0.5.0-rc.1",
                Some(false),
                Some(true),
            ),
            ("!=1.2.3", "1.2.4-rc.1", Some(true), Some(false)),
            ("*-0", "1.0.0-rc.1", Some(false), Some(true)),
            // Numbers and prerelease identifiers.
            (">=9223372036854775808.0.0", "1.0.0", None, Some(false)),
            (">=1.0.0-01", "1.0.0", Some(true), None),
            // Tags: v1.5.0 counts leading-zero prereleases, not huge parts.
            (">=1.0.0-0", "1.2.3-01", Some(true), Some(false)),
            ("*", "9223372036854775808.0.0", Some(false), Some(true)),
        ];
        for &(text, tag, v1, v3) in cases {
            for (dialect, want) in [(V1_5, v1), (V3_4, v3), (V3_5, v3)] {
                let got = dialect.matches(text, tag).ok();
                assert_eq!(got, want, "{text:?} vs {tag:?} in {dialect}");
            }
        }
    }

    #[test]
    fn selection_agrees_across_dialects() {
        let tags = [
            "0.2.3",
            "0.2.9",
            "0.3.0",
            "1.2.0",
            "1.2.5",
            "1.5.0-rc.1",
            "v1.5.0",
            "2.0.0",
        ];
        type Case = (
            &'static [Dialect],
            &'static [&'static str],
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (&[V1_5], &["^0.2.3"], Some("0.3.0")),
            (&[V3_5], &["^0.2.3"], Some("0.2.9")),
            (&[], &["^0.2.3"], Some("0.2.9")),
            (&[V1_5], &[">1.2"], Some("2.0.0")),
            (&[V3_4], &[">1.2"], Some("2.0.0")),
            (&[V1_5], &["<=1.2"], Some("1.2.0")),
            (&[V3_5], &["<=1.2"], Some("1.2.5")),
            (&[], &["<=1.2"], Some("1.2.0")),
            (&[V1_5, V3_5], &["1.2"], Some("1.2.0")),
            (&[V3_5], &[">=1.5.0-0, <1.5.0"], Some("1.5.0-rc.1")),
            (&[V1_5], &[">=1.5.0-0, <1.5.0"], None),
            (&[V3_5], &[">=1.5.0-0, <2.0.0", "!=1.5.0"], None),
            (&[], &["*"], Some("2.0.0")),
            (&[], &[], Some("2.0.0")),
        ];
        for &(dialects, texts, want) in cases {
            assert_eq!(
                select_highest_in(dialects, texts, tags),
                Ok(want),
                "{texts:?} in {dialects:?}"
            );
        }
        // v3 reads it, v1.5.0 does not: an error in any dialect is an error.
        assert!(select_highest_in(&[V3_5], &[">=1 <2"], tags).is_ok());
        match select_highest_in(&[], &[">=1 <2"], tags) {
            Err(Error::InvalidConstraint { message, .. }) => {
                assert!(message.contains("semver v1.5.0"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // A tag must count in every dialect.
        let odd = ["1.0.0-01", "9223372036854775808.0.0", "0.1.0"];
        assert_eq!(
            select_highest_in(&[V1_5], &[">=0.0.0-0"], odd),
            Ok(Some("1.0.0-01"))
        );
        assert_eq!(
            select_highest_in(&[V3_4], &[">=0.0.0-0"], odd),
            Ok(Some("9223372036854775808.0.0"))
        );
        assert_eq!(
            select_highest_in(&[], &[">=0.0.0-0"], odd),
            Ok(Some("0.1.0"))
        );
    }

    #[test]
    fn versions_and_display() {
        let c = V1_5.parse("^0.2").expect("valid");
        assert_eq!(c.to_string(), "^0.2");
        assert_eq!(c.as_str(), "^0.2");
        assert_eq!(c.dialect(), V1_5);
        let v = Version::parse("0.3.0").expect("valid");
        assert!(c.matches(&v));
        assert!(!V3_5.parse("^0.2").expect("valid").matches(&v));
        let huge = Version::parse("9223372036854775808.0.0").expect("valid");
        assert!(!V1_5.parse("*").expect("valid").matches(&huge));
        assert!(V3_4.parse("*").expect("valid").matches(&huge));
        assert_eq!(
            V1_5.to_string(),
            "Masterminds/semver v1.5.0 (Crossplane v2.0 to v2.2)"
        );
        for dialect in Dialect::ALL {
            assert!(dialect.parse(&"1".repeat(300)).is_err());
            assert_eq!(dialect.matches("*", "latest"), Ok(false));
        }
    }
}

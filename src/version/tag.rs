//! Which tags of a repository count as versions, and which one wins.
//!
//! Crossplane's resolver (`findDependencyVersionToInstall` in
//! `internal/controller/pkg/resolver/reconciler.go`) lists the tags, keeps
//! those that Masterminds' lenient `NewVersion` parses *and* whose canonical
//! form equals the tag minus one leading `v`, sorts them, and takes the last
//! one the constraint accepts. The canonical-form test is what drops `v1`
//! (which `NewVersion` would read as 1.0.0 although the tag may not point at
//! 1.0.0), `1.2`, and leading zeros such as `01.2.3`.

use semver::Version;

use super::constraint::Constraint;
use super::precedence::by_precedence;

/// The version a tag stands for, if Crossplane would consider the tag at all:
/// a complete `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]` in strict SemVer 2.0
/// form, optionally behind a single lowercase `v`.
///
/// Strict SemVer 2.0 is exactly the set of strings equal to their own
/// canonical form under Masterminds' lenient parser, so the strict parser of
/// the `semver` crate applies Crossplane's rule.
pub fn parse_tag(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// Whether `text` is a valid OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`,
/// as the distribution spec defines it. Any such tag can name an image,
/// whether or not it counts as a version.
pub fn is_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=128).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The highest tag that counts (see [`parse_tag`]) and satisfies every one
/// of `constraints` (several parents may constrain one package; with none,
/// every counted tag qualifies, prereleases included).
///
/// "Highest" is Masterminds' order, which ignores build metadata. Tags of
/// equal precedence (`v1.0.0` and `1.0.0`, or `1.0.0+a` and `1.0.0+b`) are
/// an unspecified pick in Crossplane (its `sort.Sort` is not stable); here
/// the greatest tag string wins, so `v1.0.0` beats `1.0.0` whatever order
/// the registry lists them in.
pub fn select_highest<'a>(
    constraints: &[&Constraint],
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|tag| parse_tag(tag).map(|version| (tag, version)))
        .filter(|(_, version)| constraints.iter().all(|c| c.matches(version)))
        .max_by(|(a_tag, a), (b_tag, b)| by_precedence(a, b).then_with(|| a_tag.cmp(b_tag)))
        .map(|(tag, _)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_tags() {
        for (tag, ok) in [
            ("v2.2.0", true),
            ("latest", true),
            ("_x", true),
            ("v1.0.0+build", false),
            (".hidden", false),
            ("-x", false),
            ("", false),
            ("a b", false),
        ] {
            assert_eq!(is_tag(tag), ok, "{tag}");
        }
        assert!(is_tag(&"a".repeat(128)));
        assert!(!is_tag(&"a".repeat(129)));
    }

    #[test]
    fn tags_that_count() {
        let cases = [
            ("1.2.3", Some("1.2.3")),
            ("v1.2.3", Some("1.2.3")),
            ("0.0.0", Some("0.0.0")),
            ("v0.1.0", Some("0.1.0")),
            ("v1.2.3-rc.1", Some("1.2.3-rc.1")),
            ("1.2.3-0", Some("1.2.3-0")),
            ("1.2.3-0a", Some("1.2.3-0a")),
            ("1.2.3-alpha-1.x-y", Some("1.2.3-alpha-1.x-y")),
            (
                "v2.3.5-20161202202307-sha.e8fc5e5",
                Some("2.3.5-20161202202307-sha.e8fc5e5"),
            ),
            ("1.2.3+build.5", Some("1.2.3+build.5")),
            ("1.2.3+001", Some("1.2.3+001")),
            (
                "v1.2.3-beta+exp.sha.5114f85",
                Some("1.2.3-beta+exp.sha.5114f85"),
            ),
            ("18446744073709551615.0.0", Some("18446744073709551615.0.0")),
            // Incomplete: Masterminds would read these as x.0.0 and x.y.0.
            ("v1", None),
            ("1", None),
            ("v1.2", None),
            ("1.2-rc.1", None),
            // Not canonical.
            ("01.2.3", None),
            ("1.02.3", None),
            ("v1.2.03", None),
            ("1.2.3-01", None),
            ("1.2.3-rc.01", None),
            // Not versions at all.
            ("latest", None),
            ("main", None),
            ("", None),
            ("v", None),
            ("vv1.2.3", None),
            ("V1.2.3", None),
            (" 1.2.3", None),
            ("1.2.3 ", None),
            ("1.2.3.4", None),
            ("1.2.3-", None),
            ("1.2.3+", None),
            ("1.2.3-rc..1", None),
            ("1.2.3_rc1", None),
            ("1.2.x", None),
            ("18446744073709551616.0.0", None),
            ("sha256-0123abcd.sig", None),
        ];
        for (tag, want) in cases {
            assert_eq!(
                parse_tag(tag).map(|v| v.to_string()),
                want.map(str::to_owned),
                "{tag:?}"
            );
        }
    }

    fn constraints(texts: &[&str]) -> Vec<Constraint> {
        texts
            .iter()
            .map(|t| Constraint::parse(t).expect("valid test constraint"))
            .collect()
    }

    #[test]
    fn highest_satisfying_all() {
        let tags = [
            "latest",
            "v1",
            "v1.0.0",
            "v1.1.0",
            "v1.2.0-rc.1",
            "v1.10.0",
            "v1.9.5",
            "v2.0.0",
            "v2.1.0-rc.1",
            "v3",
            "sha256-abc.sig",
        ];
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[">=1.0.0"], Some("v2.0.0")),
            (&["^1.0.0"], Some("v1.10.0")),
            (&["~1.9.0"], Some("v1.9.5")),
            (&["1.1.0"], Some("v1.1.0")),
            (&["v1.1.0"], Some("v1.1.0")),
            (&["1.x"], Some("v1.10.0")),
            (&["*"], Some("v2.0.0")),
            (&[">=0.0.0-0"], Some("v2.1.0-rc.1")),
            (&[">=2.1.0-0"], Some("v2.1.0-rc.1")),
            (&[">=1.2.0-0, <1.3.0"], Some("v1.2.0-rc.1")),
            // `v3` does not count, so nothing satisfies ^3.
            (&["^3"], None),
            (&["<1.0.0"], None),
            // Several parents: the intersection decides.
            (&[">=1.0.0", "<2.0.0"], Some("v1.10.0")),
            (&["^1.0.0", "~1.9"], Some("v1.9.5")),
            (&["^1.0.0", "!=1.10.0"], Some("v1.9.5")),
            (&["^1.0.0", "^2.0.0"], None),
            (&["<=1.9.5 || >=2", ">1.5"], Some("v2.0.0")),
            (&["<=1.9.5 || >=2", ">1.5", "<2"], Some("v1.9.5")),
            // No constraints at all: every counted tag, prereleases included.
            (&[], Some("v2.1.0-rc.1")),
        ];
        for (texts, want) in cases {
            let parsed = constraints(texts);
            let refs: Vec<&Constraint> = parsed.iter().collect();
            assert_eq!(select_highest(&refs, tags), *want, "{texts:?}");
        }
    }

    #[test]
    fn ties_do_not_depend_on_listing_order() {
        let c = constraints(&["^1"]);
        let refs: Vec<&Constraint> = c.iter().collect();
        let orders: [&[&str]; 2] = [&["1.0.0", "v1.0.0", "0.9.0"], &["v1.0.0", "0.9.0", "1.0.0"]];
        for tags in orders {
            assert_eq!(select_highest(&refs, tags.iter().copied()), Some("v1.0.0"));
        }
        let orders: [&[&str]; 2] = [&["1.0.0+b", "1.0.0+a"], &["1.0.0+a", "1.0.0+b"]];
        for tags in orders {
            assert_eq!(select_highest(&refs, tags.iter().copied()), Some("1.0.0+b"));
        }
        // Build metadata does not raise precedence: 1.0.1 still beats both.
        let tags = ["1.0.0+zzz", "1.0.1", "v1.0.0+zzz"];
        assert_eq!(select_highest(&refs, tags), Some("1.0.1"));
    }

    #[test]
    fn prerelease_ordering_picks_the_latest_candidate() {
        let c = constraints(&[">=1.0.0-0 <1.0.0"]);
        let refs: Vec<&Constraint> = c.iter().collect();
        let tags = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta.11",
            "1.0.0-beta.2",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        assert_eq!(select_highest(&refs, tags), Some("1.0.0-rc.1"));
        assert_eq!(
            select_highest(&refs, tags[..4].iter().copied()),
            Some("1.0.0-beta.11")
        );
    }

    #[test]
    fn nothing_to_choose_from() {
        let c = constraints(&["*"]);
        let refs: Vec<&Constraint> = c.iter().collect();
        assert_eq!(select_highest(&refs, []), None);
        assert_eq!(select_highest(&refs, ["latest", "v1", "main"]), None);
    }
}

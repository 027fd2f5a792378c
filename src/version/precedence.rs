//! Masterminds' order of versions: what `Version.Compare` says, shared by
//! constraints (`constraint.rs`) and tag selection (`tag.rs`).

use std::cmp::Ordering;

use semver::Version;

/// Masterminds' order of versions as a total order, for picking the
/// highest tag: major, minor, patch, then prerelease (a release sorts above
/// its prereleases); build metadata never counts.
pub(super) fn precedence(a: [u64; 3], a_pre: &str, b: [u64; 3], b_pre: &str) -> Ordering {
    order(a, a_pre, b, b_pre, Ties::Equal)
}

/// [`precedence`] of two versions strict SemVer reads.
pub(super) fn by_precedence(a: &Version, b: &Version) -> Ordering {
    precedence(
        [a.major, a.minor, a.patch],
        a.pre.as_str(),
        [b.major, b.minor, b.patch],
        b.pre.as_str(),
    )
}

/// Masterminds' `Version.Compare` exactly, for constraint checks: as
/// [`precedence`], except that two numeric prerelease identifiers of equal
/// value and different spelling (`01` and `1`, which v1.5.0 reads) are
/// unequal and each is below the other, as its `comparePrePart` has it
/// (same value, different text: -1). Not an order: never sort with it.
pub(super) fn compare(a: [u64; 3], a_pre: &str, b: [u64; 3], b_pre: &str) -> Ordering {
    order(a, a_pre, b, b_pre, Ties::Below)
}

/// Identifier by identifier, as [`compare`] reads them; when one list runs
/// out first it is the lower.
pub(super) fn compare_prerelease(a: &str, b: &str) -> Ordering {
    compare_identifiers(a, b, Ties::Below)
}

/// How two numeric identifiers of one value but different spelling compare.
#[derive(Clone, Copy)]
enum Ties {
    /// Equal: a total order.
    Equal,
    /// The left one below, whichever it is: Masterminds.
    Below,
}

fn order(a: [u64; 3], a_pre: &str, b: [u64; 3], b_pre: &str, ties: Ties) -> Ordering {
    a.cmp(&b)
        .then_with(|| match (a_pre.is_empty(), b_pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_identifiers(a_pre, b_pre, ties),
        })
}

fn compare_identifiers(a: &str, b: &str, ties: Ties) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match compare_identifier(x, y, ties) {
                Ordering::Equal => continue,
                unequal => return unequal,
            },
        }
    }
}

/// Numbers compare as numbers and below words; words compare bytewise. A
/// number too large for u64 is a word, as Go's `ParseUint` makes it there.
fn compare_identifier(a: &str, b: &str, ties: Ties) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    match (numeric(a), numeric(b), ties) {
        (Some(x), Some(y), Ties::Below) if x == y => Ordering::Less,
        (Some(x), Some(y), _) => x.cmp(&y),
        (Some(_), None, _) => Ordering::Less,
        (None, Some(_), _) => Ordering::Greater,
        (None, None, _) => a.cmp(b),
    }
}

/// Digits only (no sign, unlike `u64::from_str`), within u64.
pub(super) fn numeric(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// v1.5.0 reads `0.1.1-01`; its `comparePrePart` puts a number below
    /// another of the same value spelled differently, whichever side: a
    /// constraint `>0.1.1-01` does not admit `0.1.1-1.alpha` (found by the
    /// differential suite). Picking the highest tag keeps a total order.
    #[test]
    fn equal_numbers_spelled_differently() {
        use Ordering::*;
        let v = [0, 1, 1];
        assert_eq!(compare(v, "1.alpha", v, "01"), Less);
        assert_eq!(compare(v, "01", v, "1.alpha"), Less);
        assert_eq!(compare(v, "01", v, "1"), Less);
        assert_eq!(compare(v, "1", v, "01"), Less);
        assert_eq!(compare(v, "01", v, "01"), Equal);
        assert_eq!(precedence(v, "01", v, "1"), Equal);
        assert_eq!(precedence(v, "1.alpha", v, "01"), Greater);
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

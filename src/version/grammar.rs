//! The grammar Masterminds/semver v1.5.0 and v3 share: the operators, the
//! constraint-version regex (`cvRegex`, identical in both), and the hyphen
//! range rewrite that runs before anything else is parsed. Only the text a
//! range is rewritten to differs: v3 leaves a trailing space, v1.5.0 none
//! (so in v1.5.0 `1 - 2 <3` becomes `>= 1, <= 2<3`, an error).
//!
//! The v3 parser (`constraint.rs`) and the v1.5.0 parser (`v1.rs`) both
//! build on these pieces, so each regex is reproduced once.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Op {
    /// No operator or `=`: equality, or a tilde range when wildcarded.
    Exact,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// Which part is the first wildcard (or missing), which is all the comparison
/// functions look at. Masterminds calls these dirty, minorDirty, patchDirty;
/// note that `*` (or `x.1.2`) sets neither of the latter two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Wildcard {
    None,
    Major,
    Minor,
    Patch,
}

/// The longest operator at the start; no operator is an operator too.
pub(super) fn read_op(b: &[u8]) -> (Op, usize) {
    match b {
        [b'>', b'=', ..] | [b'=', b'>', ..] => (Op::GreaterEqual, 2),
        [b'<', b'=', ..] | [b'=', b'<', ..] => (Op::LessEqual, 2),
        [b'!', b'=', ..] => (Op::NotEqual, 2),
        [b'~', b'>', ..] => (Op::Tilde, 2),
        [b'>', ..] => (Op::Greater, 1),
        [b'<', ..] => (Op::Less, 1),
        [b'=', ..] => (Op::Exact, 1),
        [b'~', ..] => (Op::Tilde, 1),
        [b'^', ..] => (Op::Caret, 1),
        _ => (Op::Exact, 0),
    }
}

/// Go's `\s`: ASCII space, tab, newline, form feed, carriage return (not
/// vertical tab).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

pub(super) fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    i
}

/// Characters of a major, minor or patch part. The pipe is in Masterminds'
/// character class by accident; it gets through the grammar and fails later
/// unless the part is ignored (as everything after a wildcard major is).
pub(super) fn is_part_char(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'x' | b'X' | b'*' | b'|')
}

pub(super) fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Length of the longest version (Masterminds' constraint-version grammar)
/// at the start of `b`, or 0 if there is none. The grammar has no real
/// ambiguity, so the regex's greedy match is the longest one.
pub(super) fn version_prefix(b: &[u8]) -> usize {
    let run = |from: usize, pred: fn(u8) -> bool| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|&&c| pred(c))
            .count()
    };
    let mut i = usize::from(b.first() == Some(&b'v'));
    let major = run(i, is_part_char);
    if major == 0 {
        return 0;
    }
    i += major;
    for _ in 0..2 {
        if b.get(i) == Some(&b'.') && run(i + 1, is_part_char) > 0 {
            i += 1 + run(i + 1, is_part_char);
        }
    }
    for sigil in [b'-', b'+'] {
        if b.get(i) == Some(&sigil) && run(i + 1, is_ident_char) > 0 {
            i += 1 + run(i + 1, is_ident_char);
            while b.get(i) == Some(&b'.') && run(i + 1, is_ident_char) > 0 {
                i += 1 + run(i + 1, is_ident_char);
            }
        }
    }
    i
}

/// What a hyphen range `A - B` is rewritten to: `>= A, <= B ` in v3,
/// `>= A, <= B` in v1.5.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RangeEnd {
    Space,
    Tight,
}

/// Pass 1: find `\s*A\s+-\s+B\s*` leftmost-first, without overlaps, and
/// substitute `>= A, <= B` (see [`RangeEnd`]) for the first occurrence of each matched text,
/// as Masterminds does with `strings.Replace(.., 1)`. Returns the rewritten
/// text and the (A, B) pairs, for error messages.
///
/// Finding the ranges is one left-to-right pass over the whitespace-separated
/// tokens (see [`find_ranges`]). The substitution repeats Masterminds'
/// `strings.Replace` exactly, first occurrence in the text rewritten so far,
/// which is not always where the range was found (in `1 - 12 - 5 a2 - 5`
/// the second range, `2 - 5`, replaces the `2 - 5` inside the first one's
/// output). That costs one search of the rewritten text per range, so this
/// step alone is O(length × ranges); a range takes at least five bytes and
/// the text at most [`MAX_VERSION_LEN`](super::MAX_VERSION_LEN), so it is
/// bounded by a few thousand byte comparisons, and text without a hyphen
/// range pays nothing for it.
pub(super) fn rewrite_ranges(text: &str, end: RangeEnd) -> (String, Vec<(String, String)>) {
    let trailing = match end {
        RangeEnd::Space => " ",
        RangeEnd::Tight => "",
    };
    let found = find_ranges(text.as_bytes());
    let mut rewritten = text.to_owned();
    let mut ranges = Vec::with_capacity(found.len());
    for (start, end, (low_start, low_end), (high_start, high_end)) in found {
        let (low, high) = (&text[low_start..low_end], &text[high_start..high_end]);
        let matched = &text[start..end];
        // The matched text is still present unrewritten at or after its
        // own position, since every earlier substitution ends before it.
        if let Some(at) = rewritten.find(matched) {
            rewritten.replace_range(
                at..at + matched.len(),
                &format!(">= {low}, <= {high}{trailing}"),
            );
        }
        ranges.push((low.to_owned(), high.to_owned()));
    }
    (rewritten, ranges)
}

type Span = (usize, usize);

/// Every match of Masterminds' range regex, leftmost-first and without
/// overlaps, as (start, end, A, B) byte spans. Every index sits next to an
/// ASCII byte, so slicing the original `str` there is sound.
///
/// A match is `\s*`, then A, which is followed by whitespace and so runs to
/// the end of a whitespace-free token (it may start inside one, as in
/// `>1 - 2` or `a1 - 2`), then `\s+-\s+`, then the longest version B, then
/// `\s*`. Each token is looked at once as a candidate A, and once more at
/// most as the B of the token before it, so the pass is linear.
fn find_ranges(b: &[u8]) -> Vec<(usize, usize, Span, Span)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let token_start = skip_spaces(b, pos);
        let Some(token_end) = (token_start..b.len()).find(|&i| is_space(b[i])) else {
            break; // A needs whitespace after it: the last token cannot be A.
        };
        if let Some((high, end)) = range_tail(b, token_end)
            && let Some(low_start) = leftmost_version_suffix(&b[token_start..token_end])
        {
            let low_start = token_start + low_start;
            // From the token's first byte the match takes in the whitespace
            // before it, which begins where the scan did.
            let start = if low_start == token_start {
                pos
            } else {
                low_start
            };
            found.push((start, end, (low_start, token_end), high));
            pos = end;
            continue;
        }
        pos = token_end;
    }
    found
}

/// The part of a range after A, where A ends at `low_end`: `\s+-\s+`, the
/// longest version B, and trailing whitespace. Returns B's span and the end.
fn range_tail(b: &[u8], low_end: usize) -> Option<(Span, usize)> {
    let dash = skip_spaces(b, low_end);
    if dash == low_end
        || b.get(dash) != Some(&b'-')
        || !b.get(dash + 1).copied().is_some_and(is_space)
    {
        return None;
    }
    let high_start = skip_spaces(b, dash + 1);
    let high_len = version_prefix(&b[high_start..]);
    if high_len == 0 {
        return None;
    }
    let high_end = high_start + high_len;
    Some(((high_start, high_end), skip_spaces(b, high_end)))
}

fn is_core_char(b: u8) -> bool {
    is_part_char(b) || b == b'.'
}

/// The smallest `p` such that all of `token[p..]` is a version in
/// Masterminds' constraint grammar (`version_prefix(&token[p..]) ==
/// token.len() - p`), in time linear in the token.
///
/// A version is `v?`, a core of one to three non-empty parts of part
/// characters joined by dots, then a tail `(-IDS)?(+IDS)?`. So a start `p`
/// works exactly when its core is the rest of a maximal run of part
/// characters and dots, and that run is followed by the end or by a valid
/// tail. Tails are checked in O(1) each from suffix tables; each run is
/// walked once from its end to find its leftmost valid core start.
fn leftmost_version_suffix(token: &[u8]) -> Option<usize> {
    let n = token.len();
    // dotted[j]: token[j..k] is IDENT(.IDENT)*, where k is the first '+' at
    // or after j (or n); next_plus[j] is that k.
    let mut dotted = vec![false; n + 1];
    let mut next_plus = vec![n; n + 1];
    for j in (0..n).rev() {
        next_plus[j] = if token[j] == b'+' {
            j
        } else {
            next_plus[j + 1]
        };
        dotted[j] = is_ident_char(token[j])
            && match token.get(j + 1) {
                None | Some(b'+') => true,
                Some(b'.') => token.get(j + 2).is_some_and(|&c| is_ident_char(c)) && dotted[j + 2],
                Some(&c) => is_ident_char(c) && dotted[j + 1],
            };
    }
    // `+IDS` running to the end.
    let build = |q: usize| q + 1 < n && dotted[q + 1] && next_plus[q + 1] == n;
    let tail = |q: usize| match token.get(q) {
        None => true,
        Some(b'+') => build(q),
        Some(b'-') => {
            let r = next_plus[(q + 1).min(n)];
            q + 1 < n && dotted[q + 1] && (r == n || build(r))
        }
        Some(_) => false,
    };
    let mut run_start = 0;
    while run_start < n {
        if !is_core_char(token[run_start]) {
            run_start += 1;
            continue;
        }
        let run_end = (run_start..n)
            .find(|&i| !is_core_char(token[i]))
            .unwrap_or(n);
        if token[run_end - 1] != b'.' && tail(run_end) {
            // Walk left from the run's end while the core stays valid: no
            // empty part, at most two dots. `best` is the leftmost non-dot
            // reached, each such position being a valid core start.
            let (mut best, mut dots, mut i) = (run_end - 1, 0, run_end - 1);
            while i > run_start {
                if token[i - 1] == b'.' {
                    dots += 1;
                    if token[i] == b'.' || dots > 2 {
                        break;
                    }
                } else {
                    best = i - 1;
                }
                i -= 1;
            }
            // `best` is never a dot: the run's last byte is not one.
            let v_before = best == run_start && best > 0 && token[best - 1] == b'v';
            return Some(if v_before { best - 1 } else { best });
        }
        run_start = run_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan Masterminds' regex makes, position by position, as this
    /// module did before `find_ranges`: quadratic, but plainly right.
    fn naive_ranges(b: &[u8]) -> Vec<(usize, usize, Span, Span)> {
        let at = |start: usize| {
            let low_start = skip_spaces(b, start);
            let low_end = (low_start..b.len()).find(|&i| is_space(b[i]))?;
            if low_end == low_start || version_prefix(&b[low_start..low_end]) != low_end - low_start
            {
                return None;
            }
            let (high, end) = range_tail(b, low_end)?;
            Some(((low_start, low_end), high, end))
        };
        let (mut found, mut start) = (Vec::new(), 0);
        while start < b.len() {
            match at(start) {
                Some((low, high, end)) => {
                    found.push((start, end, low, high));
                    start = end;
                }
                None => start += 1,
            }
        }
        found
    }

    #[test]
    fn range_scan_is_the_regex_scan() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config {
            cases: 4096,
            failure_persistence: None,
            ..Config::default()
        });
        let text = proptest::collection::vec(
            prop::sample::select(
                &[
                    "1", "0", "x", "*", "|", ".", "v", "-", "+", "a", " ", "\t", ">", "=", ",",
                    "12", " - ", "1.2.3", "-rc.1", "+b",
                ][..],
            ),
            0..24,
        )
        .prop_map(|parts| parts.concat());
        runner
            .run(&text, |text| {
                let b = text.as_bytes();
                prop_assert_eq!(find_ranges(b), naive_ranges(b), "{:?}", text);
                for start in 0..=b.len() {
                    let end = (start..b.len())
                        .find(|&i| is_space(b[i]))
                        .unwrap_or(b.len());
                    let token = &b[start..end];
                    let naive =
                        (0..token.len()).find(|&p| version_prefix(&token[p..]) == token.len() - p);
                    prop_assert_eq!(
                        leftmost_version_suffix(token),
                        naive,
                        "{:?}",
                        &text[start..end]
                    );
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn range_substitution_repeats_strings_replace() {
        // The second range's text first occurs inside the first's output.
        let (rewritten, _) = rewrite_ranges("1 - 12 - 5 a2 - 5", RangeEnd::Space);
        assert_eq!(rewritten, ">= 1, <= 1>= 2, <= 5  a2 - 5");
        let (rewritten, _) = rewrite_ranges("1 - 2 || 3 - 4", RangeEnd::Space);
        assert_eq!(rewritten, ">= 1, <= 2 ||>= 3, <= 4 ");
        // Masterminds v1.5.0 leaves no space after the range.
        let (rewritten, _) = rewrite_ranges("1 - 2 || 3 - 4", RangeEnd::Tight);
        assert_eq!(rewritten, ">= 1, <= 2||>= 3, <= 4");
    }
}

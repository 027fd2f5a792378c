//! Globs: Go's `path.Match`, ported, for the input's allowlists (and the
//! activation patterns Crossplane matches with `filepath.Match`, which is
//! the same on Linux).

/// Whether `name` matches one of `patterns` (see [`glob_match`]).
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

/// Go's `path.Match(pattern, name)`, ported line for line: `*` matches any
/// run of non-`/` bytes, `?` one non-`/` character, `[...]` and `[^...]` a
/// character class with `a-z` ranges, `\` escapes the next character.
///
/// A malformed pattern (an unclosed `[`, an empty class, a trailing `\`,
/// a range missing an end) is Go's `ErrBadPattern`; here it matches
/// nothing, so a broken allowlist entry admits nothing. Go reports the
/// error whatever the name, as does this port (`Err(BadPattern)` below).
///
/// Every chunk between stars is tried at each offset of the name at most
/// once, so the cost is at most the pattern's length times the name's.
/// Patterns come from the Composition input, which is trusted, and names
/// are bounded by the fields they come from.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    path_match(pattern.as_bytes(), name.as_bytes()).unwrap_or(false)
}

/// Go's `path.ErrBadPattern`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match` on bytes, with runes decoded as Go decodes them.
pub fn path_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest of the name unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if let Some(err) = err {
            return Err(err);
        }
        if star {
            // Look for a match skipping i+1 bytes; * cannot skip a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                if let Some(err) = err {
                    return Err(err);
                }
                i += 1;
            }
        }
        // Before answering false, check the rest of the pattern is valid.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if let (_, _, Some(err)) = match_chunk(chunk, b"") {
                return Err(err);
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Leading stars, then the chunk up to the next star outside a class.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, &[])
}

/// Go's `utf8.DecodeRune`: the rune at the start and its length, or
/// U+FFFD and 1 for a byte that does not start a valid encoding.
fn decode_rune(s: &[u8]) -> (char, usize) {
    for len in 1..=s.len().min(4) {
        if let Ok(text) = std::str::from_utf8(&s[..len])
            && let Some(c) = text.chars().next()
        {
            return (c, len);
        }
    }
    (char::REPLACEMENT_CHARACTER, 1)
}

/// Go's `matchChunk`: whether `chunk` (no stars) matches a prefix of `s`,
/// and the rest. After a mismatch it keeps reading the chunk, so a bad
/// pattern is reported whatever the name.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> (&'a [u8], bool, Option<BadPattern>) {
    let mut failed = false;
    while let Some(&first) = chunk.first() {
        failed = failed || s.is_empty();
        match first {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (c, n) = decode_rune(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let (mut matched, mut ranges) = (false, 0);
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let lo;
                    (lo, chunk) = match get_esc(chunk) {
                        Ok(found) => found,
                        Err(err) => return (&[], false, Some(err)),
                    };
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        (hi, chunk) = match get_esc(&chunk[1..]) {
                            Ok(found) => found,
                            Err(err) => return (&[], false, Some(err)),
                        };
                    }
                    matched = matched || lo <= r && r <= hi;
                    ranges += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if first == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return (&[], false, Some(BadPattern));
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        (&[], false, None)
    } else {
        (s, true, None)
    }
}

/// Go's `getEsc`: one possibly escaped character of a class, which must
/// not be the class's end and must be followed by something.
fn get_esc(mut chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(BadPattern);
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(chunk);
    let invalid = r == char::REPLACEMENT_CHARACTER && n == 1;
    let rest = &chunk[n..];
    if invalid || rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_go_path_match() {
        let cases = [
            ("upbound/*", "upbound/provider-aws-s3", true),
            ("upbound/*", "upbound/sub/provider", false),
            ("*/*", "upbound/provider", true),
            ("upbound/provider-aws-*", "upbound/provider-aws-s3", true),
            ("upbound/provider-aws-*", "upbound/provider-gcp", false),
            ("upbound/provider-aws-s?", "upbound/provider-aws-s3", true),
            ("upbound/provider-aws-s?", "upbound/provider-aws-s34", false),
            ("*", "upbound/x", false),
            ("*", "", true),
            ("exact/name", "exact/name", true),
            ("exact/name", "exact/names", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn glob_classes_escapes_and_bad_patterns() {
        let cases = [
            ("team-[ab]/*", "team-a/x", Ok(true)),
            ("team-[ab]/*", "team-c/x", Ok(false)),
            ("team-[^ab]", "team-c", Ok(true)),
            ("team-[a-c]", "team-b", Ok(true)),
            ("team-[a-c]", "team-d", Ok(false)),
            ("[é]", "é", Ok(true)),
            ("?", "é", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "axb", Ok(false)),
            ("[*]", "*", Ok(true)),
            ("[/]", "/", Ok(true)),
            ("[", "a", Err(BadPattern)),
            ("[]", "a", Err(BadPattern)),
            ("[a-]", "a", Err(BadPattern)),
            ("a\\", "a", Err(BadPattern)),
            // Go reports a bad pattern even after a mismatch.
            ("x[", "a", Err(BadPattern)),
            ("*x[", "a", Err(BadPattern)),
            // ... but not past a trailing star that already matched.
            ("a*", "abc", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                path_match(pattern.as_bytes(), name.as_bytes()),
                want,
                "{pattern} ~ {name}"
            );
            assert_eq!(glob_match(pattern, name), want == Ok(true));
        }
    }
}

//! Go-style durations (`60s`, `5m`, `1h30m`, `250ms`), the format Crossplane
//! users write everywhere else in their manifests.
//!
//! [`parse`] accepts what Go's `time.ParseDuration` accepts and gives the
//! same value, nanosecond for nanosecond (fractions are computed through
//! `f64` exactly as Go does): an optional sign, then `0` alone or one or more
//! `<number><unit>` groups, where a number is decimal digits with an
//! optional fraction (`1.5`, `1.`, `.5`; not `.`) and a unit is `ns`, `us`,
//! `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m` or `h`. No exponents, no
//! spaces between groups, no `d`. Three differences, all refusals or
//! leniency at the edges: surrounding ASCII whitespace is ignored; a
//! negative duration is refused (`-0` is zero) since none of ours may be
//! negative; and text longer than [`MAX_DURATION_TEXT_LEN`] characters is
//! refused before it is read. Values above Go's own maximum (`1<<63 - 1`
//! ns, about 292 years) are refused as Go refuses them: the arithmetic is
//! checked and never wraps, overflows or panics. Parsing is one pass.
//!
//! The input's `ttl` and `tagCacheTTL` are at most [`MAX_DURATION`] (24h);
//! [`deserialize`] enforces that.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::limits::{MAX_DURATION, MAX_DURATION_TEXT_LEN, check_len};

/// Go's largest duration, `1<<63 - 1` nanoseconds.
const GO_MAX_NANOS: u64 = i64::MAX as u64;
const OVERFLOW_BOUND: u64 = 1 << 63;

/// Parses a Go duration (see the module documentation for the syntax): a
/// port of Go's `time.ParseDuration`, kept in one piece as Go's is so the
/// two read side by side.
pub fn parse(text: &str) -> Result<Duration, String> {
    check_len(text, MAX_DURATION_TEXT_LEN).map_err(|e| format!("duration {e}"))?;
    let trimmed = text.trim_ascii();
    let invalid = || format!("invalid duration {trimmed:?}");
    let (negative, mut rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(if trimmed.is_empty() {
            "empty duration".to_string()
        } else {
            invalid()
        });
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(format!(
                "invalid duration {trimmed:?}: expected a number at {rest:?}"
            ));
        }
        // The integer part, [0-9]*.
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut value: u64 = 0;
        for &b in &bytes[..int_len] {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .filter(|v| *v <= OVERFLOW_BOUND)
                .ok_or_else(|| format!("invalid duration {trimmed:?}: number out of range"))?;
        }
        rest = &rest[int_len..];
        // The fraction, (\.[0-9]*)?, read as Go reads it: digits past what
        // fits in 63 bits are ignored.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        if let Some(after) = rest.strip_prefix('.') {
            let fraction_len = after.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for b in after.bytes().take(fraction_len) {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                {
                    Some(next)
                        if fraction <= (OVERFLOW_BOUND - 1) / 10 && next <= OVERFLOW_BOUND =>
                    {
                        fraction = next;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &after[fraction_len..];
            if int_len == 0 && fraction_len == 0 {
                return Err(invalid());
            }
        } else if int_len == 0 {
            return Err(invalid());
        }
        // The unit: everything up to the next number.
        let unit_len = rest
            .bytes()
            .take_while(|b| !(*b == b'.' || b.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!(
                "invalid duration {trimmed:?}: a number without a unit (use ns, us, ms, s, m or h)"
            ));
        }
        let unit_text = &rest[..unit_len];
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            other => {
                return Err(format!(
                    "invalid duration {trimmed:?}: unknown unit {other:?} (use ns, us, ms, s, m or h)"
                ));
            }
        };
        rest = &rest[unit_len..];
        let out_of_range = || {
            format!(
                "invalid duration {trimmed:?}: above Go's maximum of {}",
                format(Duration::from_nanos(GO_MAX_NANOS))
            )
        };
        if value > OVERFLOW_BOUND / unit {
            return Err(out_of_range());
        }
        value *= unit;
        if fraction > 0 {
            // As Go: fraction * (unit / scale), truncated; at most one
            // unit (3.6e12 ns), finite since scale >= 10 here.
            let part = fraction as f64 * (unit as f64 / scale);
            value = value
                .checked_add(part as u64)
                .filter(|v| *v <= OVERFLOW_BOUND)
                .ok_or_else(out_of_range)?;
        }
        total = total
            .checked_add(value)
            .filter(|v| *v <= OVERFLOW_BOUND)
            .ok_or_else(out_of_range)?;
    }
    if negative {
        if total == 0 {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "invalid duration {trimmed:?}: must not be negative"
        ));
    }
    if total > GO_MAX_NANOS {
        return Err(format!(
            "invalid duration {trimmed:?}: above Go's maximum of {}",
            format(Duration::from_nanos(GO_MAX_NANOS))
        ));
    }
    Ok(Duration::from_nanos(total))
}

/// [`parse`], then refuses anything above `max`.
pub fn parse_at_most(text: &str, max: Duration) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration > max {
        return Err(format!(
            "duration {:?} is above the maximum of {}",
            text.trim_ascii(),
            format(max)
        ));
    }
    Ok(duration)
}

/// A duration as Go's `Duration.String` writes it (`1h30m0s`, `1.5s`,
/// `250ms`, `1.5µs`, `0s`); [`parse`] reads it back to the same value.
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (unit, per) = match nanos {
            n if n < 1_000 => ("ns", 1),
            n if n < 1_000_000 => ("\u{b5}s", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", decimal(nanos, per));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = nanos / 60_000_000_000 % 60;
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / per` with the fraction's trailing zeros dropped.
fn decimal(value: u128, per: u128) -> String {
    let whole = value / per;
    let fraction = value % per;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = per.ilog10() as usize;
    let text = format!("{fraction:0digits$}");
    format!("{whole}.{}", text.trim_end_matches('0'))
}

/// serde adapter for the input's `Duration` fields: at most
/// [`MAX_DURATION_TEXT_LEN`] characters, a Go duration, at most
/// [`MAX_DURATION`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_at_most(&text, MAX_DURATION).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values and refusals taken from Go 1.26's time.ParseDuration.
    #[test]
    fn parses_as_go_does() {
        let ok: [(&str, u64); 30] = [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("-0s", 0),
            ("60s", 60_000_000_000),
            ("5m", 300_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("250ms", 250_000_000),
            ("1.5s", 1_500_000_000),
            ("1.s", 1_000_000_000),
            (".5s", 500_000_000),
            ("+5m", 300_000_000_000),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("1.0000000001s", 1_000_000_000),
            ("0.1ns", 0),
            ("1.9ns", 1),
            ("2562047h47m16.854775807s", GO_MAX_NANOS),
            ("9223372036854775807ns", GO_MAX_NANOS),
            ("0.3333333333333333333333h", 1_200_000_000_000),
            ("1.123456789123456789123s", 1_123_456_789),
            ("00001s", 1_000_000_000),
            ("1s1s", 2_000_000_000),
            ("24h", 86_400_000_000_000),
            ("24h0m0.000000001s", 86_400_000_000_001),
            ("1.5h", 5_400_000_000_000),
            ("0.000000001s", 1),
            (" 2m ", 120_000_000_000),
        ];
        for (text, nanos) in ok {
            assert_eq!(parse(text), Ok(Duration::from_nanos(nanos)), "{text}");
        }
        let bad = [
            ("", "empty"),
            ("   ", "empty"),
            ("+", "invalid duration"),
            (".s", "invalid duration"),
            ("5", "without a unit"),
            ("3m2", "without a unit"),
            ("1..2s", "without a unit"),
            ("5d", "unknown unit \"d\""),
            ("1e3s", "unknown unit \"e\""),
            ("1h 1m", "unknown unit \"h \""),
            ("1H", "unknown unit"),
            ("m", "expected a number"),
            ("-5m", "must not be negative"),
            ("2562047h47m16.854775808s", "Go's maximum"),
            ("2562048h", "Go's maximum"),
            ("9223372036854775808ns", "Go's maximum"),
            ("99999999999h", "Go's maximum"),
            ("99999999999999999999h", "out of range"),
            (
                "1s1s1s1s1s1s1s1s1s1s1s1s1s1s1s1s1s",
                "at most 32 characters",
            ),
        ];
        for (text, message) in bad {
            let err = parse(text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
        let long = "1".repeat(1 << 20);
        assert!(parse(&long).unwrap_err().contains("got 1048576"));
    }

    #[test]
    fn the_fields_stop_at_a_day() {
        assert_eq!(parse_at_most("24h", MAX_DURATION), Ok(MAX_DURATION));
        let err = parse_at_most("24h0m0.000000001s", MAX_DURATION).unwrap_err();
        assert!(err.contains("above the maximum of 24h0m0s"), "{err}");
        let err = parse_at_most("99999999999h", MAX_DURATION).unwrap_err();
        assert!(err.contains("Go's maximum"), "{err}");
    }

    /// Go's `Duration.String`, from Go 1.26.
    #[test]
    fn formats_as_go_does() {
        let cases: [(u64, &str); 14] = [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_661_000_000_001, "1h1m1.000000001s"),
            (GO_MAX_NANOS, "2562047h47m16.854775807s"),
            (86_400_000_000_000, "24h0m0s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format(Duration::from_nanos(nanos)), text, "{nanos}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "[-+0-9.a-zµμ ]{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_any_text(text in ".{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn canonical_forms_round_trip(nanos in 0..=GO_MAX_NANOS) {
            let duration = Duration::from_nanos(nanos);
            prop_assert_eq!(parse(&format(duration)), Ok(duration));
        }

        #[test]
        fn groups_add_up(h in 0u64..1000, m in 0u64..1000, s in 0u64..1000, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let expected = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse(&text), Ok(expected));
        }
    }
}

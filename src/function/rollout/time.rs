//! Time for rollouts: a [`Clock`] the function reads once per call (tests
//! drive their own), and [`Timestamp`], the whole seconds since the Unix
//! epoch that status fields carry as RFC 3339 UTC text
//! (`2026-12-05T03:20:16Z`), the form Kubernetes writes `metav1.Time` in.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the function reads the time from.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// An instant, in whole seconds since the Unix epoch (earlier instants
/// read as the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

/// The last second of year 9999: RFC 3339 has four-digit years.
const MAX_SECONDS: u64 = 253_402_300_799;

/// Text longer than this is not a timestamp (fractions included).
const MAX_TEXT_LEN: usize = 40;

impl Timestamp {
    pub fn from_secs(secs: u64) -> Self {
        Self(secs.min(MAX_SECONDS))
    }

    pub fn of(time: SystemTime) -> Self {
        Self::from_secs(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    #[cfg(test)]
    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }

    /// `self + by`, saturating at the last representable second.
    pub fn plus(self, by: Duration) -> Self {
        Self::from_secs(self.0.saturating_add(by.as_secs()))
    }

    /// How long from `self` to `later` (zero when `later` is not later).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_secs(later.0.saturating_sub(self.0))
    }

    /// Reads RFC 3339 UTC as Kubernetes writes it: `YYYY-MM-DDTHH:MM:SSZ`,
    /// optionally with a fraction of a second (dropped) and `z`/`t` in lower
    /// case. Offsets other than `Z` are refused: Kubernetes never writes
    /// them, and a status that has them was not written by it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("{:?} is not an RFC 3339 UTC time", excerpt(text));
        if text.len() > MAX_TEXT_LEN || !text.is_ascii() {
            return Err(invalid());
        }
        let b = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<u64> {
            let digits = b.get(range)?;
            digits.iter().try_fold(0u64, |n, d| {
                d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
            })
        };
        let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
        if b.len() < 20
            || separators.iter().any(|&(i, c)| b[i] != c)
            || !matches!(b[10], b'T' | b't')
        {
            return Err(invalid());
        }
        let rest = &b[19..];
        let zone = match rest.first() {
            Some(b'.') => {
                let digits = rest[1..].iter().take_while(|d| d.is_ascii_digit()).count();
                if digits == 0 {
                    return Err(invalid());
                }
                &rest[1 + digits..]
            }
            _ => rest,
        };
        if !matches!(zone, [b'Z' | b'z']) {
            return Err(invalid());
        }
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            number(0..4),
            number(5..7),
            number(8..10),
            number(11..13),
            number(14..16),
            number(17..19),
        ) else {
            return Err(invalid());
        };
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
            || year < 1970
        {
            return Err(invalid());
        }
        let days = days_from_civil(year, month, day);
        Ok(Self(days * 86_400 + hour * 3600 + minute * 60 + second))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.0 / 86_400);
        let second_of_day = self.0 % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60
        )
    }
}

fn excerpt(text: &str) -> &str {
    match text.char_indices().nth(MAX_TEXT_LEN) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date on or after it (the proleptic Gregorian
/// calendar, counted in 400-year eras of 146,097 days).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Years start in March, so the leap day is the era's last.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let march_month = (month + 9) % 12;
    let day_of_year = (153 * march_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01; the inverse of
/// [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T12:00:00Z", 951_825_600),
            ("2026-12-05T03:20:16Z", 1_796_440_816),
            ("9999-12-31T23:59:59Z", MAX_SECONDS),
        ];
        for (text, secs) in cases {
            assert_eq!(Timestamp::parse(text), Ok(Timestamp(secs)), "{text}");
            assert_eq!(Timestamp(secs).to_string(), text);
        }
        assert_eq!(
            Timestamp::parse("2026-12-05t03:20:16.123456z"),
            Ok(Timestamp(1_796_440_816))
        );
    }

    #[test]
    fn what_is_refused() {
        for text in [
            "",
            "2026-12-05",
            "2026-12-05T03:20:16",
            "2026-12-05T03:20:16+01:00",
            "2026-12-05T03:20:16.Z",
            "2026-13-05T03:20:16Z",
            "2026-02-29T03:20:16Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T03:60:16Z",
            "1969-12-31T23:59:59Z",
            "2026-12-05T03:20:16Zjunk",
            "２026-12-05T03:20:16Z",
            "2026-12-05T03:20:16.000000000000000000000000000Z",
        ] {
            assert!(Timestamp::parse(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn text_round_trips(secs in 0..=MAX_SECONDS) {
            let stamp = Timestamp(secs);
            prop_assert_eq!(Timestamp::parse(&stamp.to_string()), Ok(stamp));
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,48}") {
            let _ = Timestamp::parse(&text);
        }

        #[test]
        fn near_misses_never_panic(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,3})?[Zz+]?") {
            if let Ok(stamp) = Timestamp::parse(&text) {
                prop_assert_eq!(&stamp.to_string()[..19], &text.to_ascii_uppercase()[..19]);
            }
        }
    }
}

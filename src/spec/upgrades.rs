//! The input's `upgrades`: the platform's policy for moving installed
//! packages to new releases (the rollout engine in `function::rollout`
//! applies it). Read straight into its validated form: every field is
//! checked, with its bound, as it is decoded, and an error names the field
//! (`upgrades.windows[2].start`).
//!
//! Windows are in UTC and worked out with plain arithmetic on the time
//! since the Unix epoch (1970-01-01 was a Thursday); a time before the
//! epoch is read as the epoch. Nothing here panics, whatever the time or
//! the windows.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, de};

use super::duration;
use super::limits::{
    self, MAX_IN_FLIGHT, MAX_PROGRESS_DEADLINE, MAX_QUARANTINE, MAX_WINDOW_DAYS,
    MAX_WINDOW_DURATION, MAX_WINDOW_START_LEN, MAX_WINDOWS, MIN_PROGRESS_DEADLINE,
    MIN_WINDOW_DURATION,
};

/// `maxInFlight` when the input names none.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1;
/// `progressDeadline` when the input names none.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(10 * 60);
/// `healthyGrace` when the input names none (or `progressDeadline`, when
/// that is shorter).
pub const DEFAULT_HEALTHY_GRACE: Duration = Duration::from_secs(2 * 60);
/// `quarantine` when the input names none.
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(24 * 3600);

/// `upgrades`: how installed packages move to new releases.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawUpgrades")]
pub struct Upgrades {
    /// `maxInFlight`: packages of one XR in transition at once, 1 to
    /// [`MAX_IN_FLIGHT`] (default 1).
    pub max_in_flight: u32,
    /// `progressDeadline`: how long a package in transition has to be on
    /// its new reference, from [`MIN_PROGRESS_DEADLINE`] to
    /// [`MAX_PROGRESS_DEADLINE`] (default 10m).
    pub progress_deadline: Duration,
    /// `healthyGrace`: how long an installed package may report
    /// `Healthy=False` before it is rolled back; at most
    /// `progressDeadline` (default 2m, or `progressDeadline` when shorter).
    pub healthy_grace: Duration,
    /// `quarantine`: how long a release rolled back is skipped, at most
    /// [`MAX_QUARANTINE`] (default 24h).
    pub quarantine: Duration,
    /// `allowPause`: whether an XR may set `spec.upgrades.paused` (default
    /// true).
    pub allow_pause: bool,
    /// `windows`: when rollouts may start, at most [`MAX_WINDOWS`]; none
    /// means always.
    pub windows: Vec<Window>,
}

impl Default for Upgrades {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            progress_deadline: DEFAULT_PROGRESS_DEADLINE,
            healthy_grace: DEFAULT_HEALTHY_GRACE,
            quarantine: DEFAULT_QUARANTINE,
            allow_pause: true,
            windows: Vec::new(),
        }
    }
}

/// `upgrades.windows[]`: a time rollouts may start, every week on each of
/// `days`, at `start` (UTC), for `duration`. A window runs across midnight
/// and into the next days when its duration is long enough.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Window {
    /// `days`: 1 to 7 days of the week, each once.
    #[serde(deserialize_with = "days")]
    pub days: Vec<Weekday>,
    /// `start`: `HH:MM`, UTC, as minutes after midnight (0 to 1439).
    #[serde(rename = "start", deserialize_with = "start_minute")]
    pub start_minute: u16,
    /// `duration`: a Go duration from [`MIN_WINDOW_DURATION`] to
    /// [`MAX_WINDOW_DURATION`].
    #[serde(deserialize_with = "window_duration")]
    pub duration: Duration,
}

/// A day of the week, written `Mon` to `Sun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday to Sunday.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "Mon",
            Weekday::Tue => "Tue",
            Weekday::Wed => "Wed",
            Weekday::Thu => "Thu",
            Weekday::Fri => "Fri",
            Weekday::Sat => "Sat",
            Weekday::Sun => "Sun",
        }
    }

    /// The day of the week of a day counted from 1970-01-01 (a Thursday),
    /// before it when negative.
    fn of_day(day: i128) -> Weekday {
        // Thursday is Weekday::ALL[3]; rem_euclid is in 0..7.
        let index = (day.rem_euclid(7) + 3) % 7;
        Weekday::ALL[usize::try_from(index).unwrap_or(0)]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const NANOS_PER_MINUTE: i128 = 60 * 1_000_000_000;
const NANOS_PER_DAY: i128 = 24 * 60 * NANOS_PER_MINUTE;
const DAYS_PER_WEEK: i128 = 7;

/// Nanoseconds since the epoch; a time before it is the epoch.
fn nanos_since_epoch(now: SystemTime) -> i128 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

fn nanos(duration: Duration) -> i128 {
    i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX)
}

impl Window {
    /// When it starts on `day` (counted from the epoch), in nanoseconds
    /// since the epoch, if `day` is one of its days.
    fn start_on(&self, day: i128) -> Option<i128> {
        self.days.contains(&Weekday::of_day(day)).then(|| {
            day.saturating_mul(NANOS_PER_DAY)
                .saturating_add(i128::from(self.start_minute) * NANOS_PER_MINUTE)
        })
    }

    /// Whether it is open at `t` (nanoseconds since the epoch).
    fn is_open_at(&self, t: i128) -> bool {
        let length = nanos(self.duration);
        if self.days.is_empty() || length == 0 {
            return false;
        }
        // A week or more from each listed day: open from one start to the
        // next, always.
        if length >= DAYS_PER_WEEK * NANOS_PER_DAY {
            return true;
        }
        // Shorter than a week, and a start is at most a day late
        // (start_minute < 1440, or else read as such): a start that covers
        // `t` is on one of the eight days up to today.
        let today = t.div_euclid(NANOS_PER_DAY);
        let late = i128::from(self.start_minute / (24 * 60));
        (0..=DAYS_PER_WEEK + late).any(|back| {
            self.start_on(today - back)
                .is_some_and(|start| start <= t && t < start.saturating_add(length))
        })
    }

    /// Its first start after `t` (nanoseconds since the epoch), if it ever
    /// opens.
    fn next_start_after(&self, t: i128) -> Option<i128> {
        if self.duration.is_zero() {
            return None;
        }
        let today = t.div_euclid(NANOS_PER_DAY);
        // A listed day comes back within a week; today's start may be past
        // (and a start more than a day late is an earlier day's).
        let late = i128::from(self.start_minute / (24 * 60));
        (-late..=DAYS_PER_WEEK)
            .filter_map(|ahead| self.start_on(today + ahead))
            .find(|start| *start > t)
    }
}

impl Upgrades {
    /// Whether a rollout may start at `now` (true when there are no
    /// windows). A window that starts on a listed day runs for its
    /// duration, across midnight and into the next days.
    pub fn is_open(&self, now: SystemTime) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let t = nanos_since_epoch(now);
        self.windows.iter().any(|w| w.is_open_at(t))
    }

    /// When the next window opens after `now` (None when there are no
    /// windows, or when a window is open now). Looks at most eight days
    /// ahead of each window; a window opens on the minute.
    pub fn next_opening(&self, now: SystemTime) -> Option<SystemTime> {
        if self.is_open(now) {
            return None;
        }
        let t = nanos_since_epoch(now);
        let next = self
            .windows
            .iter()
            .filter_map(|w| w.next_start_after(t))
            .min()?;
        // Whole minutes after the epoch (next > t >= 0).
        let seconds = u64::try_from(next / 1_000_000_000).ok()?;
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    }
}

/// What the input holds before the fields are checked against each other.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawUpgrades {
    #[serde(default, deserialize_with = "max_in_flight")]
    max_in_flight: Option<u32>,
    #[serde(default, deserialize_with = "progress_deadline")]
    progress_deadline: Option<Duration>,
    #[serde(default, deserialize_with = "healthy_grace")]
    healthy_grace: Option<Duration>,
    #[serde(default, deserialize_with = "quarantine")]
    quarantine: Option<Duration>,
    #[serde(default)]
    allow_pause: Option<bool>,
    #[serde(default, deserialize_with = "limits::list::<MAX_WINDOWS, _, _>")]
    windows: Vec<Window>,
}

impl TryFrom<RawUpgrades> for Upgrades {
    type Error = String;

    fn try_from(raw: RawUpgrades) -> Result<Self, String> {
        let progress_deadline = raw.progress_deadline.unwrap_or(DEFAULT_PROGRESS_DEADLINE);
        let healthy_grace = match raw.healthy_grace {
            Some(grace) if grace > progress_deadline => {
                return Err(format!(
                    "healthyGrace ({}) must not be longer than progressDeadline ({})",
                    duration::format(grace),
                    duration::format(progress_deadline)
                ));
            }
            Some(grace) => grace,
            None => DEFAULT_HEALTHY_GRACE.min(progress_deadline),
        };
        Ok(Self {
            max_in_flight: raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
            progress_deadline,
            healthy_grace,
            quarantine: raw.quarantine.unwrap_or(DEFAULT_QUARANTINE),
            allow_pause: raw.allow_pause.unwrap_or(true),
            windows: raw.windows,
        })
    }
}

/// `maxInFlight`: an integer from 1 to [`MAX_IN_FLIGHT`].
fn max_in_flight<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(value) = Option::<u64>::deserialize(d)? else {
        return Ok(None);
    };
    match u32::try_from(value) {
        Ok(value @ 1..=MAX_IN_FLIGHT) => Ok(Some(value)),
        _ => Err(de::Error::custom(format!(
            "must be an integer from 1 to {MAX_IN_FLIGHT}, got {value}"
        ))),
    }
}

/// A Go duration from `min` to `max`.
fn within(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let value = duration::parse_at_most(text, max)?;
    if value < min {
        return Err(format!(
            "duration {:?} is below the minimum of {}",
            text.trim_ascii(),
            duration::format(min)
        ));
    }
    Ok(value)
}

fn optional_within<'de, D: Deserializer<'de>>(
    d: D,
    min: Duration,
    max: Duration,
) -> Result<Option<Duration>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    within(&text, min, max).map(Some).map_err(de::Error::custom)
}

fn progress_deadline<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    optional_within(d, MIN_PROGRESS_DEADLINE, MAX_PROGRESS_DEADLINE)
}

/// `healthyGrace`: bounded here by the longest deadline; by the deadline
/// itself once both are read.
fn healthy_grace<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    optional_within(d, Duration::ZERO, MAX_PROGRESS_DEADLINE)
}

fn quarantine<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    optional_within(d, Duration::ZERO, MAX_QUARANTINE)
}

fn window_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    within(&text, MIN_WINDOW_DURATION, MAX_WINDOW_DURATION).map_err(de::Error::custom)
}

/// `days`: 1 to [`MAX_WINDOW_DAYS`] days, none twice.
fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
    let days = limits::list::<MAX_WINDOW_DAYS, Weekday, D>(d)?;
    if days.is_empty() {
        return Err(de::Error::custom("must list at least one day"));
    }
    for (i, day) in days.iter().enumerate() {
        if days[..i].contains(day) {
            return Err(de::Error::custom(format!("lists {day} twice")));
        }
    }
    Ok(days)
}

/// `start`: `HH:MM` from `00:00` to `23:59`, as minutes after midnight.
fn start_minute<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let text = limits::string::<MAX_WINDOW_START_LEN, D>(d)?;
    parse_start(&text).ok_or_else(|| {
        de::Error::custom(format!(
            "must be a UTC time of day HH:MM from 00:00 to 23:59, got {text:?}"
        ))
    })
}

fn parse_start(text: &str) -> Option<u16> {
    let &[h1, h2, b':', m1, m2] = text.as_bytes() else {
        return None;
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
    let hour = digit(h1)? * 10 + digit(h2)?;
    let minute = digit(m1)? * 10 + digit(m2)?;
    (hour < 24 && minute < 60).then_some(hour * 60 + minute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    /// 2024-01-01 00:00 UTC, a Monday.
    const MONDAY: u64 = 1_704_067_200;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// Monday 2024-01-01 plus days, hours and minutes.
    fn week(day: u64, hour: u64, minute: u64) -> SystemTime {
        at(MONDAY + day * 86_400 + hour * 3600 + minute * 60)
    }

    fn upgrades(value: Json) -> Upgrades {
        decode(value).expect("valid")
    }

    #[test]
    fn defaults() {
        let cases = [
            (json!({}), Upgrades::default()),
            (
                json!({"progressDeadline": "1m"}),
                Upgrades {
                    progress_deadline: MINUTE,
                    healthy_grace: MINUTE,
                    ..Upgrades::default()
                },
            ),
            (
                json!({"progressDeadline": "5m"}),
                Upgrades {
                    progress_deadline: 5 * MINUTE,
                    ..Upgrades::default()
                },
            ),
            (
                json!({"progressDeadline": "1m", "healthyGrace": "0s"}),
                Upgrades {
                    progress_deadline: MINUTE,
                    healthy_grace: Duration::ZERO,
                    ..Upgrades::default()
                },
            ),
            (
                json!({"maxInFlight": null, "quarantine": null}),
                Upgrades::default(),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(upgrades(value.clone()), expected, "{value}");
        }
        let d = Upgrades::default();
        assert_eq!(
            (
                d.max_in_flight,
                d.progress_deadline,
                d.healthy_grace,
                d.quarantine,
                d.allow_pause
            ),
            (1, 10 * MINUTE, 2 * MINUTE, 24 * HOUR, true)
        );
        assert!(d.windows.is_empty());
    }

    #[test]
    fn reads_every_field() {
        let got = upgrades(json!({
            "maxInFlight": 3,
            "progressDeadline": "15m",
            "healthyGrace": "90s",
            "quarantine": "168h",
            "allowPause": false,
            "windows": [
                {"days": ["Sat", "Sun"], "start": "02:30", "duration": "4h"},
                {"days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start": "23:59", "duration": "1m"}
            ]
        }));
        assert_eq!(
            got,
            Upgrades {
                max_in_flight: 3,
                progress_deadline: 15 * MINUTE,
                healthy_grace: Duration::from_secs(90),
                quarantine: 168 * HOUR,
                allow_pause: false,
                windows: vec![
                    Window {
                        days: vec![Weekday::Sat, Weekday::Sun],
                        start_minute: 150,
                        duration: 4 * HOUR,
                    },
                    Window {
                        days: Weekday::ALL.to_vec(),
                        start_minute: 23 * 60 + 59,
                        duration: MINUTE,
                    },
                ],
            }
        );
    }

    /// The bounds, each at its limit (accepted) and past it (refused,
    /// naming the field).
    #[test]
    fn bounds() {
        let window = |field: &str, value: Json| {
            let mut w = json!({"days": ["Mon"], "start": "00:00", "duration": "1h"});
            w[field] = value;
            json!({"windows": [w]})
        };
        let ok = [
            json!({"maxInFlight": 1}),
            json!({"maxInFlight": 100}),
            json!({"progressDeadline": "1s"}),
            json!({"progressDeadline": "24h", "healthyGrace": "24h"}),
            json!({"healthyGrace": "10m"}),
            json!({"quarantine": "0"}),
            json!({"quarantine": "720h"}),
            json!({"windows": vec![json!({"days": ["Mon"], "start": "00:00", "duration": "1m"}); 32]}),
            window("duration", json!("168h")),
            window("duration", json!("1m")),
            window("start", json!("23:59")),
            window(
                "days",
                json!(["Sun", "Sat", "Fri", "Thu", "Wed", "Tue", "Mon"]),
            ),
        ];
        for value in ok {
            decode::<Upgrades>(value.clone()).unwrap_or_else(|e| panic!("{value}: {e:?}"));
        }
        let bad = [
            (
                json!({"maxInFlight": 0}),
                "maxInFlight",
                "from 1 to 100, got 0",
            ),
            (
                json!({"maxInFlight": 101}),
                "maxInFlight",
                "from 1 to 100, got 101",
            ),
            (json!({"maxInFlight": -1}), "maxInFlight", "invalid value"),
            (json!({"maxInFlight": "2"}), "maxInFlight", "invalid type"),
            (
                json!({"maxInFlight": 1u64 << 40}),
                "maxInFlight",
                "got 1099511627776",
            ),
            (
                json!({"progressDeadline": "0s"}),
                "progressDeadline",
                "below the minimum of 1s",
            ),
            (
                json!({"progressDeadline": "999ms"}),
                "progressDeadline",
                "below the minimum of 1s",
            ),
            (
                json!({"progressDeadline": "24h0m1s"}),
                "progressDeadline",
                "above the maximum of 24h0m0s",
            ),
            (
                json!({"progressDeadline": "soon"}),
                "progressDeadline",
                "invalid duration",
            ),
            (
                json!({"progressDeadline": "1".repeat(1 << 20)}),
                "progressDeadline",
                "at most 32 characters, got 1048576",
            ),
            (
                json!({"healthyGrace": "-1s"}),
                "healthyGrace",
                "must not be negative",
            ),
            (
                json!({"healthyGrace": "25h"}),
                "healthyGrace",
                "above the maximum of 24h0m0s",
            ),
            // Against each other: the error is the object's, and says which.
            (
                json!({"progressDeadline": "1m", "healthyGrace": "61s"}),
                "",
                "healthyGrace (1m1s) must not be longer than progressDeadline (1m0s)",
            ),
            (
                json!({"healthyGrace": "11m"}),
                "",
                "must not be longer than progressDeadline (10m0s)",
            ),
            (
                json!({"quarantine": "720h0m1s"}),
                "quarantine",
                "above the maximum of 720h0m0s",
            ),
            (json!({"allowPause": "no"}), "allowPause", "invalid type"),
            (json!({"maxInflight": 2}), "maxInflight", "unknown field"),
            (
                json!({"windows": vec![json!({"days": ["Mon"], "start": "00:00", "duration": "1m"}); 33]}),
                "windows",
                "at most 32 items, got 33",
            ),
            (json!({"windows": {}}), "windows", "invalid type"),
            (
                json!({"windows": [{"days": ["Mon"], "start": "00:00"}]}),
                "windows[0]",
                "missing field `duration`",
            ),
            (
                json!({"windows": [{"days": ["Mon"], "start": "00:00", "duration": "1h", "timezone": "UTC"}]}),
                "windows[0].timezone",
                "unknown field",
            ),
            (
                window("days", json!([])),
                "windows[0].days",
                "at least one day",
            ),
            (
                window("days", json!(["Mon", "Tue", "Mon"])),
                "windows[0].days",
                "lists Mon twice",
            ),
            (
                window(
                    "days",
                    json!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon"]),
                ),
                "windows[0].days",
                "at most 7 items, got 8",
            ),
            (
                window("days", json!(["Mon", "monday"])),
                "windows[0].days[1]",
                "unknown variant `monday`",
            ),
            (
                window("days", json!(["mon"])),
                "windows[0].days[0]",
                "unknown variant",
            ),
            (
                window("start", json!("24:00")),
                "windows[0].start",
                "00:00 to 23:59",
            ),
            (
                window("start", json!("12:60")),
                "windows[0].start",
                "got \"12:60\"",
            ),
            (window("start", json!("2:30")), "windows[0].start", "HH:MM"),
            (window("start", json!("02-30")), "windows[0].start", "HH:MM"),
            (window("start", json!("+1:30")), "windows[0].start", "HH:MM"),
            (
                window("start", json!("０２:30")),
                "windows[0].start",
                "HH:MM",
            ),
            (
                window("start", json!("02:30:00")),
                "windows[0].start",
                "at most 5 characters, got 8",
            ),
            (
                window("start", json!(150)),
                "windows[0].start",
                "invalid type",
            ),
            (
                window("duration", json!("59s")),
                "windows[0].duration",
                "below the minimum of 1m0s",
            ),
            (
                window("duration", json!("168h0m1s")),
                "windows[0].duration",
                "above the maximum of 168h0m0s",
            ),
            (
                window("duration", json!("7d")),
                "windows[0].duration",
                "unknown unit",
            ),
        ];
        for (value, field, message) in bad {
            let err = decode::<Upgrades>(value.clone()).unwrap_err();
            let path = if err.path == "." {
                ""
            } else {
                err.path.as_str()
            };
            assert_eq!(path, field, "{value}: {}", err.message);
            assert!(err.message.contains(message), "{value}: {}", err.message);
        }
    }

    #[test]
    fn weekdays_from_the_epoch() {
        // 1970-01-01 was a Thursday, 2024-01-01 a Monday, 1969-12-31 a
        // Wednesday.
        assert_eq!(Weekday::of_day(0), Weekday::Thu);
        assert_eq!(Weekday::of_day(3), Weekday::Sun);
        assert_eq!(Weekday::of_day(i128::from(MONDAY / 86_400)), Weekday::Mon);
        assert_eq!(Weekday::of_day(-1), Weekday::Wed);
        assert_eq!(Weekday::of_day(-7), Weekday::Thu);
    }

    #[test]
    fn windows_open_and_close() {
        let u = upgrades(json!({"windows": [
            {"days": ["Sat"], "start": "22:00", "duration": "4h"},
            {"days": ["Wed"], "start": "09:30", "duration": "30m"}
        ]}));
        // (day after Monday, hour, minute, open)
        let cases = [
            (5, 21, 59, false),
            (5, 22, 0, true),
            (5, 23, 59, true),
            (6, 0, 0, true), // across midnight into Sunday
            (6, 1, 59, true),
            (6, 2, 0, false),
            (2, 9, 29, false),
            (2, 9, 30, true),
            (2, 9, 59, true),
            (2, 10, 0, false),
            (0, 12, 0, false),
            (12, 22, 30, true), // the next Saturday
        ];
        for (day, hour, minute, open) in cases {
            assert_eq!(
                u.is_open(week(day, hour, minute)),
                open,
                "day {day} {hour}:{minute}"
            );
        }
        // A window open until the end of a second: closed at the instant it ends.
        assert!(u.is_open(week(6, 1, 59) + Duration::from_nanos(59_999_999_999)));
        // No windows: always open, nothing to wait for.
        let always = Upgrades::default();
        assert!(always.is_open(week(3, 3, 3)));
        assert_eq!(always.next_opening(week(3, 3, 3)), None);
    }

    #[test]
    fn long_windows_run_into_the_next_days() {
        // Friday 18:00 for 60h: until Monday 06:00.
        let u =
            upgrades(json!({"windows": [{"days": ["Fri"], "start": "18:00", "duration": "60h"}]}));
        assert!(!u.is_open(week(4, 17, 59)));
        assert!(u.is_open(week(5, 12, 0)));
        assert!(u.is_open(week(7, 5, 59)));
        assert!(!u.is_open(week(7, 6, 0)));
        // A week from Monday 12:00: open at every time.
        let u =
            upgrades(json!({"windows": [{"days": ["Mon"], "start": "12:00", "duration": "168h"}]}));
        for minute in (0..7 * 1440).step_by(37) {
            assert!(u.is_open(week(0, 0, minute)), "{minute}");
        }
        assert_eq!(u.next_opening(week(0, 0, 0)), None);
        // A window that started on the last Monday before the epoch
        // covers the epoch (read as the start of time, and all before it).
        let u =
            upgrades(json!({"windows": [{"days": ["Mon"], "start": "00:00", "duration": "100h"}]}));
        assert!(u.is_open(UNIX_EPOCH));
        assert!(u.is_open(UNIX_EPOCH - Duration::from_secs(86_400 * 365)));
    }

    #[test]
    fn next_openings() {
        let u = upgrades(json!({"windows": [
            {"days": ["Sat"], "start": "22:00", "duration": "4h"},
            {"days": ["Wed"], "start": "09:30", "duration": "30m"}
        ]}));
        // (from, the next opening)
        let cases = [
            (week(0, 12, 0), Some(week(2, 9, 30))),
            (
                week(2, 9, 29) + Duration::from_millis(999),
                Some(week(2, 9, 30)),
            ),
            (week(2, 9, 30), None),
            (week(2, 10, 0), Some(week(5, 22, 0))),
            (week(6, 2, 0), Some(week(9, 9, 30))),
            // Today's start is past: next week's.
            (
                week(5, 23, 0) + Duration::from_secs(4 * 3600),
                Some(week(9, 9, 30)),
            ),
        ];
        for (from, expected) in cases {
            assert_eq!(u.next_opening(from), expected, "{from:?}");
        }
        // Same day next week: the one start in the week is today's, gone.
        let u =
            upgrades(json!({"windows": [{"days": ["Mon"], "start": "03:00", "duration": "1h"}]}));
        assert_eq!(u.next_opening(week(0, 4, 0)), Some(week(7, 3, 0)));
        assert_eq!(u.next_opening(week(0, 2, 0)), Some(week(0, 3, 0)));
        // Before the epoch: as from the epoch (Thursday 00:00).
        assert_eq!(
            u.next_opening(UNIX_EPOCH - Duration::from_secs(1)),
            Some(at(4 * 86_400 + 3 * 3600))
        );
    }

    /// Windows built by hand, outside what the input admits, neither panic
    /// nor loop.
    #[test]
    fn odd_windows_never_panic() {
        let odd = Upgrades {
            windows: vec![
                Window {
                    days: Vec::new(),
                    start_minute: 0,
                    duration: HOUR,
                },
                Window {
                    days: vec![Weekday::Mon],
                    start_minute: u16::MAX,
                    duration: Duration::ZERO,
                },
                Window {
                    days: vec![Weekday::Tue, Weekday::Tue],
                    start_minute: u16::MAX,
                    duration: Duration::MAX,
                },
            ],
            ..Upgrades::default()
        };
        for now in [
            UNIX_EPOCH,
            week(1, 0, 0),
            UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
        ] {
            let _ = odd.is_open(now);
            let _ = odd.next_opening(now);
        }
        let never = Upgrades {
            windows: odd.windows[..2].to_vec(),
            ..Upgrades::default()
        };
        assert!(!never.is_open(week(0, 0, 0)));
        assert_eq!(never.next_opening(week(0, 0, 0)), None);
        // A start past midnight is read as that many minutes later.
        let late = Upgrades {
            windows: vec![Window {
                days: vec![Weekday::Mon],
                start_minute: 1440 + 60,
                duration: HOUR,
            }],
            ..Upgrades::default()
        };
        assert!(late.is_open(week(1, 1, 30)));
        assert_eq!(late.next_opening(week(0, 0, 0)), Some(week(1, 1, 0)));
    }

    /// Minutes in a week.
    const WEEK_MINUTES: usize = 7 * 1440;

    /// The brute-force model: every minute of the week (from Monday 00:00)
    /// each window covers, marked one by one.
    fn model(windows: &[Window]) -> Vec<bool> {
        let mut open = vec![false; WEEK_MINUTES];
        for w in windows {
            for day in &w.days {
                let first = Weekday::ALL.iter().position(|d| d == day).expect("a day") * 1440
                    + usize::from(w.start_minute);
                let minutes = (w.duration.as_secs() / 60) as usize;
                for k in 0..minutes {
                    open[(first + k) % WEEK_MINUTES] = true;
                }
            }
        }
        open
    }

    /// The minute of the week (from Monday 00:00) of a time since the epoch.
    fn minute_of_week(seconds: u64) -> usize {
        // The epoch is a Thursday: 3 days after a Monday.
        ((seconds / 60 + 3 * 1440) % WEEK_MINUTES as u64) as usize
    }

    fn window() -> impl Strategy<Value = Window> {
        (
            proptest::sample::subsequence(Weekday::ALL.to_vec(), 1..=7),
            0u16..1440,
            // Whole minutes; a few a week long or close to it.
            prop_oneof![1u64..=600, 1u64..=10_080, 10_000u64..=10_080],
        )
            .prop_map(|(days, start_minute, minutes)| Window {
                days,
                start_minute,
                duration: Duration::from_secs(minutes * 60),
            })
    }

    proptest! {
        #[test]
        fn is_open_agrees_with_the_model(
            windows in proptest::collection::vec(window(), 1..=4),
            seconds in 0u64..=4_102_444_800, // to 2100
        ) {
            let u = Upgrades { windows: windows.clone(), ..Upgrades::default() };
            let open = model(&windows);
            prop_assert_eq!(u.is_open(at(seconds)), open[minute_of_week(seconds)]);
        }

        #[test]
        fn next_opening_is_the_first_open_minute(
            windows in proptest::collection::vec(window(), 1..=4),
            seconds in 0u64..=4_102_444_800,
            nanos in 0u32..1_000_000_000,
        ) {
            let u = Upgrades { windows: windows.clone(), ..Upgrades::default() };
            let open = model(&windows);
            let now = at(seconds) + Duration::from_nanos(u64::from(nanos));
            let next = u.next_opening(now);
            if open[minute_of_week(seconds)] {
                prop_assert_eq!(next, None);
            } else {
                let next = next.expect("windows with days open within a week");
                let next_seconds = next.duration_since(UNIX_EPOCH).expect("after the epoch").as_secs();
                prop_assert!(next > now);
                prop_assert!(u.is_open(next));
                prop_assert!(open[minute_of_week(next_seconds)]);
                prop_assert_eq!(next_seconds % 60, 0);
                // No open minute between now and then.
                let mut minute = seconds / 60 + 1;
                while minute * 60 < next_seconds {
                    prop_assert!(!open[minute_of_week(minute * 60)], "open at minute {}", minute);
                    minute += 1;
                }
                prop_assert!(next_seconds - seconds <= 8 * 86_400);
            }
        }
    }
}

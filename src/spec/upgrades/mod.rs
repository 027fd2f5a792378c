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
mod tests;

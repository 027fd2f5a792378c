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

/// Each value is refused, naming `field` (empty: the object itself) and
/// saying `message`.
fn refused<const N: usize>(bad: [(Json, &str, &str); N]) {
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

/// A window with `field` set to `value`, in an otherwise valid policy.
fn with_window(field: &str, value: Json) -> Json {
    let mut w = json!({"days": ["Mon"], "start": "00:00", "duration": "1h"});
    w[field] = value;
    json!({"windows": [w]})
}

/// The bounds, each at its limit: accepted.
#[test]
fn bounds_at_their_limits() {
    let ok = [
        json!({"maxInFlight": 1}),
        json!({"maxInFlight": 100}),
        json!({"progressDeadline": "1s"}),
        json!({"progressDeadline": "24h", "healthyGrace": "24h"}),
        json!({"healthyGrace": "10m"}),
        json!({"quarantine": "0"}),
        json!({"quarantine": "720h"}),
        json!({"windows": vec![json!({"days": ["Mon"], "start": "00:00", "duration": "1m"}); 32]}),
        with_window("duration", json!("168h")),
        with_window("duration", json!("1m")),
        with_window("start", json!("23:59")),
        with_window(
            "days",
            json!(["Sun", "Sat", "Fri", "Thu", "Wed", "Tue", "Mon"]),
        ),
    ];
    for value in ok {
        decode::<Upgrades>(value.clone()).unwrap_or_else(|e| panic!("{value}: {e:?}"));
    }
}

/// The bounds of the rollout fields, each past its limit: refused,
/// naming the field.
#[test]
fn bounds() {
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
            with_window("duration", json!("59s")),
            "windows[0].duration",
            "below the minimum of 1m0s",
        ),
        (
            with_window("duration", json!("168h0m1s")),
            "windows[0].duration",
            "above the maximum of 168h0m0s",
        ),
        (
            with_window("duration", json!("7d")),
            "windows[0].duration",
            "unknown unit",
        ),
    ];
    refused(bad);
}

/// The bounds of `windows` and of each window, past them.
#[test]
fn window_bounds() {
    refused([
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
            with_window("days", json!([])),
            "windows[0].days",
            "at least one day",
        ),
        (
            with_window("days", json!(["Mon", "Tue", "Mon"])),
            "windows[0].days",
            "lists Mon twice",
        ),
        (
            with_window(
                "days",
                json!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon"]),
            ),
            "windows[0].days",
            "at most 7 items, got 8",
        ),
        (
            with_window("days", json!(["Mon", "monday"])),
            "windows[0].days[1]",
            "unknown variant `monday`",
        ),
        (
            with_window("days", json!(["mon"])),
            "windows[0].days[0]",
            "unknown variant",
        ),
        (
            with_window("start", json!("24:00")),
            "windows[0].start",
            "00:00 to 23:59",
        ),
        (
            with_window("start", json!("12:60")),
            "windows[0].start",
            "got \"12:60\"",
        ),
        (
            with_window("start", json!("2:30")),
            "windows[0].start",
            "HH:MM",
        ),
        (
            with_window("start", json!("02-30")),
            "windows[0].start",
            "HH:MM",
        ),
        (
            with_window("start", json!("+1:30")),
            "windows[0].start",
            "HH:MM",
        ),
        (
            with_window("start", json!("０２:30")),
            "windows[0].start",
            "HH:MM",
        ),
        (
            with_window("start", json!("02:30:00")),
            "windows[0].start",
            "at most 5 characters, got 8",
        ),
        (
            with_window("start", json!(150)),
            "windows[0].start",
            "invalid type",
        ),
    ]);
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
    let u = upgrades(json!({"windows": [{"days": ["Fri"], "start": "18:00", "duration": "60h"}]}));
    assert!(!u.is_open(week(4, 17, 59)));
    assert!(u.is_open(week(5, 12, 0)));
    assert!(u.is_open(week(7, 5, 59)));
    assert!(!u.is_open(week(7, 6, 0)));
    // A week from Monday 12:00: open at every time.
    let u = upgrades(json!({"windows": [{"days": ["Mon"], "start": "12:00", "duration": "168h"}]}));
    for minute in (0..7 * 1440).step_by(37) {
        assert!(u.is_open(week(0, 0, minute)), "{minute}");
    }
    assert_eq!(u.next_opening(week(0, 0, 0)), None);
    // A window that started on the last Monday before the epoch
    // covers the epoch (read as the start of time, and all before it).
    let u = upgrades(json!({"windows": [{"days": ["Mon"], "start": "00:00", "duration": "100h"}]}));
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
    let u = upgrades(json!({"windows": [{"days": ["Mon"], "start": "03:00", "duration": "1h"}]}));
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

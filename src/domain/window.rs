//! Which notifications a run reads: the half-open window `[from, to)` and how it is chosen.
//!
//! Day boundaries are midnights in a configured IANA zone (DST-correct through jiff, since local
//! offset detection is unreliable in a multi-threaded process); everything else is UTC. This
//! module does arithmetic only: no I/O, so every rule here is unit-tested with plain values.

use std::fmt;

use time::{Date, Duration, OffsetDateTime};

use std::collections::BTreeSet;

use crate::domain::timestamps;
use crate::domain::zone::Zone;

/// A half-open interval of instants, `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl Window {
    /// The window covering one calendar day in `zone` (23 or 25 hours on DST days).
    pub fn day(zone: &Zone, date: Date) -> Window {
        Window {
            from: zone.start_of(date),
            to: zone.start_of(date.next_day().unwrap_or(date)),
        }
    }
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from <= at && at < self.to
    }

    pub fn is_empty(&self) -> bool {
        self.from >= self.to
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            timestamps::display(self.from),
            timestamps::display(self.to)
        )
    }
}

/// A window bound given on the command line that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundError {
    NotADate(String),
    NeitherDateNorInstant(String),
}

impl fmt::Display for BoundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundError::NotADate(text) => write!(f, "{text:?} is not a date of the form YYYY-MM-DD"),
            BoundError::NeitherDateNorInstant(text) => write!(
                f,
                "{text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 instant (2026-11-27T00:00:00Z)"
            ),
        }
    }
}

/// Parses a calendar date written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, BoundError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &fmt).map_err(|_| BoundError::NotADate(text.to_string()))
}

/// Parses a window bound: a date (its midnight in `zone`) or an RFC 3339 instant.
pub fn parse_bound(text: &str, zone: &Zone) -> Result<OffsetDateTime, BoundError> {
    let text = text.trim();
    if text.len() == 10 {
        return Ok(zone.start_of(parse_date(text)?));
    }
    timestamps::parse(text).map_err(|_| BoundError::NeitherDateNorInstant(text.to_string()))
}

/// How the catch-up window (no window options given) was chosen.
#[derive(Debug, PartialEq, Eq)]
pub struct CatchUp {
    pub window: Window,
    /// Time before the window that no completed run covers and that is beyond `max_days`:
    /// the operator has to ingest it by hand.
    pub uncovered: Option<Window>,
}

/// The catch-up rule: from where the last completed run ended, minus the lookback (so that
/// notifications stored late are still read), or from the start of yesterday when there is no
/// earlier run, to the start of today; never more than `max_days` back.
pub fn catch_up(
    now: OffsetDateTime,
    zone: &Zone,
    last_completed_end: Option<OffsetDateTime>,
    lookback_hours: u32,
    max_days: u32,
) -> CatchUp {
    let today = zone.date_of(now);
    let to = zone.start_of(today);
    let earliest_date = today
        .checked_sub(Duration::days(max_days as i64))
        .unwrap_or(Date::MIN);
    let earliest = zone.start_of(earliest_date);
    let wanted = match last_completed_end {
        Some(end) => end - Duration::hours(lookback_hours as i64),
        None => zone.start_of(today.previous_day().unwrap_or(today)),
    };
    let from = wanted.max(earliest);
    let uncovered = (wanted < earliest).then_some(Window {
        from: wanted,
        to: earliest,
    });
    CatchUp {
        window: Window { from, to },
        uncovered,
    }
}

/// Every day from `first` to `last`, inclusive.
pub fn days_between(first: Date, last: Date) -> BTreeSet<Date> {
    let mut days = BTreeSet::new();
    let mut day = first;
    while day <= last {
        days.insert(day);
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    days
}

/// Whether the union of `windows` covers all of `day` (each window half-open, in any order,
/// overlapping or touching).
pub fn covered_by(day: Window, windows: &[(OffsetDateTime, OffsetDateTime)]) -> bool {
    let mut spans: Vec<(OffsetDateTime, OffsetDateTime)> = windows
        .iter()
        .copied()
        .filter(|(from, to)| from < to && *to > day.from && *from < day.to)
        .collect();
    spans.sort();
    let mut reached = day.from;
    for (from, to) in spans {
        if from > reached {
            return false;
        }
        reached = reached.max(to);
        if reached >= day.to {
            return true;
        }
    }
    reached >= day.to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_covered_only_by_windows_that_leave_no_gap() {
        use time::macros::datetime;
        let day = Window {
            from: datetime!(2026-11-27 00:00 UTC),
            to: datetime!(2026-11-28 00:00 UTC),
        };
        let w = |a: OffsetDateTime, b: OffsetDateTime| (a, b);
        assert!(covered_by(
            day,
            &[w(
                datetime!(2026-11-26 00:00 UTC),
                datetime!(2026-11-29 00:00 UTC)
            )]
        ));
        assert!(covered_by(
            day,
            &[
                w(
                    datetime!(2026-11-27 12:00 UTC),
                    datetime!(2026-11-28 00:00 UTC)
                ),
                w(
                    datetime!(2026-11-26 20:00 UTC),
                    datetime!(2026-11-27 12:00 UTC)
                ),
            ]
        ));
        assert!(!covered_by(
            day,
            &[
                w(
                    datetime!(2026-11-27 00:00 UTC),
                    datetime!(2026-11-27 11:00 UTC)
                ),
                w(
                    datetime!(2026-11-27 12:00 UTC),
                    datetime!(2026-11-28 00:00 UTC)
                ),
            ]
        ));
        assert!(!covered_by(day, &[]));
    }
    use time::macros::{date, datetime};

    #[test]
    fn utc_day_is_24_hours() {
        let w = Window::day(&Zone::utc(), date!(2026 - 11 - 27));
        assert_eq!(w.from, datetime!(2026-11-27 0:00 UTC));
        assert_eq!(w.to, datetime!(2026-11-28 0:00 UTC));
    }

    #[test]
    fn new_york_dst_days_are_23_and_25_hours() {
        let ny = Zone::named("America/New_York").unwrap();
        let spring = Window::day(&ny, date!(2026 - 03 - 08));
        assert_eq!(spring.from, datetime!(2026-03-08 05:00 UTC));
        assert_eq!(spring.to, datetime!(2026-03-09 04:00 UTC));
        assert_eq!(spring.to - spring.from, Duration::hours(23));
        let autumn = Window::day(&ny, date!(2026 - 11 - 01));
        assert_eq!(autumn.to - autumn.from, Duration::hours(25));
    }

    #[test]
    fn window_is_half_open() {
        let w = Window::day(&Zone::utc(), date!(2026 - 11 - 27));
        assert!(w.contains(datetime!(2026-11-27 0:00 UTC)));
        assert!(w.contains(datetime!(2026-11-27 23:59:59.999 UTC)));
        assert!(!w.contains(datetime!(2026-11-28 0:00 UTC)));
    }

    #[test]
    fn bounds_are_dates_or_instants() {
        let paris = Zone::named("Europe/Paris").unwrap();
        assert_eq!(
            parse_bound("2026-11-27", &paris).unwrap(),
            datetime!(2026-11-26 23:00 UTC)
        );
        assert_eq!(
            parse_bound("2026-11-27T06:30:00+01:00", &paris).unwrap(),
            datetime!(2026-11-27 05:30 UTC)
        );
        let err = parse_bound("27/11/2026", &paris).unwrap_err();
        assert!(err.to_string().contains("27/11/2026"), "{err}");
    }

    #[test]
    fn unknown_zone_names_itself() {
        let err = Zone::named("Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn catch_up_without_history_is_yesterday() {
        let now = datetime!(2026-11-28 07:00 UTC);
        let c = catch_up(now, &Zone::utc(), None, 24, 7);
        assert_eq!(
            c.window,
            Window {
                from: datetime!(2026-11-27 0:00 UTC),
                to: datetime!(2026-11-28 0:00 UTC)
            }
        );
        assert_eq!(c.uncovered, None);
    }

    #[test]
    fn catch_up_resumes_with_lookback() {
        let now = datetime!(2026-11-28 07:00 UTC);
        let c = catch_up(
            now,
            &Zone::utc(),
            Some(datetime!(2026-11-27 0:00 UTC)),
            24,
            7,
        );
        assert_eq!(c.window.from, datetime!(2026-11-26 0:00 UTC));
        assert_eq!(c.window.to, datetime!(2026-11-28 0:00 UTC));
        let up_to_date = catch_up(
            now,
            &Zone::utc(),
            Some(datetime!(2026-11-28 0:00 UTC)),
            0,
            7,
        );
        assert!(up_to_date.window.is_empty());
    }

    #[test]
    fn catch_up_never_reaches_past_max_days() {
        let now = datetime!(2026-11-28 07:00 UTC);
        let c = catch_up(
            now,
            &Zone::utc(),
            Some(datetime!(2026-11-01 0:00 UTC)),
            24,
            7,
        );
        assert_eq!(c.window.from, datetime!(2026-11-21 0:00 UTC));
        assert_eq!(
            c.uncovered,
            Some(Window {
                from: datetime!(2026-10-31 0:00 UTC),
                to: datetime!(2026-11-21 0:00 UTC)
            })
        );
    }

    #[test]
    fn catch_up_today_is_in_the_zone() {
        // 02:00 UTC on the 28th is still the 27th in New York.
        let ny = Zone::named("America/New_York").unwrap();
        let c = catch_up(datetime!(2026-11-28 02:00 UTC), &ny, None, 24, 7);
        assert_eq!(c.window.to, datetime!(2026-11-27 05:00 UTC));
        assert_eq!(c.window.from, datetime!(2026-11-26 05:00 UTC));
    }
}

//! Which notifications a run reads: the half-open window `[from, to)` and how it is chosen.
//!
//! Day boundaries are midnights in a configured IANA zone (DST-correct through jiff, since local
//! offset detection is unreliable in a multi-threaded process); everything else is UTC. This
//! module does arithmetic only: no I/O, so every rule here is unit-tested with plain values.

use std::fmt;

use time::{Date, Duration, OffsetDateTime};

use crate::timestamps;

/// A half-open interval of instants, `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl Window {
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

/// The zone whose midnights are day boundaries.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    pub fn named(name: &str) -> Result<Zone, String> {
        let tz = jiff::tz::TimeZone::get(name).map_err(|e| {
            format!("unknown time zone {name:?} (want an IANA name such as Europe/Paris): {e}")
        })?;
        Ok(Zone {
            name: name.to_string(),
            tz,
        })
    }

    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_string(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first instant of `date` in this zone (after a DST gap when midnight does not exist).
    pub fn start_of(&self, date: Date) -> Result<OffsetDateTime, String> {
        let civil = jiff::civil::date(date.year() as i16, date.month() as i8, date.day() as i8)
            .at(0, 0, 0, 0);
        let zoned = civil
            .to_zoned_datetime(self.tz.clone())
            .map_err(|e| format!("no midnight for {date} in {}: {e}", self.name))?;
        from_jiff(zoned.timestamp())
    }

    /// The calendar day, in this zone, that contains `at`.
    pub fn date_of(&self, at: OffsetDateTime) -> Result<Date, String> {
        let ts = to_jiff(at)?;
        let civil = ts.to_zoned_datetime(self.tz.clone()).date();
        let month = time::Month::try_from(civil.month() as u8).map_err(|e| e.to_string())?;
        Date::from_calendar_date(civil.year() as i32, month, civil.day() as u8)
            .map_err(|e| e.to_string())
    }

    /// The start of the day after the one containing `at`.
    pub fn start_of_next_day(&self, at: OffsetDateTime) -> Result<OffsetDateTime, String> {
        let date = self.date_of(at)?;
        let next = date.next_day().ok_or("date out of range")?;
        self.start_of(next)
    }

    /// The window covering one calendar day in this zone (23 or 25 hours on DST days).
    pub fn day(&self, date: Date) -> Result<Window, String> {
        let next = date.next_day().ok_or("date out of range")?;
        Ok(Window {
            from: self.start_of(date)?,
            to: self.start_of(next)?,
        })
    }
}

fn to_jiff(at: OffsetDateTime) -> Result<jiff::Timestamp, String> {
    jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).map_err(|e| e.to_string())
}

fn from_jiff(ts: jiff::Timestamp) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).map_err(|e| e.to_string())
}

/// Parses a calendar date written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &fmt)
        .map_err(|_| format!("{text:?} is not a date of the form YYYY-MM-DD"))
}

/// Parses a window bound: a date (its midnight in `zone`) or an RFC 3339 instant.
pub fn parse_bound(text: &str, zone: &Zone) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if text.len() == 10 {
        return zone.start_of(parse_date(text)?);
    }
    timestamps::parse(text).map_err(|_| {
        format!("{text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 instant (2026-11-27T00:00:00Z)")
    })
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
) -> Result<CatchUp, String> {
    let today = zone.date_of(now)?;
    let to = zone.start_of(today)?;
    let earliest_date = today
        .checked_sub(Duration::days(max_days as i64))
        .ok_or("--max-days reaches before the calendar")?;
    let earliest = zone.start_of(earliest_date)?;
    let wanted = match last_completed_end {
        Some(end) => end - Duration::hours(lookback_hours as i64),
        None => zone.start_of(today.previous_day().ok_or("date out of range")?)?,
    };
    let from = wanted.max(earliest);
    let uncovered = (wanted < earliest).then_some(Window {
        from: wanted,
        to: earliest,
    });
    Ok(CatchUp {
        window: Window { from, to },
        uncovered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn utc_day_is_24_hours() {
        let w = Zone::utc().day(date!(2026 - 11 - 27)).unwrap();
        assert_eq!(w.from, datetime!(2026-11-27 0:00 UTC));
        assert_eq!(w.to, datetime!(2026-11-28 0:00 UTC));
    }

    #[test]
    fn new_york_dst_days_are_23_and_25_hours() {
        let ny = Zone::named("America/New_York").unwrap();
        let spring = ny.day(date!(2026 - 03 - 08)).unwrap();
        assert_eq!(spring.from, datetime!(2026-03-08 05:00 UTC));
        assert_eq!(spring.to, datetime!(2026-03-09 04:00 UTC));
        assert_eq!(spring.to - spring.from, Duration::hours(23));
        let autumn = ny.day(date!(2026 - 11 - 01)).unwrap();
        assert_eq!(autumn.to - autumn.from, Duration::hours(25));
    }

    #[test]
    fn window_is_half_open() {
        let w = Zone::utc().day(date!(2026 - 11 - 27)).unwrap();
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
        assert!(err.contains("27/11/2026"), "{err}");
    }

    #[test]
    fn unknown_zone_names_itself() {
        let err = Zone::named("Mars/Olympus").unwrap_err();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn catch_up_without_history_is_yesterday() {
        let now = datetime!(2026-11-28 07:00 UTC);
        let c = catch_up(now, &Zone::utc(), None, 24, 7).unwrap();
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
        )
        .unwrap();
        assert_eq!(c.window.from, datetime!(2026-11-26 0:00 UTC));
        assert_eq!(c.window.to, datetime!(2026-11-28 0:00 UTC));
        let up_to_date = catch_up(
            now,
            &Zone::utc(),
            Some(datetime!(2026-11-28 0:00 UTC)),
            0,
            7,
        )
        .unwrap();
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
        )
        .unwrap();
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
        let c = catch_up(datetime!(2026-11-28 02:00 UTC), &ny, None, 24, 7).unwrap();
        assert_eq!(c.window.to, datetime!(2026-11-27 05:00 UTC));
        assert_eq!(c.window.from, datetime!(2026-11-26 05:00 UTC));
    }
}

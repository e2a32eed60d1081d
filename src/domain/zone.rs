//! The one place where time zones are handled: a configured IANA zone whose midnights are day
//! boundaries (DST-correct through jiff, since local offset detection is unreliable in a
//! multi-threaded process). Everything outside works in UTC `time` values; jiff stays inside.
//!
//! The operations are infallible. jiff's range (years -9999 to 9999, two days short at each end)
//! is slightly narrower than `time`'s: an instant beyond it is taken as jiff's nearest instant,
//! so a day boundary is off only for the last two days of year 9999 (issue 9 narrows the
//! storable range so that no event gets there).

use std::fmt;

use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// The zone whose midnights are day boundaries.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

/// A zone name the bundled time zone database does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone {
    name: String,
    detail: String,
}

impl fmt::Display for UnknownZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown time zone {:?} (want an IANA name such as Europe/Paris): {}",
            self.name, self.detail
        )
    }
}

impl Zone {
    pub fn named(name: &str) -> Result<Zone, UnknownZone> {
        let tz = jiff::tz::TimeZone::get(name).map_err(|e| UnknownZone {
            name: name.to_string(),
            detail: e.to_string(),
        })?;
        Ok(Zone {
            name: name.to_string(),
            tz,
        })
    }

    #[cfg(test)]
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
    pub fn start_of(&self, date: Date) -> OffsetDateTime {
        // The fallible constructor: `jiff::civil::date` panics outside jiff's range.
        let civil =
            jiff::civil::Date::new(date.year() as i16, date.month() as i8, date.day() as i8)
                .map(|d| d.at(0, 0, 0, 0));
        let at = match civil.and_then(|c| c.to_zoned_datetime(self.tz.clone())) {
            Ok(zoned) => zoned.timestamp(),
            Err(_) if date.year() < 0 => jiff::Timestamp::MIN,
            Err(_) => jiff::Timestamp::MAX,
        };
        from_jiff(at)
    }

    /// The calendar day, in this zone, that contains `at`.
    pub fn date_of(&self, at: OffsetDateTime) -> Date {
        let civil = to_jiff(at).to_zoned_datetime(self.tz.clone()).date();
        let month = time::Month::try_from(civil.month() as u8).unwrap_or(time::Month::January);
        Date::from_calendar_date(civil.year() as i32, month, civil.day() as u8).unwrap_or(Date::MIN)
    }

    /// The hour of the day (0-23), on this zone's clock, at `at`.
    pub fn hour_of(&self, at: OffsetDateTime) -> u8 {
        to_jiff(at).to_zoned_datetime(self.tz.clone()).hour() as u8
    }
}

/// `at` in jiff, saturating at jiff's ends.
fn to_jiff(at: OffsetDateTime) -> jiff::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    jiff::Timestamp::from_nanosecond(nanos).unwrap_or(if nanos < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// A jiff instant in `time`; jiff's range lies inside `time`'s, so the fallbacks never apply.
fn from_jiff(ts: jiff::Timestamp) -> OffsetDateTime {
    let nanos = ts.as_nanosecond();
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if nanos < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::window::Window;
    use time::macros::{date, datetime};

    #[test]
    fn days_follow_dst() {
        let paris = Zone::named("Europe/Paris").unwrap();
        let spring = Window::day(&paris, date!(2026 - 03 - 29));
        assert_eq!(spring.from, datetime!(2026-03-28 23:00 UTC));
        assert_eq!(spring.to - spring.from, time::Duration::hours(23));
        assert_eq!(
            paris.date_of(datetime!(2026-03-28 23:30 UTC)),
            date!(2026 - 03 - 29)
        );
    }

    #[test]
    fn the_ends_of_the_calendar_saturate_instead_of_failing() {
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let last = tokyo.date_of(datetime!(9999-12-31 23:59 UTC));
        assert_eq!(last.year(), 9999);
        let end = Window::day(&tokyo, date!(9999 - 12 - 31));
        assert!(end.from <= end.to);
        assert!(Zone::named("Nowhere/Land")
            .unwrap_err()
            .to_string()
            .contains("Nowhere/Land"));
    }

    #[test]
    fn hours_follow_the_zones_clock() {
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        assert_eq!(
            tokyo.hour_of(time::macros::datetime!(2026-11-27 15:30 UTC)),
            0
        );
        let paris = Zone::named("Europe/Paris").unwrap();
        assert_eq!(
            paris.hour_of(time::macros::datetime!(2026-07-01 10:00 UTC)),
            12
        );
        assert_eq!(
            paris.hour_of(time::macros::datetime!(2026-12-01 10:00 UTC)),
            11
        );
    }
}

//! Instants as SES, SNS and MySQL spell them.
//!
//! SES writes ISO-8601 with `Z` or an offset (one documented classic example reads
//! `2018-10-08T14:05:45 +0000`), SNS writes `2026-11-27T13:42:12.183Z`, and MySQL stores
//! `DATETIME(3)` in UTC. Everything inside the program is a UTC `OffsetDateTime`; this module is
//! the only place that converts.

use std::fmt;

use mysql::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The years an event may fall in; instants outside are bad input, not data. Narrower than a
/// `DATETIME` column (1000-9999) on purpose: SES did not exist before 2011, a year like 9999 is a
/// sender's placeholder, and within this range every zone conversion and day boundary is exact
/// (at the ends of the calendar they are not, and one such event would break a day's rollup).
const FIRST_STORABLE_YEAR: i32 = 1970;
const LAST_STORABLE_YEAR: i32 = 2099;

/// Why a timestamp cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimestampError {
    /// Not ISO-8601 in any form SES or SNS writes (the text is shortened to 64 characters).
    Unparseable { text: String, detail: String },
    /// A real instant, but outside what a `DATETIME(3)` column can hold.
    Unstorable { at: OffsetDateTime },
    /// A BSON date (milliseconds since the epoch) outside `time`'s range, or unreadable.
    BadDate { detail: String },
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::Unparseable { text, detail } => {
                write!(f, "unparseable timestamp {text:?}: {detail}")
            }
            TimestampError::Unstorable { at } => write!(
                f,
                "timestamp {} is outside the storable years {FIRST_STORABLE_YEAR}-{LAST_STORABLE_YEAR}",
                sns(*at)
            ),
            TimestampError::BadDate { detail } => f.write_str(detail),
        }
    }
}

/// Parses an SES or SNS timestamp and returns it in UTC.
pub fn parse(text: &str) -> Result<OffsetDateTime, TimestampError> {
    let trimmed = text.trim();
    let normalized = normalize_offset(trimmed);
    let parsed =
        OffsetDateTime::parse(&normalized, &Rfc3339).map_err(|e| TimestampError::Unparseable {
            text: shorten(trimmed),
            detail: e.to_string(),
        })?;
    Ok(to_millisecond(parsed.to_offset(UtcOffset::UTC)))
}

/// The instant with its finer digits dropped: SES publishes milliseconds and the tables keep
/// milliseconds (`DATETIME(3)`), so every instant is taken at that precision when it is read.
/// A new event and the same event read back from a row then compare alike, whatever batch
/// they meet in (an engagement class must not depend on digits the table drops).
pub fn to_millisecond(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.nanosecond();
    at.replace_nanosecond(nanos - nanos % 1_000_000)
        .unwrap_or(at)
}

/// Checks that an instant fits a `DATETIME(3)` column.
pub fn check_storable(at: OffsetDateTime) -> Result<OffsetDateTime, TimestampError> {
    if (FIRST_STORABLE_YEAR..=LAST_STORABLE_YEAR).contains(&at.year()) {
        Ok(at)
    } else {
        Err(TimestampError::Unstorable { at })
    }
}

/// Rewrites the offset forms RFC 3339 lacks (`+0000`, ` +0000`, `+00`, lower-case `t`/`z`) into
/// RFC 3339, leaving anything else for the parser to reject.
fn normalize_offset(text: &str) -> String {
    let mut s: String = text.to_string();
    if s.len() > 10 && s.as_bytes()[10] == b't' {
        s.replace_range(10..11, "T");
    }
    if s.ends_with('z') {
        s.pop();
        s.push('Z');
    }
    // "2018-10-08T14:05:45 +0000" -> drop the space before the offset
    if let Some(pos) = s.rfind([' ']) {
        let rest = &s[pos + 1..];
        if rest.starts_with(['+', '-']) {
            s.remove(pos);
        }
    }
    if s.ends_with('Z') || s.len() < 20 {
        return s;
    }
    let sign_pos = s.rfind(['+', '-']).filter(|&p| p > 18);
    if let Some(p) = sign_pos {
        let offset = &s[p + 1..];
        let fixed = match offset.len() {
            4 if offset.bytes().all(|b| b.is_ascii_digit()) => {
                Some(format!("{}:{}", &offset[..2], &offset[2..]))
            }
            2 if offset.bytes().all(|b| b.is_ascii_digit()) => Some(format!("{offset}:00")),
            _ => None,
        };
        if let Some(fixed) = fixed {
            s.truncate(p + 1);
            s.push_str(&fixed);
        }
    }
    s
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The SNS form: UTC, milliseconds, `Z`. ISO strings compare correctly as strings only in this
/// form, which is why the Mongo window filter uses it.
pub fn sns(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.format(&fmt).unwrap_or_else(|_| at.to_string())
}

/// RFC 3339 in UTC with seconds only, for summaries and messages.
pub fn display(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let fmt = if at.millisecond() == 0 {
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z").to_vec()
    } else {
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")
            .to_vec()
    };
    at.format(&fmt).unwrap_or_else(|_| at.to_string())
}

/// A UTC instant as a MySQL `DATETIME(3)` value (milliseconds kept, finer digits dropped).
pub fn to_sql(at: OffsetDateTime) -> Value {
    let at = at.to_offset(UtcOffset::UTC);
    Value::Date(
        at.year().clamp(0, u16::MAX as i32) as u16,
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond() as u32 * 1000,
    )
}

/// Reads a MySQL `DATETIME` value back as a UTC instant.
pub fn from_sql(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::Date(y, mo, d, h, mi, s, us) => {
            let date = Date::from_calendar_date(*y as i32, Month::try_from(*mo).ok()?, *d).ok()?;
            let time = Time::from_hms_micro(*h, *mi, *s, *us).ok()?;
            Some(PrimitiveDateTime::new(date, time).assume_utc())
        }
        Value::Bytes(bytes) => {
            let text = std::str::from_utf8(bytes).ok()?;
            let fmt = format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
            );
            PrimitiveDateTime::parse(text, &fmt)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        }
        _ => None,
    }
}

/// Milliseconds since the epoch to a UTC instant (BSON dates).
pub fn from_unix_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000).ok()
}

/// A UTC instant to milliseconds since the epoch (BSON dates).
pub fn to_unix_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn finer_digits_than_milliseconds_are_dropped_when_read() {
        assert_eq!(
            parse("2026-11-27T10:00:00.123999Z").unwrap(),
            datetime!(2026-11-27 10:00:00.123 UTC)
        );
        assert_eq!(
            parse("2026-11-27T10:00:00.1239+01:00").unwrap(),
            datetime!(2026-11-27 09:00:00.123 UTC)
        );
        assert_eq!(
            parse("2026-11-27T10:00:00.5Z").unwrap(),
            datetime!(2026-11-27 10:00:00.5 UTC)
        );
    }

    #[test]
    fn parses_sns_form() {
        assert_eq!(
            parse("2026-11-27T13:42:12.183Z").unwrap(),
            datetime!(2026-11-27 13:42:12.183 UTC)
        );
    }

    #[test]
    fn parses_offsets_into_utc() {
        assert_eq!(
            parse("2026-11-27T08:42:12-05:00").unwrap(),
            datetime!(2026-11-27 13:42:12 UTC)
        );
        assert_eq!(
            parse("2018-10-08T14:05:45 +0000").unwrap(),
            datetime!(2018-10-08 14:05:45 UTC)
        );
        assert_eq!(
            parse("2018-10-08T16:05:45+0200").unwrap(),
            datetime!(2018-10-08 14:05:45 UTC)
        );
        assert_eq!(
            parse("2018-10-08t14:05:45.5z").unwrap(),
            datetime!(2018-10-08 14:05:45.5 UTC)
        );
    }

    #[test]
    fn rejects_garbage_naming_it() {
        let err = parse("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"), "{err}");
        assert!(parse("").is_err());
        assert!(parse("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn events_are_storable_from_1970_to_2099() {
        assert!(check_storable(datetime!(0000-01-01 0:00 UTC)).is_err());
        assert!(check_storable(datetime!(1969-12-31 23:59:59.999 UTC)).is_err());
        assert!(check_storable(datetime!(1970-01-01 0:00 UTC)).is_ok());
        assert!(check_storable(datetime!(2099-12-31 23:59:59.999 UTC)).is_ok());
        let err = check_storable(datetime!(9999-12-31 23:59 UTC)).unwrap_err();
        assert!(err.to_string().contains("1970-2099"), "{err}");
    }

    #[test]
    fn sns_form_sorts_as_text() {
        let a = sns(datetime!(2026-11-27 09:00 UTC));
        let b = sns(datetime!(2026-11-27 10:00:00.001 UTC));
        assert_eq!(a, "2026-11-27T09:00:00.000Z");
        assert!(a < b);
    }

    #[test]
    fn sql_round_trip_keeps_milliseconds() {
        let at = datetime!(2026-11-27 13:42:12.183 UTC);
        assert_eq!(from_sql(&to_sql(at)), Some(at));
        assert_eq!(
            from_sql(&Value::Bytes(b"2026-11-27 13:42:12.183".to_vec())),
            Some(at)
        );
    }
}

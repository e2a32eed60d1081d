//! Daily rollups (`aws_report_daily`): recomputed from the detail rows for whole days, never
//! incremented, so duplicates and reruns cannot inflate them; and read back for `stats`.

use std::collections::BTreeSet;

use mysql::prelude::Queryable;
use mysql::{Conn, TxOpts, Value};
use time::{Date, OffsetDateTime};

use crate::timestamps;
use crate::window::Zone;

/// The counters of one rollup row (or of a sum of rows), in table column order.
pub const COUNTERS: [&str; 15] = [
    "sent",
    "delivered",
    "rejected",
    "rendering_failures",
    "delivery_delays",
    "permanent_bounces",
    "suppressed_bounces",
    "transient_bounces",
    "undetermined_bounces",
    "complaints",
    "unique_opens",
    "total_opens",
    "unique_clicks",
    "total_clicks",
    "unsubscribes",
];

/// Per summary row (recipient), what its details of the day say: flags, and open/click counts.
/// Counting per recipient first and summing flags afterwards is what makes the rollup cheap
/// (one grouping pass instead of a distinct-count per counter: 0.3 s instead of 0.75 s at 100k).
fn per_recipient_columns() -> Vec<String> {
    let flag = |name: &str, condition: &str| format!("MAX({condition}) AS {name}");
    let bounce = |name: &str, condition: &str| {
        format!("MAX(CASE WHEN d.event_type = 'Bounce' THEN {condition} ELSE 0 END) AS {name}")
    };
    let bounce_type = "JSON_UNQUOTE(JSON_EXTRACT(d.other_info, '$.bounceType'))";
    let sub_type = "COALESCE(JSON_UNQUOTE(JSON_EXTRACT(d.other_info, '$.bounceSubType')), '')";
    vec![
        flag("sent", "d.event_type = 'Send'"),
        flag("delivered", "d.event_type = 'Delivery'"),
        flag("rejected", "d.event_type = 'Reject'"),
        flag("rendering_failures", "d.event_type = 'Rendering Failure'"),
        flag("delivery_delays", "d.event_type = 'DeliveryDelay'"),
        bounce(
            "permanent_bounces",
            &format!("{bounce_type} = 'Permanent' AND {sub_type} <> 'OnAccountSuppressionList'"),
        ),
        bounce(
            "suppressed_bounces",
            &format!("{bounce_type} = 'Permanent' AND {sub_type} = 'OnAccountSuppressionList'"),
        ),
        bounce("transient_bounces", &format!("{bounce_type} = 'Transient'")),
        bounce(
            "undetermined_bounces",
            &format!("COALESCE({bounce_type}, '') NOT IN ('Permanent', 'Transient')"),
        ),
        flag("complaints", "d.event_type = 'Complaint'"),
        "SUM(d.event_type = 'Open') AS opens".to_string(),
        "SUM(d.event_type = 'Click') AS clicks".to_string(),
        "MAX(CASE WHEN d.event_type = 'Subscription' THEN JSON_UNQUOTE(JSON_EXTRACT(d.other_info, \
         '$.newTopicPreferences.unsubscribeAll')) = 'true' ELSE 0 END) AS unsubscribes"
            .to_string(),
    ]
}

/// Each counter of `COUNTERS` as a sum over the per-recipient rows.
fn counter_sums() -> Vec<String> {
    COUNTERS
        .iter()
        .map(|c| match *c {
            "unique_opens" => "COALESCE(SUM(x.opens > 0), 0)".to_string(),
            "total_opens" => "COALESCE(SUM(x.opens), 0)".to_string(),
            "unique_clicks" => "COALESCE(SUM(x.clicks > 0), 0)".to_string(),
            "total_clicks" => "COALESCE(SUM(x.clicks), 0)".to_string(),
            other => format!("COALESCE(SUM(x.{other}), 0)"),
        })
        .collect()
}

/// Recomputes the rollups of `days` (calendar days in `zone`) in one transaction.
pub fn recompute(conn: &mut Conn, zone: &Zone, days: &BTreeSet<Date>) -> Result<(), String> {
    if days.is_empty() {
        return Ok(());
    }
    let insert = format!(
        "INSERT INTO aws_report_daily (day, report_type, source_email, recipient_domain, {columns}, time_zone, computed_at)
         SELECT ?, r.report_type, COALESCE(r.source_email, ''), SUBSTRING_INDEX(r.user_email, '@', -1),
                {sums}, ?, ?
         FROM (SELECT d.report_id, {per_recipient}
               FROM aws_report_details d
               WHERE d.event_type IN ('Send', 'Delivery', 'Reject', 'Rendering Failure', 'DeliveryDelay', 'Bounce',
                                      'Complaint', 'Open', 'Click', 'Subscription')
                 AND d.timestamp >= ? AND d.timestamp < ?
               GROUP BY d.report_id) x
         JOIN aws_reports r ON r.id = x.report_id
         GROUP BY r.report_type, COALESCE(r.source_email, ''), SUBSTRING_INDEX(r.user_email, '@', -1)",
        columns = COUNTERS.join(", "),
        sums = counter_sums().join(", "),
        per_recipient = per_recipient_columns().join(",\n                      "),
    );
    let mut tx = conn
        .start_transaction(TxOpts::default())
        .map_err(|e| e.to_string())?;
    let now = timestamps::to_sql(OffsetDateTime::now_utc());
    for day in days {
        let window = zone.day(*day)?;
        let day_value = Value::Date(day.year() as u16, day.month() as u8, day.day(), 0, 0, 0, 0);
        tx.exec_drop(
            "DELETE FROM aws_report_daily WHERE day = ?",
            (day_value.clone(),),
        )
        .map_err(|e| e.to_string())?;
        tx.exec_drop(
            &insert,
            vec![
                day_value,
                zone.name().into(),
                now.clone(),
                timestamps::to_sql(window.from),
                timestamps::to_sql(window.to),
            ],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
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

/// A way to group rollup rows for `stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    ReportType,
    Source,
    Domain,
}

impl GroupBy {
    pub fn parse(text: &str) -> Result<GroupBy, String> {
        match text {
            "day" => Ok(GroupBy::Day),
            "report-type" => Ok(GroupBy::ReportType),
            "source" => Ok(GroupBy::Source),
            "domain" => Ok(GroupBy::Domain),
            other => Err(format!(
                "--by {other:?}: want day, report-type, source or domain"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::ReportType => "report_type",
            GroupBy::Source => "source",
            GroupBy::Domain => "domain",
        }
    }

    fn column(self) -> &'static str {
        match self {
            GroupBy::Day => "DATE_FORMAT(day, '%Y-%m-%d')",
            GroupBy::ReportType => "CAST(report_type AS CHAR)",
            GroupBy::Source => "source_email",
            GroupBy::Domain => "recipient_domain",
        }
    }
}

/// One group of summed rollups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// The group's key values, in `--by` order.
    pub key: Vec<String>,
    /// Sums, in `COUNTERS` order.
    pub counts: [u64; 15],
}

impl Totals {
    pub fn get(&self, counter: &str) -> u64 {
        COUNTERS
            .iter()
            .position(|c| *c == counter)
            .map(|i| self.counts[i])
            .unwrap_or(0)
    }
}

/// Sums the rollups of days `[first, end)` by the given keys, ordered by them.
pub fn totals(
    conn: &mut Conn,
    first: Date,
    end: Date,
    by: &[GroupBy],
) -> Result<Vec<Totals>, mysql::Error> {
    let keys: Vec<&str> = by.iter().map(|g| g.column()).collect();
    let sums: Vec<String> = COUNTERS
        .iter()
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS UNSIGNED)"))
        .collect();
    let (select_keys, group) = if keys.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format!("{}, ", keys.join(", ")),
            format!(" GROUP BY {0} ORDER BY {0}", keys.join(", ")),
        )
    };
    let sql = format!(
        "SELECT {select_keys}{} FROM aws_report_daily WHERE day >= ? AND day < ?{group}",
        sums.join(", ")
    );
    let date = |d: Date| Value::Date(d.year() as u16, d.month() as u8, d.day(), 0, 0, 0, 0);
    let rows: Vec<mysql::Row> = conn.exec(sql, (date(first), date(end)))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let values = row.unwrap();
        let (key_values, count_values) = values.split_at(keys.len());
        let key = key_values
            .iter()
            .map(|v| mysql::from_value_opt::<String>(v.clone()).unwrap_or_default())
            .collect();
        let mut counts = [0u64; 15];
        for (slot, v) in counts.iter_mut().zip(count_values) {
            *slot = mysql::from_value_opt::<u64>(v.clone()).unwrap_or(0);
        }
        out.push(Totals { key, counts });
    }
    if keys.is_empty() && out.iter().all(|t| t.counts.iter().all(|c| *c == 0)) {
        out.clear();
    }
    Ok(out)
}

//! `aws_report_daily`: recomputed from the detail rows for whole days, never incremented, so
//! duplicates and reruns cannot inflate it; and summed back for the reading commands.

use std::collections::{BTreeMap, BTreeSet};

use mysql::prelude::Queryable;
use mysql::{Conn, Transaction, TxOpts, Value};
use time::{Date, OffsetDateTime};

use crate::domain::bounce::BounceClass;
use crate::domain::event_kind::EventKind;
use crate::domain::figures::{Counter, GroupBy, Totals};
use crate::domain::timestamps;
use crate::domain::window::{self, Window};
use crate::domain::zone::Zone;

/// The text at `path` (an SQL expression: a literal or a placeholder) of the JSON in `column`,
/// or NULL. A column that does not hold valid JSON (a row another program wrote) reads as NULL:
/// MariaDB would say so with a warning, MySQL fails the whole statement (error 3141), and one
/// foreign row must never fail a rollup.
fn json_text(column: &str, path: &str) -> String {
    format!("JSON_UNQUOTE(JSON_EXTRACT(IF(JSON_VALID({column}), {column}, NULL), {path}))")
}

/// Per summary row (recipient), what its details of the day say: flags, and open/click counts.
/// Counting per recipient first and summing flags afterwards is what makes the rollup cheap
/// (one grouping pass instead of a distinct-count per counter: 0.3 s instead of 0.75 s at 100k).
fn per_recipient_columns() -> Vec<String> {
    let flag = |c: Counter, condition: &str| format!("MAX({condition}) AS {}", c.column());
    let bounce = |c: Counter, condition: &str| {
        format!(
            "MAX(CASE WHEN d.event_type = 'Bounce' THEN {condition} ELSE 0 END) AS {}",
            c.column()
        )
    };
    let info = |path: &str| json_text("d.other_info", &format!("'{path}'"));
    let bounce_type = info("$.bounceType");
    let sub_type = format!("COALESCE({}, '')", info("$.bounceSubType"));
    // JSON null (the usual value) unquotes to 'null'; absent is SQL NULL.
    let complaint_sub_type = format!("COALESCE({}, '')", info("$.complaintSubType"));
    // A not-spam report is no complaint (migration 12 says why).
    let not_spam = format!(
        "COALESCE({}, '') = 'not-spam'",
        info("$.complaintFeedbackType")
    );
    let mut columns = vec![
        flag(Counter::Sent, "d.event_type = 'Send'"),
        flag(Counter::Delivered, "d.event_type = 'Delivery'"),
        flag(Counter::Rejected, "d.event_type = 'Reject'"),
        flag(Counter::RenderingFailures, "d.event_type = 'Rendering Failure'"),
        flag(Counter::DeliveryDelays, "d.event_type = 'DeliveryDelay'"),
        bounce(Counter::PermanentBounces,
            &format!("{bounce_type} = 'Permanent' AND {sub_type} <> 'OnAccountSuppressionList'"),
        ),
        bounce(Counter::SuppressedBounces,
            &format!("{bounce_type} = 'Permanent' AND {sub_type} = 'OnAccountSuppressionList'"),
        ),
        bounce(Counter::TransientBounces, &format!("{bounce_type} = 'Transient'")),
        bounce(Counter::UndeterminedBounces,
            &format!("COALESCE({bounce_type}, '') NOT IN ('Permanent', 'Transient')"),
        ),
        flag(
            Counter::Complaints,
            &format!("d.event_type = 'Complaint' AND {complaint_sub_type} <> 'OnAccountSuppressionList' AND NOT {not_spam}"),
        ),
        flag(
            Counter::SuppressedComplaints,
            &format!("d.event_type = 'Complaint' AND {complaint_sub_type} = 'OnAccountSuppressionList'"),
        ),
        "SUM(d.event_type = 'Open') AS opens".to_string(),
        "SUM(d.event_type = 'Click') AS clicks".to_string(),
        "SUM(d.event_type = 'Open' AND d.automated IS NULL) AS human_opens".to_string(),
        "SUM(d.event_type = 'Click' AND d.automated IS NULL) AS human_clicks".to_string(),
        format!(
            "MAX(CASE WHEN d.event_type = 'Subscription' THEN {} = 'true' ELSE 0 END) AS {}",
            info("$.newTopicPreferences.unsubscribeAll"),
            Counter::Unsubscribes.column()
        ),
    ];
    // A bounce SES suppressed itself has no receiving server's reply: it counts in
    // suppressed_bounces and in no class.
    columns.extend(BounceClass::ALL.map(|class| {
        bounce(
            Counter::of_class(class),
            &format!(
                "d.bounce_class = '{}' AND {sub_type} <> 'OnAccountSuppressionList'",
                class.as_str()
            ),
        )
    }));
    columns
}

/// Each counter as a sum over the per-recipient rows.
fn counter_sums() -> Vec<String> {
    Counter::ALL
        .iter()
        .map(|c| match c {
            Counter::UniqueOpens => "COALESCE(SUM(x.opens > 0), 0)".to_string(),
            Counter::TotalOpens => "COALESCE(SUM(x.opens), 0)".to_string(),
            Counter::UniqueClicks => "COALESCE(SUM(x.clicks > 0), 0)".to_string(),
            Counter::TotalClicks => "COALESCE(SUM(x.clicks), 0)".to_string(),
            Counter::HumanUniqueOpens => "COALESCE(SUM(x.human_opens > 0), 0)".to_string(),
            Counter::HumanUniqueClicks => "COALESCE(SUM(x.human_clicks > 0), 0)".to_string(),
            flag => format!("COALESCE(SUM(x.{}), 0)", flag.column()),
        })
        .collect()
}

/// The counter columns, comma-separated, in table order.
fn counter_columns() -> String {
    Counter::ALL.map(Counter::column).join(", ")
}

/// Recomputes the rollups of `days` (calendar days in `zone`), each day in a transaction of its
/// own (a long range stays within proxies' transaction limits, and a failure keeps the days
/// done); `on_day` is told how many days are done after each.
pub fn recompute(
    conn: &mut Conn,
    zone: &Zone,
    days: &BTreeSet<Date>,
    on_day: &mut dyn FnMut(usize),
) -> Result<(), mysql::Error> {
    for (done, day) in days.iter().enumerate() {
        let mut tx = conn.start_transaction(TxOpts::default())?;
        recompute_in(&mut tx, zone, &BTreeSet::from([*day]))?;
        tx.commit()?;
        on_day(done + 1);
    }
    Ok(())
}

/// What `recompute_dirty` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// Calendar days whose rollups were rebuilt.
    pub days: usize,
    /// Marked days before the retention horizon: their details are gone, so their rollups are
    /// kept as they are and the marks dropped.
    pub kept_pruned: usize,
}

/// Recomputes every day marked in `aws_report_dirty_days`, by whichever run marked it. Each mark
/// (a UTC date) is taken in a transaction of its own: locked, the calendar days of `zone` it
/// touches recomputed, the mark deleted, committed. A long catch-up thus stays within proxies'
/// transaction and query limits (Vitess: 30 s) and keeps its progress; a mark outlives every
/// failure until its rollup is committed; and a run that writes rows of that date meanwhile waits
/// for the lock, then marks it again. (In a zone other than UTC a calendar day touches two
/// marks, so it may be recomputed twice.)
pub fn recompute_dirty(
    conn: &mut Conn,
    zone: &Zone,
    pruned_before: Option<OffsetDateTime>,
) -> Result<Recomputed, mysql::Error> {
    let marked: Vec<String> = conn.query(
        "SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days ORDER BY day_utc",
    )?;
    let (mut rebuilt, mut kept) = (BTreeSet::new(), BTreeSet::new());
    for text in &marked {
        // The column is a DATE: it always parses.
        let Ok(date) = window::parse_date(text) else {
            continue;
        };
        let mut tx = conn.start_transaction(TxOpts::default())?;
        let still: Option<u8> = tx.exec_first(
            "SELECT 1 FROM aws_report_dirty_days WHERE day_utc = ? FOR UPDATE",
            (text,),
        )?;
        if still.is_none() {
            // Another run rolled it up meanwhile.
            tx.commit()?;
            continue;
        }
        let start = date.midnight().assume_utc();
        let end = start + time::Duration::days(1) - time::Duration::milliseconds(1);
        let days = BTreeSet::from([zone.date_of(start), zone.date_of(end)]);
        let (pruned, days) = split_at_horizon(days, zone, pruned_before);
        recompute_in(&mut tx, zone, &days)?;
        tx.exec_drop(
            "DELETE FROM aws_report_dirty_days WHERE day_utc = ?",
            (text,),
        )?;
        tx.commit()?;
        rebuilt.extend(days);
        kept.extend(pruned);
    }
    Ok(Recomputed {
        days: rebuilt.len(),
        kept_pruned: kept.difference(&rebuilt).count(),
    })
}

/// Splits `days` into those that start before the retention horizon (their details are at
/// least partly pruned: a recomputation would shrink them) and the rest.
pub fn split_at_horizon(
    days: BTreeSet<Date>,
    zone: &Zone,
    pruned_before: Option<OffsetDateTime>,
) -> (BTreeSet<Date>, BTreeSet<Date>) {
    match pruned_before {
        None => (BTreeSet::new(), days),
        Some(horizon) => days
            .into_iter()
            .partition(|day| zone.start_of(*day) < horizon),
    }
}

/// The rollup's dimensions: (`aws_report_daily` column, expression over the summary row `r`).
const ROLLUP_DIMENSIONS: [(&str, &str); 6] = [
    ("report_type", "r.report_type"),
    ("source_email", "COALESCE(r.source_email, '')"),
    ("recipient_domain", "SUBSTRING_INDEX(r.user_email, '@', -1)"),
    ("mailbox_provider", "r.mailbox_provider"),
    ("configuration_set", "COALESCE(r.configuration_set, '')"),
    ("sending_ip", "COALESCE(r.sending_ip, '')"),
];

/// The summary-row columns the dimensions read. A batch that changes any of them on a stored row
/// moves that row's counts to other groups on every day it counts in (`mark_days_of`).
pub const SUMMARY_COLUMNS: [&str; 6] = [
    "report_type",
    "source_email",
    "user_email",
    "mailbox_provider",
    "configuration_set",
    "sending_ip",
];

/// The counters of one day's detail rows, grouped by `group` (expressions or aliases over the
/// summary row `r`): `before` and `after` surround the sums in the select list. The day's
/// window, `[from, to)`, is the last two parameters.
///
/// The detail rows are read by their time (the type-and-time index, or one pass over the table
/// when the window holds much of it), never summary row by summary row: given
/// `idx_details_report`, MariaDB 10.11 chose, for a window holding a large share of the table, a
/// `LATERAL DERIVED` plan that read every summary row in the table, of every day, and each one's
/// detail rows by `report_id` (one day of 5 kept: 3.0 s instead of 1.2 s; docs/benchmark-notes.md,
/// "What is left at 1M", measured 2026-11-29 at 3149707).
fn day_select(before: &str, after: &str, group: &[String]) -> String {
    format!(
        "SELECT {before}{sums}{after}
         FROM (SELECT d.report_id, {per_recipient}
               FROM aws_report_details d IGNORE INDEX (idx_details_report)
               WHERE d.event_type IN ({kinds})
                 AND d.timestamp >= ? AND d.timestamp < ?
               GROUP BY d.report_id) x
         JOIN aws_reports r ON r.id = x.report_id{group}",
        kinds = EventKind::sql_list(),
        sums = counter_sums().join(", "),
        per_recipient = per_recipient_columns().join(",\n                      "),
        group = if group.is_empty() {
            String::new()
        } else {
            format!("\n         GROUP BY {}", group.join(", "))
        },
    )
}

/// Room, in bytes, for the in-memory temporary tables of one rollup statement. The
/// per-recipient grouping holds a row for every summary row with events that day: at a million
/// events (365,000 recipients) it needs more than 48 MB and no more than 64 MB. With MariaDB's
/// 16 MB default it goes to an on-disk table (Aria), and the statement took 16.3 s instead of
/// 9.8 s (BENCHMARKS.md, measured at 5e49b0a). The limit is the smaller of `tmp_table_size` and
/// `max_heap_table_size`, so both are raised, for this connection only (SET SESSION) and never lowered: a server
/// configured with more keeps its own (the knob for larger days).
const ROLLUP_TEMP_TABLE_BYTES: u64 = 64 * 1024 * 1024;

fn recompute_in(
    tx: &mut Transaction<'_>,
    zone: &Zone,
    days: &BTreeSet<Date>,
) -> Result<(), mysql::Error> {
    tx.exec_drop(
        "SET SESSION tmp_table_size = GREATEST(@@SESSION.tmp_table_size, ?),
             max_heap_table_size = GREATEST(@@SESSION.max_heap_table_size, ?)",
        (ROLLUP_TEMP_TABLE_BYTES, ROLLUP_TEMP_TABLE_BYTES),
    )?;
    let dimensions: Vec<String> = ROLLUP_DIMENSIONS
        .iter()
        .map(|(_, expr)| expr.to_string())
        .collect();
    let insert = format!(
        "INSERT INTO aws_report_daily (day, {dimension_columns}, {columns}, time_zone, computed_at)\n{select}",
        dimension_columns = ROLLUP_DIMENSIONS.map(|(c, _)| c).join(", "),
        columns = counter_columns(),
        select = day_select(&format!("?, {}, ", dimensions.join(", ")), ", ?, ?", &dimensions),
    );
    let now = timestamps::to_sql(OffsetDateTime::now_utc());
    for day in days {
        let window = Window::day(zone, *day);
        let day_value = Value::Date(day.year() as u16, day.month() as u8, day.day(), 0, 0, 0, 0);
        tx.exec_drop(
            "DELETE FROM aws_report_daily WHERE day = ?",
            (day_value.clone(),),
        )?;
        tx.exec_drop(
            &insert,
            vec![
                day_value,
                zone.name().into(),
                now.clone(),
                timestamps::to_sql(window.from),
                timestamps::to_sql(window.to),
            ],
        )?;
    }
    Ok(())
}

/// Marks the UTC dates of `instants` dirty, inside the caller's transaction (the one that writes
/// the rows of those events).
pub fn mark_dirty<Q: Queryable>(
    conn: &mut Q,
    instants: impl Iterator<Item = OffsetDateTime>,
) -> Result<(), mysql::Error> {
    let dates: BTreeSet<Date> = instants.map(|at| at.date()).collect();
    mark_dates(conn, &dates)
}

/// Marks these UTC dates dirty.
fn mark_dates<Q: Queryable>(conn: &mut Q, dates: &BTreeSet<Date>) -> Result<(), mysql::Error> {
    if dates.is_empty() {
        return Ok(());
    }
    let now = timestamps::to_sql(OffsetDateTime::now_utc());
    let mut params = Vec::with_capacity(dates.len() * 2);
    for d in dates {
        params.push(Value::Date(
            d.year() as u16,
            d.month() as u8,
            d.day(),
            0,
            0,
            0,
            0,
        ));
        params.push(now.clone());
    }
    conn.exec_drop(
        format!(
            "INSERT IGNORE INTO aws_report_dirty_days (day_utc, marked_at) VALUES {}",
            super::row_placeholders(dates.len(), 2)
        ),
        params,
    )
}

/// Marks dirty every day the detail rows of these summary rows fall on (the send day included),
/// inside the caller's transaction: the rows changed a column their rollup groups by, so each
/// of those days' rollups is stale, not only the days of the batch's own events.
pub fn mark_days_of<Q: Queryable>(
    conn: &mut Q,
    report_ids: &BTreeSet<u64>,
) -> Result<(), mysql::Error> {
    if report_ids.is_empty() {
        return Ok(());
    }
    let days: Vec<Value> = super::select_in(
        conn,
        "SELECT DISTINCT DATE(timestamp) FROM aws_report_details WHERE report_id IN ({keys})",
        report_ids.iter().copied(),
    )?;
    let dates: BTreeSet<Date> = days
        .iter()
        .filter_map(|v| match v {
            Value::Date(y, m, d, ..) => {
                Date::from_calendar_date(i32::from(*y), time::Month::try_from(*m).ok()?, *d).ok()
            }
            _ => None,
        })
        .collect();
    mark_dates(conn, &dates)
}

/// Sums the rollups of days `[first, end)` by the given keys, ordered by them.
pub fn totals(
    conn: &mut Conn,
    first: Date,
    end: Date,
    by: &[GroupBy],
) -> Result<Vec<Totals>, mysql::Error> {
    let keys: Vec<&str> = by.iter().map(key_column).collect();
    let sums: Vec<String> = Counter::ALL
        .iter()
        .map(|c| format!("CAST(COALESCE(SUM({}), 0) AS UNSIGNED)", c.column()))
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
        let mut counts = [0u64; Counter::ALL.len()];
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

/// The `aws_report_daily` expression a group key reads (`Tag`s are not in the rollups).
fn key_column(by: &GroupBy) -> &'static str {
    match by {
        GroupBy::Day => "DATE_FORMAT(day, '%Y-%m-%d')",
        GroupBy::ReportType => "CAST(report_type AS CHAR)",
        GroupBy::Source => "source_email",
        GroupBy::Domain => "recipient_domain",
        GroupBy::Provider => "mailbox_provider",
        GroupBy::ConfigurationSet => "configuration_set",
        GroupBy::SendingIp => "sending_ip",
        GroupBy::Tag(_) => "''",
    }
}

/// The JSON path of a custom tag's first value in `aws_reports.tags`.
fn tag_path(name: &str) -> String {
    format!(
        "$.\"{}\"[0]",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// Sums the counters of days `[first, end)` by keys that include a custom tag, from the
/// detail and summary rows (the rollups do not hold custom tags): the same per-day grouping as
/// the rollup, one day at a time in `zone`, with the tag's first value as a key.
pub fn totals_from_rows(
    conn: &mut Conn,
    zone: &Zone,
    first: Date,
    end: Date,
    by: &[GroupBy],
) -> Result<Vec<Totals>, mysql::Error> {
    let mut sums: BTreeMap<Vec<String>, [u64; Counter::ALL.len()]> = BTreeMap::new();
    let mut day = first;
    while day < end {
        let mut keys = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        for (i, g) in by.iter().enumerate() {
            let expr = match g {
                GroupBy::Day => format!("'{day}'"),
                GroupBy::ReportType => "CAST(r.report_type AS CHAR)".to_string(),
                GroupBy::Source => "COALESCE(r.source_email, '')".to_string(),
                GroupBy::Domain => "SUBSTRING_INDEX(r.user_email, '@', -1)".to_string(),
                GroupBy::Provider => "r.mailbox_provider".to_string(),
                GroupBy::ConfigurationSet => "COALESCE(r.configuration_set, '')".to_string(),
                GroupBy::SendingIp => "COALESCE(r.sending_ip, '')".to_string(),
                GroupBy::Tag(name) => {
                    params.push(tag_path(name).into());
                    format!("COALESCE({}, '')", json_text("r.tags", "?"))
                }
            };
            keys.push(format!("{expr} AS k{i}"));
        }
        let aliases: Vec<String> = (0..by.len()).map(|i| format!("k{i}")).collect();
        let before = if keys.is_empty() {
            String::new()
        } else {
            format!("{}, ", keys.join(", "))
        };
        let window = Window::day(zone, day);
        params.push(timestamps::to_sql(window.from));
        params.push(timestamps::to_sql(window.to));
        let rows: Vec<mysql::Row> = conn.exec(day_select(&before, "", &aliases), params)?;
        for row in rows {
            let values = row.unwrap();
            let (key_values, count_values) = values.split_at(by.len());
            let key: Vec<String> = key_values
                .iter()
                .map(|v| mysql::from_value_opt::<String>(v.clone()).unwrap_or_default())
                .collect();
            let slot = sums.entry(key).or_insert([0; Counter::ALL.len()]);
            for (s, v) in slot.iter_mut().zip(count_values) {
                *s += mysql::from_value_opt::<u64>(v.clone()).unwrap_or(0);
            }
        }
        day = day.next_day().unwrap_or(end);
    }
    Ok(sums
        .into_iter()
        .filter(|(_, counts)| counts.iter().any(|c| *c > 0))
        .map(|(key, counts)| Totals { key, counts })
        .collect())
}

/// The last day before `first` that has a rollup row with any event (sent or any outcome).
pub fn last_day_before(conn: &mut Conn, first: Date) -> Result<Option<String>, mysql::Error> {
    let date = Value::Date(
        first.year() as u16,
        first.month() as u8,
        first.day(),
        0,
        0,
        0,
        0,
    );
    conn.exec_first(
        "SELECT DATE_FORMAT(MAX(day), '%Y-%m-%d') FROM aws_report_daily WHERE day < ?",
        (date,),
    )
    .map(Option::flatten)
}

/// The zones the rollups of days `[first, end)` were computed in.
pub fn zones_between(conn: &mut Conn, first: Date, end: Date) -> Result<Vec<String>, mysql::Error> {
    let date = |d: Date| Value::Date(d.year() as u16, d.month() as u8, d.day(), 0, 0, 0, 0);
    conn.exec(
        "SELECT DISTINCT time_zone FROM aws_report_daily WHERE day >= ? AND day < ? ORDER BY 1",
        (date(first), date(end)),
    )
}

/// The days of `days` whose stored rollup differs from a recomputation from the detail rows.
/// The recomputation happens in a transaction that is rolled back: nothing changes.
pub fn drift(
    conn: &mut Conn,
    zone: &Zone,
    days: &BTreeSet<Date>,
) -> Result<Vec<Date>, mysql::Error> {
    let select = format!(
        "SELECT {dimensions}, {}, time_zone FROM aws_report_daily WHERE day = ? ORDER BY {dimensions}",
        counter_columns(),
        dimensions = ROLLUP_DIMENSIONS.map(|(c, _)| c).join(", ")
    );
    let mut drifted = Vec::new();
    // A transaction per day, rolled back: a long range stays within proxies' limits.
    for day in days {
        let mut tx = conn.start_transaction(TxOpts::default())?;
        let value = Value::Date(day.year() as u16, day.month() as u8, day.day(), 0, 0, 0, 0);
        let stored: Vec<mysql::Row> = tx.exec(&select, (value.clone(),))?;
        recompute_in(&mut tx, zone, &BTreeSet::from([*day]))?;
        let fresh: Vec<mysql::Row> = tx.exec(&select, (value,))?;
        tx.rollback()?;
        let values = |rows: Vec<mysql::Row>| -> Vec<Vec<Value>> {
            rows.into_iter().map(mysql::Row::unwrap).collect()
        };
        if values(stored) != values(fresh) {
            drifted.push(*day);
        }
    }
    Ok(drifted)
}

/// How many days are marked for a rollup not yet recomputed.
pub fn pending_days(conn: &mut Conn) -> Result<u64, mysql::Error> {
    Ok(conn
        .query_first("SELECT COUNT(*) FROM aws_report_dirty_days")?
        .unwrap_or(0))
}

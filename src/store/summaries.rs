//! `aws_reports`, the summary rows: one batch's upserts (`accounting::SummaryDelta::merge`
//! stated in SQL), with what the batch needs to know of the rows before and after them.

use std::collections::{BTreeSet, HashMap, HashSet};

use mysql::prelude::Queryable;
use mysql::Value;
use time::OffsetDateTime;

use super::{rollups, row_placeholders, select_in, statement_chunks};
use crate::domain::accounting::SummaryDelta;
use crate::domain::event_kind::EventKind;
use crate::domain::timestamps;

/// A summary row's key: (SES message id, recipient).
pub type RowKey = (String, String);

/// What a batch's upserts did to its summary rows.
pub struct Upserted {
    /// Each row's id.
    pub ids: HashMap<RowKey, u64>,
    /// Rows whose rollup columns (`rollups::SUMMARY_COLUMNS`) the upserts changed: every day
    /// they count in is stale.
    pub regrouped: BTreeSet<u64>,
    /// Each stored row's delivery time before the upserts.
    pub delivered_before: HashMap<RowKey, OffsetDateTime>,
}

impl Upserted {
    pub fn id(&self, message_id: &str, recipient: &str) -> Option<u64> {
        self.ids
            .get(&(message_id.to_string(), recipient.to_string()))
            .copied()
    }
}

/// Upserts the batch's summary rows inside the caller's transaction: reads the stored rows
/// first (a locking read), then the ids and rollup columns after.
pub fn upsert<Q: Queryable>(
    conn: &mut Q,
    deltas: &[SummaryDelta],
) -> Result<Upserted, mysql::Error> {
    let before = stored_rows(conn, deltas)?;
    for chunk in statement_chunks(deltas) {
        let mut params = Vec::with_capacity(chunk.len() * SUMMARY_VALUES);
        for d in chunk {
            summary_params(d, &mut params);
        }
        conn.exec_drop(upsert_summaries_sql(chunk.len()), params)?;
    }
    // Ids of every row; the rollup columns only of the mails that had rows before (a row that
    // was not there cannot have moved between rollup groups), which on a first run is none.
    let stored: HashSet<&str> = before.keys().map(|(m, _)| m.as_str()).collect();
    let (old, new): (Vec<&str>, Vec<&str>) = deltas
        .iter()
        .map(|d| d.message_id.as_str())
        .partition(|m| stored.contains(m));
    let mut rows: Vec<mysql::Row> = select_in(
        conn,
        &format!(
            "SELECT id, message_id, user_email, {} FROM aws_reports WHERE message_id IN ({{keys}})",
            rollups::SUMMARY_COLUMNS.join(", ")
        ),
        old,
    )?;
    rows.extend(select_in::<mysql::Row, _>(
        conn,
        "SELECT id, message_id, user_email FROM aws_reports WHERE message_id IN ({keys})",
        new,
    )?);
    let mut ids = HashMap::with_capacity(rows.len());
    let mut regrouped = BTreeSet::new();
    for row in rows {
        let mut values = row.unwrap();
        let after = values.split_off(3);
        let key = (text(&values[1]), text(&values[2]));
        let Ok(id) = mysql::from_value_opt::<u64>(values[0].clone()) else {
            continue;
        };
        if before.get(&key).is_some_and(|b| b.rollup_columns != after) {
            regrouped.insert(id);
        }
        ids.insert(key, id);
    }
    let delivered_before = before
        .into_iter()
        .filter_map(|(key, row)| Some((key, row.delivered_at?)))
        .collect();
    Ok(Upserted {
        ids,
        regrouped,
        delivered_before,
    })
}

fn text(v: &Value) -> String {
    mysql::from_value_opt::<String>(v.clone()).unwrap_or_default()
}

/// Values per summary row in the upsert.
const SUMMARY_VALUES: usize = 28;

/// The upsert of summary rows: `accounting::SummaryDelta::merge` stated in SQL. MySQL applies
/// the assignments left to right, so `user_id` is decided before `user_source` changes.
fn upsert_summaries_sql(rows: usize) -> String {
    let times: Vec<&str> = EventKind::ALL.map(EventKind::summary_column).to_vec();
    let earliest: Vec<String> = times
        .iter()
        .map(|c| format!("{c} = LEAST(COALESCE({c}, VALUES({c})), COALESCE(VALUES({c}), {c}))"))
        .collect();
    format!(
        "INSERT INTO aws_reports (message_id, user_email, report_type, user_id, user_source, source_email, subject,
           {times}, open_count, click_count, bounce_type, human_open_count, human_click_count,
           first_human_open_at, first_human_click_at, mailbox_provider, configuration_set, sending_ip, tags)
         VALUES {values}
         ON DUPLICATE KEY UPDATE
           report_type = GREATEST(report_type, VALUES(report_type)),
           user_id = IF(VALUES(user_source) > user_source
                        OR (VALUES(user_source) = user_source AND VALUES(user_id) < user_id)
                        OR (VALUES(user_source) = user_source AND user_id IS NULL),
                        VALUES(user_id), user_id),
           user_source = GREATEST(user_source, VALUES(user_source)),
           source_email = COALESCE(source_email, VALUES(source_email)),
           subject = COALESCE(subject, VALUES(subject)),
           {earliest},
           open_count = open_count + VALUES(open_count),
           click_count = click_count + VALUES(click_count),
           bounce_type = CASE
             WHEN 'Permanent' IN (bounce_type, VALUES(bounce_type)) THEN 'Permanent'
             WHEN 'Transient' IN (bounce_type, VALUES(bounce_type)) THEN 'Transient'
             ELSE COALESCE(bounce_type, VALUES(bounce_type)) END,
           human_open_count = human_open_count + VALUES(human_open_count),
           human_click_count = human_click_count + VALUES(human_click_count),
           first_human_open_at = LEAST(COALESCE(first_human_open_at, VALUES(first_human_open_at)),
                                       COALESCE(VALUES(first_human_open_at), first_human_open_at)),
           first_human_click_at = LEAST(COALESCE(first_human_click_at, VALUES(first_human_click_at)),
                                        COALESCE(VALUES(first_human_click_at), first_human_click_at)),
           mailbox_provider = CASE
             WHEN VALUES(mailbox_provider) = 'other' THEN mailbox_provider
             WHEN mailbox_provider = 'other' THEN VALUES(mailbox_provider)
             ELSE LEAST(mailbox_provider, VALUES(mailbox_provider)) END,
           configuration_set = GREATEST(COALESCE(configuration_set, VALUES(configuration_set)),
                                        COALESCE(VALUES(configuration_set), configuration_set)),
           sending_ip = GREATEST(COALESCE(sending_ip, VALUES(sending_ip)),
                                 COALESCE(VALUES(sending_ip), sending_ip)),
           tags = CASE
             WHEN tags IS NULL THEN VALUES(tags)
             WHEN VALUES(tags) IS NULL THEN tags
             WHEN LENGTH(VALUES(tags)) > LENGTH(tags)
               OR (LENGTH(VALUES(tags)) = LENGTH(tags) AND VALUES(tags) > tags) THEN VALUES(tags)
             ELSE tags END",
        times = times.join(", "),
        values = row_placeholders(rows, SUMMARY_VALUES),
        earliest = earliest.join(",\n           "),
    )
}

fn summary_params(delta: &SummaryDelta, params: &mut Vec<Value>) {
    params.push(delta.message_id.as_str().into());
    params.push(delta.recipient.as_str().into());
    params.push(delta.report_type.into());
    params.push(delta.user.user_id.into());
    params.push((delta.user.source as u8).into());
    params.push(delta.source.as_deref().into());
    params.push(delta.subject.as_deref().into());
    for at in delta.first_at {
        params.push(at.map(timestamps::to_sql).unwrap_or(Value::NULL));
    }
    params.push(delta.open_count.into());
    params.push(delta.click_count.into());
    params.push(delta.bounce_type.map(|b| b.name()).into());
    // Opens and clicks count as human until `classification::classify_pairs` says otherwise (which
    // then changes only the rows where a machine was at work).
    params.push(delta.open_count.into());
    params.push(delta.click_count.into());
    for kind in [EventKind::Open, EventKind::Click] {
        params.push(
            delta
                .first(kind)
                .map(timestamps::to_sql)
                .unwrap_or(Value::NULL),
        );
    }
    params.push(delta.mailbox_provider.into());
    params.push(delta.configuration_set.as_deref().into());
    params.push(delta.sending_ip.as_deref().into());
    params.push(delta.tags.as_deref().into());
}

/// What this batch finds of its summary rows before it writes: each row's delivery time and the
/// columns the daily rollups read from it (`rollups::SUMMARY_COLUMNS`).
struct StoredRow {
    delivered_at: Option<OffsetDateTime>,
    rollup_columns: Vec<Value>,
}

/// The summary rows of `deltas` as they stand before the batch writes, by (message id, recipient).
/// A locking read, as the upserts that follow are: it sees what another run committed a moment
/// ago (a consistent read would see the transaction's snapshot) and keeps it until this one
/// commits. The delivery times tell the ledger that the batch moved one back
/// (`suppression::Delivered`); the rollup columns, compared with the same columns after the
/// upserts, tell which rows the batch moved to other rollup groups.
fn stored_rows<Q: Queryable>(
    conn: &mut Q,
    deltas: &[SummaryDelta],
) -> Result<HashMap<RowKey, StoredRow>, mysql::Error> {
    let wanted: HashSet<(&str, &str)> = deltas
        .iter()
        .map(|d| (d.message_id.as_str(), d.recipient.as_str()))
        .collect();
    let rows: Vec<mysql::Row> = select_in(
        conn,
        &format!(
            "SELECT id, message_id, user_email, delivery_at, {} FROM aws_reports
             WHERE message_id IN ({{keys}}) FOR UPDATE",
            rollups::SUMMARY_COLUMNS.join(", ")
        ),
        wanted.iter().map(|(message_id, _)| *message_id),
    )?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let mut values = row.unwrap();
        let rollup_columns = values.split_off(4);
        let key = (text(&values[1]), text(&values[2]));
        if !wanted.contains(&(key.0.as_str(), key.1.as_str())) {
            continue;
        }
        let delivered_at = timestamps::from_sql(&values[3]);
        out.insert(
            key,
            StoredRow {
                delivered_at,
                rollup_columns,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_names_every_time_column_once() {
        let sql = upsert_summaries_sql(2);
        for kind in EventKind::ALL {
            let column = kind.summary_column();
            assert_eq!(
                sql.matches(&format!(" {column} = LEAST")).count(),
                1,
                "{column}"
            );
        }
        assert_eq!(sql.matches('?').count(), 2 * SUMMARY_VALUES);
    }
}

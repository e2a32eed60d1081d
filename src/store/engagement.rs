//! Classifying opens and clicks (`aws_report_details.automated`) and keeping the human counts
//! of `aws_reports` in step, for whole summary rows at a time.
//!
//! A batch inserts its open and click rows unclassified (`automated` NULL) and counts them as
//! human in the summary upsert (counts and first times); then, in the same transaction, `reclassify` recomputes the
//! reason of every open and click of every summary row the batch touched, from all of that
//! row's kept details (`domain::engagement::classify`), and moves the human counts by what
//! changed. So a row's classification is a function of the set of its events, whatever order
//! they came in, and the human counts equal the number of its opens and clicks classified human,
//! including those whose details `prune` has since deleted (those are frozen as they were).

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use mysql::Value;
use time::OffsetDateTime;

use super::{placeholders, rollups, select_in, KEYS_PER_LOOKUP};
use crate::domain::engagement::{self, Automated, Engagement, Interaction};
use crate::domain::timestamps;

/// One detail row as classification reads it.
struct Row {
    id: u64,
    report_id: u64,
    event_type: String,
    at: OffsetDateTime,
    automated: Option<Automated>,
    user_agent: Option<String>,
    link: Option<String>,
    link_tags: Option<String>,
    stored_first_open: Option<OffsetDateTime>,
    stored_first_click: Option<OffsetDateTime>,
    /// The summary row's `delivery_at`.
    delivered_at: Option<OffsetDateTime>,
}

fn read_rows<Q: Queryable>(conn: &mut Q, report_ids: &[u64]) -> Result<Vec<Row>, mysql::Error> {
    // Only rows with opens or clicks have anything to classify; the delivery time is the
    // summary row's (the earliest Delivery, kept even when `prune` removed its detail row).
    let rows: Vec<mysql::Row> = select_in(
        conn,
        "SELECT d.id, d.report_id, d.event_type, d.timestamp, d.automated,
                JSON_UNQUOTE(JSON_EXTRACT(d.other_info, '$.userAgent')),
                JSON_UNQUOTE(JSON_EXTRACT(d.other_info, '$.link')),
                JSON_EXTRACT(d.other_info, '$.linkTags'),
                r.first_human_open_at, r.first_human_click_at, r.delivery_at
         FROM aws_reports r JOIN aws_report_details d ON d.report_id = r.id
         WHERE r.id IN ({keys}) AND (r.open_count > 0 OR r.click_count > 0)
           AND d.event_type IN ('Open', 'Click')",
        report_ids.iter().copied(),
    )?;
    let text = |v: &Value| {
        mysql::from_value_opt::<Option<String>>(v.clone())
            .ok()
            .flatten()
    };
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let v = row.unwrap();
            Some(Row {
                id: mysql::from_value_opt(v[0].clone()).ok()?,
                report_id: mysql::from_value_opt(v[1].clone()).ok()?,
                event_type: text(&v[2])?,
                at: timestamps::from_sql(&v[3])?,
                automated: text(&v[4]).and_then(|a| Automated::from_name(&a)),
                user_agent: text(&v[5]),
                link: text(&v[6]),
                link_tags: text(&v[7]),
                stored_first_open: timestamps::from_sql(&v[8]),
                stored_first_click: timestamps::from_sql(&v[9]),
                delivered_at: timestamps::from_sql(&v[10]),
            })
        })
        .collect())
}

/// What reclassifying one summary row changes.
#[derive(Debug, Default)]
struct RowChange {
    human_opens: i64,
    human_clicks: i64,
    first_open: Option<OffsetDateTime>,
    first_click: Option<OffsetDateTime>,
    stored_first_open: Option<OffsetDateTime>,
    stored_first_click: Option<OffsetDateTime>,
}

/// Recomputes the classification of the opens and clicks of these summary rows and their human
/// counts, inside the caller's transaction. `pruned_before`: the retention horizon (a stored
/// first human time before it belongs to a pruned row and is kept).
pub fn reclassify<Q: Queryable>(
    conn: &mut Q,
    report_ids: &[u64],
    pruned_before: Option<OffsetDateTime>,
) -> Result<(), mysql::Error> {
    if report_ids.is_empty() {
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let rows = read_rows(conn, report_ids)?;
    let t1 = std::time::Instant::now();
    let mut by_report: BTreeMap<u64, Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        by_report.entry(row.report_id).or_default().push(row);
    }
    let mut new_reasons: BTreeMap<Option<Automated>, Vec<u64>> = BTreeMap::new();
    let mut changed_days: Vec<OffsetDateTime> = Vec::new();
    let mut changes: BTreeMap<u64, RowChange> = BTreeMap::new();
    for (report_id, rows) in by_report {
        let delivered_at = rows[0].delivered_at;
        let interactions: Vec<(&Row, Engagement)> = rows
            .iter()
            .filter_map(|r| {
                let interaction = match r.event_type.as_str() {
                    "Open" => Interaction::Open,
                    "Click" => Interaction::Click,
                    _ => return None,
                };
                Some((
                    *r,
                    Engagement {
                        interaction,
                        at: r.at,
                        user_agent: r.user_agent.clone(),
                        link: r.link.clone(),
                        link_tags: r.link_tags.clone(),
                    },
                ))
            })
            .collect();
        if interactions.is_empty() {
            continue;
        }
        let engagements: Vec<Engagement> = interactions.iter().map(|(_, e)| e.clone()).collect();
        let reasons = engagement::classify(&engagements, delivered_at);
        let mut change = RowChange {
            stored_first_open: rows[0].stored_first_open,
            stored_first_click: rows[0].stored_first_click,
            ..RowChange::default()
        };
        for ((row, e), reason) in interactions.iter().zip(reasons) {
            if reason != row.automated {
                new_reasons.entry(reason).or_default().push(row.id);
                changed_days.push(row.at);
                let moved = i64::from(reason.is_none()) - i64::from(row.automated.is_none());
                match e.interaction {
                    Interaction::Open => change.human_opens += moved,
                    Interaction::Click => change.human_clicks += moved,
                }
            }
            if reason.is_none() {
                let first = match e.interaction {
                    Interaction::Open => &mut change.first_open,
                    Interaction::Click => &mut change.first_click,
                };
                *first = Some(first.map_or(e.at, |f| f.min(e.at)));
            }
        }
        // A stored first time before the retention horizon came from a pruned row: it stands.
        let kept = |stored: Option<OffsetDateTime>, fresh: Option<OffsetDateTime>| match (
            stored.filter(|s| pruned_before.is_some_and(|h| *s < h)),
            fresh,
        ) {
            (Some(s), Some(f)) => Some(s.min(f)),
            (s, f) => s.or(f),
        };
        change.first_open = kept(change.stored_first_open, change.first_open);
        change.first_click = kept(change.stored_first_click, change.first_click);
        changes.insert(report_id, change);
    }

    for (reason, ids) in &new_reasons {
        for chunk in ids.chunks(KEYS_PER_LOOKUP) {
            let mut params: Vec<Value> = vec![reason.map(Automated::name).into()];
            params.extend(chunk.iter().map(|id| Value::from(*id)));
            conn.exec_drop(
                format!(
                    "UPDATE aws_report_details SET automated = ? WHERE id IN ({})",
                    placeholders(chunk.len())
                ),
                params,
            )?;
        }
    }
    let updates: Vec<(&u64, &RowChange)> = changes
        .iter()
        .filter(|(_, c)| {
            c.human_opens != 0
                || c.human_clicks != 0
                || c.first_open != c.stored_first_open
                || c.first_click != c.stored_first_click
        })
        .collect();
    let t2 = std::time::Instant::now();
    for chunk in updates.chunks(super::ROWS_PER_STATEMENT) {
        update_summaries(conn, chunk)?;
    }
    log::debug!(
        "reclassified {} row(s) of {} summary row(s): read {:?}, details {:?}, summaries {:?} ({} updated)",
        rows.len(),
        report_ids.len(),
        t1 - t0,
        t2 - t1,
        t2.elapsed(),
        updates.len()
    );
    rollups::mark_dirty(conn, changed_days.into_iter())
}

/// One statement for a chunk of summary rows: `CASE id WHEN ? THEN ? ... END` per column.
fn update_summaries<Q: Queryable>(
    conn: &mut Q,
    chunk: &[(&u64, &RowChange)],
) -> Result<(), mysql::Error> {
    let case = |params: &mut Vec<Value>, value: &dyn Fn(&RowChange) -> Value| {
        let mut sql = String::from("CASE id");
        for (id, change) in chunk {
            sql.push_str(" WHEN ? THEN ?");
            params.push(Value::from(**id));
            params.push(value(change));
        }
        sql.push_str(" END");
        sql
    };
    let time = |t: Option<OffsetDateTime>| t.map(timestamps::to_sql).unwrap_or(Value::NULL);
    let mut params = Vec::new();
    let opens = case(&mut params, &|c| Value::from(c.human_opens));
    let clicks = case(&mut params, &|c| Value::from(c.human_clicks));
    let first_open = case(&mut params, &|c| time(c.first_open));
    let first_click = case(&mut params, &|c| time(c.first_click));
    params.extend(chunk.iter().map(|(id, _)| Value::from(**id)));
    conn.exec_drop(
        format!(
            "UPDATE aws_reports SET
               human_open_count = CAST(human_open_count AS SIGNED) + ({opens}),
               human_click_count = CAST(human_click_count AS SIGNED) + ({clicks}),
               first_human_open_at = {first_open},
               first_human_click_at = {first_click}
             WHERE id IN ({})",
            placeholders(chunk.len())
        ),
        params,
    )
}

/// Reclassifies every summary row with opens or clicks, a chunk at a time, each in its own
/// transaction (migration 5's backfill; a later migration that changes a rule runs it
/// again). Idempotent: a run cut short is simply run again.
pub fn reclassify_all(
    conn: &mut mysql::Conn,
    pruned_before: Option<OffsetDateTime>,
) -> Result<u64, mysql::Error> {
    let mut after = 0u64;
    let mut done = 0u64;
    loop {
        let ids: Vec<u64> = conn.exec(
            "SELECT id FROM aws_reports WHERE id > ? AND (open_count > 0 OR click_count > 0)
             ORDER BY id LIMIT 1000",
            (after,),
        )?;
        let Some(last) = ids.last().copied() else {
            return Ok(done);
        };
        let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
        reclassify(&mut tx, &ids, pruned_before)?;
        tx.commit()?;
        done += ids.len() as u64;
        after = last;
    }
}

/// One delivered recipient with a human open or click, for the timing figures.
#[derive(Clone, Debug)]
pub struct FirstHuman {
    pub report_type: i32,
    pub source: String,
    pub recipient: String,
    pub mailbox_provider: String,
    pub configuration_set: String,
    pub sending_ip: String,
    pub tags: Option<String>,
    pub delivered_at: OffsetDateTime,
    pub first_open: Option<OffsetDateTime>,
    pub first_click: Option<OffsetDateTime>,
}

/// Recipients delivered in `[from, to)` whose mail a person opened or clicked.
pub fn first_human_times(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<FirstHuman>, mysql::Error> {
    let rows: Vec<mysql::Row> = conn.exec(
        "SELECT report_type, COALESCE(source_email, ''), user_email, mailbox_provider,
                COALESCE(configuration_set, ''), COALESCE(sending_ip, ''), tags,
                delivery_at, first_human_open_at, first_human_click_at
         FROM aws_reports
         WHERE delivery_at >= ? AND delivery_at < ?
           AND (first_human_open_at IS NOT NULL OR first_human_click_at IS NOT NULL)",
        (timestamps::to_sql(from), timestamps::to_sql(to)),
    )?;
    let text = |v: &Value| mysql::from_value_opt::<String>(v.clone()).unwrap_or_default();
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let v = row.unwrap();
            Some(FirstHuman {
                report_type: mysql::from_value_opt(v[0].clone()).ok()?,
                source: text(&v[1]),
                recipient: text(&v[2]),
                mailbox_provider: text(&v[3]),
                configuration_set: text(&v[4]),
                sending_ip: text(&v[5]),
                tags: mysql::from_value_opt::<Option<String>>(v[6].clone())
                    .ok()
                    .flatten(),
                delivered_at: timestamps::from_sql(&v[7])?,
                first_open: timestamps::from_sql(&v[8]),
                first_click: timestamps::from_sql(&v[9]),
            })
        })
        .collect())
}

/// The instants of the human opens in `[from, to)`.
pub fn human_open_instants(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<OffsetDateTime>, mysql::Error> {
    let values: Vec<Value> = conn.exec(
        "SELECT timestamp FROM aws_report_details
         WHERE event_type = 'Open' AND automated IS NULL AND timestamp >= ? AND timestamp < ?",
        (timestamps::to_sql(from), timestamps::to_sql(to)),
    )?;
    Ok(values.iter().filter_map(timestamps::from_sql).collect())
}

/// Open and click rows by `automated` reason (`None`: human) in `[from, to)`, for the report.
pub fn reasons_between(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<(String, Option<String>, u64)>, mysql::Error> {
    conn.exec(
        "SELECT event_type, automated, COUNT(*) FROM aws_report_details
         WHERE event_type IN ('Open', 'Click') AND timestamp >= ? AND timestamp < ?
         GROUP BY event_type, automated ORDER BY event_type, automated",
        (timestamps::to_sql(from), timestamps::to_sql(to)),
    )
}

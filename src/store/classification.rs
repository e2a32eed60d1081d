//! Classifying opens and clicks (`aws_report_details.automated`) and keeping the human counts
//! of `aws_reports` in step, for whole summary rows at a time.
//!
//! A batch counts its opens and clicks as human in the summary upsert (counts and first times);
//! then, in the same transaction and before inserting them, `classify_batch` computes the class
//! of every open and click of every summary row the batch touched, the batch's and the stored
//! ones together (`domain::engagement::classify`): the new rows are inserted with theirs, the
//! stored rows whose class changes are updated, and the human counts move by what changed. So a
//! row's classification is a function of the set of its events, whatever order they came in, and
//! the human counts equal the number of its opens and clicks classified human, including those
//! whose details `prune` has since deleted (those are frozen as they were).

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use mysql::Value;
use time::OffsetDateTime;

use super::{placeholders, rollups, select_in};
use crate::domain::engagement::{
    self, Automated, Engagement, Interaction, Reclassified, RowState, Standing,
};
use crate::domain::event_kind::EventKind;
use crate::domain::figures::Dimensions;
use crate::domain::ses::SesEvent;
use crate::domain::timestamps;

/// One applied (event, recipient) with its summary row's id: what a batch classifies and
/// `details::apply_batch` inserts.
pub struct Pair<'a> {
    pub event: &'a SesEvent,
    pub recipient: &'a str,
    pub report_id: u64,
}

/// One open or click as classification sees it: a stored detail row (`id`), or one of the
/// batch's rows about to be inserted (`new_index`).
struct Row {
    id: Option<u64>,
    new_index: Option<usize>,
    report_id: u64,
    engagement: Engagement,
    standing: Standing,
}

/// The fields classification reads from an event's own object, as `read_rows` reads them from a
/// stored row's `other_info` (strings only for the agent and the link): one reader, so that
/// escapes or repeated keys in `linkTags` cannot make a stored row read otherwise than it did
/// when it was new.
fn engagement_of(
    interaction: Interaction,
    at: OffsetDateTime,
    info: &serde_json::Value,
) -> Engagement {
    let string = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Engagement {
        interaction,
        at,
        user_agent: string("userAgent"),
        link: string("link"),
        link_tags: info
            .get("linkTags")
            .filter(|v| !v.is_null())
            .map(|v| v.to_string()),
    }
}

fn read_rows<Q: Queryable>(
    conn: &mut Q,
    report_ids: &[u64],
) -> Result<(Vec<Row>, BTreeMap<u64, RowState>), mysql::Error> {
    // Only rows with opens or clicks have anything to classify; the delivery time is the
    // summary row's (the earliest Delivery, kept even when `prune` removed its detail row).
    let rows: Vec<mysql::Row> = select_in(
        conn,
        "SELECT d.id, r.id, d.event_type, d.timestamp, d.automated, d.other_info,
                r.first_human_open_at, r.first_human_click_at, r.delivery_at,
                r.open_count + r.click_count
         FROM aws_reports r LEFT JOIN aws_report_details d
           ON d.report_id = r.id AND d.event_type IN ('Open', 'Click')
         WHERE r.id IN ({keys}) AND (r.open_count > 0 OR r.click_count > 0)",
        report_ids.iter().copied(),
    )?;
    let text = |v: &Value| {
        mysql::from_value_opt::<Option<String>>(v.clone())
            .ok()
            .flatten()
    };
    let mut states = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let v = row.unwrap();
        let Some(report_id) = mysql::from_value_opt::<u64>(v[1].clone()).ok() else {
            continue;
        };
        states.insert(
            report_id,
            RowState {
                first_open: timestamps::from_sql(&v[6]),
                first_click: timestamps::from_sql(&v[7]),
                delivered_at: timestamps::from_sql(&v[8]),
                engagements: mysql::from_value_opt::<u64>(v[9].clone()).unwrap_or(0),
            },
        );
        // A summary row without stored opens or clicks (the LEFT JOIN's NULLs).
        let Some(id) = mysql::from_value_opt::<Option<u64>>(v[0].clone())
            .ok()
            .flatten()
        else {
            continue;
        };
        let interaction = match text(&v[2]).as_deref() {
            Some("Open") => Interaction::Open,
            Some("Click") => Interaction::Click,
            _ => continue,
        };
        let Some(at) = timestamps::from_sql(&v[3]) else {
            continue;
        };
        let info: serde_json::Value = text(&v[5])
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        out.push(Row {
            id: Some(id),
            new_index: None,
            report_id,
            engagement: engagement_of(interaction, at, &info),
            standing: Standing::Stored(text(&v[4]).and_then(|a| Automated::from_name(&a))),
        });
    }
    Ok((out, states))
}

/// Recomputes the classification of the opens and clicks of these summary rows and their human
/// counts (for the migration's backfill: no new rows).
pub fn reclassify<Q: Queryable>(
    conn: &mut Q,
    report_ids: &[u64],
    pruned_before: Option<OffsetDateTime>,
) -> Result<(), mysql::Error> {
    classify_batch(conn, report_ids, Vec::new(), pruned_before).map(|_| ())
}

/// The class of each of a batch's pairs (`None` for pairs that are no open or click, and for
/// human ones), classified with the stored opens and clicks of every summary row the batch's
/// opens, clicks and deliveries touch (`classify_batch`).
pub fn classify_pairs<Q: Queryable>(
    conn: &mut Q,
    pairs: &[Pair],
    pruned_before: Option<OffsetDateTime>,
) -> Result<Vec<Option<Automated>>, mysql::Error> {
    let touched: std::collections::BTreeSet<u64> = pairs
        .iter()
        .filter(|p| {
            matches!(
                p.event.kind,
                EventKind::Open | EventKind::Click | EventKind::Delivery
            )
        })
        .map(|p| p.report_id)
        .collect();
    let mut new = Vec::new();
    // One parse per event, shared by its recipients (adjacent in `pairs`).
    let mut parsed: Option<(&str, serde_json::Value)> = None;
    for (i, pair) in pairs.iter().enumerate() {
        let interaction = match pair.event.kind {
            EventKind::Open => Interaction::Open,
            EventKind::Click => Interaction::Click,
            _ => continue,
        };
        let id = pair.event.notification_id.as_str();
        if parsed.as_ref().map(|(p, _)| *p) != Some(id) {
            parsed = Some((
                id,
                serde_json::from_str(&pair.event.other_info).unwrap_or_default(),
            ));
        }
        let info = parsed.as_ref().map_or(&serde_json::Value::Null, |(_, v)| v);
        new.push(Row {
            id: None,
            new_index: Some(i),
            report_id: pair.report_id,
            engagement: engagement_of(interaction, pair.event.occurred_at, info),
            standing: Standing::New,
        });
    }
    let touched: Vec<u64> = touched.into_iter().collect();
    let mut classes = vec![None; pairs.len()];
    for (i, class) in classify_batch(conn, &touched, new, pruned_before)? {
        classes[i] = class;
    }
    Ok(classes)
}

/// Classifies a batch's new opens and clicks together with the stored ones of the same summary
/// rows (`domain::engagement::reclassify`), inside the caller's transaction, before the new rows
/// are inserted: returns each new row's class by its `new_index`, updates the stored rows whose
/// class changes (marking their days), and moves the summary rows' human counts and first times.
/// `pruned_before`: the retention horizon.
fn classify_batch<Q: Queryable>(
    conn: &mut Q,
    report_ids: &[u64],
    new: Vec<Row>,
    pruned_before: Option<OffsetDateTime>,
) -> Result<Vec<(usize, Option<Automated>)>, mysql::Error> {
    if report_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (mut rows, states) = read_rows(conn, report_ids)?;
    rows.extend(new);
    let mut by_report: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    for row in rows {
        by_report.entry(row.report_id).or_default().push(row);
    }
    let mut new_classes = Vec::new();
    let mut stored_changes: BTreeMap<Option<Automated>, Vec<u64>> = BTreeMap::new();
    let mut changed_days: Vec<OffsetDateTime> = Vec::new();
    let mut updates: Vec<(u64, Reclassified)> = Vec::new();
    for (report_id, rows) in by_report {
        let state = states.get(&report_id).copied().unwrap_or_default();
        let events: Vec<(Engagement, Standing)> = rows
            .iter()
            .map(|r| (r.engagement.clone(), r.standing))
            .collect();
        let outcome = engagement::reclassify(&events, &state, pruned_before);
        for (row, class) in rows.iter().zip(&outcome.classes) {
            match (row.id, row.standing) {
                (Some(id), Standing::Stored(stored)) if stored != *class => {
                    stored_changes.entry(*class).or_default().push(id);
                    changed_days.push(row.engagement.at);
                }
                _ => {}
            }
            if let Some(i) = row.new_index {
                new_classes.push((i, *class));
            }
        }
        if outcome.changes(&state) {
            updates.push((report_id, outcome));
        }
    }
    update_classes(conn, &stored_changes)?;
    for chunk in super::statement_chunks(&updates) {
        update_summaries(conn, chunk)?;
    }
    rollups::mark_dirty(conn, changed_days.into_iter())?;
    Ok(new_classes)
}

/// Sets the class of stored detail rows, one statement per class and chunk.
fn update_classes<Q: Queryable>(
    conn: &mut Q,
    changes: &BTreeMap<Option<Automated>, Vec<u64>>,
) -> Result<(), mysql::Error> {
    for (class, ids) in changes {
        for chunk in super::lookup_chunks(ids) {
            let mut params: Vec<Value> = vec![class.map(Automated::name).into()];
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
    Ok(())
}

/// One statement for a chunk of summary rows: `CASE id WHEN ? THEN ? ... END` per column.
fn update_summaries<Q: Queryable>(
    conn: &mut Q,
    chunk: &[(u64, Reclassified)],
) -> Result<(), mysql::Error> {
    let case = |params: &mut Vec<Value>, value: &dyn Fn(&Reclassified) -> Value| {
        let mut sql = String::from("CASE id");
        for (id, change) in chunk {
            sql.push_str(" WHEN ? THEN ?");
            params.push(Value::from(*id));
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
    params.extend(chunk.iter().map(|(id, _)| Value::from(*id)));
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
    pub dims: Dimensions,
    pub delivered_at: OffsetDateTime,
    pub first_open: Option<OffsetDateTime>,
    pub first_click: Option<OffsetDateTime>,
}

/// The summary row's columns `dimensions` reads, first in a select list, as `r`.
pub const DIMENSION_COLUMNS: &str =
    "r.report_type, COALESCE(r.source_email, ''), r.user_email, r.mailbox_provider,
                COALESCE(r.configuration_set, ''), COALESCE(r.sending_ip, ''), r.tags";

/// The `Dimensions` of a row that starts with `DIMENSION_COLUMNS`.
pub fn dimensions(v: &[Value]) -> Option<Dimensions> {
    let text = |v: &Value| mysql::from_value_opt::<String>(v.clone()).unwrap_or_default();
    Some(Dimensions {
        report_type: mysql::from_value_opt(v[0].clone()).ok()?,
        source: text(&v[1]),
        recipient: text(&v[2]),
        mailbox_provider: text(&v[3]),
        configuration_set: text(&v[4]),
        sending_ip: text(&v[5]),
        tags: mysql::from_value_opt::<Option<String>>(v[6].clone())
            .ok()
            .flatten(),
    })
}

/// Recipients delivered in `[from, to)` whose mail a person opened or clicked.
pub fn first_human_times(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<FirstHuman>, mysql::Error> {
    let rows: Vec<mysql::Row> = conn.exec(
        format!(
            "SELECT {DIMENSION_COLUMNS}, r.delivery_at, r.first_human_open_at, r.first_human_click_at
             FROM aws_reports r
             WHERE r.delivery_at >= ? AND r.delivery_at < ?
               AND (r.first_human_open_at IS NOT NULL OR r.first_human_click_at IS NOT NULL)"
        ),
        (timestamps::to_sql(from), timestamps::to_sql(to)),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let v = row.unwrap();
            Some(FirstHuman {
                dims: dimensions(&v)?,
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

//! Applying events: which pairs are already in `aws_report_details`, and one batch's summary
//! upserts (`aws_reports`) and detail rows, inside the caller's transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use time::OffsetDateTime;

use super::engagement::{self, NewRow};
use super::ledger::Delivered;
use super::{key_digest, ledger, rollups, row_placeholders, select_in, ROWS_PER_STATEMENT};
use crate::domain::accounting::{Applied, Fate, SummaryDelta};
use crate::domain::engagement::{Automated, Interaction};
use crate::domain::event_kind::EventKind;
use crate::domain::ses::SesEvent;
use crate::domain::suppression::{aggregate, is_evidence, signal_of, Evidence};
use crate::domain::timestamps;

/// Which of these notification ids have rows in `aws_report_details`, with the SES mail
/// `messageId` they were stored under (what `--partition` hashes).
pub fn notifications_applied<'a>(
    conn: &mut Conn,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, String>, mysql::Error> {
    let ids: HashSet<&str> = ids.collect();
    let found: Vec<(String, String)> = select_in(
        conn,
        "SELECT DISTINCT notification_message_id, message_id FROM aws_report_details WHERE notification_key IN ({keys})",
        ids.iter().map(|id| key_digest(id)),
    )?;
    // The readable id decides: a digest shared by another id (never seen) matches nothing.
    Ok(found
        .into_iter()
        .filter(|(id, _)| ids.contains(id.as_str()))
        .collect())
}

/// Which of these events' pairs and feedback ids are already in `aws_report_details`.
/// `known_absent` lists notification ids the caller has just found to have no rows: their pairs
/// need no second look.
pub fn applied_among(
    conn: &mut Conn,
    events: &[&SesEvent],
    known_absent: &HashSet<&str>,
) -> Result<Applied, mysql::Error> {
    let mut applied = Applied::default();
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e.notification_id.as_str())
        .filter(|id| !known_absent.contains(id))
        .collect();
    let rows: Vec<(String, String, Option<String>)> = select_in(
        conn,
        "SELECT notification_message_id, `to`, feedback_id FROM aws_report_details WHERE notification_key IN ({keys})",
        ids.iter().map(|id| key_digest(id)),
    )?;
    for (id, to, feedback) in rows {
        if !ids.contains(id.as_str()) {
            continue;
        }
        if let Some(f) = feedback {
            applied.feedback.insert((f, to.clone()), id.clone());
        }
        applied.pairs.insert((id, to));
    }
    let feedback_ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e.feedback_id.as_deref())
        .collect();
    let rows: Vec<(String, String, String)> = select_in(
        conn,
        "SELECT feedback_id, `to`, notification_message_id FROM aws_report_details WHERE feedback_key IN ({keys})",
        feedback_ids.iter().map(|f| key_digest(f)),
    )?;
    for (feedback, to, id) in rows {
        if !feedback_ids.contains(feedback.as_str()) {
            continue;
        }
        applied.feedback.insert((feedback, to), id);
    }
    Ok(applied)
}

/// Values per detail row in its insert.
const DETAIL_VALUES: usize = 15;

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
    // Opens and clicks count as human until `engagement::classify_batch` says otherwise (which
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
/// (`ledger::Delivered`); the rollup columns, compared with the same columns after the upserts
/// in `apply_batch`, tell which rows the batch moved to other rollup groups.
fn stored_rows<Q: Queryable>(
    conn: &mut Q,
    deltas: &[SummaryDelta],
) -> Result<HashMap<(String, String), StoredRow>, mysql::Error> {
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
        let text = |v: &Value| mysql::from_value_opt::<String>(v.clone()).unwrap_or_default();
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

/// Writes one batch: summary upserts, then one detail row per new pair. The caller owns the
/// transaction (commit, or roll back and apply the batch in halves).
pub fn apply_batch<Q: Queryable>(
    conn: &mut Q,
    events: &[&SesEvent],
    fates: &[Fate],
    deltas: &[SummaryDelta],
    pruned_before: Option<OffsetDateTime>,
) -> Result<(), mysql::Error> {
    let t0 = std::time::Instant::now();
    let before = stored_rows(conn, deltas)?;
    for chunk in deltas.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * SUMMARY_VALUES);
        for d in chunk {
            summary_params(d, &mut params);
        }
        conn.exec_drop(upsert_summaries_sql(chunk.len()), params)?;
    }

    let t1 = std::time::Instant::now();
    let rows: Vec<mysql::Row> = select_in(
        conn,
        &format!(
            "SELECT id, message_id, user_email, {} FROM aws_reports WHERE message_id IN ({{keys}})",
            rollups::SUMMARY_COLUMNS.join(", ")
        ),
        deltas.iter().map(|d| d.message_id.as_str()),
    )?;
    let mut report_ids: HashMap<(String, String), u64> = HashMap::with_capacity(rows.len());
    // Rows whose rollup columns the batch changed, and rows losing a detail row to another
    // route of the same bounce or complaint: every day they count in is stale.
    let mut regrouped: BTreeSet<u64> = BTreeSet::new();
    for row in rows {
        let mut values = row.unwrap();
        let after = values.split_off(3);
        let text = |v: &Value| mysql::from_value_opt::<String>(v.clone()).unwrap_or_default();
        let key = (text(&values[1]), text(&values[2]));
        let Ok(id) = mysql::from_value_opt::<u64>(values[0].clone()) else {
            continue;
        };
        if before.get(&key).is_some_and(|b| b.rollup_columns != after) {
            regrouped.insert(id);
        }
        report_ids.insert(key, id);
    }

    let t2 = std::time::Instant::now();
    // The same bounce or complaint stored earlier under a larger notification id gives way.
    let mut superseded: Vec<(&String, &str)> = Vec::new();
    for (event, fate) in events.iter().zip(fates) {
        let Fate::Apply(claims) = fate else { continue };
        for claim in claims {
            if let Some(old) = &claim.supersedes {
                let recipient = event.recipients[claim.recipient].as_str();
                if let Some(id) = report_ids.get(&(event.message_id.clone(), recipient.to_string()))
                {
                    regrouped.insert(*id);
                }
                superseded.push((old, recipient));
            }
        }
    }
    // Before the replaced rows go: their days are among those marked.
    rollups::mark_days_of(conn, &regrouped)?;
    for (old, recipient) in &superseded {
        conn.exec_drop(
            "DELETE FROM aws_report_details WHERE notification_key = ? AND recipient_key = ?
               AND notification_message_id = ? AND `to` = ?",
            (
                key_digest(old),
                key_digest(recipient),
                old.as_str(),
                recipient,
            ),
        )?;
    }

    let mut pairs: Vec<(&SesEvent, &str, u64)> = Vec::new();
    for (event, fate) in events.iter().zip(fates) {
        for recipient in fate.recipients(event) {
            let report_id = *report_ids
                .get(&(event.message_id.clone(), recipient.to_string()))
                .ok_or_else(|| {
                    mysql::Error::MySqlError(mysql::MySqlError {
                        state: "HY000".into(),
                        message: format!(
                            "summary row for {} / {recipient} vanished",
                            event.message_id
                        ),
                        code: 0,
                    })
                })?;
            pairs.push((event, recipient, report_id));
        }
    }
    // Every open and click of the rows these events touch is classified, the batch's with the
    // stored ones, as a set, before the batch's are inserted (with their class).
    let touched: BTreeSet<u64> = pairs
        .iter()
        .filter(|(event, _, _)| {
            matches!(
                event.kind,
                EventKind::Open | EventKind::Click | EventKind::Delivery
            )
        })
        .map(|(_, _, report_id)| *report_id)
        .collect();
    let touched: Vec<u64> = touched.into_iter().collect();
    let mut new_rows = Vec::new();
    // For each pair, its index in `new_rows` when it is an open or a click.
    let mut new_index: Vec<Option<usize>> = Vec::with_capacity(pairs.len());
    let mut parsed: Option<(&str, serde_json::Value)> = None;
    for (event, _, report_id) in &pairs {
        let interaction = match event.kind {
            EventKind::Open => Interaction::Open,
            EventKind::Click => Interaction::Click,
            _ => {
                new_index.push(None);
                continue;
            }
        };
        // One parse per event, shared by its recipients (adjacent in `pairs`).
        if parsed.as_ref().map(|(id, _)| *id) != Some(event.notification_id.as_str()) {
            let info = serde_json::from_str(&event.other_info).unwrap_or_default();
            parsed = Some((event.notification_id.as_str(), info));
        }
        let info = parsed
            .as_ref()
            .map(|(_, v)| v)
            .unwrap_or(&serde_json::Value::Null);
        let (user_agent, link, link_tags) = NewRow::fields(info);
        new_index.push(Some(new_rows.len()));
        new_rows.push(NewRow {
            report_id: *report_id,
            interaction,
            at: event.occurred_at,
            user_agent,
            link,
            link_tags,
        });
    }
    let t3 = std::time::Instant::now();
    let classes = engagement::classify_batch(conn, &touched, &new_rows, pruned_before)?;
    let t4 = std::time::Instant::now();
    let class_of = |i: usize| -> Value {
        new_index[i]
            .and_then(|n| classes[n])
            .map(Automated::name)
            .into()
    };
    for (chunk_number, chunk) in pairs.chunks(ROWS_PER_STATEMENT).enumerate() {
        let mut params = Vec::with_capacity(chunk.len() * DETAIL_VALUES);
        for (offset, (event, recipient, report_id)) in chunk.iter().enumerate() {
            params.push(event.notification_id.as_str().into());
            params.push(key_digest(&event.notification_id).into());
            params.push(key_digest(recipient).into());
            let feedback_key = event.feedback_id.as_deref().map(key_digest);
            // The recipient's key again, on rows with a feedback id only (migration 10).
            let feedback_recipient_key = feedback_key.as_ref().map(|_| key_digest(recipient));
            params.push(feedback_key.into());
            params.push(feedback_recipient_key.into());
            params.push((*report_id).into());
            params.push(event.kind.ses_name().into());
            params.push(event.message_id.as_str().into());
            params.push(timestamps::to_sql(event.occurred_at));
            params.push(event.source.as_deref().into());
            params.push((*recipient).into());
            params.push(event.subject.as_deref().into());
            params.push(event.other_info.as_str().into());
            params.push(event.feedback_id.as_deref().into());
            params.push(class_of(chunk_number * ROWS_PER_STATEMENT + offset));
        }
        conn.exec_drop(
            format!(
                "INSERT INTO aws_report_details (notification_message_id, notification_key, recipient_key,
                   feedback_key, feedback_recipient_key, report_id, event_type, message_id, timestamp, `from`, `to`, subject, other_info,
                   feedback_id, automated) VALUES {}",
                row_placeholders(chunk.len(), DETAIL_VALUES)
            ),
            params,
        )?;
    }
    let t5 = std::time::Instant::now();
    // The suppression ledger, from the same events, in the same transaction. A bounce or
    // complaint replacing the same one stored by another route adds nothing: it is counted.
    let mut evidence = Vec::new();
    // Each delivered address: the latest delivery time among its rows this batch touched (as
    // the upsert leaves it: the earlier of the stored one and the batch's), and whether the batch
    // moved one of them back (an earlier Delivery of the same mail).
    let mut delivered: BTreeMap<&str, Delivered> = BTreeMap::new();
    for delta in deltas {
        let Some(batch_at) = delta.first(EventKind::Delivery) else {
            continue;
        };
        let stored = before
            .get(&(delta.message_id.clone(), delta.recipient.clone()))
            .and_then(|row| row.delivered_at.as_ref());
        let at = stored.map_or(batch_at, |stored| batch_at.min(*stored));
        let moved_back = stored.is_some_and(|stored| *stored > batch_at);
        let entry = delivered
            .entry(delta.recipient.as_str())
            .or_insert(Delivered {
                latest: at,
                moved_back,
            });
        entry.latest = entry.latest.max(at);
        entry.moved_back |= moved_back;
    }
    for (event, fate) in events.iter().zip(fates) {
        let Fate::Apply(claims) = fate else { continue };
        if event.kind == EventKind::Delivery {
            continue;
        }
        if !is_evidence(event.kind) {
            continue;
        }
        let info: serde_json::Value = serde_json::from_str(&event.other_info).unwrap_or_default();
        for claim in claims.iter().filter(|c| c.supersedes.is_none()) {
            let recipient = event.recipients[claim.recipient].as_str();
            if let Some(signal) = signal_of(event.kind, &info, recipient) {
                evidence.push(Evidence {
                    email: recipient.to_string(),
                    user_id: None,
                    at: event.occurred_at,
                    signal,
                });
            }
        }
    }
    ledger::merge(conn, aggregate(&evidence), &delivered)?;
    let replaced: BTreeSet<&str> = superseded.iter().map(|(_, recipient)| *recipient).collect();
    ledger::rebase_replaced(conn, &replaced)?;
    let t6 = std::time::Instant::now();

    // The days these events change: their rollups are stale until recomputed.
    rollups::mark_dirty(
        conn,
        events
            .iter()
            .zip(fates)
            .filter(|(_, fate)| matches!(fate, Fate::Apply(_)))
            .map(|(event, _)| event.occurred_at),
    )?;
    log::debug!(
        "batch applied: summaries {:?}, ids {:?}, details {:?}, classification {:?}, ledger {:?}, marks {:?}",
        t1 - t0,
        t2 - t1,
        t3 - t2 + (t5 - t4),
        t4 - t3,
        t6 - t5,
        t6.elapsed()
    );
    Ok(())
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

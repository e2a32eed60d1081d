//! The evidence suppressions are decided from: bounces, complaints and unsubscribes in the detail
//! rows, and each address's latest delivery.

use std::collections::HashMap;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use time::OffsetDateTime;

use super::select_in;
use crate::domain::event_kind::EventKind;
use crate::domain::suppression::{signal_of, DeliveryHistory, Evidence};
use crate::domain::timestamps;

/// (recipient, user id, event type, time, other_info) of one detail row.
type EvidenceRow = (String, Option<u64>, String, Value, Option<String>);

/// Reads the evidence since `since` from the detail rows.
pub fn evidence(
    conn: &mut Conn,
    since: Option<OffsetDateTime>,
) -> Result<Vec<Evidence>, mysql::Error> {
    // DATETIME's first instant: every row.
    let since = since.unwrap_or(time::macros::datetime!(1000-01-01 0:00 UTC));
    // In pages of detail ids, then in the order the ledger folds them (address, time, id).
    let mut rows: Vec<(u64, EvidenceRow)> = super::paged(
        conn,
        "SELECT d.id, d.`to`, r.user_id, d.event_type, d.timestamp, d.other_info
         FROM aws_report_details d JOIN aws_reports r ON r.id = d.report_id
         WHERE d.id > ? AND d.event_type IN ('Bounce', 'Complaint', 'Subscription') AND d.timestamp >= ?
         ORDER BY d.id LIMIT ?",
        0u64,
        vec![timestamps::to_sql(since)],
        |row: &(u64, String, Option<u64>, String, Value, Option<String>)| row.0,
    )?
    .into_iter()
    .map(|(id, to, user, kind, at, info)| (id, (to, user, kind, at, info)))
    .collect();
    rows.sort_by(|(a_id, a), (b_id, b)| {
        let at = |r: &EvidenceRow| timestamps::from_sql(&r.3);
        (&a.0, at(a), a_id).cmp(&(&b.0, at(b), b_id))
    });
    Ok(evidence_of_rows(
        rows.into_iter().map(|(_, row)| row).collect(),
    ))
}

/// The evidence the detail rows hold for these addresses (found through their summary rows,
/// by the address index), inside the caller's transaction.
pub fn evidence_of<Q: Queryable>(
    conn: &mut Q,
    emails: &std::collections::BTreeSet<&str>,
) -> Result<Vec<Evidence>, mysql::Error> {
    let rows: Vec<EvidenceRow> = select_in(
        conn,
        "SELECT d.`to`, r.user_id, d.event_type, d.timestamp, d.other_info
         FROM aws_reports r JOIN aws_report_details d ON d.report_id = r.id
         WHERE r.user_email IN ({keys}) AND d.event_type IN ('Bounce', 'Complaint', 'Subscription')",
        emails.iter().copied(),
    )?;
    Ok(evidence_of_rows(rows))
}

fn evidence_of_rows(rows: Vec<EvidenceRow>) -> Vec<Evidence> {
    let mut out = Vec::with_capacity(rows.len());
    for (email, user_id, event_type, at, other_info) in rows {
        let Some(at) = timestamps::from_sql(&at) else {
            continue;
        };
        let info: serde_json::Value = other_info
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let Some(kind) = EventKind::from_ses_name(&event_type) else {
            continue;
        };
        if let Some(signal) = signal_of(kind, &info, &email) {
            out.push(Evidence {
                email,
                user_id,
                at,
                signal,
            });
        }
    }
    out
}

/// Per address delivered in `[from, to]`: its deliveries (summary rows), and whether a person
/// opened or clicked any of them (the sunset rule's input).
pub fn delivery_histories_between(
    conn: &mut Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<DeliveryHistory>, mysql::Error> {
    let rows: Vec<(String, Option<u64>, u64, Value, Value, u64)> = super::paged(
        conn,
        "SELECT user_email, MAX(user_id), COUNT(*), MIN(delivery_at), MAX(delivery_at),
                SUM(first_human_open_at IS NOT NULL OR first_human_click_at IS NOT NULL)
         FROM aws_reports WHERE user_email > ? AND delivery_at >= ? AND delivery_at <= ?
         GROUP BY user_email ORDER BY user_email LIMIT ?",
        String::new(),
        vec![timestamps::to_sql(from), timestamps::to_sql(to)],
        |row: &(String, Option<u64>, u64, Value, Value, u64)| row.0.clone(),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(email, user_id, deliveries, first, last, engaged)| {
            Some(DeliveryHistory {
                email,
                user_id,
                deliveries,
                first_delivery: timestamps::from_sql(&first)?,
                last_delivery: timestamps::from_sql(&last)?,
                engaged: engaged > 0,
            })
        })
        .collect())
}

/// The latest delivery to each of `emails`, from the summary rows (which `prune` keeps).
pub fn last_deliveries<'a>(
    conn: &mut Conn,
    emails: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, OffsetDateTime>, mysql::Error> {
    let rows: Vec<(String, Value)> = select_in(
        conn,
        "SELECT user_email, MAX(delivery_at) FROM aws_reports
         WHERE delivery_at IS NOT NULL AND user_email IN ({keys}) GROUP BY user_email",
        emails,
    )?;
    let mut out = HashMap::new();
    for (email, at) in rows {
        if let Some(at) = timestamps::from_sql(&at) {
            out.insert(email, at);
        }
    }
    Ok(out)
}

//! `aws_report_failures`: every record that could not be applied, kept whole with its reason
//! until a later run applies it.

use crate::config::Listing;
use std::collections::HashSet;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use time::OffsetDateTime;

use super::{lookup_chunks, placeholders, row_placeholders, statement_chunks};
use crate::domain::timestamps;
use crate::redact;

/// A record that could not be applied, as the failures table keeps it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub notification_id: String,
    pub source: String,
    pub error: String,
    pub document: String,
}

pub fn record_failures(
    conn: &mut Conn,
    failures: &[Failure],
    now: OffsetDateTime,
) -> Result<(), mysql::Error> {
    for chunk in statement_chunks(failures) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for f in chunk {
            params.push(Value::from(
                crate::domain::text::truncate(&f.notification_id, 255)
                    .0
                    .as_ref(),
            ));
            params.push(Value::from(
                crate::domain::text::truncate(&f.source, 255).0.as_ref(),
            ));
            // A registered secret (a connection URL's password) is never stored, even where a
            // record or an error message happens to contain it.
            params.push(Value::from(redact::scrub(
                crate::domain::text::truncate(&f.error, 16_000).0.as_ref(),
            )));
            params.push(Value::from(redact::scrub(&f.document)));
            params.push(timestamps::to_sql(now));
            params.push(timestamps::to_sql(now));
        }
        conn.exec_drop(
            format!(
                "INSERT INTO aws_report_failures (notification_id, source, error, document, first_failed_at, last_failed_at)
                 VALUES {}
                 ON DUPLICATE KEY UPDATE source = VALUES(source), error = VALUES(error), document = VALUES(document),
                   attempts = attempts + 1, last_failed_at = VALUES(last_failed_at), resolved_at = NULL",
                row_placeholders(chunk.len(), 6)
            ),
            params,
        )?;
    }
    Ok(())
}

pub fn unresolved_failure_ids(conn: &mut Conn) -> Result<HashSet<String>, mysql::Error> {
    let rows: Vec<(u64, String)> = super::paged(
        conn,
        "SELECT id, notification_id FROM aws_report_failures WHERE id > ? AND resolved_at IS NULL ORDER BY id LIMIT ?",
        0u64,
        Vec::new(),
        |row: &(u64, String)| row.0,
    )?;
    Ok(rows.into_iter().map(|(_, id)| id).collect())
}

pub fn mark_resolved(
    conn: &mut Conn,
    ids: &[String],
    now: OffsetDateTime,
) -> Result<(), mysql::Error> {
    for chunk in lookup_chunks(ids) {
        let mut params: Vec<Value> = vec![timestamps::to_sql(now)];
        params.extend(chunk.iter().map(|id| Value::from(id.as_str())));
        conn.exec_drop(
            format!(
                "UPDATE aws_report_failures SET resolved_at = ? WHERE resolved_at IS NULL AND notification_id IN ({})",
                placeholders(chunk.len())
            ),
            params,
        )?;
    }
    Ok(())
}

/// How many failures wait for a retry: unresolved and not dismissed (what the metrics and
/// `doctor` report).
pub fn open_failure_count<Q: Queryable>(conn: &mut Q) -> Result<u64, mysql::Error> {
    Ok(conn
        .query_first(
            "SELECT COUNT(*) FROM aws_report_failures WHERE resolved_at IS NULL AND dismissed_at IS NULL",
        )?
        .unwrap_or(0))
}

/// Dismisses these unresolved failures (by their `id`) with a reason; returns the ids that
/// are no unresolved, undismissed failure (nothing is changed then).
pub fn dismiss(
    conn: &mut Conn,
    ids: &[u64],
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<u64>, mysql::Error> {
    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
    let open: Vec<u64> = tx.exec(
        format!(
            "SELECT id FROM aws_report_failures
             WHERE resolved_at IS NULL AND dismissed_at IS NULL AND id IN ({}) FOR UPDATE",
            placeholders(ids.len())
        ),
        ids.iter().map(|id| Value::from(*id)).collect::<Vec<_>>(),
    )?;
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !open.contains(id))
        .collect();
    if !missing.is_empty() {
        tx.rollback()?;
        return Ok(missing);
    }
    let mut params: Vec<Value> = vec![timestamps::to_sql(now), reason.into()];
    params.extend(ids.iter().map(|id| Value::from(*id)));
    tx.exec_drop(
        format!(
            "UPDATE aws_report_failures SET dismissed_at = ?, dismissed_reason = ? WHERE id IN ({})",
            placeholders(ids.len())
        ),
        params,
    )?;
    tx.commit()?;
    Ok(Vec::new())
}

/// One failures row.
#[derive(Clone, Debug)]
pub struct FailureRow {
    pub id: u64,
    pub notification_id: String,
    pub source: String,
    pub error: String,
    pub document: String,
    pub attempts: u64,
    pub first_failed_at: Option<OffsetDateTime>,
    pub last_failed_at: Option<OffsetDateTime>,
    pub resolved_at: Option<OffsetDateTime>,
    pub dismissed_at: Option<OffsetDateTime>,
    pub dismissed_reason: Option<String>,
}

pub fn failure_rows(conn: &mut Conn, listing: Listing) -> Result<Vec<FailureRow>, mysql::Error> {
    let filter = match listing {
        Listing::Open => " AND resolved_at IS NULL AND dismissed_at IS NULL",
        Listing::Dismissed => " AND dismissed_at IS NOT NULL",
        Listing::All => "",
    };
    let rows: Vec<mysql::Row> = super::paged(
        conn,
        &format!(
            "SELECT id, notification_id, source, error, document, attempts, first_failed_at, last_failed_at, resolved_at,
                    dismissed_at, dismissed_reason
             FROM aws_report_failures WHERE id > ?{filter} ORDER BY id LIMIT ?"
        ),
        0u64,
        Vec::new(),
        |row: &mysql::Row| row.get::<u64, _>(0).unwrap_or(u64::MAX),
    )?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let v = row.unwrap();
            let text = |i: usize| mysql::from_value_opt::<String>(v[i].clone()).unwrap_or_default();
            FailureRow {
                id: mysql::from_value_opt::<u64>(v[0].clone()).unwrap_or(0),
                notification_id: text(1),
                source: text(2),
                error: text(3),
                document: text(4),
                attempts: mysql::from_value_opt::<u64>(v[5].clone()).unwrap_or(0),
                first_failed_at: timestamps::from_sql(&v[6]),
                last_failed_at: timestamps::from_sql(&v[7]),
                resolved_at: timestamps::from_sql(&v[8]),
                dismissed_at: timestamps::from_sql(&v[9]),
                dismissed_reason: mysql::from_value_opt::<Option<String>>(v[10].clone())
                    .ok()
                    .flatten(),
            }
        })
        .collect())
}

//! `aws_report_failures`: every record that could not be applied, kept whole with its reason
//! until a later run applies it.

use std::collections::HashSet;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use time::OffsetDateTime;

use super::{placeholders, row_placeholders, ROWS_PER_STATEMENT};
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
    for chunk in failures.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for f in chunk {
            params.push(Value::from(
                crate::domain::ses::truncate(&f.notification_id, 255)
                    .0
                    .as_ref(),
            ));
            params.push(Value::from(
                crate::domain::ses::truncate(&f.source, 255).0.as_ref(),
            ));
            // A registered secret (a connection URL's password) is never stored, even where a
            // record or an error message happens to contain it.
            params.push(Value::from(redact::scrub(
                crate::domain::ses::truncate(&f.error, 16_000).0.as_ref(),
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
    let ids: Vec<String> =
        conn.query("SELECT notification_id FROM aws_report_failures WHERE resolved_at IS NULL")?;
    Ok(ids.into_iter().collect())
}

pub fn mark_resolved(
    conn: &mut Conn,
    ids: &[String],
    now: OffsetDateTime,
) -> Result<(), mysql::Error> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
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

/// One unresolved (or, with `all`, any) failures row.
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
}

pub fn failure_rows(conn: &mut Conn, all: bool) -> Result<Vec<FailureRow>, mysql::Error> {
    let filter = if all {
        ""
    } else {
        " WHERE resolved_at IS NULL"
    };
    let rows: Vec<mysql::Row> = conn.query(format!(
        "SELECT id, notification_id, source, error, document, attempts, first_failed_at, last_failed_at, resolved_at
         FROM aws_report_failures{filter} ORDER BY id"
    ))?;
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
            }
        })
        .collect())
}

//! Retention: `prune` and the horizon it leaves (`aws_report_retention`), before which ingests
//! skip events because their details are gone.

use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use time::OffsetDateTime;

use crate::domain::event_kind::EventKind;
use crate::domain::retention::Cutoffs;
use crate::domain::timestamps;

/// Events before this instant have had their details pruned.
pub fn pruned_before(conn: &mut Conn) -> Result<Option<OffsetDateTime>, mysql::Error> {
    let value: Option<Value> =
        conn.query_first("SELECT pruned_before FROM aws_report_retention WHERE id = 1")?;
    Ok(value.as_ref().and_then(timestamps::from_sql))
}

/// `pruned_before`, read with a shared lock inside the caller's transaction: `prune`'s raising
/// of the horizon waits until that transaction ends (a missing row is locked as a gap, so the
/// first `prune`'s insert waits too), and the transaction sees a horizon `prune` committed a
/// moment ago.
pub fn pruned_before_locked<Q: Queryable>(
    conn: &mut Q,
) -> Result<Option<OffsetDateTime>, mysql::Error> {
    let value: Option<Value> = conn.query_first(
        "SELECT pruned_before FROM aws_report_retention WHERE id = 1 LOCK IN SHARE MODE",
    )?;
    Ok(value.as_ref().and_then(timestamps::from_sql))
}

/// What `prune` deletes (or, in a dry run, would delete).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pruned {
    pub details: u64,
    pub failures: u64,
    pub runs: u64,
    pub summaries: u64,
    /// Unresolved failures older than the cutoff: kept, since nothing else holds them.
    pub kept_unresolved: u64,
}

/// Deletes, `batch` rows per statement and transaction so no lock is held for long: details of
/// events before their cutoff and finished runs started before it; resolved or dismissed
/// failures before theirs; summary rows without details whose last event is before theirs. Rollups and
/// the suppression ledger stay. Records the details' horizon first, so an ingest running
/// meanwhile already skips them.
pub fn prune(
    conn: &mut Conn,
    cutoffs: &Cutoffs,
    batch: u64,
    dry_run: bool,
) -> Result<Pruned, mysql::Error> {
    let details_where = &format!(
        "event_type IN ({}) AND timestamp < ?",
        EventKind::sql_list()
    );
    let failures_where =
        "(resolved_at IS NOT NULL OR dismissed_at IS NOT NULL) AND last_failed_at < ?";
    let runs_where = "status <> 'running' AND started_at < ?";
    // A summary row's last event: the latest of its event times.
    let last_event = EventKind::ALL
        .map(|k| format!("COALESCE({}, '1000-01-01')", k.summary_column()))
        .join(", ");
    let summaries_where = &format!(
        "GREATEST({last_event}) < ? AND NOT EXISTS (SELECT 1 FROM aws_report_details d WHERE d.report_id = aws_reports.id)"
    );
    let details_at = timestamps::to_sql(cutoffs.details);
    let failures_at = timestamps::to_sql(cutoffs.failures);
    let summaries_at = cutoffs.summaries.map(timestamps::to_sql);
    let count = |conn: &mut Conn, table: &str, condition: &str, at: &Value| {
        conn.exec_first(
            format!("SELECT COUNT(*) FROM {table} WHERE {condition}"),
            (at.clone(),),
        )
        .map(Option::unwrap_or_default)
    };
    let kept_unresolved = count(
        conn,
        "aws_report_failures",
        "resolved_at IS NULL AND dismissed_at IS NULL AND last_failed_at < ?",
        &failures_at,
    )?;
    if dry_run {
        return Ok(Pruned {
            details: count(conn, "aws_report_details", details_where, &details_at)?,
            failures: count(conn, "aws_report_failures", failures_where, &failures_at)?,
            runs: count(conn, "aws_report_runs", runs_where, &details_at)?,
            // Summaries whose details go now are counted by the real run only.
            summaries: match &summaries_at {
                Some(at) => count(conn, "aws_reports", summaries_where, at)?,
                None => 0,
            },
            kept_unresolved,
        });
    }
    conn.exec_drop(
        "INSERT INTO aws_report_retention (id, pruned_before, pruned_at) VALUES (1, ?, ?)
         ON DUPLICATE KEY UPDATE pruned_before = GREATEST(pruned_before, VALUES(pruned_before)), pruned_at = VALUES(pruned_at)",
        (details_at.clone(), timestamps::to_sql(OffsetDateTime::now_utc())),
    )?;
    let delete = |conn: &mut Conn, table: &str, condition: &str, at: &Value| {
        let mut total = 0;
        loop {
            conn.exec_drop(
                format!("DELETE FROM {table} WHERE {condition} LIMIT {batch}"),
                (at.clone(),),
            )?;
            let n = conn.affected_rows();
            total += n;
            if n < batch {
                return Ok::<u64, mysql::Error>(total);
            }
        }
    };
    Ok(Pruned {
        details: delete(conn, "aws_report_details", details_where, &details_at)?,
        failures: delete(conn, "aws_report_failures", failures_where, &failures_at)?,
        runs: delete(conn, "aws_report_runs", runs_where, &details_at)?,
        summaries: match &summaries_at {
            Some(at) => delete(conn, "aws_reports", summaries_where, at)?,
            None => 0,
        },
        kept_unresolved,
    })
}

//! `aws_report_runs`: one row per ingest, how it ended, and where catch-up continues.

use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use time::OffsetDateTime;

use crate::domain::run::{Counts, RunStatus};
use crate::domain::timestamps;
use crate::domain::window::Window;
use crate::redact;

pub fn start_run(
    conn: &mut Conn,
    window: Window,
    source: &str,
    now: OffsetDateTime,
) -> Result<u64, mysql::Error> {
    conn.exec_drop(
        "INSERT INTO aws_report_runs (started_at, window_from, window_to, source, status) VALUES (?, ?, ?, ?, ?)",
        (
            timestamps::to_sql(now),
            timestamps::to_sql(window.from),
            timestamps::to_sql(window.to),
            source,
            RunStatus::Running.name(),
        ),
    )?;
    Ok(conn.last_insert_id())
}

/// Records that a run failed, without its counts (the deadline watchdog does not have them).
pub fn fail_run(conn: &mut Conn, run_id: u64, message: &str) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "UPDATE aws_report_runs SET finished_at = ?, status = ?, message = ? WHERE id = ? AND status = 'running'",
        (
            timestamps::to_sql(OffsetDateTime::now_utc()),
            RunStatus::Failed.name(),
            redact::scrub(message),
            run_id,
        ),
    )
}

pub fn finish_run(
    conn: &mut Conn,
    run_id: u64,
    status: RunStatus,
    counts: &Counts,
    message: Option<&str>,
) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "UPDATE aws_report_runs SET finished_at = ?, status = ?, scanned = ?, applied = ?, duplicates = ?,
           skipped = ?, failed = ?, users_resolved = ?, message = ? WHERE id = ?",
        vec![
            timestamps::to_sql(OffsetDateTime::now_utc()),
            status.name().into(),
            counts.scanned.into(),
            counts.applied.into(),
            counts.duplicates.into(),
            counts.skipped.into(),
            counts.failed.into(),
            counts.users_resolved.into(),
            message.map(redact::scrub).into(),
            run_id.into(),
        ],
    )
}

/// Marks `abandoned` every run still `running`: the caller holds the ingest lock, so none of them
/// is. Returns their ids and windows.
pub fn mark_abandoned_runs(conn: &mut Conn) -> Result<Vec<(u64, Window)>, mysql::Error> {
    let rows: Vec<(u64, Value, Value)> = conn
        .query("SELECT id, window_from, window_to FROM aws_report_runs WHERE status = 'running'")?;
    let mut out = Vec::new();
    for (id, from, to) in rows {
        conn.exec_drop(
            "UPDATE aws_report_runs SET status = ?, message = 'found running without a lock holder by a later run' WHERE id = ?",
            (RunStatus::Abandoned.name(), id),
        )?;
        if let (Some(from), Some(to)) = (timestamps::from_sql(&from), timestamps::from_sql(&to)) {
            out.push((id, Window { from, to }));
        }
    }
    Ok(out)
}

/// Where the last completed Mongo run's window ended: the catch-up window starts there.
pub fn last_completed_end(conn: &mut Conn) -> Result<Option<OffsetDateTime>, mysql::Error> {
    let end: Option<Value> = conn.query_first(
        // A run read nothing after it started, whatever end it recorded (before ses-report clamped
        // windows to now, a run could record a future end).
        "SELECT MAX(LEAST(window_to, started_at)) FROM aws_report_runs WHERE status IN ('ok', 'partial') AND source LIKE 'mongo%'",
    )?;
    Ok(end.as_ref().and_then(timestamps::from_sql))
}

//! `aws_report_runs`: one row per ingest, how it ended, and where catch-up continues.

use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use time::OffsetDateTime;

use crate::domain::partition::{self, Partition};
use crate::domain::run::{Counts, RunStatus};
use crate::domain::timestamps;
use crate::domain::window::Window;
use crate::redact;

pub fn start_run(
    conn: &mut Conn,
    window: Window,
    source: &str,
    partition: Partition,
    now: OffsetDateTime,
) -> Result<u64, mysql::Error> {
    conn.exec_drop(
        "INSERT INTO aws_report_runs (started_at, window_from, window_to, source, partition_label, status) VALUES (?, ?, ?, ?, ?, ?)",
        (
            timestamps::to_sql(now),
            timestamps::to_sql(window.from),
            timestamps::to_sql(window.to),
            source,
            partition.label(),
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

/// Marks `abandoned` every run still `running` whose partition's ingest lock nobody else holds.
/// A run of the caller's own partition is abandoned without asking: the caller holds that lock,
/// so no other run of it can be running. For the others the lock is asked about with a bare
/// `SELECT IS_USED_LOCK(?)` (the form Vitess routes); a server that cannot say (TiDB before 7.3
/// has no such function; TiDB answers 1, not the holder's id, to other sessions) leaves the run
/// as it is, with a message, and never stops the ingest. Returns their ids and windows.
pub fn mark_abandoned_runs(
    conn: &mut Conn,
    database: &str,
    own: Partition,
) -> Result<Vec<(u64, Window)>, mysql::Error> {
    let rows: Vec<(u64, Value, Value, String)> = conn.query(
        "SELECT id, window_from, window_to, partition_label FROM aws_report_runs WHERE status = 'running'",
    )?;
    let mut out = Vec::new();
    for (id, from, to, label) in rows {
        // (A label no version wrote: judged by the whole stream's lock.)
        let partition = Partition::from_label(&label).unwrap_or(Partition::WHOLE);
        if partition != own && !lock_is_free(conn, database, partition, id)? {
            continue;
        }
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

/// Whether nobody holds `partition`'s ingest lock (free, or held by this very session). A
/// refusal of the function itself is "cannot say": not free. A lost connection is an error.
fn lock_is_free(
    conn: &mut Conn,
    database: &str,
    partition: Partition,
    run: u64,
) -> Result<bool, mysql::Error> {
    let lock = super::lock_name(database, partition);
    match conn.exec_first::<Option<u64>, _, _>("SELECT IS_USED_LOCK(?)", (&lock,)) {
        Ok(holder) => {
            let own = u64::from(conn.connection_id());
            Ok(!matches!(holder.flatten(), Some(id) if id != own))
        }
        Err(mysql::Error::MySqlError(e)) => {
            log::warn!(
                "run {run} of partition {partition} is recorded as running, and this server cannot say whether its lock is held (IS_USED_LOCK: error {}: {}): left as it is; a run of that partition will settle it",
                e.code,
                e.message
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Where the completed Mongo runs covering `partition` reached: its catch-up window starts
/// there (`partition::covered_until`: the whole stream's runs count for every partition, and a
/// complete split's for any).
pub fn last_completed_end(
    conn: &mut Conn,
    partition: Partition,
) -> Result<Option<OffsetDateTime>, mysql::Error> {
    let rows: Vec<(String, Value)> = conn.query(
        // A run read nothing after it started, whatever end it recorded (before ses-report clamped
        // windows to now, a run could record a future end).
        "SELECT partition_label, MAX(LEAST(window_to, started_at)) FROM aws_report_runs
         WHERE status IN ('ok', 'partial') AND source LIKE 'mongo%' GROUP BY partition_label",
    )?;
    let ends: Vec<(Partition, OffsetDateTime)> = rows
        .iter()
        .filter_map(|(label, end)| {
            Some((Partition::from_label(label)?, timestamps::from_sql(end)?))
        })
        .collect();
    Ok(partition::covered_until(partition, &ends))
}

/// The windows of the completed runs (`ok` or `partial`, any partition) that overlap
/// `[from, to)`: what the HTML report marks days by, so that a day no run read is not taken for
/// a quiet one.
pub fn completed_windows(
    conn: &mut Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<(OffsetDateTime, OffsetDateTime)>, mysql::Error> {
    let rows: Vec<(mysql::Value, mysql::Value)> = conn.exec(
        "SELECT window_from, window_to FROM aws_report_runs
         WHERE status IN ('ok', 'partial') AND window_to > ? AND window_from < ?",
        (timestamps::to_sql(from), timestamps::to_sql(to)),
    )?;
    Ok(rows
        .iter()
        .filter_map(|(a, b)| Some((timestamps::from_sql(a)?, timestamps::from_sql(b)?)))
        .collect())
}

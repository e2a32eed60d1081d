//! `ses-report failures` (what could not be applied) and `ses-report prune` (retention).

use serde_json::json;

use crate::config::{FailuresConfig, PruneConfig};
use crate::domain::timestamps;
use crate::error::{Exit, Result};
use crate::reports::stats::Format;
use crate::store::{failures, retention, Session};

pub fn run_failures(config: &FailuresConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    let rows = session.retrying("reading aws_report_failures", |conn| {
        failures::failure_rows(conn, config.all)
    })?;
    let time = |t: Option<time::OffsetDateTime>| t.map(timestamps::display).unwrap_or_default();
    match config.format {
        Format::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut row = json!({
                        "id": r.id, "notification_id": r.notification_id, "source": r.source, "error": r.error,
                        "attempts": r.attempts, "first_failed_at": time(r.first_failed_at),
                        "last_failed_at": time(r.last_failed_at),
                        "resolved_at": r.resolved_at.map(timestamps::display),
                    });
                    if config.documents {
                        row["document"] = json!(r.document);
                    }
                    row
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
        Format::Csv | Format::Table => {
            let mut header = vec![
                "id",
                "notification_id",
                "source",
                "error",
                "attempts",
                "first_failed_at",
                "last_failed_at",
                "resolved_at",
            ];
            if config.documents {
                header.push("document");
            }
            let text = crate::reports::csv_text(
                &header,
                rows.iter().map(|r| {
                    let mut cells = vec![
                        r.id.to_string(),
                        r.notification_id.clone(),
                        r.source.clone(),
                        r.error.clone(),
                        r.attempts.to_string(),
                        time(r.first_failed_at),
                        time(r.last_failed_at),
                        time(r.resolved_at),
                    ];
                    if config.documents {
                        cells.push(r.document.clone());
                    }
                    cells
                }),
            );
            print!("{text}");
        }
    }
    Ok(Exit::Done)
}

pub fn run_prune(config: &PruneConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    let cutoff = config.cutoff;
    // Each delete is its own small statement: repeating the whole prune after a lost connection
    // deletes what is left.
    let pruned = session.retrying("pruning", |conn| {
        retention::prune(conn, cutoff, config.batch, config.dry_run)
    })?;
    let verb = if config.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "{verb} before {}: details={} failures={} runs={} (kept: {} unresolved failures, all summaries and rollups)",
        timestamps::display(cutoff),
        pruned.details,
        pruned.failures,
        pruned.runs,
        pruned.kept_unresolved
    );
    Ok(Exit::Done)
}

//! `ses-report failures` (what could not be applied) and `ses-report prune` (retention).

use serde_json::json;

use crate::config::Format;
use crate::config::{FailuresConfig, PruneConfig};
use crate::domain::timestamps;
use crate::error::{Error, Exit, Result};
use crate::store::{failures, retention, Session};

pub fn run_failures(config: &FailuresConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    if let Some((ids, reason)) = &config.dismiss {
        let now = config.env.now;
        let missing = session.retrying("dismissing failures", |conn| {
            failures::dismiss(conn, ids, reason, now)
        })?;
        if !missing.is_empty() {
            let missing: Vec<String> = missing.iter().map(u64::to_string).collect();
            return Err(Error::usage(format!(
                "no unresolved, undismissed failure has the id {}: nothing dismissed (`ses-report failures` lists them)",
                missing.join(", ")
            )));
        }
        let listed: Vec<String> = ids.iter().map(u64::to_string).collect();
        println!(
            "dismissed {} failure(s): {} (`ses-report failures --dismissed` lists them)",
            ids.len(),
            listed.join(", ")
        );
        return Ok(Exit::Done);
    }
    let rows = session.retrying("reading aws_report_failures", |conn| {
        failures::failure_rows(conn, config.listing)
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
                        "dismissed_at": r.dismissed_at.map(timestamps::display),
                        "dismissed_reason": r.dismissed_reason,
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
        Format::Table => {
            // For a person: one line each, the error cut to fit; the whole rows are in CSV/JSON.
            let header = [
                "id",
                "notification_id",
                "attempts",
                "last_failed_at",
                "state",
                "error",
            ];
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let state = match (r.resolved_at, r.dismissed_at) {
                        (Some(_), _) => "resolved".to_string(),
                        (None, Some(_)) => format!(
                            "dismissed: {}",
                            r.dismissed_reason.as_deref().unwrap_or_default()
                        ),
                        (None, None) => "open".to_string(),
                    };
                    vec![
                        r.id.to_string(),
                        r.notification_id.clone(),
                        r.attempts.to_string(),
                        time(r.last_failed_at),
                        state,
                        crate::domain::text::truncate(&r.error.replace('\n', " "), 100)
                            .0
                            .into_owned(),
                    ]
                })
                .collect();
            print!("{}", crate::reports::table_text(&header, &rows));
        }
        Format::Csv => {
            let mut header = vec![
                "id",
                "notification_id",
                "source",
                "error",
                "attempts",
                "first_failed_at",
                "last_failed_at",
                "resolved_at",
                "dismissed_at",
                "dismissed_reason",
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
                        time(r.dismissed_at),
                        r.dismissed_reason.clone().unwrap_or_default(),
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

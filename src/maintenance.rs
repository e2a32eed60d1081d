//! `ses-report failures` (what could not be applied) and `ses-report prune` (retention).

use serde_json::json;
use time::Duration;

use crate::cli::{FailuresArgs, PruneArgs};
use crate::config::Environment;
use crate::error::{Exit, Fatal};
use crate::store::{self, SqlContext};
use crate::timestamps;

pub fn run_failures(args: &FailuresArgs, env: &Environment) -> Result<Exit, Fatal> {
    let (mut conn, database) = store::connect(env)?;
    store::check_schema(&mut conn, &database)?;
    let rows =
        store::failure_rows(&mut conn, args.all).sql_context("reading aws_report_failures")?;
    let time = |t: Option<time::OffsetDateTime>| t.map(timestamps::display).unwrap_or_default();
    match args.format.as_str() {
        "json" => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut row = json!({
                        "id": r.id, "notification_id": r.notification_id, "source": r.source, "error": r.error,
                        "attempts": r.attempts, "first_failed_at": time(r.first_failed_at),
                        "last_failed_at": time(r.last_failed_at),
                        "resolved_at": r.resolved_at.map(timestamps::display),
                    });
                    if args.documents {
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
        "csv" => {
            let mut header = "id,notification_id,source,error,attempts,first_failed_at,last_failed_at,resolved_at".to_string();
            if args.documents {
                header.push_str(",document");
            }
            println!("{header}");
            for r in &rows {
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
                if args.documents {
                    cells.push(r.document.clone());
                }
                let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                println!("{}", cells.join(","));
            }
        }
        other => {
            return Err(Fatal::usage(format!(
                "--format {other:?}: want csv or json"
            )))
        }
    }
    Ok(Exit::Done)
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn run_prune(args: &PruneArgs, env: &Environment) -> Result<Exit, Fatal> {
    if args.older_than == 0 {
        return Err(Fatal::usage("--older-than must be at least 1 day"));
    }
    if args.batch == 0 {
        return Err(Fatal::usage("--batch must be at least 1"));
    }
    let (mut conn, database) = store::connect(env)?;
    store::check_schema(&mut conn, &database)?;
    let cutoff = env.now - Duration::days(args.older_than as i64);
    let pruned =
        store::prune(&mut conn, cutoff, args.batch, args.dry_run).sql_context("pruning")?;
    let verb = if args.dry_run {
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

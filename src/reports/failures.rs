//! `failures`' output: the kept failures as JSON, CSV or a table for a person.

use serde_json::json;
use time::OffsetDateTime;

use crate::domain::text::truncate;
use crate::domain::timestamps;
use crate::reports::{csv_text, table_text};
use crate::store::failures::FailureRow;

fn time(t: Option<OffsetDateTime>) -> String {
    t.map(timestamps::display).unwrap_or_default()
}

/// Whether a failure is open, resolved by a later run, or dismissed (with the reason).
fn state(r: &FailureRow) -> String {
    match (r.resolved_at, r.dismissed_at) {
        (Some(_), _) => "resolved".to_string(),
        (None, Some(_)) => format!(
            "dismissed: {}",
            r.dismissed_reason.as_deref().unwrap_or_default()
        ),
        (None, None) => "open".to_string(),
    }
}

/// Every column, the stored document too when `documents`.
pub fn to_json(rows: &[FailureRow], documents: bool) -> String {
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
            if documents {
                row["document"] = json!(r.document);
            }
            row
        })
        .collect();
    format!(
        "{}\n",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    )
}

/// For a person: one line each, the error cut to fit; the whole rows are in CSV and JSON.
pub fn to_table(rows: &[FailureRow]) -> String {
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
            vec![
                r.id.to_string(),
                r.notification_id.clone(),
                r.attempts.to_string(),
                time(r.last_failed_at),
                state(r),
                truncate(&r.error.replace('\n', " "), 100).0.into_owned(),
            ]
        })
        .collect();
    table_text(&header, &rows)
}

/// Every column, the stored document too when `documents`.
pub fn to_csv(rows: &[FailureRow], documents: bool) -> String {
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
    if documents {
        header.push("document");
    }
    csv_text(
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
            if documents {
                cells.push(r.document.clone());
            }
            cells
        }),
    )
}

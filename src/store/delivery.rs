//! What the deliverability figures read from the rows, beyond the rollups: each recipient's
//! first delivery with its send time, first delay and `processingTimeMillis`, each delayed
//! recipient's `delayType` (`domain::timing`), and each bounced recipient's class and reply.
//! Streamed to the caller, row by row: a week of deliveries is never held at once.

use mysql::prelude::Queryable;
use mysql::Value;
use time::OffsetDateTime;

use super::classification::{dimensions, DIMENSION_COLUMNS};
use crate::domain::bounce::{self, BounceClass};
use crate::domain::figures::Dimensions;
use crate::domain::timestamps;
use crate::domain::timing::Delivered;

/// Every recipient first delivered in `[from, to)`, read by the detail rows' type-and-time index
/// (the summary row's `delivery_at` is the first delivery, so a second Delivery is not read).
pub fn deliveries(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
    on_row: &mut dyn FnMut(Dimensions, Delivered),
) -> Result<(), mysql::Error> {
    let sql = format!(
        "SELECT {DIMENSION_COLUMNS}, r.send_at, d.timestamp, r.delivery_delay_at,
                JSON_EXTRACT(IF(JSON_VALID(d.other_info), d.other_info, NULL), '$.processingTimeMillis')
         FROM aws_report_details d JOIN aws_reports r ON r.id = d.report_id
         WHERE d.event_type = 'Delivery' AND d.timestamp >= ? AND d.timestamp < ?
           AND d.timestamp = r.delivery_at"
    );
    let rows = conn.exec_iter(sql, (timestamps::to_sql(from), timestamps::to_sql(to)))?;
    for row in rows {
        let v = row?.unwrap();
        let (Some(dims), Some(delivered_at)) = (dimensions(&v), timestamps::from_sql(&v[8])) else {
            continue;
        };
        on_row(
            dims,
            Delivered {
                sent_at: timestamps::from_sql(&v[7]),
                delivered_at,
                first_delay_at: timestamps::from_sql(&v[9]),
                processing_ms: millis(&v[10]),
            },
        );
    }
    Ok(())
}

/// `processingTimeMillis` as JSON text (`1934`, rarely `1934.0`), in whole milliseconds.
fn millis(v: &Value) -> Option<i64> {
    let text = mysql::from_value_opt::<String>(v.clone()).ok()?;
    let number: f64 = text.trim().parse().ok()?;
    number.is_finite().then(|| number.round() as i64)
}

/// Every DeliveryDelay row in `[from, to)`: its summary row's id and dimensions, when, and SES's
/// `delayType` (empty when it gave none).
pub fn delays(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
    on_row: &mut dyn FnMut(u64, Dimensions, OffsetDateTime, String),
) -> Result<(), mysql::Error> {
    let sql = format!(
        "SELECT {DIMENSION_COLUMNS}, r.id, d.timestamp, COALESCE(d.delay_type, '')
         FROM aws_report_details d JOIN aws_reports r ON r.id = d.report_id
         WHERE d.event_type = 'DeliveryDelay' AND d.timestamp >= ? AND d.timestamp < ?"
    );
    let rows = conn.exec_iter(sql, (timestamps::to_sql(from), timestamps::to_sql(to)))?;
    for row in rows {
        let v = row?.unwrap();
        let (Some(dims), Ok(id), Some(at)) = (
            dimensions(&v),
            mysql::from_value_opt::<u64>(v[7].clone()),
            timestamps::from_sql(&v[8]),
        ) else {
            continue;
        };
        let delay_type = mysql::from_value_opt::<String>(v[9].clone()).unwrap_or_default();
        on_row(id, dims, at, delay_type);
    }
    Ok(())
}

/// Every bounced recipient in `[from, to)` with a receiving server's reply (not the bounces SES
/// suppressed itself): its class and its `diagnosticCode` (empty when SES relayed none).
pub fn bounce_replies(
    conn: &mut mysql::Conn,
    from: OffsetDateTime,
    to: OffsetDateTime,
    on_row: &mut dyn FnMut(BounceClass, &str),
) -> Result<(), mysql::Error> {
    let rows = conn.exec_iter(
        "SELECT d.bounce_class, d.`to`, d.other_info FROM aws_report_details d
         WHERE d.event_type = 'Bounce' AND d.timestamp >= ? AND d.timestamp < ?
           AND d.bounce_class IS NOT NULL",
        (timestamps::to_sql(from), timestamps::to_sql(to)),
    )?;
    for row in rows {
        let (class, recipient, info): (String, String, Option<String>) =
            mysql::from_row_opt(row?).map_err(|e| mysql::Error::FromRowError(e.0))?;
        let Some(class) = BounceClass::parse(&class) else {
            continue;
        };
        let info: serde_json::Value =
            serde_json::from_str(info.as_deref().unwrap_or("")).unwrap_or_default();
        if info.get("bounceSubType").and_then(|v| v.as_str()) == Some("OnAccountSuppressionList") {
            continue;
        }
        let diagnostic = bounce::recipient_entry(&info, "bouncedRecipients", &recipient)
            .and_then(|r| r.get("diagnosticCode"))
            .and_then(|d| d.as_str())
            .unwrap_or("");
        on_row(class, diagnostic);
    }
    Ok(())
}

//! `ses-report suppressions`' output: the decisions (`domain::suppression`) as CSV or JSON, and
//! the comparison with SES's account-level list (`reconcile`).

use std::collections::BTreeMap;

use serde_json::json;

use crate::config::Format;
use crate::domain::suppression::{Reason, Suppression};
use crate::domain::text::normalize_address;
use crate::domain::timestamps;
use crate::reports::csv_text;

pub fn to_csv(rows: &[Suppression]) -> String {
    let header = [
        "email",
        "user_id",
        "reason",
        "first_at",
        "last_at",
        "count",
        "last_diagnostic_code",
        "expires_at",
        "bounce_class",
    ];
    csv_text(
        &header,
        rows.iter().map(|s| {
            [
                s.email.clone(),
                s.user_id.map(|u| u.to_string()).unwrap_or_default(),
                s.reason.as_str().to_string(),
                timestamps::display(s.first_at),
                timestamps::display(s.last_at),
                s.count.to_string(),
                s.last_diagnostic.clone().unwrap_or_default(),
                s.expires_at.map(timestamps::display).unwrap_or_default(),
                s.bounce_class
                    .map(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string(),
            ]
        }),
    )
}

pub fn to_json(rows: &[Suppression]) -> String {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|s| {
            json!({
                "email": s.email, "user_id": s.user_id, "reason": s.reason.as_str(),
                "first_at": timestamps::display(s.first_at), "last_at": timestamps::display(s.last_at),
                "count": s.count, "last_diagnostic_code": s.last_diagnostic,
                "expires_at": s.expires_at.map(timestamps::display),
                "bounce_class": s.bounce_class.map(|c| c.as_str()),
            })
        })
        .collect();
    format!(
        "{}\n",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    )
}

/// One entry of SES's account-level suppression list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SesEntry {
    pub email: String,
    /// `BOUNCE` or `COMPLAINT`.
    pub reason: String,
}

/// Reads what `aws sesv2 list-suppressed-destinations` prints: one JSON object per page with
/// `SuppressedDestinationSummaries` (`EmailAddress`, `Reason`), pages concatenated or in an array.
pub fn read_ses_list(text: &str) -> Result<Vec<SesEntry>, String> {
    // An empty file is what a failed `aws ... > ses.json` leaves: never "SES suppresses nothing"
    // (an empty list is a page with an empty SuppressedDestinationSummaries).
    if text.trim().is_empty() {
        return Err(
            "the file is empty: save what aws sesv2 list-suppressed-destinations prints (a page with an empty SuppressedDestinationSummaries list when SES suppresses nothing)"
                .to_string(),
        );
    }
    let mut entries = Vec::new();
    let mut pages = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        match value.map_err(|e| {
            format!("not the JSON that aws sesv2 list-suppressed-destinations prints: {e}")
        })? {
            serde_json::Value::Array(list) => pages.extend(list),
            page => pages.push(page),
        }
    }
    for (n, page) in pages.iter().enumerate() {
        let list = page
            .get("SuppressedDestinationSummaries")
            .and_then(|l| l.as_array())
            .ok_or_else(|| format!("page {} has no SuppressedDestinationSummaries list", n + 1))?;
        for item in list {
            let email = item.get("EmailAddress").and_then(|v| v.as_str());
            let reason = item.get("Reason").and_then(|v| v.as_str());
            match (email, reason) {
                (Some(email), Some(reason)) => entries.push(SesEntry {
                    email: normalize_address(email),
                    reason: reason.to_ascii_uppercase(),
                }),
                _ => {
                    return Err(format!(
                        "page {}: an entry without EmailAddress or Reason: {item}",
                        n + 1
                    ))
                }
            }
        }
    }
    Ok(entries)
}

/// One difference between our list and SES's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub email: String,
    /// `add-to-ses`, `only-in-ses` or `reason-differs`.
    pub action: &'static str,
    pub ours: String,
    pub ses: String,
}

/// Compares: addresses we suppress for a bounce or complaint that SES does not list
/// (`add-to-ses`), addresses SES lists that we do not suppress at all (`only-in-ses`), and
/// addresses both list for different reasons (`reason-differs`). Sorted by address.
pub fn reconcile(ours: &[Suppression], ses: &[SesEntry]) -> Vec<Difference> {
    let mut our_reasons: BTreeMap<&str, Vec<Reason>> = BTreeMap::new();
    for s in ours {
        our_reasons
            .entry(s.email.as_str())
            .or_default()
            .push(s.reason);
    }
    let mut ses_reasons: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in ses {
        ses_reasons
            .entry(e.email.as_str())
            .or_default()
            .push(e.reason.as_str());
    }
    let mut out = Vec::new();
    for (email, reasons) in &our_reasons {
        let mapped: Vec<&str> = reasons.iter().filter_map(|r| r.ses_reason()).collect();
        let ours = reasons
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        match ses_reasons.get(email) {
            None if !mapped.is_empty() => out.push(Difference {
                email: email.to_string(),
                action: "add-to-ses",
                ours,
                ses: String::new(),
            }),
            None => {}
            // SES already suppresses it (it told us so in the events): the same list.
            Some(_) if reasons.contains(&Reason::SesSuppressed) => {}
            Some(theirs) if !mapped.is_empty() && !mapped.iter().any(|m| theirs.contains(m)) => out
                .push(Difference {
                    email: email.to_string(),
                    action: "reason-differs",
                    ours,
                    ses: theirs.join(" "),
                }),
            Some(_) => {}
        }
    }
    for (email, theirs) in &ses_reasons {
        if !our_reasons.contains_key(email) {
            out.push(Difference {
                email: email.to_string(),
                action: "only-in-ses",
                ours: String::new(),
                ses: theirs.join(" "),
            });
        }
    }
    out.sort_by(|a, b| (&a.email, a.action).cmp(&(&b.email, b.action)));
    out
}

pub fn differences_csv(rows: &[Difference]) -> String {
    csv_text(
        &["email", "action", "our_reasons", "ses_reason"],
        rows.iter().map(|d| {
            [
                d.email.clone(),
                d.action.to_string(),
                d.ours.clone(),
                d.ses.clone(),
            ]
        }),
    )
}

pub fn differences_json(rows: &[Difference]) -> String {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|d| json!({"email": d.email, "action": d.action, "our_reasons": d.ours, "ses_reason": d.ses}))
        .collect();
    format!(
        "{}\n",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    )
}

/// `suppressions --check`'s answer: JSON `{"address", "suppressed", "erased", "reasons"}`, or a
/// CSV line with the reasons joined by `;`.
pub fn check_output(format: Format, address: &str, erased: bool, reasons: &[String]) -> String {
    match format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({
                "address": address,
                "suppressed": !reasons.is_empty(),
                "erased": erased,
                "reasons": reasons,
            })
        ),
        _ => csv_text(
            &["address", "suppressed", "erased", "reasons"],
            [vec![
                address.to_string(),
                (!reasons.is_empty()).to_string(),
                erased.to_string(),
                reasons.join(";"),
            ]],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::OffsetDateTime;

    fn suppression(email: &str, reason: Reason, at: OffsetDateTime) -> Suppression {
        Suppression {
            email: email.into(),
            user_id: None,
            reason,
            first_at: at,
            last_at: at,
            count: 1,
            last_diagnostic: None,
            bounce_class: None,
            expires_at: None,
        }
    }

    #[test]
    fn ses_lists_are_read_from_the_cli_output_and_reconciled() {
        let page = |entries: &str| {
            format!(r#"{{"SuppressedDestinationSummaries": [{entries}], "NextToken": "x"}}"#)
        };
        let text = format!(
            "{}\n{}",
            page(
                r#"{"EmailAddress": "Both@x", "Reason": "BOUNCE", "LastUpdateTime": "2026-11-01T00:00:00Z"}"#
            ),
            page(
                r#"{"EmailAddress": "ses-only@x", "Reason": "COMPLAINT"}, {"EmailAddress": "differs@x", "Reason": "COMPLAINT"}"#
            )
        );
        let ses = read_ses_list(&text).unwrap();
        assert_eq!(ses.len(), 3);
        assert_eq!(ses[0].email, "both@x");
        assert!(read_ses_list("{\"Other\": 1}")
            .unwrap_err()
            .contains("SuppressedDestinationSummaries"));
        assert!(read_ses_list("not json").is_err());
        assert!(read_ses_list("").unwrap_err().contains("empty"));
        assert!(read_ses_list(" \n\t").unwrap_err().contains("empty"));
        assert_eq!(
            read_ses_list("{\"SuppressedDestinationSummaries\": []}").unwrap(),
            vec![]
        );
        let at = datetime!(2026-11-20 10:00 UTC);
        let ours = [
            suppression("both@x", Reason::PermanentBounce, at),
            suppression("differs@x", Reason::PermanentBounce, at),
            suppression("ours-only@x", Reason::PermanentBounce, at),
            suppression("unsubscribed@x", Reason::Unsubscribed, at),
        ];
        let found: Vec<(String, &str)> = reconcile(&ours, &ses)
            .into_iter()
            .map(|d| (d.email, d.action))
            .collect();
        assert_eq!(
            found,
            vec![
                ("differs@x".to_string(), "reason-differs"),
                ("ours-only@x".to_string(), "add-to-ses"),
                ("ses-only@x".to_string(), "only-in-ses"),
            ]
        );
    }

    #[test]
    fn csv_and_json_agree() {
        let at = datetime!(2026-11-20 10:00 UTC);
        let found = [Suppression {
            user_id: Some(7),
            last_diagnostic: Some("smtp; 5.1.1".into()),
            bounce_class: Some(crate::domain::bounce::BounceClass::InvalidAddress),
            ..suppression("a,b@x", Reason::PermanentBounce, at)
        }];
        let csv = to_csv(&found);
        assert_eq!(csv.lines().nth(1), Some("\"a,b@x\",7,permanent-bounce,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z,1,smtp; 5.1.1,,invalid-address"));
        let json: serde_json::Value = serde_json::from_str(&to_json(&found)).unwrap();
        assert_eq!(json[0]["email"], "a,b@x");
        assert_eq!(json[0]["count"], 1);
        assert_eq!(json[0]["bounce_class"], "invalid-address");
    }
}

//! `ses-report suppressions`: the addresses the sending app should stop mailing, with the
//! reason and the evidence.
//!
//! Rules: a permanent bounce (except OnAccountSuppressionList, which SES already suppresses,
//! unless asked) or a complaint suppresses at once; a transient bounce with a 5.x.x SMTP status is
//! treated as permanent; `soft_limit` transient bounces within `soft_window` with no delivery to the
//! address after the latest of them suppress; auto-replies (Transient/General without a 4.x/5.x
//! status) never count; an unsubscribe from everything (`unsubscribeAll: true`) suppresses.
//! `decide` is pure; `evidence` reads it from the detail rows.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::domain::ses::normalize_address;
use crate::domain::timestamps;
use crate::reports::csv_text;

/// What one detail row says about an address.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    Bounce {
        bounce_type: String,
        sub_type: String,
        status: Option<String>,
        diagnostic: Option<String>,
    },
    Complaint {
        /// `complaintSubType`: `OnAccountSuppressionList` when SES had already suppressed the
        /// address and did not send.
        sub_type: String,
        /// `complaintFeedbackType` (abuse, fraud, not-spam, ...), when the report had one.
        feedback_type: String,
    },
    Unsubscribe,
}

/// What an event's own object (`other_info`) says about `recipient`, if it bears on suppression:
/// a bounce (with that recipient's status and diagnostic), a complaint, an unsubscribe from all.
pub fn signal_of(event_type: &str, info: &serde_json::Value, recipient: &str) -> Option<Signal> {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    match event_type {
        "Complaint" => Some(Signal::Complaint {
            sub_type: text(info.get("complaintSubType")).unwrap_or_default(),
            feedback_type: text(info.get("complaintFeedbackType")).unwrap_or_default(),
        }),
        "Subscription" => (info.pointer("/newTopicPreferences/unsubscribeAll")
            == Some(&json!(true)))
        .then_some(Signal::Unsubscribe),
        "Bounce" => {
            let entry = info
                .get("bouncedRecipients")
                .and_then(|r| r.as_array())
                .and_then(|list| {
                    list.iter().find(|r| {
                        r.get("emailAddress")
                            .and_then(|a| a.as_str())
                            .map(normalize_address)
                            .as_deref()
                            == Some(recipient)
                    })
                });
            Some(Signal::Bounce {
                bounce_type: text(info.get("bounceType")).unwrap_or_default(),
                sub_type: text(info.get("bounceSubType")).unwrap_or_default(),
                status: text(entry.and_then(|r| r.get("status"))),
                diagnostic: text(entry.and_then(|r| r.get("diagnosticCode"))),
            })
        }
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub email: String,
    pub user_id: Option<u64>,
    pub at: OffsetDateTime,
    pub signal: Signal,
}

#[derive(Clone, Debug)]
pub struct Rules {
    pub include_ses_suppressed: bool,
    pub soft_limit: u32,
    /// How long a soft-bounce suppression lasts after the last soft bounce; also the window
    /// whose soft bounces count towards `soft_limit`.
    pub soft_window: Duration,
    /// `(days, deliveries)`: no human open or click in `days` despite `deliveries`.
    pub sunset: Option<(Duration, u32)>,
    pub now: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suppression {
    pub email: String,
    pub user_id: Option<u64>,
    pub reason: &'static str,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    pub count: u64,
    pub last_diagnostic: Option<String>,
    /// Soft-bounce suppressions lapse then unless renewed.
    pub expires_at: Option<OffsetDateTime>,
}

/// The ledger's kinds of evidence (`aws_report_suppressions.kind`), before any rule: what a
/// signal is, not what the sending app should do about it.
pub fn ledger_kind(signal: &Signal) -> Option<&'static str> {
    match signal {
        Signal::Complaint { feedback_type, .. } if feedback_type == "not-spam" => Some("not-spam"),
        Signal::Complaint { sub_type, .. } if sub_type == "OnAccountSuppressionList" => {
            Some("ses-suppressed-complaint")
        }
        Signal::Complaint { .. } => Some("complaint"),
        Signal::Unsubscribe => Some("unsubscribed"),
        Signal::Bounce {
            bounce_type,
            sub_type,
            status,
            ..
        } => {
            let class = status
                .as_deref()
                .map(str::trim)
                .and_then(|s| s.chars().next());
            match bounce_type.as_str() {
                "Permanent" if sub_type == "OnAccountSuppressionList" => {
                    Some("ses-suppressed-bounce")
                }
                "Permanent" => Some("permanent-bounce"),
                "Transient" if class == Some('5') => Some("transient-bounce-5xx"),
                // An auto-reply (out of office) is Transient/General without a 4.x or 5.x status.
                "Transient" if sub_type == "General" && class != Some('4') => None,
                "Transient" => Some("soft-bounce"),
                _ => None,
            }
        }
    }
}

/// How many of the latest instants a ledger entry keeps: enough for `--soft-limit` up to this.
pub const RECENT_KEPT: usize = 16;
/// The longest diagnostic kept.
pub const DIAGNOSTIC_WIDTH: usize = 1000;

/// One row of the suppression ledger: everything an address's evidence of one kind says, merged
/// order-free (earliest first, latest last, counts summed, the latest diagnostic, the latest
/// instants), so that it is the same whatever order the events arrive in and is never shrunk by
/// `prune`.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub email: String,
    pub kind: &'static str,
    pub user_id: Option<u64>,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    pub count: u64,
    pub last_diagnostic: Option<String>,
    pub last_diagnostic_at: Option<OffsetDateTime>,
    /// The latest `RECENT_KEPT` instants, newest first.
    pub recent: Vec<OffsetDateTime>,
}

impl LedgerEntry {
    pub fn of(e: &Evidence) -> Option<LedgerEntry> {
        let kind = ledger_kind(&e.signal)?;
        let diagnostic = diagnostic(&e.signal).map(|d| {
            crate::domain::ses::truncate(&d, DIAGNOSTIC_WIDTH)
                .0
                .into_owned()
        });
        Some(LedgerEntry {
            email: e.email.clone(),
            kind,
            user_id: e.user_id,
            first_at: e.at,
            last_at: e.at,
            count: 1,
            last_diagnostic_at: diagnostic.as_ref().map(|_| e.at),
            last_diagnostic: diagnostic,
            recent: vec![e.at],
        })
    }

    /// The order-free merge of two entries of one (address, kind).
    pub fn merge(&mut self, other: LedgerEntry) {
        self.user_id = self.user_id.max(other.user_id);
        self.first_at = self.first_at.min(other.first_at);
        self.last_at = self.last_at.max(other.last_at);
        self.count += other.count;
        let mine = (self.last_diagnostic_at, self.last_diagnostic.take());
        let theirs = (other.last_diagnostic_at, other.last_diagnostic);
        (self.last_diagnostic_at, self.last_diagnostic) = mine.max(theirs);
        self.recent.extend(other.recent);
        self.recent.sort_by(|a, b| b.cmp(a));
        self.recent.dedup();
        self.recent.truncate(RECENT_KEPT);
    }
}

/// The ledger entries of some evidence, merged by (address, kind), sorted.
pub fn aggregate(evidence: &[Evidence]) -> Vec<LedgerEntry> {
    let mut entries: BTreeMap<(String, &'static str), LedgerEntry> = BTreeMap::new();
    for e in evidence {
        if let Some(entry) = LedgerEntry::of(e) {
            match entries.entry((entry.email.clone(), entry.kind)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(entry);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(entry),
            }
        }
    }
    entries.into_values().collect()
}

fn diagnostic(signal: &Signal) -> Option<String> {
    match signal {
        Signal::Bounce { diagnostic, .. } => diagnostic.clone(),
        _ => None,
    }
}

/// Applies the rules to evidence (`aggregate`, then `decide_entries`): the unit tests' way in.
#[cfg(test)]
pub fn decide(
    evidence: &[Evidence],
    last_delivery: &HashMap<String, OffsetDateTime>,
    rules: &Rules,
) -> Vec<Suppression> {
    decide_entries(&aggregate(evidence), last_delivery, rules)
}

/// Applies the rules to ledger entries. `last_delivery` is the latest delivery per address.
/// Sorted by email, reason.
pub fn decide_entries(
    entries: &[LedgerEntry],
    last_delivery: &HashMap<String, OffsetDateTime>,
    rules: &Rules,
) -> Vec<Suppression> {
    let mut found: BTreeMap<(String, &'static str), Suppression> = BTreeMap::new();
    let mut put = |e: &LedgerEntry,
                   reason: &'static str,
                   first_at: OffsetDateTime,
                   last_at: OffsetDateTime,
                   count: u64| {
        let row = found
            .entry((e.email.clone(), reason))
            .or_insert_with(|| Suppression {
                email: e.email.clone(),
                user_id: None,
                reason,
                first_at,
                last_at,
                count: 0,
                last_diagnostic: None,
                expires_at: None,
            });
        row.first_at = row.first_at.min(first_at);
        if last_at >= row.last_at {
            row.last_at = last_at;
            if e.last_diagnostic.is_some() {
                row.last_diagnostic = e.last_diagnostic.clone();
            }
        }
        row.count += count;
        row.user_id = row.user_id.max(e.user_id);
    };
    let mut not_spam: HashMap<&str, OffsetDateTime> = HashMap::new();
    let window_start = rules.now - rules.soft_window;
    for e in entries {
        match e.kind {
            "permanent-bounce" | "transient-bounce-5xx" | "complaint" | "unsubscribed" => {
                put(e, e.kind, e.first_at, e.last_at, e.count)
            }
            "ses-suppressed-bounce" | "ses-suppressed-complaint"
                if rules.include_ses_suppressed =>
            {
                put(e, "ses-suppressed", e.first_at, e.last_at, e.count)
            }
            "not-spam" => {
                not_spam.insert(e.email.as_str(), e.last_at);
            }
            "soft-bounce" => {
                let in_window: Vec<OffsetDateTime> = e
                    .recent
                    .iter()
                    .copied()
                    .filter(|at| *at >= window_start && *at <= rules.now)
                    .collect();
                let Some(last) = in_window.iter().max() else {
                    continue;
                };
                let delivered_since = last_delivery.get(&e.email).is_some_and(|d| d > last);
                // The window decides (the ledger keeps the RECENT_KEPT latest instants, enough
                // for any --soft-limit it accepts); the row's count and first time are the
                // address's whole soft-bounce evidence, exact as for every other reason.
                if in_window.len() as u32 >= rules.soft_limit.max(1) && !delivered_since {
                    put(e, "soft-bounces", e.first_at, *last, e.count);
                }
            }
            _ => {}
        }
    }
    // A not-spam report after the last complaint lifts it.
    found.retain(|(email, reason), s| {
        !(*reason == "complaint"
            && not_spam
                .get(email.as_str())
                .is_some_and(|at| *at > s.last_at))
    });
    // A soft-bounce suppression lapses `soft_window` after its last bounce unless renewed.
    for ((_, reason), s) in found.iter_mut() {
        if *reason == "soft-bounces" {
            s.expires_at = Some(s.last_at + rules.soft_window);
        }
    }
    found.into_values().collect()
}

/// One address's deliveries in the sunset window, and whether a person opened or clicked any.
#[derive(Clone, Debug, PartialEq)]
pub struct Engagement {
    pub email: String,
    pub user_id: Option<u64>,
    pub deliveries: u64,
    pub first_delivery: OffsetDateTime,
    pub last_delivery: OffsetDateTime,
    pub engaged: bool,
}

/// The sunset rule: at least `deliveries` deliveries in the window and no human open or click
/// (`domain::engagement`: machine opens do not keep an address alive). Reason `sunset`.
pub fn sunset(rows: &[Engagement], rules: &Rules) -> Vec<Suppression> {
    let Some((_, min_deliveries)) = rules.sunset else {
        return Vec::new();
    };
    rows.iter()
        .filter(|r| !r.engaged && r.deliveries >= u64::from(min_deliveries))
        .map(|r| Suppression {
            email: r.email.clone(),
            user_id: r.user_id,
            reason: "sunset",
            first_at: r.first_delivery,
            last_at: r.last_delivery,
            count: r.deliveries,
            last_diagnostic: None,
            expires_at: None,
        })
        .collect()
}

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
    ];
    csv_text(
        &header,
        rows.iter().map(|s| {
            [
                s.email.clone(),
                s.user_id.map(|u| u.to_string()).unwrap_or_default(),
                s.reason.to_string(),
                timestamps::display(s.first_at),
                timestamps::display(s.last_at),
                s.count.to_string(),
                s.last_diagnostic.clone().unwrap_or_default(),
                s.expires_at.map(timestamps::display).unwrap_or_default(),
            ]
        }),
    )
}

pub fn to_json(rows: &[Suppression]) -> String {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|s| {
            json!({
                "email": s.email, "user_id": s.user_id, "reason": s.reason,
                "first_at": timestamps::display(s.first_at), "last_at": timestamps::display(s.last_at),
                "count": s.count, "last_diagnostic_code": s.last_diagnostic,
                "expires_at": s.expires_at.map(timestamps::display),
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
                    email: crate::domain::ses::normalize_address(email),
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

/// SES's reason for one of ours: its list knows only bounces and complaints; an unsubscribe or a
/// sunset is the sending app's business, not SES's.
fn ses_reason(reason: &str) -> Option<&'static str> {
    match reason {
        "permanent-bounce" | "transient-bounce-5xx" | "soft-bounces" => Some("BOUNCE"),
        "complaint" => Some("COMPLAINT"),
        _ => None,
    }
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
    let mut our_reasons: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
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
        let mapped: Vec<&str> = reasons.iter().filter_map(|r| ses_reason(r)).collect();
        let ours = reasons.join(" ");
        match ses_reasons.get(email) {
            None if !mapped.is_empty() => out.push(Difference {
                email: email.to_string(),
                action: "add-to-ses",
                ours,
                ses: String::new(),
            }),
            None => {}
            // SES already suppresses it (it told us so in the events): the same list.
            Some(_) if reasons.contains(&"ses-suppressed") => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-28 07:00 UTC);

    fn rules() -> Rules {
        Rules {
            include_ses_suppressed: false,
            soft_limit: 3,
            soft_window: Duration::days(30),
            sunset: None,
            now: NOW,
        }
    }

    fn complaint(email: &str, at: OffsetDateTime, feedback_type: &str) -> Evidence {
        Evidence {
            email: email.into(),
            user_id: None,
            at,
            signal: Signal::Complaint {
                sub_type: String::new(),
                feedback_type: feedback_type.into(),
            },
        }
    }

    #[test]
    fn a_later_not_spam_report_lifts_a_complaint_and_adds_nothing() {
        let early = datetime!(2026-11-20 10:00 UTC);
        let late = datetime!(2026-11-21 10:00 UTC);
        let evidence = vec![
            complaint("lifted@x", early, "abuse"),
            complaint("lifted@x", late, "not-spam"),
            // A complaint after the not-spam report stands.
            complaint("again@x", early, "not-spam"),
            complaint("again@x", late, "abuse"),
            complaint("only-not-spam@x", late, "not-spam"),
        ];
        let found = decide(&evidence, &HashMap::new(), &rules());
        assert_eq!(reasons(&found), vec![("again@x", "complaint")]);
    }

    #[test]
    fn soft_bounce_suppressions_expire_unless_renewed() {
        let b = |at| bounce("soft@x", at, "Transient", "MailboxFull", Some("4.2.2"));
        let evidence = vec![
            b(datetime!(2026-11-01 10:00 UTC)),
            b(datetime!(2026-11-10 10:00 UTC)),
            b(datetime!(2026-11-20 10:00 UTC)),
        ];
        let found = decide(&evidence, &HashMap::new(), &rules());
        assert_eq!(found[0].expires_at, Some(datetime!(2026-12-20 10:00 UTC)));
        // Thirty days after the last bounce, it has lapsed.
        let later = Rules {
            now: datetime!(2026-12-21 10:00 UTC),
            ..rules()
        };
        assert!(decide(&evidence, &HashMap::new(), &later).is_empty());
    }

    #[test]
    fn sunset_takes_addresses_nobody_read_despite_enough_deliveries() {
        let row = |email: &str, deliveries: u64, engaged: bool| Engagement {
            email: email.into(),
            user_id: None,
            deliveries,
            first_delivery: datetime!(2026-09-01 10:00 UTC),
            last_delivery: datetime!(2026-11-27 10:00 UTC),
            engaged,
        };
        let rows = [
            row("cold@x", 6, false),
            row("warm@x", 9, true),
            row("new@x", 2, false),
        ];
        assert!(sunset(&rows, &rules()).is_empty(), "off unless asked for");
        let asked = Rules {
            sunset: Some((Duration::days(90), 5)),
            ..rules()
        };
        let found = sunset(&rows, &asked);
        assert_eq!(reasons(&found), vec![("cold@x", "sunset")]);
        assert_eq!(found[0].count, 6);
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
        let ours = decide(
            &[
                bounce("both@x", at, "Permanent", "General", Some("5.1.1")),
                bounce("differs@x", at, "Permanent", "General", Some("5.1.1")),
                bounce("ours-only@x", at, "Permanent", "General", Some("5.1.1")),
                Evidence {
                    email: "unsubscribed@x".into(),
                    user_id: None,
                    at,
                    signal: Signal::Unsubscribe,
                },
            ],
            &HashMap::new(),
            &rules(),
        );
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

    fn bounce(
        email: &str,
        at: OffsetDateTime,
        bounce_type: &str,
        sub_type: &str,
        status: Option<&str>,
    ) -> Evidence {
        Evidence {
            email: email.into(),
            user_id: Some(7),
            at,
            signal: Signal::Bounce {
                bounce_type: bounce_type.into(),
                sub_type: sub_type.into(),
                status: status.map(String::from),
                diagnostic: status.map(|s| format!("smtp; {s}")),
            },
        }
    }

    fn reasons(found: &[Suppression]) -> Vec<(&str, &str)> {
        found.iter().map(|s| (s.email.as_str(), s.reason)).collect()
    }

    #[test]
    fn hard_signals_suppress_at_once() {
        let at = datetime!(2026-11-20 10:00 UTC);
        let evidence = vec![
            bounce("hard@x", at, "Permanent", "General", Some("5.1.1")),
            bounce("ses@x", at, "Permanent", "OnAccountSuppressionList", None),
            bounce(
                "invalid-domain@x",
                at,
                "Transient",
                "General",
                Some("5.4.4"),
            ),
            Evidence {
                email: "angry@x".into(),
                user_id: None,
                at,
                signal: Signal::Complaint {
                    sub_type: String::new(),
                    feedback_type: "abuse".into(),
                },
            },
            Evidence {
                email: "gone@x".into(),
                user_id: None,
                at,
                signal: Signal::Unsubscribe,
            },
        ];
        let found = decide(&evidence, &HashMap::new(), &rules());
        assert_eq!(
            reasons(&found),
            vec![
                ("angry@x", "complaint"),
                ("gone@x", "unsubscribed"),
                ("hard@x", "permanent-bounce"),
                ("invalid-domain@x", "transient-bounce-5xx")
            ]
        );
        assert_eq!(found[2].last_diagnostic.as_deref(), Some("smtp; 5.1.1"));
        let with_ses = decide(
            &evidence,
            &HashMap::new(),
            &Rules {
                include_ses_suppressed: true,
                ..rules()
            },
        );
        assert!(reasons(&with_ses).contains(&("ses@x", "ses-suppressed")));
    }

    #[test]
    fn soft_bounces_need_the_limit_within_the_window_and_no_later_delivery() {
        let full = |email: &str, days_ago: [i64; 3]| {
            days_ago
                .map(|d| {
                    bounce(
                        email,
                        NOW - Duration::days(d),
                        "Transient",
                        "MailboxFull",
                        Some("4.2.2"),
                    )
                })
                .to_vec()
        };
        let mut evidence = full("full@x", [1, 5, 9]);
        evidence.extend(full("stale@x", [1, 5, 40]));
        evidence.extend(full("delivered@x", [1, 5, 9]));
        evidence.extend(full("delivered-before@x", [1, 5, 9]));
        evidence.extend(full("two@x", [1, 5, 9])[..2].to_vec());
        let deliveries = HashMap::from([
            ("delivered@x".to_string(), NOW - Duration::hours(2)),
            ("delivered-before@x".to_string(), NOW - Duration::days(3)),
        ]);
        let found = decide(&evidence, &deliveries, &rules());
        assert_eq!(
            reasons(&found),
            vec![
                ("delivered-before@x", "soft-bounces"),
                ("full@x", "soft-bounces")
            ]
        );
        assert_eq!(found[1].count, 3);
        assert_eq!(found[1].first_at, NOW - Duration::days(9));
        assert_eq!(found[1].last_at, NOW - Duration::days(1));
    }

    /// The ledger keeps the 16 latest instants, yet the row's count and first time are exact
    /// for twenty soft bounces, and the limit works up to 16.
    #[test]
    fn soft_bounce_counts_and_first_times_are_exact_beyond_the_kept_instants() {
        let evidence: Vec<Evidence> = (1..=20)
            .map(|h| {
                bounce(
                    "many@x",
                    NOW - Duration::hours(h),
                    "Transient",
                    "MailboxFull",
                    Some("4.2.2"),
                )
            })
            .collect();
        let entries = aggregate(&evidence);
        assert_eq!(entries[0].recent.len(), RECENT_KEPT);
        for limit in [3, RECENT_KEPT as u32] {
            let found = decide_entries(
                &entries,
                &HashMap::new(),
                &Rules {
                    soft_limit: limit,
                    ..rules()
                },
            );
            assert_eq!(reasons(&found), vec![("many@x", "soft-bounces")], "{limit}");
            assert_eq!(found[0].count, 20);
            assert_eq!(found[0].first_at, NOW - Duration::hours(20));
            assert_eq!(found[0].last_at, NOW - Duration::hours(1));
        }
    }

    #[test]
    fn auto_replies_never_count() {
        let evidence: Vec<Evidence> = (1..=5)
            .map(|d| {
                bounce(
                    "ooto@x",
                    NOW - Duration::days(d),
                    "Transient",
                    "General",
                    None,
                )
            })
            .collect();
        assert!(decide(&evidence, &HashMap::new(), &rules()).is_empty());
        let with_4xx: Vec<Evidence> = (1..=3)
            .map(|d| {
                bounce(
                    "busy@x",
                    NOW - Duration::days(d),
                    "Transient",
                    "General",
                    Some("4.4.7"),
                )
            })
            .collect();
        assert_eq!(
            reasons(&decide(&with_4xx, &HashMap::new(), &rules())),
            vec![("busy@x", "soft-bounces")]
        );
    }

    #[test]
    fn csv_and_json_agree() {
        let at = datetime!(2026-11-20 10:00 UTC);
        let found = decide(
            &[bounce("a,b@x", at, "Permanent", "General", Some("5.1.1"))],
            &HashMap::new(),
            &rules(),
        );
        let csv = to_csv(&found);
        assert_eq!(csv.lines().nth(1), Some("\"a,b@x\",7,permanent-bounce,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z,1,smtp; 5.1.1,"));
        let json: serde_json::Value = serde_json::from_str(&to_json(&found)).unwrap();
        assert_eq!(json[0]["email"], "a,b@x");
        assert_eq!(json[0]["count"], 1);
    }
}

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
    },
    Unsubscribe,
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
    pub soft_window: Duration,
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
}

/// Why a signal suppresses, if it does; soft bounces are decided together afterwards.
enum Kind {
    Now(&'static str),
    Soft,
    Never,
}

fn classify(signal: &Signal, rules: &Rules) -> Kind {
    match signal {
        Signal::Complaint { sub_type } if sub_type == "OnAccountSuppressionList" => {
            ses_suppressed(rules)
        }
        Signal::Complaint { .. } => Kind::Now("complaint"),
        Signal::Unsubscribe => Kind::Now("unsubscribed"),
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
                "Permanent" if sub_type == "OnAccountSuppressionList" => ses_suppressed(rules),
                "Permanent" => Kind::Now("permanent-bounce"),
                "Transient" if class == Some('5') => Kind::Now("transient-bounce-5xx"),
                // An auto-reply (out of office) is Transient/General without a 4.x or 5.x status.
                "Transient" if sub_type == "General" && class != Some('4') => Kind::Never,
                "Transient" => Kind::Soft,
                _ => Kind::Never,
            }
        }
    }
}

/// An address SES itself suppresses (its account-level list): listed only on request, as
/// `ses-suppressed`, since the sending app need not act on it.
fn ses_suppressed(rules: &Rules) -> Kind {
    if rules.include_ses_suppressed {
        Kind::Now("ses-suppressed")
    } else {
        Kind::Never
    }
}

fn diagnostic(signal: &Signal) -> Option<String> {
    match signal {
        Signal::Bounce { diagnostic, .. } => diagnostic.clone(),
        _ => None,
    }
}

/// Applies the rules. `last_delivery` is the latest delivery per address. Sorted by email, reason.
pub fn decide(
    evidence: &[Evidence],
    last_delivery: &HashMap<String, OffsetDateTime>,
    rules: &Rules,
) -> Vec<Suppression> {
    let mut found: BTreeMap<(String, &'static str), Suppression> = BTreeMap::new();
    let mut add = |e: &Evidence, reason: &'static str| {
        let entry = found
            .entry((e.email.clone(), reason))
            .or_insert_with(|| Suppression {
                email: e.email.clone(),
                user_id: None,
                reason,
                first_at: e.at,
                last_at: e.at,
                count: 0,
                last_diagnostic: None,
            });
        entry.count += 1;
        entry.first_at = entry.first_at.min(e.at);
        if e.at >= entry.last_at {
            entry.last_at = e.at;
            if let Some(d) = diagnostic(&e.signal) {
                entry.last_diagnostic = Some(d);
            }
        }
        if e.user_id.is_some() {
            entry.user_id = e.user_id;
        }
    };
    let mut soft: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    let window_start = rules.now - rules.soft_window;
    for e in evidence {
        match classify(&e.signal, rules) {
            Kind::Now(reason) => add(e, reason),
            Kind::Soft if e.at >= window_start && e.at <= rules.now => {
                soft.entry(&e.email).or_default().push(e)
            }
            Kind::Soft | Kind::Never => {}
        }
    }
    for (email, bounces) in soft {
        let latest = bounces.iter().map(|e| e.at).max();
        let delivered_since = match (latest, last_delivery.get(email)) {
            (Some(latest), Some(delivery)) => *delivery > latest,
            _ => false,
        };
        if bounces.len() as u32 >= rules.soft_limit.max(1) && !delivered_since {
            let mut ordered = bounces.clone();
            ordered.sort_by_key(|e| e.at);
            for e in ordered {
                add(e, "soft-bounces");
            }
        }
    }
    found.into_values().collect()
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
            })
        })
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
            now: NOW,
        }
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
        assert_eq!(csv.lines().nth(1), Some("\"a,b@x\",7,permanent-bounce,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z,1,smtp; 5.1.1"));
        let json: serde_json::Value = serde_json::from_str(&to_json(&found)).unwrap();
        assert_eq!(json[0]["email"], "a,b@x");
        assert_eq!(json[0]["count"], 1);
    }
}

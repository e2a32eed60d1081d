//! The suppression rules: what a detail row says about an address (`Signal`), the ledger's
//! order-free entries (`LedgerEntry`, by `LedgerKind`), and which addresses the sending app
//! should stop mailing and why (`decide_entries`, `sunset`: a `Suppression` by `Reason`).
//!
//! Rules: a bounce whose reply says the address does not exist (`domain::bounce`, class
//! invalid-address, whatever SES's bounceType) or a complaint suppresses at once; a full or
//! disabled mailbox, or a reply that says nothing (unclassified), counts as a soft bounce, and
//! `soft_limit` of them within `soft_window` with no delivery to the address after the latest
//! suppress; a bounce about the sender (reputation, policy, content, rate limit) or the network
//! never suppresses the address; OnAccountSuppressionList bounces, which SES already
//! suppresses, only when asked; auto-replies (Transient/General without a 4.x/5.x status) never
//! count; an unsubscribe from everything (`unsubscribeAll: true`) suppresses.
//! Pure: `store::evidence` reads the signals from the detail rows, `store::ledger` keeps the
//! entries, `reports::suppressions` renders the decisions.

use std::collections::{BTreeMap, HashMap};

use std::fmt;

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::domain::accounting::{Fate, SummaryDelta};
use crate::domain::bounce::{classify, recipient_entry, BounceClass, Reply};
use crate::domain::event_kind::EventKind;
use crate::domain::ses::SesEvent;
use crate::domain::text::truncate;

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

impl Signal {
    /// A bounce's class, from the recipient's reply (`domain::bounce`).
    pub fn bounce_class(&self) -> Option<BounceClass> {
        match self {
            Signal::Bounce {
                sub_type,
                status,
                diagnostic,
                ..
            } => Some(classify(Reply {
                sub_type: Some(sub_type.as_str()),
                status: status.as_deref(),
                diagnostic: diagnostic.as_deref(),
            })),
            _ => None,
        }
    }
}

/// Whether events of this kind can be evidence (for callers that filter before parsing).
pub fn is_evidence(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Bounce | EventKind::Complaint | EventKind::Subscription
    )
}

/// What an event's own object (`other_info`) says about `recipient`, if it bears on suppression:
/// a bounce (with that recipient's status and diagnostic), a complaint, an unsubscribe from all.
pub fn signal_of(kind: EventKind, info: &serde_json::Value, recipient: &str) -> Option<Signal> {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    match kind {
        EventKind::Complaint => Some(Signal::Complaint {
            sub_type: text(info.get("complaintSubType")).unwrap_or_default(),
            feedback_type: text(info.get("complaintFeedbackType")).unwrap_or_default(),
        }),
        EventKind::Subscription => (info.pointer("/newTopicPreferences/unsubscribeAll")
            == Some(&json!(true)))
        .then_some(Signal::Unsubscribe),
        EventKind::Bounce => {
            let entry = recipient_entry(info, "bouncedRecipients", recipient);
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

/// What a batch's Deliveries tell the ledger about one address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delivered {
    /// The latest delivery time among the address's summary rows the batch touched, as the
    /// upserts left them.
    pub latest: OffsetDateTime,
    /// Whether the batch moved one of those rows' delivery time back (a second route's earlier
    /// Delivery of the same mail): the row may have held the lift.
    pub moved_back: bool,
}

/// Each delivered address of a batch: the latest delivery time among its rows the batch
/// touched (as the upsert leaves it: the earlier of the stored one, `stored(delta)`, and the
/// batch's), and whether the batch moved one of them back (an earlier Delivery of the same mail).
pub fn deliveries_of(
    deltas: &[SummaryDelta],
    stored: impl Fn(&SummaryDelta) -> Option<OffsetDateTime>,
) -> BTreeMap<&str, Delivered> {
    let mut delivered: BTreeMap<&str, Delivered> = BTreeMap::new();
    for delta in deltas {
        let Some(batch_at) = delta.first(EventKind::Delivery) else {
            continue;
        };
        let stored = stored(delta);
        let at = stored.map_or(batch_at, |stored| batch_at.min(stored));
        let moved_back = stored.is_some_and(|stored| stored > batch_at);
        let entry = delivered
            .entry(delta.recipient.as_str())
            .or_insert(Delivered {
                latest: at,
                moved_back,
            });
        entry.latest = entry.latest.max(at);
        entry.moved_back |= moved_back;
    }
    delivered
}

/// The suppression evidence of a batch's applied events. A bounce or complaint replacing the
/// same one stored by another route adds nothing: it is counted already.
pub fn evidence_of_batch(events: &[&SesEvent], fates: &[Fate]) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    for (event, fate) in events.iter().zip(fates) {
        let Fate::Apply(claims) = fate else { continue };
        if !is_evidence(event.kind) {
            continue;
        }
        let info: serde_json::Value = serde_json::from_str(&event.other_info).unwrap_or_default();
        for claim in claims.iter().filter(|c| c.supersedes.is_none()) {
            let recipient = event.recipients[claim.recipient].as_str();
            if let Some(signal) = signal_of(event.kind, &info, recipient) {
                evidence.push(Evidence {
                    email: recipient.to_string(),
                    user_id: None,
                    at: event.occurred_at,
                    signal,
                });
            }
        }
    }
    evidence
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

/// Transient bounces that suppress an address, unless asked otherwise (`--soft-limit`).
pub const SOFT_LIMIT: u32 = 3;
/// How long a soft-bounce suppression lasts after its last bounce unless renewed, in days
/// (Postal's `suppression_list_removal_delay`); the ledger's `expires_at` uses it too.
pub const SOFT_EXPIRE_DAYS: u32 = 30;
/// The deliveries the sunset rule needs when it is asked for (as MailPoet).
pub const SUNSET_MIN_DELIVERIES: u32 = 3;

impl Rules {
    /// The default rules at `now`: what `suppressions` applies without options, and what the
    /// HTML report counts.
    pub fn at(now: OffsetDateTime) -> Rules {
        Rules {
            include_ses_suppressed: false,
            soft_limit: SOFT_LIMIT,
            soft_window: Duration::days(i64::from(SOFT_EXPIRE_DAYS)),
            sunset: None,
            now,
        }
    }
}

impl Default for Rules {
    fn default() -> Rules {
        Rules::at(OffsetDateTime::now_utc())
    }
}

/// Why the sending app should stop mailing an address (`suppressions`' `reason` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    PermanentBounce,
    /// `soft_limit` soft bounces within `soft_window` (the ledger kind is `SoftBounce`).
    SoftBounces,
    Complaint,
    Unsubscribed,
    /// SES did not send: its account-level list already holds the address.
    SesSuppressed,
    Sunset,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PermanentBounce => "permanent-bounce",
            Reason::SoftBounces => "soft-bounces",
            Reason::Complaint => "complaint",
            Reason::Unsubscribed => "unsubscribed",
            Reason::SesSuppressed => "ses-suppressed",
            Reason::Sunset => "sunset",
        }
    }

    /// SES's reason for one of ours: its list knows only bounces and complaints; an
    /// unsubscribe or a sunset is the sending app's business, not SES's.
    pub fn ses_reason(self) -> Option<&'static str> {
        match self {
            Reason::PermanentBounce | Reason::SoftBounces => Some("BOUNCE"),
            Reason::Complaint => Some("COMPLAINT"),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ledger's kinds of evidence (`aws_report_suppressions.kind`), before any rule: what a
/// signal is, not what the sending app should do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerKind {
    /// A bounce that says the address does not exist (class invalid-address), whatever SES's
    /// bounceType.
    PermanentBounce,
    /// One transient bounce (`Reason::SoftBounces` is the rule over several).
    SoftBounce,
    Complaint,
    Unsubscribed,
    /// A complaint report with feedback type not-spam: it lifts an earlier complaint.
    NotSpam,
    SesSuppressedBounce,
    SesSuppressedComplaint,
}

impl LedgerKind {
    pub const ALL: [LedgerKind; 7] = [
        LedgerKind::PermanentBounce,
        LedgerKind::SoftBounce,
        LedgerKind::Complaint,
        LedgerKind::Unsubscribed,
        LedgerKind::NotSpam,
        LedgerKind::SesSuppressedBounce,
        LedgerKind::SesSuppressedComplaint,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::PermanentBounce => "permanent-bounce",
            LedgerKind::SoftBounce => "soft-bounce",
            LedgerKind::Complaint => "complaint",
            LedgerKind::Unsubscribed => "unsubscribed",
            LedgerKind::NotSpam => "not-spam",
            LedgerKind::SesSuppressedBounce => "ses-suppressed-bounce",
            LedgerKind::SesSuppressedComplaint => "ses-suppressed-complaint",
        }
    }

    pub fn parse(text: &str) -> Option<LedgerKind> {
        LedgerKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suppression {
    pub email: String,
    pub user_id: Option<u64>,
    pub reason: Reason,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    pub count: u64,
    pub last_diagnostic: Option<String>,
    /// A bounce suppression's class: its latest evidence's (`domain::bounce`).
    pub bounce_class: Option<BounceClass>,
    /// Soft-bounce suppressions lapse then unless renewed.
    pub expires_at: Option<OffsetDateTime>,
}

/// The ledger kind of a signal, if it is evidence at all (an auto-reply is not).
pub fn ledger_kind(signal: &Signal) -> Option<LedgerKind> {
    match signal {
        Signal::Complaint { feedback_type, .. } if feedback_type == "not-spam" => {
            Some(LedgerKind::NotSpam)
        }
        Signal::Complaint { sub_type, .. } if sub_type == "OnAccountSuppressionList" => {
            Some(LedgerKind::SesSuppressedComplaint)
        }
        Signal::Complaint { .. } => Some(LedgerKind::Complaint),
        Signal::Unsubscribe => Some(LedgerKind::Unsubscribed),
        Signal::Bounce {
            bounce_type,
            sub_type,
            status,
            ..
        } => {
            if bounce_type == "Permanent" && sub_type == "OnAccountSuppressionList" {
                return Some(LedgerKind::SesSuppressedBounce);
            }
            let status_class = status
                .as_deref()
                .map(str::trim)
                .and_then(|s| s.chars().next());
            // An auto-reply (out of office) is Transient/General without a 4.x or 5.x status.
            if bounce_type == "Transient"
                && sub_type == "General"
                && !matches!(status_class, Some('4' | '5'))
            {
                return None;
            }
            // The receiver's reply decides, whatever SES's bounceType says (docs/suppressions.md,
            // "Bounce classes"): a dead address for good; a full or disabled mailbox, or a reply
            // that says nothing, by the soft rules; the sender's standing, policy, content,
            // rate or the network never suppress the address.
            match signal.bounce_class()? {
                BounceClass::InvalidAddress => Some(LedgerKind::PermanentBounce),
                BounceClass::MailboxFull
                | BounceClass::MailboxDisabled
                | BounceClass::Unclassified => Some(LedgerKind::SoftBounce),
                BounceClass::Reputation
                | BounceClass::Policy
                | BounceClass::Content
                | BounceClass::RateLimit
                | BounceClass::Technical => None,
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
    pub kind: LedgerKind,
    pub user_id: Option<u64>,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    pub count: u64,
    pub last_diagnostic: Option<String>,
    pub last_diagnostic_at: Option<OffsetDateTime>,
    /// The latest `RECENT_KEPT` instants, newest first.
    pub recent: Vec<OffsetDateTime>,
    /// A bounce entry's class: the latest evidence's (the larger class on a tie, so that the
    /// merge is order-free).
    pub bounce_class: Option<BounceClass>,
}

impl LedgerEntry {
    pub fn of(e: &Evidence) -> Option<LedgerEntry> {
        let kind = ledger_kind(&e.signal)?;
        let diagnostic =
            diagnostic(&e.signal).map(|d| truncate(&d, DIAGNOSTIC_WIDTH).0.into_owned());
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
            // The class of the kinds the reply decides (SES's own suppressions keep none).
            bounce_class: matches!(kind, LedgerKind::PermanentBounce | LedgerKind::SoftBounce)
                .then(|| e.signal.bounce_class())
                .flatten(),
        })
    }

    /// The order-free merge of two entries of one (address, kind).
    pub fn merge(&mut self, other: LedgerEntry) {
        self.user_id = self.user_id.max(other.user_id);
        self.first_at = self.first_at.min(other.first_at);
        (self.last_at, self.bounce_class) =
            (self.last_at, self.bounce_class).max((other.last_at, other.bounce_class));
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
    let mut entries: BTreeMap<(String, LedgerKind), LedgerEntry> = BTreeMap::new();
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
    let mut found: BTreeMap<(String, Reason), Suppression> = BTreeMap::new();
    let mut not_spam: HashMap<&str, OffsetDateTime> = HashMap::new();
    for e in entries {
        if e.kind == LedgerKind::NotSpam {
            not_spam.insert(e.email.as_str(), e.last_at);
        } else if let Some((reason, last_at)) = reason_of(e, last_delivery, rules) {
            put(&mut found, e, reason, last_at);
        }
    }
    // A not-spam report after the last complaint lifts it.
    found.retain(|(email, reason), s| {
        !(*reason == Reason::Complaint
            && not_spam
                .get(email.as_str())
                .is_some_and(|at| *at > s.last_at))
    });
    // A soft-bounce suppression lapses `soft_window` after its last bounce unless renewed.
    for ((_, reason), s) in found.iter_mut() {
        if *reason == Reason::SoftBounces {
            s.expires_at = Some(s.last_at + rules.soft_window);
        }
    }
    found.into_values().collect()
}

/// The reason one entry suppresses its address for, with the suppression's last time, if any.
fn reason_of(
    e: &LedgerEntry,
    last_delivery: &HashMap<String, OffsetDateTime>,
    rules: &Rules,
) -> Option<(Reason, OffsetDateTime)> {
    let reason = match e.kind {
        LedgerKind::PermanentBounce => Reason::PermanentBounce,
        LedgerKind::Complaint => Reason::Complaint,
        LedgerKind::Unsubscribed => Reason::Unsubscribed,
        LedgerKind::SesSuppressedBounce | LedgerKind::SesSuppressedComplaint
            if rules.include_ses_suppressed =>
        {
            Reason::SesSuppressed
        }
        LedgerKind::SoftBounce => return soft_bounces(e, last_delivery, rules),
        _ => return None,
    };
    Some((reason, e.last_at))
}

/// The soft-bounce rule: `soft_limit` bounces within the window and no delivery after the last.
/// The window decides (the ledger keeps the RECENT_KEPT latest instants, enough for any
/// --soft-limit it accepts); the row's count and first time are the address's whole
/// soft-bounce evidence, exact as for every other reason.
fn soft_bounces(
    e: &LedgerEntry,
    last_delivery: &HashMap<String, OffsetDateTime>,
    rules: &Rules,
) -> Option<(Reason, OffsetDateTime)> {
    let window_start = rules.now - rules.soft_window;
    let in_window: Vec<OffsetDateTime> = e
        .recent
        .iter()
        .copied()
        .filter(|at| *at >= window_start && *at <= rules.now)
        .collect();
    let last = *in_window.iter().max()?;
    let delivered_since = last_delivery.get(&e.email).is_some_and(|d| *d > last);
    (in_window.len() as u32 >= rules.soft_limit.max(1) && !delivered_since)
        .then_some((Reason::SoftBounces, last))
}

/// Adds an entry's evidence to the suppression of its address for `reason`.
fn put(
    found: &mut BTreeMap<(String, Reason), Suppression>,
    e: &LedgerEntry,
    reason: Reason,
    last_at: OffsetDateTime,
) {
    let row = found
        .entry((e.email.clone(), reason))
        .or_insert_with(|| Suppression {
            email: e.email.clone(),
            user_id: None,
            reason,
            first_at: e.first_at,
            last_at,
            count: 0,
            last_diagnostic: None,
            bounce_class: None,
            expires_at: None,
        });
    row.first_at = row.first_at.min(e.first_at);
    if last_at >= row.last_at {
        row.last_at = last_at;
        if e.last_diagnostic.is_some() {
            row.last_diagnostic = e.last_diagnostic.clone();
        }
        row.bounce_class = e.bounce_class.or(row.bounce_class);
    }
    row.count += e.count;
    row.user_id = row.user_id.max(e.user_id);
}

/// One address's deliveries in the sunset window, and whether a person opened or clicked any.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryHistory {
    pub email: String,
    pub user_id: Option<u64>,
    pub deliveries: u64,
    pub first_delivery: OffsetDateTime,
    pub last_delivery: OffsetDateTime,
    pub engaged: bool,
}

/// The sunset rule: at least `deliveries` deliveries in the window and no human open or click
/// (`domain::engagement`: machine opens do not keep an address alive). Reason `sunset`.
pub fn sunset(rows: &[DeliveryHistory], rules: &Rules) -> Vec<Suppression> {
    let Some((_, min_deliveries)) = rules.sunset else {
        return Vec::new();
    };
    rows.iter()
        .filter(|r| !r.engaged && r.deliveries >= u64::from(min_deliveries))
        .map(|r| Suppression {
            email: r.email.clone(),
            user_id: r.user_id,
            reason: Reason::Sunset,
            first_at: r.first_delivery,
            last_at: r.last_delivery,
            count: r.deliveries,
            last_diagnostic: None,
            bounce_class: None,
            expires_at: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-28 07:00 UTC);

    fn rules() -> Rules {
        Rules::at(NOW)
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
    fn signals_are_read_from_the_event_for_the_recipient() {
        let info = json!({"bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "A@x", "status": "5.1.1", "diagnosticCode": "smtp; 550"},
                                  {"emailAddress": "b@x", "status": "5.2.2"}]});
        let Some(Signal::Bounce {
            status, diagnostic, ..
        }) = signal_of(EventKind::Bounce, &info, "a@x")
        else {
            panic!("a bounce");
        };
        assert_eq!(
            (status.as_deref(), diagnostic.as_deref()),
            (Some("5.1.1"), Some("smtp; 550"))
        );
        assert_eq!(signal_of(EventKind::Open, &info, "a@x"), None);
        let all = json!({"newTopicPreferences": {"unsubscribeAll": true}});
        assert_eq!(
            signal_of(EventKind::Subscription, &all, "a@x"),
            Some(Signal::Unsubscribe)
        );
        let some = json!({"newTopicPreferences": {"unsubscribeAll": false}});
        assert_eq!(signal_of(EventKind::Subscription, &some, "a@x"), None);
    }

    #[test]
    fn every_ledger_kind_comes_from_a_signal() {
        let bounce = |t: &str, s: &str, status: Option<&str>| Signal::Bounce {
            bounce_type: t.into(),
            sub_type: s.into(),
            status: status.map(String::from),
            diagnostic: None,
        };
        let complaint = |sub: &str, fb: &str| Signal::Complaint {
            sub_type: sub.into(),
            feedback_type: fb.into(),
        };
        let kinds: Vec<LedgerKind> = [
            bounce("Permanent", "General", Some("5.1.1")),
            bounce("Transient", "MailboxFull", Some("4.2.2")),
            complaint("", "abuse"),
            Signal::Unsubscribe,
            complaint("", "not-spam"),
            bounce("Permanent", "OnAccountSuppressionList", None),
            complaint("OnAccountSuppressionList", "abuse"),
        ]
        .iter()
        .filter_map(ledger_kind)
        .collect();
        assert_eq!(kinds, LedgerKind::ALL.to_vec());
        assert_eq!(ledger_kind(&bounce("Transient", "General", None)), None);
        // A transient 5.4.4 (no route to the domain) is a dead address.
        let no_domain = bounce("Transient", "General", Some("5.4.4"));
        assert_eq!(ledger_kind(&no_domain), Some(LedgerKind::PermanentBounce));
    }

    #[test]
    fn kinds_and_reasons_keep_their_stored_spellings() {
        for kind in LedgerKind::ALL {
            assert_eq!(LedgerKind::parse(kind.as_str()), Some(kind));
        }
        // The kind of one soft bounce and the reason of several are not to be confused.
        assert_eq!(LedgerKind::SoftBounce.as_str(), "soft-bounce");
        assert_eq!(Reason::SoftBounces.as_str(), "soft-bounces");
        assert_eq!(Reason::SoftBounces.ses_reason(), Some("BOUNCE"));
        assert_eq!(Reason::Sunset.ses_reason(), None);
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
        let row = |email: &str, deliveries: u64, engaged: bool| DeliveryHistory {
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
        found
            .iter()
            .map(|s| (s.email.as_str(), s.reason.as_str()))
            .collect()
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
                ("invalid-domain@x", "permanent-bounce")
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
                    Some("4.2.2"),
                )
            })
            .collect();
        assert_eq!(
            reasons(&decide(&with_4xx, &HashMap::new(), &rules())),
            vec![("busy@x", "soft-bounces")]
        );
    }

    #[test]
    fn the_reply_decides_not_the_bounce_type() {
        let signal = |t: &str, status: &str, diagnostic: &str| Signal::Bounce {
            bounce_type: t.into(),
            sub_type: "General".into(),
            status: Some(status.into()),
            diagnostic: Some(diagnostic.into()),
        };
        // A Transient "user unknown" suppresses for good; a Permanent block does not suppress.
        let unknown = signal(
            "Transient",
            "4.1.1",
            "smtp; 450 4.1.1 <a@x>: Recipient address rejected: User unknown",
        );
        assert_eq!(ledger_kind(&unknown), Some(LedgerKind::PermanentBounce));
        for about_the_sender in [
            "smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            "smtp; 550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
            "smtp; 550 5.7.26 This mail has been blocked because the sender is unauthenticated.",
            "smtp; 552 5.3.4 Your message exceeded Google's message size limits.",
            "smtp; 421 4.7.0 Too many connections",
            "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.",
        ] {
            assert_eq!(ledger_kind(&signal("Permanent", "5.7.1", about_the_sender)), None, "{about_the_sender}");
        }
        // A full or disabled mailbox, or a reply that says nothing: the soft rules.
        for soft in [
            "smtp; 552 5.2.2 Mailbox full",
            "smtp; 550 5.2.1 The email account that you tried to reach is disabled",
            "smtp; 550 rejected",
        ] {
            assert_eq!(
                ledger_kind(&signal("Permanent", "5.0.0", soft)),
                Some(LedgerKind::SoftBounce),
                "{soft}"
            );
        }
    }
}

//! Per-recipient accounting: which (notification, recipient) pairs are new, and what each
//! summary row gains from them.
//!
//! The report tables must end up the same whatever order notifications arrive in and however
//! often they are re-read. Two rules give that: a pair is applied at most once (by SNS MessageId,
//! and for bounces and complaints by `feedbackId`), and every summary column merges with an
//! order-free rule (earliest time, strongest bounce type, strongest user source, sums of distinct
//! notifications). `SummaryDelta::merge` is that rule in Rust; the SQL upsert in `store` states
//! the same rule for rows already in the table. Pure code, unit-tested.

use std::collections::{BTreeMap, HashMap, HashSet};

use time::OffsetDateTime;

use crate::domain::event_kind::EventKind;
use crate::domain::provider;
use crate::domain::ses::{BounceType, SesEvent};
use crate::domain::tags;
use crate::domain::users::UserLink;

/// Pairs and feedback ids already in `aws_report_details`.
#[derive(Default, Debug)]
pub struct Applied {
    /// (notification id, recipient)
    pub pairs: HashSet<(String, String)>,
    /// (feedback id, recipient) -> the notification id whose row holds it
    pub feedback: HashMap<(String, String), String>,
}

/// One recipient an event is applied to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Index into `event.recipients`.
    pub recipient: usize,
    /// The notification id of a detail row this one replaces: the same bounce or complaint
    /// (same `feedbackId`) stored earlier under a larger notification id.
    pub supersedes: Option<String>,
}

/// What a batch does with one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Apply(Vec<Claim>),
    /// Everything it says is already applied.
    Duplicate,
}

impl Fate {
    pub fn recipients<'a>(&'a self, event: &'a SesEvent) -> impl Iterator<Item = &'a str> + 'a {
        let claims: &[Claim] = match self {
            Fate::Apply(claims) => claims,
            Fate::Duplicate => &[],
        };
        claims
            .iter()
            .map(move |c| event.recipients[c.recipient].as_str())
    }
}

/// Decides each event's fate against what is applied and what the other events in the batch
/// claim. A (notification, recipient) pair is applied once. A bounce or complaint reaching the
/// store by several routes (same `feedbackId`, several notification ids) is applied once, under
/// the smallest notification id, so the rows do not depend on which route arrived first.
pub fn plan(events: &[&SesEvent], applied: &Applied) -> Vec<Fate> {
    // The smallest notification id per (feedback id, recipient) among the batch.
    let mut smallest: HashMap<(&str, &str), &str> = HashMap::new();
    for event in events {
        let Some(feedback) = event.feedback_id.as_deref() else {
            continue;
        };
        for recipient in &event.recipients {
            let id = event.notification_id.as_str();
            smallest
                .entry((feedback, recipient.as_str()))
                .and_modify(|s| {
                    if id < *s {
                        *s = id
                    }
                })
                .or_insert(id);
        }
    }
    let mut claimed: HashSet<(&str, &str)> = HashSet::new();
    events
        .iter()
        .map(|event| {
            let id = event.notification_id.as_str();
            let mut claims = Vec::new();
            for (i, recipient) in event.recipients.iter().enumerate() {
                if claimed.contains(&(id, recipient.as_str()))
                    || applied.pairs.contains(&(id.to_string(), recipient.clone()))
                {
                    continue;
                }
                let mut supersedes = None;
                if let Some(feedback) = event.feedback_id.as_deref() {
                    if smallest.get(&(feedback, recipient.as_str())) != Some(&id) {
                        continue;
                    }
                    match applied
                        .feedback
                        .get(&(feedback.to_string(), recipient.clone()))
                    {
                        Some(existing) if existing.as_str() <= id => continue,
                        Some(existing) => supersedes = Some(existing.clone()),
                        None => {}
                    }
                }
                claimed.insert((id, recipient.as_str()));
                claims.push(Claim {
                    recipient: i,
                    supersedes,
                });
            }
            if claims.is_empty() {
                Fate::Duplicate
            } else {
                Fate::Apply(claims)
            }
        })
        .collect()
}

/// What one batch adds to one summary row, keyed by (message id, recipient).
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryDelta {
    pub message_id: String,
    pub recipient: String,
    pub report_type: i32,
    pub user: UserLink,
    pub source: Option<String>,
    pub subject: Option<String>,
    /// Earliest time per event type, indexed like `EventKind::ALL`.
    pub first_at: [Option<OffsetDateTime>; 10],
    pub open_count: u32,
    pub click_count: u32,
    pub bounce_type: Option<BounceType>,
    /// `provider::of_recipient`, merged with `provider::merge`.
    pub mailbox_provider: &'static str,
    pub configuration_set: Option<String>,
    pub sending_ip: Option<String>,
    /// `mail.tags` as sorted JSON.
    pub tags: Option<String>,
}

fn kind_index(kind: EventKind) -> usize {
    EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl SummaryDelta {
    /// `evidence`: the provider the event's Delivery reply names (`delivery_evidence`).
    fn from_pair(
        event: &SesEvent,
        recipient: &str,
        user: UserLink,
        evidence: Option<&'static str>,
    ) -> SummaryDelta {
        let mut first_at = [None; 10];
        first_at[kind_index(event.kind)] = Some(event.occurred_at);
        SummaryDelta {
            message_id: event.message_id.clone(),
            recipient: recipient.to_string(),
            report_type: event.report_type,
            user,
            source: event.source.clone(),
            subject: event.subject.clone(),
            first_at,
            open_count: u32::from(event.kind == EventKind::Open),
            click_count: u32::from(event.kind == EventKind::Click),
            bounce_type: event.bounce_type,
            mailbox_provider: provider::of_recipient(recipient, evidence),
            configuration_set: event.tags.configuration_set.clone(),
            sending_ip: event.tags.sending_ip.clone(),
            tags: event.tags.json.clone(),
        }
    }

    /// The earliest time of `kind` among the pairs folded in.
    pub fn first(&self, kind: EventKind) -> Option<OffsetDateTime> {
        self.first_at[kind_index(kind)]
    }

    /// The order-free merge; `store`'s upsert states the same rule in SQL.
    pub fn merge(&mut self, other: SummaryDelta) {
        self.report_type = self.report_type.max(other.report_type);
        self.user = self.user.merge(other.user);
        if self.source.is_none() {
            self.source = other.source;
        }
        if self.subject.is_none() {
            self.subject = other.subject;
        }
        for (mine, theirs) in self.first_at.iter_mut().zip(other.first_at) {
            *mine = match (*mine, theirs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.open_count += other.open_count;
        self.click_count += other.click_count;
        self.bounce_type = self.bounce_type.max(other.bounce_type);
        self.mailbox_provider = provider::merge(self.mailbox_provider, other.mailbox_provider);
        self.configuration_set =
            tags::merge_greatest(self.configuration_set.take(), other.configuration_set);
        self.sending_ip = tags::merge_greatest(self.sending_ip.take(), other.sending_ip);
        self.tags = tags::merge_tags(self.tags.take(), other.tags);
    }
}

/// The provider a Delivery's SMTP reply names, when the reply speaks for each of its
/// recipients: one reply comes from one receiving server, so a delivery to several domains names
/// none of them. Read once per event.
fn delivery_evidence(event: &SesEvent) -> Option<&'static str> {
    if event.kind != EventKind::Delivery {
        return None;
    }
    fn domain(address: &str) -> Option<&str> {
        address.rsplit_once('@').map(|(_, d)| d)
    }
    let first = event.recipients.first().and_then(|r| domain(r));
    if !event.recipients.iter().all(|r| domain(r) == first) {
        return None;
    }
    provider::of_delivery(&event.other_info)
}

/// The recipients whose summary rows an event merges into: those it claims, and for a bounce or
/// complaint every recipient it names. The routes of one bounce or complaint (same `feedbackId`)
/// keep one detail row, but each route's share (the event-publishing one carries tags and the
/// outgoing IP, the classic one neither) goes into the summary row whichever arrives first or
/// replaces the other: the merge is order-free and a bounce or complaint adds no count, so
/// merging a route twice changes nothing.
pub fn summarized<'a>(
    event: &'a SesEvent,
    fate: &'a Fate,
) -> Box<dyn Iterator<Item = &'a str> + 'a> {
    if event.feedback_id.is_some() {
        Box::new(event.recipients.iter().map(String::as_str))
    } else {
        Box::new(fate.recipients(event))
    }
}

/// Whether a batch has anything to write: a pair to apply, or a route's share of a summary row.
pub fn writes_anything(events: &[&SesEvent], fates: &[Fate]) -> bool {
    events
        .iter()
        .zip(fates)
        .any(|(event, fate)| *fate != Fate::Duplicate || event.feedback_id.is_some())
}

/// Folds the pairs to apply into one delta per summary row, in key order (so that concurrent
/// writers would lock rows in the same order).
pub fn summarize(
    events: &[&SesEvent],
    fates: &[Fate],
    user_of: impl Fn(&SesEvent, &str) -> UserLink,
) -> Vec<SummaryDelta> {
    let mut rows: BTreeMap<(String, String), SummaryDelta> = BTreeMap::new();
    for (event, fate) in events.iter().zip(fates) {
        let evidence = delivery_evidence(event);
        for recipient in summarized(event, fate) {
            let delta =
                SummaryDelta::from_pair(event, recipient, user_of(event, recipient), evidence);
            match rows.entry((event.message_id.clone(), recipient.to_string())) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(delta);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(delta),
            }
        }
    }
    rows.into_values().collect()
}

/// A stored detail row that an applied claim replaces: the same bounce or complaint stored
/// earlier under a larger notification id (another route) gives way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replaced<'a> {
    /// The notification id of the stored row.
    pub notification_id: &'a str,
    pub message_id: &'a str,
    pub recipient: &'a str,
}

/// The stored detail rows a batch's claims replace.
pub fn replaced<'a>(events: &[&'a SesEvent], fates: &'a [Fate]) -> Vec<Replaced<'a>> {
    let mut out = Vec::new();
    for (event, fate) in events.iter().zip(fates) {
        let Fate::Apply(claims) = fate else { continue };
        for claim in claims {
            if let Some(old) = &claim.supersedes {
                out.push(Replaced {
                    notification_id: old,
                    message_id: &event.message_id,
                    recipient: &event.recipients[claim.recipient],
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ses::Dialect;
    use crate::domain::users::UserSource;
    use time::macros::datetime;

    fn event(id: &str, kind: EventKind, at: OffsetDateTime, recipients: &[&str]) -> SesEvent {
        SesEvent {
            notification_id: id.into(),
            published_at: Some(at),
            kind,
            dialect: Dialect::EventPublishing,
            message_id: "m1".into(),
            source: Some("s@x".into()),
            subject: None,
            first_destination: recipients[0].into(),
            header_user_id: None,
            report_type: 0,
            tags: Default::default(),
            occurred_at: at,
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            feedback_id: None,
            bounce_type: None,
            other_info: "{}".into(),
            warnings: vec![],
        }
    }

    #[test]
    fn applied_pairs_and_batch_repeats_are_duplicates() {
        let a = event(
            "n1",
            EventKind::Send,
            datetime!(2026-11-27 10:00 UTC),
            &["a@x", "b@x"],
        );
        let again = a.clone();
        let mut applied = Applied::default();
        applied.pairs.insert(("n1".into(), "b@x".into()));
        let fates = plan(&[&a, &again], &applied);
        assert_eq!(
            fates,
            vec![
                Fate::Apply(vec![Claim {
                    recipient: 0,
                    supersedes: None
                }]),
                Fate::Duplicate
            ]
        );
    }

    #[test]
    fn the_same_feedback_by_two_routes_is_kept_once_under_the_smaller_id() {
        let mut first = event(
            "n2",
            EventKind::Bounce,
            datetime!(2026-11-27 10:00 UTC),
            &["a@x"],
        );
        first.feedback_id = Some("fb".into());
        let mut second = first.clone();
        second.notification_id = "n1".into();
        let keep_n1 = |fates: Vec<Fate>, n1_at: usize| {
            assert_eq!(
                fates[n1_at],
                Fate::Apply(vec![Claim {
                    recipient: 0,
                    supersedes: None
                }])
            );
            assert_eq!(fates[1 - n1_at], Fate::Duplicate);
        };
        keep_n1(plan(&[&first, &second], &Applied::default()), 1);
        keep_n1(plan(&[&second, &first], &Applied::default()), 0);

        // n2 applied in an earlier run: n1 replaces it; once n1 is applied, n2 is a duplicate.
        let mut applied = Applied::default();
        applied
            .feedback
            .insert(("fb".into(), "a@x".into()), "n2".into());
        applied.pairs.insert(("n2".into(), "a@x".into()));
        let fates = plan(&[&second], &applied);
        assert_eq!(
            fates,
            vec![Fate::Apply(vec![Claim {
                recipient: 0,
                supersedes: Some("n2".into())
            }])]
        );
        assert_eq!(
            replaced(&[&second], &fates),
            vec![Replaced {
                notification_id: "n2",
                message_id: &second.message_id,
                recipient: "a@x"
            }]
        );
        assert!(replaced(
            &[&first, &second],
            &plan(&[&first, &second], &Applied::default())
        )
        .is_empty());
        let mut applied = Applied::default();
        applied
            .feedback
            .insert(("fb".into(), "a@x".into()), "n1".into());
        assert_eq!(plan(&[&first], &applied), vec![Fate::Duplicate]);
    }

    #[test]
    fn summaries_are_the_same_in_any_order() {
        let mut bounce_t = event(
            "n3",
            EventKind::Bounce,
            datetime!(2026-11-27 12:00 UTC),
            &["a@x"],
        );
        bounce_t.bounce_type = Some(BounceType::Transient);
        let mut bounce_p = event(
            "n4",
            EventKind::Bounce,
            datetime!(2026-11-27 13:00 UTC),
            &["a@x"],
        );
        bounce_p.bounce_type = Some(BounceType::Permanent);
        let mut send = event(
            "n0",
            EventKind::Send,
            datetime!(2026-11-27 09:00 UTC),
            &["a@x"],
        );
        send.report_type = 7;
        send.subject = Some("Hi".into());
        let events = [
            send,
            event(
                "n1",
                EventKind::Open,
                datetime!(2026-11-27 11:00 UTC),
                &["a@x"],
            ),
            event(
                "n2",
                EventKind::Open,
                datetime!(2026-11-27 10:00 UTC),
                &["a@x"],
            ),
            bounce_t,
            bounce_p,
        ];
        let user = |e: &SesEvent, _: &str| match e.kind {
            EventKind::Send => UserLink {
                user_id: Some(9),
                source: UserSource::Header,
            },
            _ => UserLink {
                user_id: Some(3),
                source: UserSource::Email,
            },
        };
        let forward: Vec<&SesEvent> = events.iter().collect();
        let backward: Vec<&SesEvent> = events.iter().rev().collect();
        let a = summarize(&forward, &plan(&forward, &Applied::default()), user);
        let b = summarize(&backward, &plan(&backward, &Applied::default()), user);
        assert_eq!(a, b);
        let row = &a[0];
        assert_eq!(
            row.first(EventKind::Open),
            Some(datetime!(2026-11-27 10:00 UTC))
        );
        assert_eq!(
            row.first(EventKind::Bounce),
            Some(datetime!(2026-11-27 12:00 UTC))
        );
        assert_eq!(row.open_count, 2);
        assert_eq!(row.bounce_type, Some(BounceType::Permanent));
        assert_eq!(
            row.user,
            UserLink {
                user_id: Some(9),
                source: UserSource::Header
            }
        );
        assert_eq!(row.report_type, 7);
        assert_eq!(row.subject.as_deref(), Some("Hi"));
    }

    #[test]
    fn user_links_prefer_stronger_source_then_smaller_id() {
        let header = UserLink {
            user_id: Some(50),
            source: UserSource::Header,
        };
        let email = UserLink {
            user_id: Some(2),
            source: UserSource::Email,
        };
        assert_eq!(email.merge(header), header);
        assert_eq!(header.merge(email), header);
        let other = UserLink {
            user_id: Some(1),
            source: UserSource::Email,
        };
        assert_eq!(email.merge(other), other);
        assert_eq!(UserLink::NONE.merge(email), email);
    }
}

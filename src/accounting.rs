//! Per-recipient accounting: which (notification, recipient) pairs are new, and what each
//! summary row gains from them.
//!
//! The report tables must end up the same whatever order notifications arrive in and however
//! often they are re-read. Two rules give that: a pair is applied at most once (by SNS MessageId,
//! and for bounces and complaints by `feedbackId`), and every summary column merges with an
//! order-free rule (earliest time, strongest bounce type, strongest user source, sums of distinct
//! notifications). `SummaryDelta::merge` is that rule in Rust; the SQL upsert in `store` states
//! the same rule for rows already in the table. Pure code, unit-tested.

use std::collections::{BTreeMap, HashSet};

use time::OffsetDateTime;

use crate::ses::{BounceType, EventKind, SesEvent};

/// Pairs and feedback ids already in `aws_report_details`.
#[derive(Default, Debug)]
pub struct Applied {
    /// (notification id, recipient)
    pub pairs: HashSet<(String, String)>,
    /// (feedback id, recipient)
    pub feedback: HashSet<(String, String)>,
}

/// What a batch does with one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    /// Apply to these recipients (indexes into `event.recipients`).
    Apply(Vec<usize>),
    /// Everything it says is already applied.
    Duplicate,
}

/// Decides each event's fate against what is applied and what earlier events in the batch claim.
pub fn plan(events: &[&SesEvent], applied: &Applied) -> Vec<Fate> {
    let mut claimed_pairs: HashSet<(&str, &str)> = HashSet::new();
    let mut claimed_feedback: HashSet<(&str, &str)> = HashSet::new();
    events
        .iter()
        .map(|event| {
            let mut fresh = Vec::new();
            for (i, recipient) in event.recipients.iter().enumerate() {
                let id = event.notification_id.as_str();
                let pair_seen = applied.pairs.contains(&(id.to_string(), recipient.clone()))
                    || claimed_pairs.contains(&(id, recipient.as_str()));
                let feedback_seen = event.feedback_id.as_deref().is_some_and(|f| {
                    applied
                        .feedback
                        .contains(&(f.to_string(), recipient.clone()))
                        || claimed_feedback.contains(&(f, recipient.as_str()))
                });
                if !pair_seen && !feedback_seen {
                    fresh.push(i);
                }
            }
            for &i in &fresh {
                claimed_pairs
                    .insert((event.notification_id.as_str(), event.recipients[i].as_str()));
                if let Some(f) = event.feedback_id.as_deref() {
                    claimed_feedback.insert((f, event.recipients[i].as_str()));
                }
            }
            if fresh.is_empty() {
                Fate::Duplicate
            } else {
                Fate::Apply(fresh)
            }
        })
        .collect()
}

/// How a recipient's user account was found; a stronger source wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserSource {
    Unresolved = 0,
    Email = 1,
    Header = 2,
}

/// The user account a recipient resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserLink {
    pub user_id: Option<u64>,
    pub source: UserSource,
}

impl UserLink {
    pub const NONE: UserLink = UserLink {
        user_id: None,
        source: UserSource::Unresolved,
    };

    /// Stronger source first; between equals, the smaller id (deterministic).
    fn merge(self, other: UserLink) -> UserLink {
        match other.source.cmp(&self.source) {
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Equal => match (self.user_id, other.user_id) {
                (Some(a), Some(b)) if b < a => other,
                (None, Some(_)) => other,
                _ => self,
            },
        }
    }
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
}

fn kind_index(kind: EventKind) -> usize {
    EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl SummaryDelta {
    fn from_pair(event: &SesEvent, recipient: &str, user: UserLink) -> SummaryDelta {
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
        }
    }

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
    }
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
        let Fate::Apply(indexes) = fate else { continue };
        for &i in indexes {
            let recipient = &event.recipients[i];
            let delta = SummaryDelta::from_pair(event, recipient, user_of(event, recipient));
            match rows.entry((event.message_id.clone(), recipient.clone())) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(delta);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(delta),
            }
        }
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ses::Dialect;
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
        assert_eq!(fates, vec![Fate::Apply(vec![0]), Fate::Duplicate]);
    }

    #[test]
    fn the_same_feedback_by_a_second_route_is_a_duplicate() {
        let mut first = event(
            "n1",
            EventKind::Bounce,
            datetime!(2026-11-27 10:00 UTC),
            &["a@x"],
        );
        first.feedback_id = Some("fb".into());
        let mut second = first.clone();
        second.notification_id = "n2".into();
        assert_eq!(
            plan(&[&first, &second], &Applied::default())[1],
            Fate::Duplicate
        );
        let mut applied = Applied::default();
        applied.feedback.insert(("fb".into(), "a@x".into()));
        assert_eq!(plan(&[&second], &applied), vec![Fate::Duplicate]);
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

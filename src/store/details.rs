//! Applying events: which pairs are already in `aws_report_details`, and one batch's writes,
//! inside the caller's transaction (`apply_batch`, a transaction script over `summaries`,
//! `classification`, `ledger` and `rollups`).

use std::collections::{BTreeSet, HashMap, HashSet};

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use time::OffsetDateTime;

use super::classification::Pair;
use super::summaries::{self, Upserted};
use super::{
    classification, key_digest, ledger, rollups, row_placeholders, select_in, statement_chunks,
    KeyDigests,
};
use crate::domain::accounting::{self, Applied, Fate, Replaced, SummaryDelta};
use crate::domain::bounce::{self, BounceClass};
use crate::domain::engagement::Automated;
use crate::domain::event_kind::EventKind;
use crate::domain::ses::SesEvent;
use crate::domain::suppression;
use crate::domain::timestamps;

/// Which of these notification ids have rows in `aws_report_details`, with the SES mail
/// `messageId` they were stored under (what `--partition` hashes).
pub fn notifications_applied(
    conn: &mut Conn,
    ids: &KeyDigests,
) -> Result<HashMap<String, String>, mysql::Error> {
    let found: Vec<(String, String)> = select_in(
        conn,
        "SELECT DISTINCT notification_message_id, message_id FROM aws_report_details WHERE notification_key IN ({keys})",
        ids.keys().map(<[u8]>::to_vec),
    )?;
    // The readable id decides: a digest shared by another id (never seen) matches nothing.
    Ok(found
        .into_iter()
        .filter(|(id, _)| ids.contains(id))
        .collect())
}

/// Which of these events' pairs and feedback ids are already in `aws_report_details`.
/// `known_absent` lists notification ids the caller has just found to have no rows: their pairs
/// need no second look.
pub fn applied_among(
    conn: &mut Conn,
    events: &[&SesEvent],
    known_absent: &KeyDigests,
) -> Result<Applied, mysql::Error> {
    let mut applied = Applied::default();
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e.notification_id.as_str())
        .filter(|id| !known_absent.contains(id))
        .collect();
    let rows: Vec<(String, String, Option<String>)> = select_in(
        conn,
        "SELECT notification_message_id, `to`, feedback_id FROM aws_report_details WHERE notification_key IN ({keys})",
        ids.iter().map(|id| key_digest(id)),
    )?;
    for (id, to, feedback) in rows {
        if !ids.contains(id.as_str()) {
            continue;
        }
        if let Some(f) = feedback {
            applied.feedback.insert((f, to.clone()), id.clone());
        }
        applied.pairs.insert((id, to));
    }
    let feedback_ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e.feedback_id.as_deref())
        .collect();
    let rows: Vec<(String, String, String)> = select_in(
        conn,
        "SELECT feedback_id, `to`, notification_message_id FROM aws_report_details WHERE feedback_key IN ({keys})",
        feedback_ids.iter().map(|f| key_digest(f)),
    )?;
    for (feedback, to, id) in rows {
        if !feedback_ids.contains(feedback.as_str()) {
            continue;
        }
        applied.feedback.insert((feedback, to), id);
    }
    Ok(applied)
}

/// Values per detail row in its insert.
const DETAIL_VALUES: usize = 17;

/// Why a batch could not be written.
#[derive(Debug)]
pub enum BatchError {
    /// MySQL refused a statement (or the connection broke).
    Sql(mysql::Error),
    /// A summary row the batch had just upserted was not there to link a detail row to.
    Vanished {
        message_id: String,
        recipient: String,
    },
}

impl From<mysql::Error> for BatchError {
    fn from(e: mysql::Error) -> BatchError {
        BatchError::Sql(e)
    }
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Sql(e) => e.fmt(f),
            BatchError::Vanished {
                message_id,
                recipient,
            } => write!(
                f,
                "the summary row of {message_id} / {recipient} vanished while its batch was written"
            ),
        }
    }
}

/// Writes one batch inside the caller's transaction (commit, or roll back and apply the batch
/// in halves): summary upserts, the detail rows other routes replace, the new detail rows with
/// their class, the suppression ledger, the dirty days.
pub fn apply_batch<Q: Queryable>(
    conn: &mut Q,
    events: &[&SesEvent],
    fates: &[Fate],
    deltas: &[SummaryDelta],
    pruned_before: Option<OffsetDateTime>,
    digests: &KeyDigests,
) -> Result<(), BatchError> {
    let summaries = summaries::upsert(conn, deltas)?;
    let pairs = pairs_of(events, fates, &summaries)?;
    let replaced = accounting::replaced(events, fates);
    remove_replaced(conn, &replaced, &summaries)?;
    let classes = classification::classify_pairs(conn, &pairs, pruned_before)?;
    insert_details(conn, &pairs, &classes, digests)?;
    let delivered = suppression::deliveries_of(deltas, |d| {
        summaries
            .delivered_before
            .get(&(d.message_id.clone(), d.recipient.clone()))
            .copied()
    });
    let evidence = suppression::evidence_of_batch(events, fates);
    ledger::merge(conn, suppression::aggregate(&evidence), &delivered)?;
    let replaced_addresses: BTreeSet<&str> = replaced.iter().map(|r| r.recipient).collect();
    ledger::rebase_replaced(conn, &replaced_addresses)?;
    // The days these events change: their rollups are stale until recomputed.
    rollups::mark_dirty(
        conn,
        events
            .iter()
            .zip(fates)
            .filter(|(_, fate)| matches!(fate, Fate::Apply(_)))
            .map(|(event, _)| event.occurred_at),
    )?;
    Ok(())
}

/// Each applied (event, recipient) with its summary row.
fn pairs_of<'a>(
    events: &[&'a SesEvent],
    fates: &'a [Fate],
    summaries: &Upserted,
) -> Result<Vec<Pair<'a>>, BatchError> {
    let mut pairs = Vec::new();
    for (event, fate) in events.iter().zip(fates) {
        for recipient in fate.recipients(event) {
            let report_id =
                summaries
                    .id(&event.message_id, recipient)
                    .ok_or_else(|| BatchError::Vanished {
                        message_id: event.message_id.clone(),
                        recipient: recipient.to_string(),
                    })?;
            pairs.push(Pair {
                event,
                recipient,
                report_id,
            });
        }
    }
    Ok(pairs)
}

/// Marks every day of the rows the batch regroups or whose detail rows another route replaces
/// (before those rows go, so their days are among those marked), then deletes the replaced rows.
fn remove_replaced<Q: Queryable>(
    conn: &mut Q,
    replaced: &[Replaced],
    summaries: &Upserted,
) -> Result<(), mysql::Error> {
    let mut stale = summaries.regrouped.clone();
    stale.extend(
        replaced
            .iter()
            .filter_map(|r| summaries.id(r.message_id, r.recipient)),
    );
    rollups::mark_days_of(conn, &stale)?;
    for r in replaced {
        conn.exec_drop(
            "DELETE FROM aws_report_details WHERE notification_key = ? AND recipient_key = ?
               AND notification_message_id = ? AND `to` = ?",
            (
                key_digest(r.notification_id),
                key_digest(r.recipient),
                r.notification_id,
                r.recipient,
            ),
        )?;
    }
    Ok(())
}

/// Inserts one detail row per pair, with its open or click class (`classes`, by pair).
fn insert_details<Q: Queryable>(
    conn: &mut Q,
    pairs: &[Pair],
    classes: &[Option<Automated>],
    digests: &KeyDigests,
) -> Result<(), mysql::Error> {
    for (chunk, classes) in statement_chunks(pairs).zip(statement_chunks(classes)) {
        let mut params = Vec::with_capacity(chunk.len() * DETAIL_VALUES);
        let mut keys = EventKeys::default();
        for (pair, class) in chunk.iter().zip(classes) {
            detail_params(pair, *class, keys.of(pair.event, digests), &mut params);
        }
        conn.exec_drop(
            format!(
                "INSERT INTO aws_report_details (notification_message_id, notification_key, recipient_key,
                   feedback_key, feedback_recipient_key, report_id, event_type, message_id, timestamp, `from`, `to`, subject, other_info,
                   feedback_id, automated, bounce_class, delay_type) VALUES {}",
                row_placeholders(chunk.len(), DETAIL_VALUES)
            ),
            params,
        )?;
    }
    Ok(())
}

/// The key digests of the event whose recipients are being written (they are adjacent in the
/// pairs): computed once per event, not once per recipient.
#[derive(Default)]
struct EventKeys<'a> {
    event: Option<&'a SesEvent>,
    notification: Vec<u8>,
    feedback: Option<Vec<u8>>,
    /// A bounce's or delay's object, parsed once for its recipients' classes.
    info: Option<serde_json::Value>,
}

impl<'a> EventKeys<'a> {
    fn of(&mut self, event: &'a SesEvent, digests: &KeyDigests) -> &Self {
        if !self.event.is_some_and(|e| std::ptr::eq(e, event)) {
            self.event = Some(event);
            self.notification = digests.digest(&event.notification_id);
            self.feedback = event.feedback_id.as_deref().map(key_digest);
            self.info = matches!(event.kind, EventKind::Bounce | EventKind::DeliveryDelay)
                .then(|| serde_json::from_str(&event.other_info).unwrap_or_default());
        }
        self
    }
}

fn detail_params<'a>(
    pair: &Pair<'a>,
    class: Option<Automated>,
    keys: &EventKeys<'a>,
    params: &mut Vec<Value>,
) {
    let (event, recipient) = (pair.event, pair.recipient);
    let recipient_key = key_digest(recipient);
    params.push(event.notification_id.as_str().into());
    params.push(keys.notification.clone().into());
    params.push(recipient_key.clone().into());
    // The recipient's key again, on rows with a feedback id only (migration 10).
    let feedback_recipient_key = keys.feedback.as_ref().map(|_| recipient_key);
    params.push(keys.feedback.clone().into());
    params.push(feedback_recipient_key.into());
    params.push(pair.report_id.into());
    params.push(event.kind.ses_name().into());
    params.push(event.message_id.as_str().into());
    params.push(timestamps::to_sql(event.occurred_at));
    params.push(event.source.as_deref().into());
    params.push(recipient.into());
    params.push(event.subject.as_deref().into());
    params.push(event.other_info.as_str().into());
    params.push(event.feedback_id.as_deref().into());
    params.push(class.map(Automated::name).into());
    let (reply_class, delay_type) = match &keys.info {
        Some(info) => bounce::of_event(event.kind, info, recipient),
        None => (None, None),
    };
    params.push(reply_class.map(BounceClass::as_str).into());
    params.push(delay_type.into());
}

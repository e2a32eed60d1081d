//! One batch at a time: read records, find duplicates, interpret, plan each recipient's fate,
//! resolve users, and apply in one transaction, bisecting a rejected batch so that exactly the
//! events MySQL refuses fail.

use std::collections::HashSet;
use std::time::Instant;

use mysql::TxOpts;
use time::OffsetDateTime;

use super::{Ingest, Pending, PROGRESS_EVERY};
use crate::domain::accounting::{self, Fate};
use crate::domain::erasure;
use crate::domain::ses::{self, Interpretation, SesEvent};
use crate::error::{Error, Result};
use crate::ops::progress::Progress;
use crate::redact;
use crate::source::{RecordSource, SourceError, SourceRecord};
use crate::store;
use crate::store::codes::{self, is_duplicate_key, is_retryable};
use crate::store::details::{self, BatchError};
use crate::store::failures::{self, Failure};
use crate::store::retention;
use crate::store::rollups;
use crate::store::KeyDigests;

/// New failures said whole in the log per run; the rest are summed up at the end.
pub(super) const NEW_FAILURES_LOGGED: usize = 10;

/// Room kept in a packet for the statement and the record's other values.
const PACKET_OVERHEAD: usize = 64 * 1024;

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_bytes(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

impl Ingest {
    pub(super) fn consume(
        &mut self,
        source: &mut dyn RecordSource,
        batch_size: usize,
        started: Instant,
    ) -> Result<()> {
        let mut last_progress = Instant::now();
        // At a terminal, a bar; otherwise (cron) the log line every PROGRESS_EVERY.
        let total = if Progress::wanted() {
            source.total()
        } else {
            None
        };
        let progress = Progress::new(total, "scanned");
        let mut source_failures = 0;
        // Why the last reopen failed: the message that says what to check when the run gives up.
        let mut reopen_error: Option<Error> = None;
        loop {
            self.check_stop()?;
            let mut batch = Vec::with_capacity(batch_size);
            while batch.len() < batch_size {
                match source.next_record() {
                    None => break,
                    Some(Ok(record)) => batch.push(record),
                    Some(Err(SourceError::Fatal(fatal))) => return Err(fatal),
                    Some(Err(SourceError::Transient(message))) => {
                        // Reopen after the last document read; what is in hand stays in hand.
                        source_failures += 1;
                        if source_failures > self.retries {
                            let detail = match reopen_error.take() {
                                Some(e) => format!("{message}; reopening it failed: {e}"),
                                None => message,
                            };
                            return Err(Error::Mongo { detail }
                                .context(format!("gave up after {} retries", self.retries)));
                        }
                        self.back_off(source_failures, &message)?;
                        reopen_error = match source.reopen() {
                            Ok(()) => None,
                            Err(e) => {
                                let e = e.into_error();
                                log::warn!("reopening the source failed: {e}");
                                Some(e)
                            }
                        };
                    }
                }
            }
            if batch.is_empty() {
                progress.finish();
                return Ok(());
            }
            self.retrying("applying a batch", |ingest| ingest.apply_records(&batch))?;
            source_failures = 0;
            progress.set(
                self.counts.scanned,
                format!(
                    "{} applied, {} duplicates, {} failed",
                    self.counts.applied, self.counts.duplicates, self.counts.failed
                ),
            );
            if !progress.active() && last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let seconds = started.elapsed().as_secs_f64().max(0.001);
                log::info!(
                    "progress: {} scanned, {} applied, {} duplicates, {} failed, {:.0} scanned/s",
                    self.counts.scanned,
                    self.counts.applied,
                    self.counts.duplicates,
                    self.counts.failed,
                    self.counts.scanned as f64 / seconds
                );
            }
        }
    }

    /// Applies one batch of records. The retention horizon is read afresh for each batch and
    /// checked again, under a shared lock, in the transaction that writes it: `prune` raises the
    /// horizon before it deletes, so it waits for a batch in flight, and a batch planned before
    /// the horizon moved is planned again rather than bring back events whose details are gone.
    fn apply_records(&mut self, records: &[SourceRecord]) -> Result<(), mysql::Error> {
        loop {
            let counts = self.counts;
            let other_partitions = self.other_partitions;
            self.pruned_before = retention::pruned_before(&mut self.conn)?;
            self.horizon_moved = false;
            self.apply_records_once(records)?;
            if !self.horizon_moved {
                return Ok(());
            }
            log::info!("the retention horizon moved while a batch was planned (`prune` ran): planning it again");
            self.counts = counts;
            self.other_partitions = other_partitions;
        }
    }

    /// One pass over a batch: sort the records (duplicates, events, skips, failures), plan the
    /// events against what is stored, apply them, tally.
    fn apply_records_once(&mut self, records: &[SourceRecord]) -> Result<(), mysql::Error> {
        let mut sorted = self.sort(records)?;
        let events: Vec<&SesEvent> = sorted.pending.iter().map(|p| &p.event).collect();
        let fates = self.plan(&events, &sorted.looked_up)?;
        self.digests = std::mem::take(&mut sorted.looked_up);
        let mut done: Vec<bool> = fates.iter().map(|f| *f == Fate::Duplicate).collect();
        if self.dry_run {
            done.iter_mut().for_each(|d| *d = true);
        } else if accounting::writes_anything(&events, &fates) {
            let mut rejected = Vec::new();
            self.apply_splitting(&events, &fates, 0, &mut done, &mut rejected)?;
            if self.horizon_moved {
                return Ok(());
            }
            for (i, error) in rejected {
                let record = &records[sorted.pending[i].record];
                let reason = format!("MySQL rejected it: {error}");
                let failure = self.failure(record, events[i].notification_id.clone(), reason);
                sorted.failures.push(failure);
            }
        }
        self.tally(&events, &fates, &done, &mut sorted.resolved);
        if !self.dry_run {
            let now = OffsetDateTime::now_utc();
            failures::record_failures(&mut self.conn, &sorted.failures, now)?;
            failures::mark_resolved(&mut self.conn, &sorted.resolved, now)?;
        }
        for id in &sorted.resolved {
            self.unresolved.remove(id);
        }
        Ok(())
    }

    /// Sorts a batch's records: duplicates known by their notification id without parsing (an
    /// event's rows are written in one transaction, so one row means all of them: what makes a
    /// rerun cheap), other partitions' records, events to plan, skips and failures. A file read
    /// with a window needs each line's time first, so it takes the full path.
    fn sort(&mut self, records: &[SourceRecord]) -> Result<Sorted, mysql::Error> {
        let ids: Vec<Option<String>> = match self.file_window {
            None => records.iter().map(SourceRecord::notification_id).collect(),
            Some(_) => records.iter().map(|_| None).collect(),
        };
        let looked_up = KeyDigests::of_ids(ids.iter().flatten().map(String::as_str));
        let stored = details::notifications_applied(&mut self.conn, &looked_up)?;
        // Applied already, by this partition (duplicates) or another (none of this run's business).
        let (ours, theirs): (Vec<_>, Vec<_>) = stored
            .into_iter()
            .partition(|(_, message_id)| self.partition.holds(message_id));
        let mut known: HashSet<String> = ours.into_iter().map(|(id, _)| id).collect();
        let elsewhere: HashSet<String> = theirs.into_iter().map(|(id, _)| id).collect();
        if let Some(memory) = &self.dry_run_memory {
            known.extend(
                ids.iter()
                    .flatten()
                    .filter(|id| memory.ids.contains(*id))
                    .cloned(),
            );
        }
        let mut sorted = Sorted {
            looked_up,
            ..Sorted::default()
        };
        for (index, record) in records.iter().enumerate() {
            let id = ids[index].as_ref();
            if id.is_some_and(|id| elsewhere.contains(id)) {
                self.other_partitions += 1;
            } else if let Some(id) = id.filter(|id| known.contains(*id)) {
                self.counts.scanned += 1;
                self.counts.duplicates += 1;
                if self.unresolved.contains(id) {
                    sorted.resolved.push(id.clone());
                }
            } else {
                self.sort_one(index, record, &mut sorted);
            }
        }
        Ok(sorted)
    }

    /// Interprets one record not known to be applied, and files it.
    fn sort_one(&mut self, index: usize, record: &SourceRecord, sorted: &mut Sorted) {
        let interpretation = interpret_guarded(record);
        // A file read with a window: a record that is no event, or cannot be read, belongs to
        // the window of its envelope's time (one it has no readable time for, to every window:
        // nothing else would keep it).
        if !matches!(interpretation, Ok(Interpretation::Event(_)))
            && self
                .file_window
                .is_some_and(|w| record.published_at().is_some_and(|at| !w.contains(at)))
        {
            return;
        }
        if !self.partition.is_whole() && !self.holds(record, &interpretation) {
            self.other_partitions += 1;
            return;
        }
        match interpretation {
            Ok(Interpretation::Event(event)) => self.sort_event(index, record, *event, sorted),
            Ok(Interpretation::Skip(why)) => {
                self.counts.scanned += 1;
                self.counts.skipped += 1;
                log::debug!("{}: skipped, {why}", record.origin());
            }
            Err(error) => {
                self.counts.scanned += 1;
                let failure = self.failure(record, error.notification_id, error.reason);
                sorted.failures.push(failure);
            }
        }
    }

    /// Files an event: outside a file's window (dropped), too large for a packet (a failure),
    /// before the retention horizon (skipped), or to plan.
    fn sort_event(
        &mut self,
        index: usize,
        record: &SourceRecord,
        mut event: SesEvent,
        sorted: &mut Sorted,
    ) {
        if self
            .file_window
            .is_some_and(|w| !w.contains(event.window_time()))
        {
            return;
        }
        self.counts.scanned += 1;
        // MySQL drops the connection on a packet over max_allowed_packet, which would look like
        // a lost server: a record that cannot fit fails here, alone.
        let largest = event
            .other_info
            .len()
            .max(event.subject.as_ref().map_or(0, String::len));
        if largest + PACKET_OVERHEAD > self.max_packet {
            let reason = format!(
                "a value of {largest} bytes does not fit the server's max_allowed_packet ({} bytes): raise it to store this record",
                self.max_packet
            );
            let failure = self.failure(record, event.notification_id.clone(), reason);
            sorted.failures.push(failure);
            return;
        }
        if self
            .pruned_before
            .is_some_and(|horizon| event.occurred_at < horizon)
        {
            self.counts.skipped += 1;
            log::warn!(
                "notification {}: its event predates the retention horizon (details pruned), skipped so it cannot count twice",
                event.notification_id
            );
            return;
        }
        if !self.env.store_subjects {
            event.subject = None;
        }
        if let Some(erased) = &self.erased {
            if erasure::keep_out(&mut event, erased) {
                self.counts.erased += 1;
                log::debug!(
                    "notification {}: every recipient it names was erased, kept out",
                    event.notification_id
                );
                return;
            }
        }
        for warning in &event.warnings {
            log::warn!(
                "notification {} ({}): {warning}",
                event.notification_id,
                record.origin()
            );
        }
        sorted.pending.push(Pending {
            event,
            record: index,
        });
    }

    /// Each event's fate against what is stored (and, in a dry run, what it would have
    /// written), with the users of every recipient it names resolved.
    fn plan(
        &mut self,
        events: &[&SesEvent],
        looked_up: &KeyDigests,
    ) -> Result<Vec<Fate>, mysql::Error> {
        let mut applied = details::applied_among(&mut self.conn, events, looked_up)?;
        if let Some(memory) = &self.dry_run_memory {
            memory.recall(events, &mut applied);
        }
        let fates = accounting::plan(events, &applied);
        if let Some(memory) = &mut self.dry_run_memory {
            memory.remember(events, &fates);
        }
        let to_resolve = events
            .iter()
            .zip(&fates)
            .flat_map(|(e, f)| accounting::summarized(e, f));
        self.users.prefetch(&mut self.conn, to_resolve)?;
        Ok(fates)
    }

    /// Counts what was applied or found duplicate, and which kept failures that resolves.
    fn tally(
        &mut self,
        events: &[&SesEvent],
        fates: &[Fate],
        done: &[bool],
        resolved: &mut Vec<String>,
    ) {
        for ((event, fate), ok) in events.iter().zip(fates).zip(done) {
            if !ok {
                continue;
            }
            match fate {
                Fate::Duplicate => self.counts.duplicates += 1,
                Fate::Apply(_) => {
                    self.counts.applied += 1;
                    self.counts.users_resolved += fate
                        .recipients(event)
                        .filter(|r| self.users.link(event, r).user_id.is_some())
                        .count() as u64;
                }
            }
            if self.unresolved.contains(&event.notification_id) {
                resolved.push(event.notification_id.clone());
            }
        }
    }

    /// Whether this run's partition applies `record`: by its mail's messageId, else (a record
    /// that is no SES event, or cannot be read) by its notification id.
    fn holds(
        &self,
        record: &SourceRecord,
        interpretation: &Result<Interpretation, ses::RecordError>,
    ) -> bool {
        match interpretation {
            Ok(Interpretation::Event(event)) if !event.message_id.is_empty() => {
                self.partition.holds(&event.message_id)
            }
            Ok(Interpretation::Event(event)) => self.partition.holds(&event.notification_id),
            Ok(Interpretation::Skip(_)) => self.partition.holds(
                &record
                    .notification_id()
                    .unwrap_or_else(|| record.fallback_id()),
            ),
            Err(error) => self.partition.holds(&error.notification_id),
        }
    }

    fn failure(
        &mut self,
        record: &SourceRecord,
        notification_id: String,
        reason: String,
    ) -> Failure {
        self.counts.failed += 1;
        let origin = record.origin();
        // A failure already kept from an earlier run was said then; of the new ones, the first
        // few are said whole and the rest summed up at the end, so that 360 bad records are not
        // 360 lines in the mail cron sends.
        if self.unresolved.contains(&notification_id) {
            log::debug!("notification {notification_id} ({origin}) failed again: {reason}");
        } else if self.new_failures_logged < NEW_FAILURES_LOGGED {
            self.new_failures_logged += 1;
            log::error!("notification {notification_id} ({origin}) failed: {reason}");
        } else {
            self.new_failures_logged += 1;
            log::debug!("notification {notification_id} ({origin}) failed: {reason}");
        }
        let mut document = record.document_text();
        let mut error = reason;
        // An erased address never reaches a failures row either.
        if let Some(erased) = &self.erased {
            let replace = |a: &str| erased.replacement(a);
            if let Some(scrubbed) = erasure::scrub_json_text(&document, &replace) {
                document = scrubbed;
            }
            if let Some(scrubbed) = erasure::scrub_text(&error, &replace) {
                error = scrubbed;
            }
        }
        // The failures row must itself fit in a packet; the whole record is still in its source.
        let room = self.max_packet / 2;
        if document.len() > room {
            let (kept, _) = truncate_bytes(&document, room);
            error.push_str(&format!(
                " (the document kept here is its first {} of {} bytes: the rest does not fit max_allowed_packet)",
                kept.len(),
                document.len()
            ));
            document = kept.to_string();
        }
        Failure {
            notification_id,
            source: origin,
            error,
            document,
        }
    }

    /// Recomputes the rollups of every day marked dirty (by this run or an earlier one that
    /// died or failed before its rollup), retried like a batch.
    pub(super) fn roll_up(&mut self) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let started = Instant::now();
        let done = self
            .retrying("recomputing the daily rollups", |ingest| {
                rollups::recompute_dirty(&mut ingest.conn, &ingest.zone, ingest.pruned_before)
            })
            .map_err(|e| {
                e.context(
                    "the events are applied and their days stay marked: the next ingest (or `ses-report rollup`) recomputes them",
                )
            })?;
        if done.kept_pruned > 0 {
            log::warn!(
                "{} changed day(s) lie before the retention horizon: their rollups are kept as they are",
                done.kept_pruned
            );
        }
        if done.days > 0 {
            log::info!(
                "recomputed the rollups of {} day(s) in {:.2} s",
                done.days,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Applies `events` in one transaction. If MySQL rejects it for its data, rolls it back
    /// and applies each half in its own transaction, and so on down to single events: in the end
    /// exactly the events MySQL refuses on their own fail, in about k·log2(n) transactions for k
    /// bad events among n, rather than n. A lost connection is fatal.
    fn apply_splitting(
        &mut self,
        events: &[&SesEvent],
        fates: &[Fate],
        offset: usize,
        done: &mut [bool],
        rejected: &mut Vec<(usize, String)>,
    ) -> Result<(), mysql::Error> {
        if self.horizon_moved || !accounting::writes_anything(events, fates) {
            return Ok(());
        }
        match self.apply_in_one_transaction(events, fates) {
            Ok(()) => {
                done[offset..offset + events.len()]
                    .iter_mut()
                    .for_each(|d| *d = true);
                Ok(())
            }
            Err(BatchError::Sql(e)) if is_retryable(&e) => Err(e),
            // Another run wrote some of these notifications meanwhile: `retrying` plans the batch
            // again (unless that kept happening: then the event at fault is found and fails).
            Err(BatchError::Sql(e)) if is_duplicate_key(&e) && !self.conflicts_exhausted => Err(e),
            // Before any event is blamed: a server that no longer answers, or takes no writes,
            // refused the batch for its own condition, whatever it said. Retried as such.
            Err(BatchError::Sql(e)) if offset == 0 && events.len() == done.len() => {
                match store::writable(&mut self.conn)? {
                    false => Err(codes::read_only_refusal(&e)),
                    true => self.bisect(events, fates, offset, done, rejected, BatchError::Sql(e)),
                }
            }
            Err(e) => self.bisect(events, fates, offset, done, rejected, e),
        }
    }

    /// A batch MySQL rejected for its data: one event is rejected; more are applied in halves
    /// to find the events at fault.
    fn bisect(
        &mut self,
        events: &[&SesEvent],
        fates: &[Fate],
        offset: usize,
        done: &mut [bool],
        rejected: &mut Vec<(usize, String)>,
        e: BatchError,
    ) -> Result<(), mysql::Error> {
        match e {
            e if events.len() == 1 => {
                rejected.push((offset, redact::scrub(&e.to_string())));
                Ok(())
            }
            e => {
                let whole_batch = offset == 0 && events.len() == done.len();
                let level = if whole_batch {
                    log::Level::Warn
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "MySQL rejected a batch of {} events ({}); applying it in halves to find the events at fault",
                    events.len(),
                    redact::scrub(&e.to_string())
                );
                let middle = events.len() / 2;
                self.apply_splitting(&events[..middle], &fates[..middle], offset, done, rejected)?;
                self.apply_splitting(
                    &events[middle..],
                    &fates[middle..],
                    offset + middle,
                    done,
                    rejected,
                )
            }
        }
    }

    fn apply_in_one_transaction(
        &mut self,
        events: &[&SesEvent],
        fates: &[Fate],
    ) -> Result<(), BatchError> {
        let deltas = accounting::summarize(events, fates, |e, r| self.users.link(e, r));
        let mut tx = self.conn.start_transaction(TxOpts::default())?;
        if retention::pruned_before_locked(&mut tx)? != self.pruned_before {
            tx.rollback()?;
            self.horizon_moved = true;
            return Ok(());
        }
        let applied = details::apply_batch(
            &mut tx,
            events,
            fates,
            &deltas,
            self.pruned_before,
            &self.digests,
        );
        match applied {
            Ok(()) => Ok(tx.commit()?),
            Err(e) => {
                // An explicit rollback; its own failure is secondary to `e`.
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

/// A batch's records, sorted.
#[derive(Default)]
struct Sorted {
    /// The notification ids looked up before parsing (found to have no rows when not
    /// duplicates), with their key digests.
    looked_up: KeyDigests,
    /// Events to plan, with their record's index.
    pending: Vec<Pending>,
    failures: Vec<Failure>,
    /// Kept failures this batch resolves.
    resolved: Vec<String>,
}

/// Interprets a record; a panic in that code (a bug, or input nobody foresaw) becomes the
/// record's failure instead of ending the run.
fn interpret_guarded(record: &SourceRecord) -> Result<Interpretation, ses::RecordError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| record.interpret())) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(ses::RecordError {
                notification_id: record
                    .notification_id()
                    .unwrap_or_else(|| record.fallback_id()),
                reason: format!(
                    "internal error while reading this record (please report it): {what}"
                ),
            })
        }
    }
}

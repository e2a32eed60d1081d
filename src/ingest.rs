//! `ses-report ingest`: one run over one window.
//!
//! Reads notifications in batches from a streaming source, decides per batch which
//! (notification, recipient) pairs are new with one query, resolves users with at most one more,
//! and applies the batch in one transaction. If that transaction fails on the data of some event,
//! it is rolled back and the batch is applied event by event, each in its own transaction, so
//! exactly the bad events fail (the design card's per-event isolation). Failed records are kept
//! whole in `aws_report_failures`; the run goes on and its exit code says so.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use mysql::{Conn, TxOpts};
use time::{Date, OffsetDateTime};

use crate::accounting::{self, Fate};
use crate::config::{IngestConfig, Source, WindowChoice};
use crate::error::{Exit, Fatal};
use crate::redact;
use crate::rollup;
use crate::ses::{Interpretation, SesEvent};
use crate::source::{FileSource, MongoSource, SourceRecord};
use crate::store::{self, Counts, Failure, RunStatus, SqlContext, UserDirectory};
use crate::timestamps;
use crate::window::{self, Window, Zone};

const PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub fn run(config: &IngestConfig) -> Result<Exit, Fatal> {
    let started = Instant::now();
    let (mut conn, database) = store::connect(&config.env)?;
    store::check_schema(&mut conn, &database)?;
    if !store::try_lock(&mut conn, &database).sql_context("taking the ingest lock")? {
        return Err(Fatal::locked(format!(
            "another ingest is running on database {database} (it holds the MySQL lock {}); nothing done",
            store::lock_name(&database)
        )));
    }

    let window = match &config.window {
        WindowChoice::Fixed(w) => Some(*w),
        WindowChoice::Everything => None,
        WindowChoice::CatchUp {
            lookback_hours,
            max_days,
        } => {
            let last =
                store::last_completed_end(&mut conn).sql_context("reading aws_report_runs")?;
            let catch_up = window::catch_up(
                config.env.now,
                &config.env.zone,
                last,
                *lookback_hours,
                *max_days,
            )
            .map_err(Fatal::new)?;
            if let Some(gap) = catch_up.uncovered {
                log::warn!(
                    "notifications from {} to {} are older than --max-days {max_days} and no completed run covers them: \
                     run `ses-report ingest --from {} --to {}` by hand",
                    timestamps::display(gap.from),
                    timestamps::display(gap.to),
                    timestamps::display(gap.from),
                    timestamps::display(gap.to)
                );
            }
            Some(catch_up.window)
        }
    };
    if let Some(w) = window.filter(Window::is_empty) {
        log::info!(
            "up to date: nothing to read before {}",
            timestamps::display(w.to)
        );
        println!(
            "{}",
            summary_line(Some(w), &Counts::default(), started.elapsed())
        );
        return Ok(Exit::Done);
    }

    let records: Box<dyn Iterator<Item = Result<SourceRecord, Fatal>>>;
    let label;
    match (&config.source, window) {
        (Source::File(path), _) => {
            let file = FileSource::open(path)?;
            label = file.label();
            records = Box::new(file);
        }
        (Source::Mongo, Some(w)) => {
            let mongo = MongoSource::open(&config.env, &w, config.batch_size as u32)?;
            label = mongo.label();
            records = Box::new(mongo);
        }
        (Source::Mongo, None) => return Err(Fatal::new("reading MongoDB needs a window")),
    }
    match window {
        Some(w) => log::info!(
            "ingesting {label} for {w}{}",
            if config.dry_run {
                " (dry run: nothing is written)"
            } else {
                ""
            }
        ),
        None => log::info!(
            "ingesting every line of {label}{}",
            if config.dry_run {
                " (dry run: nothing is written)"
            } else {
                ""
            }
        ),
    }

    let run_window = window.unwrap_or(Window {
        from: timestamps::parse("1000-01-01T00:00:00Z").map_err(Fatal::new)?,
        to: timestamps::parse("9999-12-31T00:00:00Z").map_err(Fatal::new)?,
    });
    let run_id = if config.dry_run {
        None
    } else {
        Some(
            store::start_run(&mut conn, run_window, &label, OffsetDateTime::now_utc())
                .sql_context("recording the run")?,
        )
    };

    let users = UserDirectory::open(&mut conn).sql_context("looking for auth_users")?;
    let unresolved =
        store::unresolved_failure_ids(&mut conn).sql_context("reading aws_report_failures")?;
    let mut ingest = Ingest {
        conn,
        users,
        unresolved,
        counts: Counts::default(),
        dry_run: config.dry_run,
        file_window: match config.source {
            Source::File(_) => window,
            Source::Mongo => None,
        },
        zone: config.env.zone.clone(),
        touched_days: BTreeSet::new(),
    };
    let outcome = ingest
        .consume(records, config.batch_size, started)
        .and_then(|()| ingest.roll_up());
    let counts = ingest.counts;
    let mut conn = ingest.conn;
    match outcome {
        Ok(()) => {
            let status = if counts.failed > 0 {
                RunStatus::Partial
            } else {
                RunStatus::Ok
            };
            if let Some(id) = run_id {
                store::finish_run(&mut conn, id, status, &counts, None)
                    .sql_context("recording the end of the run")?;
            }
            println!("{}", summary_line(window, &counts, started.elapsed()));
            Ok(if counts.failed > 0 {
                Exit::RecordsFailed
            } else {
                Exit::Done
            })
        }
        Err(fatal) => {
            if let Some(id) = run_id {
                record_failed_run(conn, &config.env, id, &counts, &fatal);
            }
            println!("{}", summary_line(window, &counts, started.elapsed()));
            Err(fatal)
        }
    }
}

/// Marks the run failed, on a new connection if the old one is gone; a run that cannot even be
/// marked is noticed by the next one (its status stays `running`).
fn record_failed_run(
    mut conn: Conn,
    env: &crate::config::Environment,
    run_id: u64,
    counts: &Counts,
    fatal: &Fatal,
) {
    let message = fatal.to_string();
    if store::finish_run(&mut conn, run_id, RunStatus::Failed, counts, Some(&message)).is_ok() {
        return;
    }
    drop(conn);
    match store::connect(env) {
        Ok((mut fresh, _)) => {
            if let Err(e) = store::finish_run(
                &mut fresh,
                run_id,
                RunStatus::Failed,
                counts,
                Some(&message),
            ) {
                log::warn!(
                    "could not mark run {run_id} failed: {}",
                    redact::scrub(&e.to_string())
                );
            }
        }
        Err(e) => log::warn!("could not mark run {run_id} failed: {e}"),
    }
}

pub fn summary_line(window: Option<Window>, c: &Counts, elapsed: Duration) -> String {
    let window = match window {
        Some(w) => w.to_string(),
        None => "all".to_string(),
    };
    format!(
        "window={window} scanned={} applied={} duplicates={} skipped={} failed={} users_resolved={} seconds={:.2}",
        c.scanned,
        c.applied,
        c.duplicates,
        c.skipped,
        c.failed,
        c.users_resolved,
        elapsed.as_secs_f64()
    )
}

struct Ingest {
    conn: Conn,
    users: UserDirectory,
    /// Notification ids with an unresolved failures row: marked resolved when applied.
    unresolved: HashSet<String>,
    counts: Counts,
    dry_run: bool,
    /// For files, the window is applied here (Mongo applies it in the query).
    file_window: Option<Window>,
    zone: Zone,
    /// Days (in `zone`) of the events this run applied: their rollups are recomputed at the end.
    touched_days: BTreeSet<Date>,
}

/// An interpreted record and the source record it came from (for its document, on failure).
struct Pending {
    event: SesEvent,
    record: usize,
}

impl Ingest {
    fn consume(
        &mut self,
        records: Box<dyn Iterator<Item = Result<SourceRecord, Fatal>>>,
        batch_size: usize,
        started: Instant,
    ) -> Result<(), Fatal> {
        let mut batch = Vec::with_capacity(batch_size);
        let mut last_progress = Instant::now();
        for record in records {
            batch.push(record?);
            if batch.len() >= batch_size {
                self.apply_records(std::mem::take(&mut batch))?;
                if last_progress.elapsed() >= PROGRESS_EVERY {
                    last_progress = Instant::now();
                    let seconds = started.elapsed().as_secs_f64().max(0.001);
                    log::info!(
                        "progress: {} records read, {} applied, {} duplicates, {} failed, {:.0} records/s",
                        self.counts.scanned,
                        self.counts.applied,
                        self.counts.duplicates,
                        self.counts.failed,
                        self.counts.scanned as f64 / seconds
                    );
                }
            }
        }
        if !batch.is_empty() {
            self.apply_records(batch)?;
        }
        Ok(())
    }

    fn apply_records(&mut self, records: Vec<SourceRecord>) -> Result<(), Fatal> {
        // Envelopes whose notification id already has detail rows are duplicates, known without
        // parsing their Message: an event's rows are written in one transaction, so one row
        // means all of them. This is what makes a rerun cheap. (A file read with a window needs
        // each line's time first, so it takes the full path.)
        let ids: Vec<Option<String>> = match self.file_window {
            None => records.iter().map(SourceRecord::notification_id).collect(),
            Some(_) => records.iter().map(|_| None).collect(),
        };
        let known =
            store::notifications_applied(&mut self.conn, ids.iter().flatten().map(String::as_str))
                .sql_context("checking for duplicates")?;
        let mut resolved: Vec<String> = Vec::new();

        let mut pending: Vec<Pending> = Vec::with_capacity(records.len());
        let mut failures: Vec<Failure> = Vec::new();
        for (index, record) in records.iter().enumerate() {
            if let Some(id) = ids[index].as_ref().filter(|id| known.contains(*id)) {
                self.counts.scanned += 1;
                self.counts.duplicates += 1;
                if self.unresolved.contains(id) {
                    resolved.push(id.clone());
                }
                continue;
            }
            match record.interpret() {
                Ok(Interpretation::Event(event)) => {
                    if self
                        .file_window
                        .is_some_and(|w| !w.contains(event.window_time()))
                    {
                        continue;
                    }
                    self.counts.scanned += 1;
                    for warning in &event.warnings {
                        log::warn!(
                            "notification {} ({}): {warning}",
                            event.notification_id,
                            record.origin()
                        );
                    }
                    pending.push(Pending {
                        event: *event,
                        record: index,
                    });
                }
                Ok(Interpretation::Skip(why)) => {
                    self.counts.scanned += 1;
                    self.counts.skipped += 1;
                    log::debug!("{}: skipped, {why}", record.origin());
                }
                Err(error) => {
                    self.counts.scanned += 1;
                    failures.push(self.failure(record, error.notification_id, error.reason));
                }
            }
        }

        let events: Vec<&SesEvent> = pending.iter().map(|p| &p.event).collect();
        let looked_up: HashSet<&str> = ids.iter().flatten().map(String::as_str).collect();
        let applied = store::applied_among(&mut self.conn, &events, &looked_up)
            .sql_context("checking for duplicates")?;
        let fates = accounting::plan(&events, &applied);
        let to_resolve = events.iter().zip(&fates).flat_map(|(e, f)| f.recipients(e));
        self.users
            .prefetch(&mut self.conn, to_resolve)
            .sql_context("looking up auth_users")?;

        let mut done: Vec<bool> = fates.iter().map(|f| *f == Fate::Duplicate).collect();
        if self.dry_run {
            done.iter_mut().for_each(|d| *d = true);
        } else if !fates.iter().all(|f| *f == Fate::Duplicate) {
            let mut rejected = Vec::new();
            self.apply_splitting(&events, &fates, 0, &mut done, &mut rejected)?;
            for (i, error) in rejected {
                let record = &records[pending[i].record];
                let reason = format!("MySQL rejected it: {error}");
                failures.push(self.failure(record, events[i].notification_id.clone(), reason));
            }
        }

        for ((event, fate), ok) in events.iter().zip(&fates).zip(&done) {
            if !ok {
                continue;
            }
            match fate {
                Fate::Duplicate => self.counts.duplicates += 1,
                Fate::Apply(_) => {
                    self.counts.applied += 1;
                    if let Ok(day) = self.zone.date_of(event.occurred_at) {
                        self.touched_days.insert(day);
                    }
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
        if !self.dry_run {
            let now = OffsetDateTime::now_utc();
            store::record_failures(&mut self.conn, &failures, now)
                .sql_context("recording failed records")?;
            store::mark_resolved(&mut self.conn, &resolved, now)
                .sql_context("resolving failures")?;
        }
        for id in &resolved {
            self.unresolved.remove(id);
        }
        Ok(())
    }

    /// Recomputes the rollups of the days this run changed, in their own transaction.
    fn roll_up(&mut self) -> Result<(), Fatal> {
        if self.dry_run || self.touched_days.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        rollup::recompute(&mut self.conn, &self.zone, &self.touched_days).map_err(|e| {
            let first = self.touched_days.first().map(ToString::to_string).unwrap_or_default();
            Fatal::new(format!(
                "the events are applied, but recomputing the daily rollups failed ({e}): run `ses-report rollup --from {first}`"
            ))
        })?;
        log::info!(
            "recomputed the rollups of {} day(s) in {:.2} s",
            self.touched_days.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn failure(
        &mut self,
        record: &SourceRecord,
        notification_id: String,
        reason: String,
    ) -> Failure {
        self.counts.failed += 1;
        let origin = record.origin();
        log::error!("notification {notification_id} ({origin}) failed: {reason}");
        Failure {
            notification_id,
            source: origin,
            error: reason,
            document: record.document_text(),
        }
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
    ) -> Result<(), Fatal> {
        if fates.iter().all(|f| *f == Fate::Duplicate) {
            return Ok(());
        }
        match self.apply_in_one_transaction(events, fates) {
            Ok(()) => {
                done[offset..offset + events.len()]
                    .iter_mut()
                    .for_each(|d| *d = true);
                Ok(())
            }
            Err(e) if store::is_connection_error(&e) => {
                Err(store::sql_fatal("applying a batch", &e))
            }
            Err(e) if events.len() == 1 => {
                rejected.push((offset, redact::scrub(&e.to_string())));
                Ok(())
            }
            Err(e) => {
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
    ) -> Result<(), mysql::Error> {
        let deltas = accounting::summarize(events, fates, |e, r| self.users.link(e, r));
        let mut tx = self.conn.start_transaction(TxOpts::default())?;
        match store::apply_batch(&mut tx, events, fates, &deltas) {
            Ok(()) => tx.commit(),
            Err(e) => {
                // An explicit rollback; its own failure is secondary to `e`.
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

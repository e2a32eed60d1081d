//! `ses-report ingest` (and `retry`): one run over one window.
//!
//! Reads notifications in batches from a streaming source, decides per batch which
//! (notification, recipient) pairs are new with one query, resolves users with at most one more,
//! and applies the batch in one transaction. If that transaction fails on the data of some event,
//! it is rolled back and applied in halves down to single events, so exactly the bad events fail
//! (the design card's per-event isolation). Failed records are kept whole in
//! `aws_report_failures`; the run goes on and its exit code says so.
//!
//! Faults: a lost MySQL connection, lock wait timeout or deadlock is retried a bounded number of
//! times with backoff on a new connection (re-taking the lock), re-applying the batch in hand; a
//! lost Mongo cursor is reopened after the last document read. SIGTERM and SIGINT stop the run
//! after the batch in flight, recorded as `interrupted`.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::{Conn, TxOpts};
use time::{Date, OffsetDateTime};

use crate::accounting::{self, Fate};
use crate::config::{Environment, IngestConfig, Source, WindowChoice};
use crate::error::{Exit, Fatal};
use crate::redact;
use crate::rollup;
use crate::ses::{self, Interpretation, SesEvent};
use crate::source::{
    FileSource, MongoSource, RecordSource, SourceError, SourceRecord, StoredSource,
};
use crate::store::{self, Counts, Failure, RunStatus, SqlContext, UserDirectory};
use crate::timestamps;
use crate::window::{self, Window, Zone};

const PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub fn run(config: &IngestConfig) -> Result<Exit, Fatal> {
    let started = Instant::now();
    let (mut conn, database) = store::connect(&config.env)?;
    store::check_schema(&mut conn, &database)?;
    lock(&mut conn, &database)?;
    let stop = stop_on_signals()?;
    let abandoned = if config.dry_run {
        Vec::new()
    } else {
        store::mark_abandoned_runs(&mut conn).sql_context("reading aws_report_runs")?
    };
    for run in &abandoned {
        log::warn!(
            "run {} over {} stopped without recording its end (killed?): marked abandoned; its window is read again by catch-up",
            run.0,
            run.1
        );
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

    let mut source: Box<dyn RecordSource> = match (&config.source, window) {
        (Source::File(path), _) => Box::new(FileSource::open(path)?),
        (Source::Mongo, Some(w)) => Box::new(MongoSource::open(
            &config.env,
            &w,
            config.batch_size as u32,
        )?),
        (Source::Mongo, None) => return Err(Fatal::new("reading MongoDB needs a window")),
        (Source::Failures, _) => {
            let rows =
                store::failure_rows(&mut conn, false).sql_context("reading aws_report_failures")?;
            log::info!("{} unresolved failures to retry", rows.len());
            Box::new(StoredSource::new(rows.into_iter().map(|r| {
                SourceRecord::stored(&r.notification_id, &r.source, r.document)
            })))
        }
    };
    let label = source.label();
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
    let pruned_before =
        store::pruned_before(&mut conn).sql_context("reading aws_report_retention")?;
    let unresolved =
        store::unresolved_failure_ids(&mut conn).sql_context("reading aws_report_failures")?;
    let mut ingest = Ingest {
        env: config.env.clone(),
        database,
        retries: config.env.retries,
        stop,
        conn,
        users,
        unresolved,
        counts: Counts::default(),
        dry_run: config.dry_run,
        file_window: match config.source {
            Source::File(_) => window,
            Source::Mongo | Source::Failures => None,
        },
        pruned_before,
        zone: config.env.zone.clone(),
        touched_days: BTreeSet::new(),
    };
    // The days of abandoned runs may hold events whose rollup was never recomputed.
    for (_, w) in &abandoned {
        if let (Ok(first), Ok(last)) = (ingest.zone.date_of(w.from), ingest.zone.date_of(w.to)) {
            if last >= first && (last - first).whole_days() <= 62 {
                ingest
                    .touched_days
                    .extend(rollup::days_between(first, last));
            }
        }
    }
    let outcome = ingest.consume(source.as_mut(), config.batch_size, started);
    // Even an interrupted run rolls up what it applied.
    let outcome = match outcome {
        Ok(()) => ingest.roll_up(),
        Err(fatal) if fatal.exit() == Exit::Interrupted => ingest.roll_up().and(Err(fatal)),
        Err(fatal) => Err(fatal),
    };
    let counts = ingest.counts;
    let conn = ingest.conn;
    finish(conn, &config.env, run_id, window, &counts, outcome, started)
}

/// Takes the ingest lock, or says who holds it.
fn lock(conn: &mut Conn, database: &str) -> Result<(), Fatal> {
    if !store::try_lock(conn, database).sql_context("taking the ingest lock")? {
        return Err(Fatal::locked(format!(
            "another ingest is running on database {database} (it holds the MySQL lock {}); nothing done",
            store::lock_name(database)
        )));
    }
    Ok(())
}

/// SIGTERM and SIGINT set a flag the run checks between batches.
fn stop_on_signals() -> Result<Arc<AtomicUsize>, Fatal> {
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let seen = Arc::new(AtomicBool::new(false));
        let signal = signal.clone();
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                seen.store(true, Ordering::SeqCst);
                signal.store(sig as usize, Ordering::SeqCst);
            })
        }
        .map_err(|e| Fatal::new(format!("cannot install the signal handler: {e}")))?;
    }
    Ok(signal)
}

/// Records how the run ended and prints the summary line.
fn finish(
    conn: Conn,
    env: &Environment,
    run_id: Option<u64>,
    window: Option<Window>,
    counts: &Counts,
    outcome: Result<(), Fatal>,
    started: Instant,
) -> Result<Exit, Fatal> {
    match outcome {
        Ok(()) => {
            let status = if counts.failed > 0 {
                RunStatus::Partial
            } else {
                RunStatus::Ok
            };
            if let Some(id) = run_id {
                record_end(conn, env, id, status, counts, None);
            }
            println!("{}", summary_line(window, counts, started.elapsed()));
            Ok(if counts.failed > 0 {
                Exit::RecordsFailed
            } else {
                Exit::Done
            })
        }
        Err(fatal) => {
            let status = if fatal.exit() == Exit::Interrupted {
                RunStatus::Interrupted
            } else {
                RunStatus::Failed
            };
            if let Some(id) = run_id {
                record_end(conn, env, id, status, counts, Some(&fatal.to_string()));
            }
            println!("{}", summary_line(window, counts, started.elapsed()));
            Err(fatal)
        }
    }
}

/// Records the end of the run, on a new connection if the old one is gone; a run that cannot
/// even be marked is noticed by the next one (its status stays `running`: abandoned).
fn record_end(
    mut conn: Conn,
    env: &Environment,
    run_id: u64,
    status: RunStatus,
    counts: &Counts,
    message: Option<&str>,
) {
    if store::finish_run(&mut conn, run_id, status, counts, message).is_ok() {
        return;
    }
    drop(conn);
    let result = store::connect(env).and_then(|(mut fresh, _)| {
        store::finish_run(&mut fresh, run_id, status, counts, message)
            .sql_context("recording the end of the run")
    });
    if let Err(e) = result {
        log::warn!(
            "could not record the end of run {run_id} ({}): {e}",
            status.name()
        );
    }
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
    env: Environment,
    database: String,
    /// How often a lost connection, lock wait timeout or deadlock is retried.
    retries: u32,
    /// The signal that asked the run to stop (0: none).
    stop: Arc<AtomicUsize>,
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
    /// `ses-report prune` removed the details of events before this: they are skipped.
    pruned_before: Option<OffsetDateTime>,
}

/// An interpreted record and the source record it came from (for its document, on failure).
struct Pending {
    event: SesEvent,
    record: usize,
}

impl Ingest {
    fn consume(
        &mut self,
        source: &mut dyn RecordSource,
        batch_size: usize,
        started: Instant,
    ) -> Result<(), Fatal> {
        let mut last_progress = Instant::now();
        let mut source_failures = 0;
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
                            return Err(Fatal::new(format!(
                                "{message} (gave up after {} retries)",
                                self.retries
                            )));
                        }
                        self.back_off(source_failures, &message)?;
                        if let Err(e) = source.reopen() {
                            log::warn!("reopening the source failed: {}", e.into_fatal());
                        }
                    }
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.apply_with_retries(&batch)?;
            source_failures = 0;
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

    fn check_stop(&self) -> Result<(), Fatal> {
        match self.stop.load(Ordering::SeqCst) {
            0 => Ok(()),
            sig => {
                let name = if sig == signal_hook::consts::SIGINT as usize {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                Err(Fatal::interrupted(format!(
                    "stopped by {name} after the batch in flight; a rerun of the same window finishes it"
                )))
            }
        }
    }

    /// Waits before retry `attempt` (0.5 s, 1 s, 2 s, ... up to 8 s), checking for a stop signal.
    fn back_off(&self, attempt: u32, problem: &str) -> Result<(), Fatal> {
        let wait = Duration::from_millis(500u64.saturating_mul(1 << (attempt - 1).min(4)));
        log::warn!(
            "{problem}; retry {attempt}/{} in {:.1} s",
            self.retries,
            wait.as_secs_f64()
        );
        let until = Instant::now() + wait;
        while Instant::now() < until {
            self.check_stop()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Applies a batch; on a lost connection, lock wait timeout or deadlock, reconnects (taking
    /// the lock again) and applies the same batch again, at most `retries` times.
    fn apply_with_retries(&mut self, batch: &[SourceRecord]) -> Result<(), Fatal> {
        let mut attempt = 0;
        loop {
            let counts = self.counts;
            let error = match self.apply_records(batch) {
                Ok(()) => return Ok(()),
                Err(e) if !store::is_connection_error(&e) => {
                    return Err(store::sql_fatal("applying a batch", &e))
                }
                Err(e) => e,
            };
            self.counts = counts;
            attempt += 1;
            if attempt > self.retries {
                return Err(store::sql_fatal(
                    &format!("applying a batch (gave up after {} retries)", self.retries),
                    &error,
                ));
            }
            self.back_off(
                attempt,
                &format!("MySQL: {}", redact::scrub(&error.to_string())),
            )?;
            self.reconnect()?;
        }
    }

    /// A new connection, with the ingest lock taken again; retried like the batches.
    fn reconnect(&mut self) -> Result<(), Fatal> {
        let mut attempt = 0;
        loop {
            match store::connect(&self.env) {
                Ok((mut conn, _)) => {
                    lock(&mut conn, &self.database)?;
                    self.conn = conn;
                    log::info!("reconnected to MySQL");
                    return Ok(());
                }
                Err(e) if attempt < self.retries => {
                    attempt += 1;
                    self.back_off(attempt, &e.to_string())?;
                }
                Err(e) => return Err(e.context(format!("gave up after {} retries", self.retries))),
            }
        }
    }

    fn apply_records(&mut self, records: &[SourceRecord]) -> Result<(), mysql::Error> {
        // Envelopes whose notification id already has detail rows are duplicates, known without
        // parsing their Message: an event's rows are written in one transaction, so one row
        // means all of them. This is what makes a rerun cheap. (A file read with a window needs
        // each line's time first, so it takes the full path.)
        let ids: Vec<Option<String>> = match self.file_window {
            None => records.iter().map(SourceRecord::notification_id).collect(),
            Some(_) => records.iter().map(|_| None).collect(),
        };
        let known =
            store::notifications_applied(&mut self.conn, ids.iter().flatten().map(String::as_str))?;
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
            match interpret_guarded(record) {
                Ok(Interpretation::Event(event)) => {
                    if self
                        .file_window
                        .is_some_and(|w| !w.contains(event.window_time()))
                    {
                        continue;
                    }
                    if self
                        .pruned_before
                        .is_some_and(|horizon| event.occurred_at < horizon)
                    {
                        self.counts.scanned += 1;
                        self.counts.skipped += 1;
                        log::warn!(
                            "notification {}: its event predates the retention horizon (details pruned), skipped so it cannot count twice",
                            event.notification_id
                        );
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
        let applied = store::applied_among(&mut self.conn, &events, &looked_up)?;
        let fates = accounting::plan(&events, &applied);
        let to_resolve = events.iter().zip(&fates).flat_map(|(e, f)| f.recipients(e));
        self.users.prefetch(&mut self.conn, to_resolve)?;

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
            store::record_failures(&mut self.conn, &failures, now)?;
            store::mark_resolved(&mut self.conn, &resolved, now)?;
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
    ) -> Result<(), mysql::Error> {
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
            Err(e) if store::is_connection_error(&e) => Err(e),
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

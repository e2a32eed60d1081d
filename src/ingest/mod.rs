//! `ses-report ingest` (and `retry`): one run over one window.
//!
//! Reads notifications in batches from a streaming source, decides per batch which
//! (notification, recipient) pairs are new with one query, resolves users with at most one more,
//! and applies the batch in one transaction. If that transaction fails on the data of some event,
//! it is rolled back and applied in halves down to single events, so exactly the bad events fail
//! (the design card's per-event isolation). Failed records are kept whole in
//! `aws_report_failures`; the run goes on and its exit code says so.
//!
//! Faults: a lost MySQL connection or lock wait timeout is retried a bounded number of times
//! with backoff (on a new connection, re-taking the lock, when the old one is gone), re-applying
//! the batch in hand; a deadlock's victim and a batch that meets rows another run just committed
//! are applied again at once; a lost Mongo cursor is reopened after the last document read.
//! SIGTERM and SIGINT stop the run after the batch in flight, recorded as `interrupted`.
//!
//! `--partition K/N` applies only the notifications of partition K (`domain::partition`), under
//! the partition's own lock, so that N such runs can share a window.
mod batch;
mod resilience;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::Conn;
use time::OffsetDateTime;

use crate::config::{Environment, IngestConfig, Source, WindowChoice};
use crate::domain::accounting::{Applied, Fate};
use crate::domain::erasure::Erased;
use crate::domain::partition::Partition;
use crate::domain::run::{Counts, RunStatus};
use crate::domain::ses::SesEvent;
use crate::domain::timestamps;
use crate::domain::window::{self, Window};
use crate::domain::zone::Zone;
use crate::error::{Error, Exit, Result};
use crate::ops::{Monitor, RunFigures};
use crate::source::file::FileSource;
use crate::source::mongo::MongoSource;
use crate::source::{RecordSource, SourceRecord, StoredSource};
use crate::store::failures;
use crate::store::users::UserDirectory;
use crate::store::{self, migrations, retention, runs, KeyDigests, SqlContext};
use resilience::{lock, stop_on_signals, watch_deadline};

const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// One run: open (connect, schema, lock, watchdog, abandoned runs), choose the window, read the
/// state a batch needs, open the source, record the start, consume, roll up, record the end.
pub fn run(config: &IngestConfig, monitor: &Arc<Monitor>) -> Result<Exit> {
    let started = Instant::now();
    let mut opened = open(config, monitor)?;
    let window = choose_window(&mut opened.conn, config)?;
    let watchdog_run_id = opened.watchdog_run_id.clone();
    let mut ingest = Ingest::new(config, opened, window)?;
    if let Some(w) = window.filter(Window::is_empty) {
        log::info!(
            "up to date: nothing to read before {}",
            timestamps::display(w.to)
        );
        // Days an earlier run changed but did not roll up are still rolled up.
        ingest.roll_up()?;
        let summary = summary_line(Some(w), &Counts::default(), started.elapsed());
        report_outcome(config.quiet, &summary, &Counts::default(), None);
        return Ok(Exit::Done);
    }
    let mut source = open_source(config, window, &mut ingest)?;
    let label = source.label();
    announce(config, &label, window);
    let run_id = record_start(&mut ingest, config, window, &label)?;
    if let Some(id) = run_id {
        watchdog_run_id.store(id, std::sync::atomic::Ordering::SeqCst);
    }
    let outcome = ingest.consume(source.as_mut(), config.batch_size, started);
    // Even an interrupted run rolls up what it applied (and what earlier runs left marked).
    let outcome = match outcome {
        Ok(()) => ingest.roll_up(),
        Err(stop @ (Error::Interrupted { .. } | Error::Deadline { .. })) => {
            ingest.roll_up().and(Err(stop))
        }
        Err(error) => Err(error),
    };
    let counts = ingest.counts;
    let conn = conclude(ingest, config, monitor);
    let summary = summary_line(window, &counts, started.elapsed());
    finish(conn, config, run_id, &counts, outcome, &summary)
}

/// A run's connection, locked, with its stop signal and deadline watchdog.
struct Opened {
    conn: Conn,
    database: String,
    stop: Arc<AtomicUsize>,
    /// Set once the run is recorded, so that the deadline watchdog can record its end.
    watchdog_run_id: Arc<AtomicU64>,
}

/// Connects, checks the schema, takes the lock, starts the deadline watchdog and marks the runs
/// that died without recording their end as abandoned.
fn open(config: &IngestConfig, monitor: &Arc<Monitor>) -> Result<Opened> {
    let (mut conn, database) = store::connect(&config.env)?;
    migrations::check_schema(&mut conn, &database)?;
    lock(&mut conn, &database, config.partition)?;
    let stop = stop_on_signals()?;
    let watchdog_run_id = Arc::new(AtomicU64::new(0));
    // Dry runs too: they read the source as a real run does, and can hang as one.
    watch_deadline(
        &config.env,
        stop.clone(),
        watchdog_run_id.clone(),
        monitor.clone(),
        config.env.io_timeout + config.env.connect_timeout,
    )?;
    if !config.dry_run {
        let abandoned = runs::mark_abandoned_runs(&mut conn, &database, config.partition)
            .sql_context("reading aws_report_runs")?;
        for run in &abandoned {
            log::warn!(
                "run {} over {} stopped without recording its end (killed?): marked abandoned; the days it changed are rolled up by this run, and catch-up reads its window again",
                run.0,
                run.1
            );
        }
    }
    Ok(Opened {
        conn,
        database,
        stop,
        watchdog_run_id,
    })
}

/// The window asked for, or catch-up's from the runs table (`None`: a whole file).
fn choose_window(conn: &mut Conn, config: &IngestConfig) -> Result<Option<Window>> {
    let (lookback_hours, max_days) = match &config.window {
        WindowChoice::Fixed(w) => return Ok(Some(*w)),
        WindowChoice::Everything => return Ok(None),
        WindowChoice::CatchUp {
            lookback_hours,
            max_days,
        } => (*lookback_hours, *max_days),
    };
    let last =
        runs::last_completed_end(conn, config.partition).sql_context("reading aws_report_runs")?;
    let env = &config.env;
    let catch_up = window::catch_up(env.now, &env.zone, last, lookback_hours, max_days);
    if let Some(gap) = catch_up.uncovered {
        let (from, to) = (timestamps::display(gap.from), timestamps::display(gap.to));
        log::warn!(
            "notifications from {from} to {to} are older than --max-days {max_days} and no completed run covers them: \
             run `ses-report ingest --from {from} --to {to}` by hand"
        );
    }
    Ok(Some(catch_up.window))
}

impl Ingest {
    /// The run's state: the users table, the retention horizon, the failures kept, the
    /// server's packet limit.
    fn new(config: &IngestConfig, opened: Opened, window: Option<Window>) -> Result<Ingest> {
        let Opened {
            mut conn,
            database,
            stop,
            ..
        } = opened;
        let users = UserDirectory::open(&mut conn, &config.env.users)
            .sql_context("looking for the users table")?;
        let pruned_before =
            retention::pruned_before(&mut conn).sql_context("reading aws_report_retention")?;
        let unresolved = failures::unresolved_failure_ids(&mut conn)
            .sql_context("reading aws_report_failures")?;
        let max_packet =
            store::max_allowed_packet(&mut conn).sql_context("reading max_allowed_packet")?;
        let erased = erased_addresses(&mut conn, config)?;
        Ok(Ingest {
            erased,
            env: config.env.clone(),
            database,
            retries: config.env.retries,
            stop,
            conn,
            users,
            unresolved,
            digests: KeyDigests::default(),
            counts: Counts::default(),
            dry_run: config.dry_run,
            file_window: match config.source {
                Source::File(_) => window,
                Source::Mongo | Source::Failures => None,
            },
            pruned_before,
            zone: config.env.zone.clone(),
            dry_run_memory: config.dry_run.then(DryRunMemory::default),
            max_packet,
            partition: config.partition,
            other_partitions: 0,
            conflicts_exhausted: false,
            horizon_moved: false,
            new_failures_logged: 0,
        })
    }
}

/// The erased addresses the run keeps out (`forget`), when there are any: their keyed hashes
/// need the key they were made with, and a run without it (or with another) would let them
/// back in, so it does not start.
fn erased_addresses(conn: &mut mysql::Conn, config: &IngestConfig) -> Result<Option<Erased>> {
    let key = config.env.erasure_key.as_ref();
    let (hashes, other_key) =
        store::erasure::erased_hashes(conn, key).sql_context("reading aws_report_erasures")?;
    if hashes.is_empty() {
        return Ok(None);
    }
    match key {
        None => Err(Error::config(
            "SES_REPORT_ERASURE_KEY",
            format!(
                "{} address(es) were erased (`ses-report forget`), and only their keyed hashes under that key can keep their later events out: set it to the key they were erased with",
                hashes.len()
            ),
        )),
        Some(_) if other_key => Err(Error::config(
            "SES_REPORT_ERASURE_KEY",
            "is not the key the erased addresses were hashed with (aws_report_erasures.key_check differs): set the key `forget` used",
        )),
        Some(key) => Ok(Some(Erased::new(key.clone(), hashes))),
    }
}

/// The run's source: the file, the collection's window, or the failures kept.
fn open_source(
    config: &IngestConfig,
    window: Option<Window>,
    ingest: &mut Ingest,
) -> Result<Box<dyn RecordSource>> {
    Ok(match (&config.source, window) {
        (Source::File(path), _) => Box::new(FileSource::open(path)?),
        (Source::Mongo, Some(w)) => Box::new(MongoSource::open(
            &config.env,
            &w,
            config.batch_size as u32,
        )?),
        // The configuration never pairs Mongo with "everything"; say so rather than scan it all.
        (Source::Mongo, None) => return Err(Error::usage("reading MongoDB needs a window")),
        (Source::Failures, _) => {
            let rows = failures::failure_rows(&mut ingest.conn, crate::config::Listing::Open)
                .sql_context("reading aws_report_failures")?;
            log::info!("{} unresolved failures to retry", rows.len());
            Box::new(StoredSource::new(rows.into_iter().map(|r| {
                SourceRecord::stored(&r.notification_id, &r.source, r.document)
            })))
        }
    })
}

/// Says what the run reads.
fn announce(config: &IngestConfig, label: &str, window: Option<Window>) {
    let dry = if config.dry_run {
        " (dry run: nothing is written)"
    } else {
        ""
    };
    let partition = config.partition;
    let part = if partition.is_whole() {
        String::new()
    } else {
        format!(", partition {partition} (by CRC32 of the mail's messageId)")
    };
    match window {
        Some(w) => log::info!("ingesting {label} for {w}{part}{dry}"),
        None => log::info!("ingesting every line of {label}{part}{dry}"),
    }
}

/// Records the run's start in `aws_report_runs` (not for a dry run).
fn record_start(
    ingest: &mut Ingest,
    config: &IngestConfig,
    window: Option<Window>,
    label: &str,
) -> Result<Option<u64>> {
    if config.dry_run {
        return Ok(None);
    }
    // A file read whole is recorded over every instant a DATETIME column can hold.
    let run_window = window.unwrap_or(Window {
        from: time::macros::datetime!(1000-01-01 0:00 UTC),
        to: time::macros::datetime!(9999-12-31 0:00 UTC),
    });
    // The program's own "now" (SES_REPORT_NOW pins it), the clock the window was clamped with:
    // catch-up compares the two.
    let id = runs::start_run(
        &mut ingest.conn,
        run_window,
        label,
        config.partition,
        config.env.now,
    )
    .sql_context("recording the run")?;
    Ok(Some(id))
}

/// Says what the run left undone (failures, other partitions' records) and gives the monitor
/// the run's figures; returns the connection for recording the end.
fn conclude(ingest: Ingest, config: &IngestConfig, monitor: &Arc<Monitor>) -> Conn {
    let counts = ingest.counts;
    if counts.failed > 0 {
        let new = ingest.new_failures_logged;
        let unsaid = new.saturating_sub(batch::NEW_FAILURES_LOGGED);
        log::warn!(
            "{} record(s) could not be applied ({new} new this run{}; {} already kept): `ses-report failures` lists them with their reasons",
            counts.failed,
            if unsaid > 0 { format!(", {unsaid} of them not logged one by one") } else { String::new() },
            counts.failed as usize - new.min(counts.failed as usize),
        );
    }
    let partition = config.partition;
    if !partition.is_whole() {
        log::info!(
            "partition {partition}: {} record(s) read belong to other partitions (not counted)",
            ingest.other_partitions
        );
    }
    let mut conn = ingest.conn;
    // What the metrics report: the counts, and the failures still kept (when MySQL can say; a
    // figure of the whole database, so of partition workers only 1/N reports it).
    let unresolved_failures = if partition.reports_database_figures() {
        failures::open_failure_count(&mut conn).ok()
    } else {
        None
    };
    monitor.record(RunFigures {
        counts,
        unresolved_failures,
    });
    conn
}

/// Records how the run ended and reports it (`report_outcome`).
fn finish(
    conn: Conn,
    config: &IngestConfig,
    run_id: Option<u64>,
    counts: &Counts,
    outcome: Result<()>,
    summary: &str,
) -> Result<Exit> {
    match outcome {
        Ok(()) => {
            let status = counts.status();
            if let Some(id) = run_id {
                record_end(conn, &config.env, id, status, counts, None);
            }
            report_outcome(config.quiet, summary, counts, None);
            Ok(if counts.failed > 0 {
                Exit::RecordsFailed
            } else {
                Exit::Done
            })
        }
        Err(error) => {
            let status = match error {
                Error::Interrupted { .. } => RunStatus::Interrupted,
                _ => RunStatus::Failed,
            };
            if let Some(id) = run_id {
                record_end(
                    conn,
                    &config.env,
                    id,
                    status,
                    counts,
                    Some(&error.to_string()),
                );
            }
            report_outcome(config.quiet, summary, counts, Some(status));
            Err(error)
        }
    }
}

/// The outcome of every run goes to the log (`ended: ...`); the summary line to stdout, or with
/// `--quiet` (cron, which mails whatever a job prints) only a line for what needs a person:
/// records that could not be applied. A run that fails says so through `main` (the error).
fn report_outcome(quiet: bool, summary: &str, counts: &Counts, failed: Option<RunStatus>) {
    let status = failed.unwrap_or(counts.status());
    log::info!("ended ({}): {summary}", status.name());
    if !quiet {
        println!("{summary}");
    } else if failed.is_none() && counts.failed > 0 {
        println!(
            "ses-report: {} record(s) could not be applied: `ses-report failures` lists them, `ses-report retry` applies them again ({summary})",
            counts.failed
        );
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
    if runs::finish_run(&mut conn, run_id, status, counts, message).is_ok() {
        return;
    }
    drop(conn);
    let result = store::connect(env).and_then(|(mut fresh, _)| {
        runs::finish_run(&mut fresh, run_id, status, counts, message)
            .sql_context("recording the end of the run")
    });
    if let Err(e) = result {
        log::warn!(
            "could not record the end of run {run_id} ({}): {e}",
            status.name()
        );
    }
}

pub fn summary_line(window: Option<Window>, c: &Counts, elapsed: Duration) -> String {
    let window = match window {
        Some(w) => w.to_string(),
        None => "all".to_string(),
    };
    // `erased=N` only once an address was erased: the line stays as it was for everyone else.
    let erased = if c.erased > 0 {
        format!(" erased={}", c.erased)
    } else {
        String::new()
    };
    format!(
        "window={window} scanned={} applied={} duplicates={} skipped={} failed={}{erased} users_resolved={} seconds={:.2}",
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
    /// The key digests of the batch being applied (`Sorted::looked_up`).
    digests: KeyDigests,
    counts: Counts,
    dry_run: bool,
    /// For files, the window is applied here (Mongo applies it in the query).
    file_window: Option<Window>,
    zone: Zone,
    /// `ses-report prune` removed the details of events before this: they are skipped.
    pruned_before: Option<OffsetDateTime>,
    /// `--dry-run`: what it would have written so far.
    dry_run_memory: Option<DryRunMemory>,
    /// The server's max_allowed_packet: no value sent may outgrow it.
    max_packet: usize,
    /// `--partition K/N`: the notifications this run applies (the rest are other workers').
    partition: Partition,
    /// Records read that belong to other partitions (not counted as scanned).
    other_partitions: u64,
    /// Set when a batch kept meeting rows another run had just written (MySQL 1062 after
    /// planning it again `retries` times): the batch is then bisected like a data error.
    conflicts_exhausted: bool,
    /// Set when a batch's transaction found the retention horizon moved since the batch was
    /// planned (`prune` ran meanwhile): the batch is planned again with the new horizon.
    horizon_moved: bool,
    /// New failures met so far (the first `batch::NEW_FAILURES_LOGGED` are logged whole).
    new_failures_logged: usize,
    /// The erased addresses, kept out of every row (`None`: nothing was ever erased).
    erased: Option<Erased>,
}

/// What a dry run would have written, so that its later batches see it as a real run's see the
/// rows of earlier ones (an SNS retry in a later batch is a duplicate in both). It grows with
/// the run (a dry run is a diagnostic; a real run keeps nothing).
#[derive(Default)]
struct DryRunMemory {
    /// Notification ids that would have rows.
    ids: HashSet<String>,
    applied: Applied,
}

impl DryRunMemory {
    /// Adds to `applied` what this dry run would already have written for `events`.
    fn recall(&self, events: &[&SesEvent], applied: &mut Applied) {
        for event in events {
            for recipient in &event.recipients {
                let pair = (event.notification_id.clone(), recipient.clone());
                if self.applied.pairs.contains(&pair) {
                    applied.pairs.insert(pair);
                }
                if let Some(feedback) = &event.feedback_id {
                    let key = (feedback.clone(), recipient.clone());
                    if let Some(id) = self.applied.feedback.get(&key) {
                        applied.feedback.entry(key).or_insert_with(|| id.clone());
                    }
                }
            }
        }
    }

    fn remember(&mut self, events: &[&SesEvent], fates: &[Fate]) {
        for (event, fate) in events.iter().zip(fates) {
            let Fate::Apply(claims) = fate else { continue };
            self.ids.insert(event.notification_id.clone());
            for claim in claims {
                let recipient = event.recipients[claim.recipient].clone();
                if let Some(feedback) = &event.feedback_id {
                    self.applied.feedback.insert(
                        (feedback.clone(), recipient.clone()),
                        event.notification_id.clone(),
                    );
                }
                self.applied
                    .pairs
                    .insert((event.notification_id.clone(), recipient));
            }
        }
    }
}

/// An interpreted record and the source record it came from (for its document, on failure).
struct Pending {
    event: SesEvent,
    record: usize,
}

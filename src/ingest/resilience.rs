//! Surviving faults: the ingest lock (one per partition), stop signals, backoff, and doing a
//! piece of work again when MySQL deadlocks, times out a lock wait or is lost (on a new
//! connection, with the lock taken again, only in the last case), or when another run committed
//! the rows a batch was about to insert. Both the batches and the closing rollup go through
//! `retrying`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::Conn;

use super::Ingest;
use crate::config::Environment;
use crate::domain::partition::Partition;
use crate::error::{Error, Result};
use crate::ops::Monitor;
use crate::redact;
use crate::store::codes::{
    is_deadlock, is_duplicate_key, is_retryable_error, needs_new_connection,
};
use crate::store::{self, runs, SqlContext};

/// How often a transaction chosen as a deadlock's victim is run again before it counts as a
/// fault (then `SES_REPORT_RETRIES` applies, with backoff).
const DEADLOCK_RETRIES: u32 = 10;

/// Takes the ingest lock, or says who holds it.
pub(super) fn lock(conn: &mut Conn, database: &str, partition: Partition) -> Result<()> {
    if !store::try_lock(conn, database, partition).sql_context("taking the ingest lock")? {
        return Err(Error::Locked {
            database: database.to_string(),
            lock: store::lock_name(database, partition),
            // Who holds it helps an operator tell a running ingest from a dead one's session
            // the server has not noticed yet; a failure to say is no reason to fail otherwise.
            holder: store::lock_holder(conn, database, partition).ok().flatten(),
        });
    }
    Ok(())
}

/// The value the stop flag takes when the deadline passes (signals store their number).
pub(super) const DEADLINE_REACHED: usize = usize::MAX;

/// At the deadline, asks the run to stop after the batch in flight (as SIGTERM does). A run
/// stuck in I/O that no timeout covers (the Mongo driver has no socket timeout: a server that
/// accepts and never answers holds a cursor read for ever) cannot notice: after `grace`, the
/// watchdog records the run as failed on a connection of its own and ends the process with
/// exit 1. One small thread, asleep until then; the run itself stays single-threaded.
pub(super) fn watch_deadline(
    env: &Environment,
    stop: Arc<AtomicUsize>,
    run_id: Arc<AtomicU64>,
    monitor: Arc<Monitor>,
    grace: Duration,
) -> Result<()> {
    let env = env.clone();
    let deadline = env.deadline;
    std::thread::Builder::new()
        .name("ses-report deadline".into())
        .spawn(move || {
            std::thread::sleep(deadline);
            let _ = stop.compare_exchange(0, DEADLINE_REACHED, Ordering::SeqCst, Ordering::SeqCst);
            std::thread::sleep(grace);
            let error = Error::Deadline {
                seconds: deadline.as_secs(),
            };
            let message = format!("{error}; the run did not stop within {} s more (a server stopped answering?), so it was ended", grace.as_secs());
            log::error!("{message}");
            let id = run_id.load(Ordering::SeqCst);
            if id > 0 {
                let recorded = store::connect(&env).and_then(|(mut conn, _)| {
                    runs::fail_run(&mut conn, id, &message)
                        .sql_context("recording the end of the run")
                });
                if let Err(e) = recorded {
                    log::warn!("could not record the end of run {id}: {e}");
                }
            }
            monitor.finish(error.exit());
            std::process::exit(i32::from(error.exit().code()));
        })
        .map(|_| ())
        .map_err(|e| Error::io("starting the deadline watchdog", e))
}

/// SIGTERM and SIGINT set a flag the run checks between batches.
pub(super) fn stop_on_signals() -> Result<Arc<AtomicUsize>> {
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
        .map_err(|e| Error::io("installing the SIGTERM/SIGINT handler", e))?;
    }
    Ok(signal)
}

impl Ingest {
    pub(super) fn check_stop(&self) -> Result<()> {
        match self.stop.load(Ordering::SeqCst) {
            0 => Ok(()),
            DEADLINE_REACHED => Err(Error::Deadline {
                seconds: self.env.deadline.as_secs(),
            }),
            sig if sig == signal_hook::consts::SIGINT as usize => {
                Err(Error::Interrupted { signal: "SIGINT" })
            }
            _ => Err(Error::Interrupted { signal: "SIGTERM" }),
        }
    }

    /// Waits before retry `attempt`, checking for a stop signal meanwhile.
    pub(super) fn back_off(&self, attempt: u32, problem: &str) -> Result<()> {
        let wait = store::retry_delay(attempt);
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

    /// Runs `work`; when it fails in a way that trying again can cure (lost connection, lock wait
    /// timeout, deadlock), reconnects if the connection is gone (taking the lock again), and
    /// runs it again, at most `retries` times (a deadlock's victim and a batch that met another
    /// run's rows are first run again at once, each with a budget of its own). `work` must leave
    /// nothing half done when it fails (one transaction), and the run's counts are restored to
    /// what they were before each attempt.
    pub(super) fn retrying<T>(
        &mut self,
        doing: &str,
        mut work: impl FnMut(&mut Ingest) -> Result<T, mysql::Error>,
    ) -> Result<T> {
        let mut attempt = 0;
        let mut conflicts = 0;
        let mut deadlocks = 0;
        loop {
            let counts = self.counts;
            let error = match work(self) {
                Ok(value) => {
                    self.conflicts_exhausted = false;
                    return Ok(value);
                }
                // Workers of different partitions can deadlock where their transactions meet
                // (the suppression ledger's rows of one address, the day's dirty mark): InnoDB
                // rolled this one back and the other goes on, so run it again at once (a few
                // milliseconds apart), on the same connection. Not a server fault: a budget of
                // its own, so that a busy day cannot exhaust SES_REPORT_RETRIES.
                Err(e) if is_deadlock(&e) && deadlocks < DEADLOCK_RETRIES => {
                    self.counts = counts;
                    deadlocks += 1;
                    log::info!(
                        "{doing}: chosen as a deadlock's victim, applying it again ({deadlocks}/{DEADLOCK_RETRIES})"
                    );
                    std::thread::sleep(Duration::from_millis(10 * u64::from(deadlocks)));
                    self.check_stop()?;
                    continue;
                }
                // Rows another run committed after this batch was planned (a whole-stream run
                // beside partitioned ones, or two runs over one window): rolled back, so plan it
                // again, and they are duplicates. Not a fault of the connection: no reconnect.
                Err(e) if is_duplicate_key(&e) && !self.conflicts_exhausted => {
                    self.counts = counts;
                    conflicts += 1;
                    if conflicts > self.retries {
                        log::warn!(
                            "{doing}: a unique key still refuses a row after planning again {} times ({}): finding the notification at fault",
                            self.retries,
                            redact::scrub(&e.to_string())
                        );
                        self.conflicts_exhausted = true;
                    } else {
                        log::info!(
                            "{doing}: another run applied some of these notifications meanwhile ({}): planning the batch again",
                            redact::scrub(&e.to_string())
                        );
                    }
                    continue;
                }
                Err(e) => Error::mysql(doing, e),
            };
            self.conflicts_exhausted = false;
            if !is_retryable_error(&error) {
                return Err(error);
            }
            self.counts = counts;
            attempt += 1;
            if attempt > self.retries {
                return Err(error.context(format!("gave up after {} retries", self.retries)));
            }
            self.back_off(attempt, &redact::scrub(&error.to_string()))?;
            // A deadlock or lock wait timeout leaves the session (and its lock) as it was: go on
            // with it. A lost one is replaced, and so is one to a server that turned read-only
            // (after a failover, the host name leads to the new writer).
            let stale = error.mysql_source().is_some_and(needs_new_connection);
            if stale || self.conn.ping().is_err() {
                self.reconnect()?;
            }
        }
    }

    /// A new connection, with the ingest lock taken again; retried like the batches.
    fn reconnect(&mut self) -> Result<()> {
        let mut attempt = 0;
        loop {
            match store::connect(&self.env) {
                Ok((conn, _)) => {
                    // The old session goes first (it may still hold the lock). The server may not
                    // have noticed yet that it is gone (a read timeout, a network drop): its lock
                    // is ours, so wait for it, within a bound.
                    drop(std::mem::replace(&mut self.conn, conn));
                    let wait = self.env.io_timeout;
                    let locked =
                        store::wait_for_lock(&mut self.conn, &self.database, self.partition, wait)
                            .sql_context("taking the ingest lock again")?;
                    if !locked {
                        return Err(Error::LockLost {
                            database: self.database.clone(),
                            waited: wait.as_secs(),
                        });
                    }
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
}

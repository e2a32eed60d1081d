//! How operators watch the job: a Prometheus textfile (`metrics`) and a healthchecks-style ping.
//!
//! `Monitor` follows one ingest (or retry): it pings `<url>/start` when the run starts, and when
//! it ends (however: a returned exit code, or the deadline watchdog about to exit the process)
//! pings `<url>` on success or `<url>/<exit code>` otherwise, and writes the metrics file. Neither
//! can fail the run: a write or a ping that fails is a warning in the log, with the ping URL
//! redacted (it is a secret: whoever has it can report for the job).

pub mod metrics;
pub mod progress;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::domain::run::Counts;
use crate::error::Exit;
use crate::redact;
use metrics::Family;

/// How long a ping may take: cron's job is the run, not the report about it.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The healthchecks.io / Cronitor convention for reporting a job's runs over HTTP(S).
#[derive(Clone, Debug)]
pub struct Ping {
    /// The URL up to its query (or fragment), without a trailing slash.
    path: String,
    /// `?...` (and `#...`) as given, or empty: the event goes before it
    /// (`https://hc-ping.com/KEY/slug/start?create=1`), never after.
    query: String,
}

impl Ping {
    pub fn new(url: &str) -> Ping {
        let split = url.find(['?', '#']).unwrap_or(url.len());
        let (path, query) = url.split_at(split);
        Ping {
            path: path.trim_end_matches('/').to_string(),
            query: query.to_string(),
        }
    }

    /// The URL for an event: `/start`, success (the URL itself), or `/<exit code>`, each
    /// inserted before the query string.
    pub fn url_for(&self, event: PingEvent) -> String {
        let suffix = match event {
            PingEvent::Start => "/start".to_string(),
            PingEvent::End(Exit::Done) => String::new(),
            PingEvent::End(exit) => format!("/{}", exit.code()),
        };
        format!("{}{suffix}{}", self.path, self.query)
    }

    /// Sends one ping; a failure is logged, never returned.
    pub fn send(&self, event: PingEvent) {
        let url = self.url_for(event);
        let agent = ureq::AgentBuilder::new().timeout(PING_TIMEOUT).build();
        if let Err(e) = agent.get(&url).call() {
            log::warn!(
                "ping {} failed: {}",
                redact::scrub(&url),
                redact::scrub(&e.to_string())
            );
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingEvent {
    Start,
    End(Exit),
}

/// What the end of a run reports.
#[derive(Clone, Debug, Default)]
pub struct RunFigures {
    pub counts: Counts,
    /// Unresolved rows of `aws_report_failures` after the run, when the database could say.
    pub unresolved_failures: Option<u64>,
}

/// Follows one ingest or retry; see the module documentation.
pub struct Monitor {
    metrics_file: Option<PathBuf>,
    ping: Option<Ping>,
    started_at: OffsetDateTime,
    started: Instant,
    figures: Mutex<RunFigures>,
    finished: AtomicBool,
    /// Labels on every sample of the run's families (`partition="K/N"` for a partition worker).
    labels: Vec<(String, String)>,
}

impl Monitor {
    pub fn new(metrics_file: Option<&str>, ping_url: Option<&str>) -> Monitor {
        Monitor {
            metrics_file: metrics_file.map(PathBuf::from),
            ping: ping_url.map(Ping::new),
            started_at: OffsetDateTime::now_utc(),
            started: Instant::now(),
            figures: Mutex::new(RunFigures::default()),
            finished: AtomicBool::new(false),
            labels: Vec::new(),
        }
    }

    /// Labels every sample of the run's metrics with `name="value"`.
    pub fn labelled(mut self, name: &str, value: &str) -> Monitor {
        self.labels.push((name.to_string(), value.to_string()));
        self
    }

    pub fn start(&self) {
        if let Some(ping) = &self.ping {
            ping.send(PingEvent::Start);
        }
    }

    /// The run's figures so far (the last call before `finish` wins).
    pub fn record(&self, figures: RunFigures) {
        *self.figures.lock().unwrap_or_else(|p| p.into_inner()) = figures;
    }

    /// Reports the end once (later calls do nothing): writes the metrics, then pings.
    pub fn finish(&self, exit: Exit) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(path) = &self.metrics_file {
            let figures = self
                .figures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            metrics::update_file(path, |existing| {
                run_families(
                    existing,
                    &figures,
                    exit,
                    self.started_at,
                    self.started.elapsed(),
                    &labels,
                )
            });
        }
        if let Some(ping) = &self.ping {
            ping.send(PingEvent::End(exit));
        }
    }
}

fn unix(at: OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

/// An exit that means the run completed (records that failed are kept and retried: a run with
/// some is still a run that did its job).
fn completed(exit: Exit) -> bool {
    matches!(exit, Exit::Done | Exit::RecordsFailed)
}

/// The ingest's metric families, every sample with `labels`. Values a failed run cannot know
/// (the last success, the failures count when MySQL is down) are carried over from the existing
/// file.
pub fn run_families(
    existing: &str,
    figures: &RunFigures,
    exit: Exit,
    started_at: OffsetDateTime,
    duration: Duration,
    labels: &[(&str, &str)],
) -> Vec<Family> {
    let mut families = vec![Family::gauge(
        "ses_report_last_run_timestamp_seconds",
        "When the last ses-report ingest started, in Unix time.",
    )
    .with(labels, unix(started_at))];
    // The `_build_info` convention: the version as a label of a constant 1.
    let mut build: Vec<(&str, &str)> = labels.to_vec();
    build.push(("version", env!("CARGO_PKG_VERSION")));
    families.push(
        Family::gauge(
            "ses_report_build_info",
            "The version of the ses-report binary that wrote these metrics, as a label (always 1).",
        )
        .with(&build, 1.0),
    );
    let last_success = if completed(exit) {
        Some(unix(started_at) + duration.as_secs_f64())
    } else {
        metrics::previous_value(existing, "ses_report_last_success_timestamp_seconds")
    };
    if let Some(at) = last_success {
        families.push(
            Family::gauge(
                "ses_report_last_success_timestamp_seconds",
                "When the last ses-report ingest that completed (exit 0 or 3) ended, in Unix time.",
            )
            .with(labels, at),
        );
    }
    families.push(
        Family::gauge(
            "ses_report_last_exit_code",
            "Exit code of the last ses-report ingest (README: Exit codes).",
        )
        .with(labels, f64::from(exit.code())),
    );
    families.push(notifications_family(figures, labels));
    let unresolved = figures
        .unresolved_failures
        .map(|n| n as f64)
        .or_else(|| metrics::previous_value(existing, "ses_report_unresolved_failures"));
    if let Some(n) = unresolved {
        families.push(
            Family::gauge(
                "ses_report_unresolved_failures",
                "Records kept in aws_report_failures and not yet applied.",
            )
            .with(labels, n),
        );
    }
    families.push(
        Family::gauge(
            "ses_report_run_duration_seconds",
            "How long the last ses-report ingest ran.",
        )
        .with(labels, duration.as_secs_f64()),
    );
    families
}

/// The last run's notifications by outcome.
fn notifications_family(figures: &RunFigures, labels: &[(&str, &str)]) -> Family {
    let c = &figures.counts;
    let mut notifications = Family::gauge(
        "ses_report_notifications",
        "Notifications of the last ses-report ingest, by outcome.",
    );
    for (outcome, n) in [
        ("scanned", c.scanned),
        ("applied", c.applied),
        ("duplicates", c.duplicates),
        ("skipped", c.skipped),
        ("failed", c.failed),
        ("erased", c.erased),
    ] {
        let mut sample: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sample.push(("outcome".into(), outcome.into()));
        notifications.add(sample, n as f64);
    }
    notifications
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls_follow_the_healthchecks_convention() {
        let ping = Ping::new("https://hc-ping.com/1234-abcd/");
        assert_eq!(
            ping.url_for(PingEvent::Start),
            "https://hc-ping.com/1234-abcd/start"
        );
        assert_eq!(
            ping.url_for(PingEvent::End(Exit::Done)),
            "https://hc-ping.com/1234-abcd"
        );
        assert_eq!(
            ping.url_for(PingEvent::End(Exit::RecordsFailed)),
            "https://hc-ping.com/1234-abcd/3"
        );
        assert_eq!(
            ping.url_for(PingEvent::End(Exit::Fatal)),
            "https://hc-ping.com/1234-abcd/1"
        );
    }

    #[test]
    fn the_event_goes_before_the_query_string() {
        let ping = Ping::new("https://hc-ping.com/KEY/nightly-report?create=1");
        assert_eq!(
            ping.url_for(PingEvent::Start),
            "https://hc-ping.com/KEY/nightly-report/start?create=1"
        );
        assert_eq!(
            ping.url_for(PingEvent::End(Exit::Done)),
            "https://hc-ping.com/KEY/nightly-report?create=1"
        );
        assert_eq!(
            ping.url_for(PingEvent::End(Exit::RecordsFailed)),
            "https://hc-ping.com/KEY/nightly-report/3?create=1"
        );
        let trailing = Ping::new("https://ping.example/abc/?a=1/2#frag");
        assert_eq!(
            trailing.url_for(PingEvent::End(Exit::Fatal)),
            "https://ping.example/abc/1?a=1/2#frag"
        );
    }

    #[test]
    fn a_failed_run_carries_the_last_success_over() {
        let at = time::macros::datetime!(2026-11-28 02:15 UTC);
        let ok = run_families(
            "",
            &RunFigures::default(),
            Exit::Done,
            at,
            Duration::from_secs(10),
            &[],
        );
        let text = metrics::render(&ok);
        assert_eq!(
            metrics::previous_value(&text, "ses_report_last_success_timestamp_seconds"),
            Some(unix(at) + 10.0)
        );
        let later = at + time::Duration::days(1);
        let failed = run_families(
            &text,
            &RunFigures::default(),
            Exit::Fatal,
            later,
            Duration::from_secs(1),
            &[],
        );
        let failed_text = metrics::render(&failed);
        assert_eq!(
            metrics::previous_value(&failed_text, "ses_report_last_success_timestamp_seconds"),
            Some(unix(at) + 10.0)
        );
        assert_eq!(
            metrics::previous_value(&failed_text, "ses_report_last_exit_code"),
            Some(1.0)
        );
        assert_eq!(
            metrics::previous_value(&failed_text, "ses_report_last_run_timestamp_seconds"),
            Some(unix(later))
        );
    }
}

//! The run's configuration, built once from the command line and the environment.
//!
//! The environment is read in one place (`Environment::from_process`), and every error names the
//! variable at fault. Connection URLs come only from the environment, never argv, because they
//! hold passwords; their passwords are registered with `redact` as soon as they are read.

use std::time::Duration;

use time::OffsetDateTime;

use crate::cli::IngestArgs;
use crate::error::Fatal;
use crate::redact;
use crate::timestamps;
use crate::window::{self, Window, Zone};

pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/ses_report";
pub const DEFAULT_MONGO_URL: &str = "mongodb://127.0.0.1:27017";

/// Settings every subcommand shares: where the servers are and how long to wait for them.
#[derive(Clone, Debug)]
pub struct Environment {
    pub mysql_url: String,
    pub mongo_url: String,
    pub mongo_db: String,
    pub mongo_collection: String,
    pub zone: Zone,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// How often a lost connection, lock wait timeout or deadlock is retried (`SES_REPORT_RETRIES`).
    pub retries: u32,
    /// "Now", for the catch-up window: `SES_REPORT_NOW` lets tests and backfills pin it.
    pub now: OffsetDateTime,
}

impl Environment {
    pub fn from_process() -> Result<Environment, Fatal> {
        Environment::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from any variable lookup (the process environment in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Environment, Fatal> {
        let var = |name: &str, default: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let mysql_url = var("SES_REPORT_MYSQL_URL", DEFAULT_MYSQL_URL);
        let mongo_url = var("SES_REPORT_MONGO_URL", DEFAULT_MONGO_URL);
        redact::register_url(&mysql_url);
        redact::register_url(&mongo_url);
        if !mysql_url.starts_with("mysql://") {
            return Err(Fatal::new(format!(
                "SES_REPORT_MYSQL_URL must look like mysql://user:password@host:3306/database, got {}",
                redact::url(&mysql_url)
            )));
        }
        if !(mongo_url.starts_with("mongodb://") || mongo_url.starts_with("mongodb+srv://")) {
            return Err(Fatal::new(format!(
                "SES_REPORT_MONGO_URL must start with mongodb:// or mongodb+srv://, got {}",
                redact::url(&mongo_url)
            )));
        }
        let zone_name = var("SES_REPORT_TZ", "UTC");
        let zone =
            Zone::named(&zone_name).map_err(|e| Fatal::new(format!("SES_REPORT_TZ: {e}")))?;
        let seconds = |name: &str, default: u64| -> Result<Duration, Fatal> {
            let text = var(name, &default.to_string());
            match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
                _ => Err(Fatal::new(format!(
                    "{name} must be a whole number of seconds above 0, got {text:?}"
                ))),
            }
        };
        let now = match get("SES_REPORT_NOW").filter(|v| !v.trim().is_empty()) {
            None => OffsetDateTime::now_utc(),
            Some(text) => timestamps::parse(&text).map_err(|e| {
                Fatal::new(format!("SES_REPORT_NOW must be an RFC 3339 instant: {e}"))
            })?,
        };
        Ok(Environment {
            mysql_url,
            mongo_url,
            mongo_db: var("SES_REPORT_MONGO_DB", "ses"),
            mongo_collection: var("SES_REPORT_MONGO_COLLECTION", "sesevents"),
            zone,
            connect_timeout: seconds("SES_REPORT_CONNECT_TIMEOUT_SECS", 5)?,
            io_timeout: seconds("SES_REPORT_IO_TIMEOUT_SECS", 60)?,
            retries: {
                let text = var("SES_REPORT_RETRIES", "3");
                text.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 20)
                    .ok_or_else(|| {
                        Fatal::new(format!(
                            "SES_REPORT_RETRIES must be a whole number from 0 to 20, got {text:?}"
                        ))
                    })?
            },
            now,
        })
    }
}

/// Which notifications an ingest reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowChoice {
    /// `--date` or `--from`/`--to`.
    Fixed(Window),
    /// No window options: continue from the runs table.
    CatchUp { lookback_hours: u32, max_days: u32 },
    /// `--file` without window options: every line.
    Everything,
}

/// Where notifications come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Mongo,
    /// A path, or `-` for standard input.
    File(String),
    /// The unresolved rows of `aws_report_failures` (`ses-report retry`).
    Failures,
}

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub env: Environment,
    pub window: WindowChoice,
    pub source: Source,
    pub dry_run: bool,
    pub batch_size: usize,
}

/// The largest batch: bounds memory and statement size.
pub const MAX_BATCH_SIZE: usize = 10_000;

impl IngestConfig {
    pub fn new(args: &IngestArgs, mut env: Environment) -> Result<IngestConfig, Fatal> {
        if let Some(tz) = &args.tz {
            env.zone = Zone::named(tz).map_err(|e| Fatal::usage(format!("--tz: {e}")))?;
        }
        if args.batch_size == 0 || args.batch_size > MAX_BATCH_SIZE {
            return Err(Fatal::usage(format!(
                "--batch-size must be between 1 and {MAX_BATCH_SIZE}"
            )));
        }
        let zone = &env.zone;
        let usage = |flag: &str, e: String| Fatal::usage(format!("{flag}: {e}"));
        let source = match &args.file {
            Some(path) if path.trim().is_empty() => {
                return Err(Fatal::usage("--file needs a path, or - for stdin"))
            }
            Some(path) => Source::File(path.clone()),
            None => Source::Mongo,
        };
        let window = match (&args.date, &args.from, &args.to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Fatal::usage("give either --date or --from/--to, not both"))
            }
            (Some(date), None, None) => {
                let date = window::parse_date(date).map_err(|e| usage("--date", e))?;
                WindowChoice::Fixed(zone.day(date).map_err(|e| usage("--date", e))?)
            }
            (None, None, Some(_)) => return Err(Fatal::usage("--to needs --from")),
            (None, Some(from), to) => {
                let from = window::parse_bound(from, zone).map_err(|e| usage("--from", e))?;
                let to = match to {
                    Some(to) => window::parse_bound(to, zone).map_err(|e| usage("--to", e))?,
                    None => zone
                        .start_of(zone.date_of(env.now).map_err(|e| usage("--from", e))?)
                        .map_err(|e| usage("--from", e))?,
                };
                if to < from {
                    return Err(Fatal::usage(format!(
                        "--to ({}) is before --from ({})",
                        timestamps::display(to),
                        timestamps::display(from)
                    )));
                }
                WindowChoice::Fixed(Window { from, to })
            }
            (None, None, None) => match source {
                Source::File(_) | Source::Failures => WindowChoice::Everything,
                Source::Mongo => {
                    if args.max_days == 0 {
                        return Err(Fatal::usage("--max-days must be at least 1"));
                    }
                    WindowChoice::CatchUp {
                        lookback_hours: args.lookback_hours,
                        max_days: args.max_days,
                    }
                }
            },
        };
        Ok(IngestConfig {
            env,
            window,
            source,
            dry_run: args.dry_run,
            batch_size: args.batch_size,
        })
    }

    /// `ses-report retry`: every unresolved failure, with ingest's accounting.
    pub fn retry(
        env: Environment,
        dry_run: bool,
        batch_size: usize,
    ) -> Result<IngestConfig, Fatal> {
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
            return Err(Fatal::usage(format!(
                "--batch-size must be between 1 and {MAX_BATCH_SIZE}"
            )));
        }
        Ok(IngestConfig {
            env,
            window: WindowChoice::Everything,
            source: Source::Failures,
            dry_run,
            batch_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::macros::datetime;

    fn env_with(vars: &[(&str, &str)]) -> Result<Environment, Fatal> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::from_lookup(|name| map.get(name).cloned())
    }

    fn args(list: &[&str]) -> IngestArgs {
        use argh::FromArgs;
        IngestArgs::from_args(&["ingest"], list).unwrap()
    }

    #[test]
    fn defaults_apply() {
        let env = env_with(&[]).unwrap();
        assert_eq!(env.mysql_url, DEFAULT_MYSQL_URL);
        assert_eq!(env.mongo_db, "ses");
        assert_eq!(env.mongo_collection, "sesevents");
        assert_eq!(env.zone.name(), "UTC");
        assert_eq!(env.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn errors_name_the_variable_and_hide_the_password() {
        let e = env_with(&[("SES_REPORT_MYSQL_URL", "postgres://u:hunter2@h/d")]).unwrap_err();
        assert!(e.to_string().contains("SES_REPORT_MYSQL_URL"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = env_with(&[("SES_REPORT_TZ", "Nowhere/Land")]).unwrap_err();
        assert!(e.to_string().contains("SES_REPORT_TZ"), "{e}");
        let e = env_with(&[("SES_REPORT_IO_TIMEOUT_SECS", "soon")]).unwrap_err();
        assert!(e.to_string().contains("SES_REPORT_IO_TIMEOUT_SECS"), "{e}");
    }

    #[test]
    fn window_options() {
        let env = env_with(&[("SES_REPORT_NOW", "2026-11-28T07:00:00Z")]).unwrap();
        let c = IngestConfig::new(
            &args(&["--date", "2026-11-27", "--tz", "America/New_York"]),
            env.clone(),
        )
        .unwrap();
        assert_eq!(
            c.window,
            WindowChoice::Fixed(Window {
                from: datetime!(2026-11-27 05:00 UTC),
                to: datetime!(2026-11-28 05:00 UTC)
            })
        );
        let c = IngestConfig::new(&args(&["--from", "2026-11-20"]), env.clone()).unwrap();
        assert_eq!(
            c.window,
            WindowChoice::Fixed(Window {
                from: datetime!(2026-11-20 0:00 UTC),
                to: datetime!(2026-11-28 0:00 UTC)
            })
        );
        let c = IngestConfig::new(&args(&[]), env.clone()).unwrap();
        assert_eq!(
            c.window,
            WindowChoice::CatchUp {
                lookback_hours: 24,
                max_days: 7
            }
        );
        let c = IngestConfig::new(&args(&["--file", "x.ndjson"]), env.clone()).unwrap();
        assert_eq!(c.window, WindowChoice::Everything);
        for bad in [
            vec!["--date", "2026-11-27", "--from", "2026-11-01"],
            vec!["--to", "2026-11-27"],
            vec!["--from", "2026-11-27", "--to", "2026-11-01"],
            vec!["--date", "tomorrow"],
            vec!["--batch-size", "0"],
        ] {
            let e = IngestConfig::new(&args(&bad), env.clone()).unwrap_err();
            assert_eq!(e.exit(), crate::error::Exit::Usage, "{bad:?}: {e}");
        }
    }
}

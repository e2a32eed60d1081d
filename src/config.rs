//! Configuration, built once per command from the command line and the environment, before
//! anything connects: every usage error (exit 2) and every bad setting (exit 1, naming the
//! variable) is found here, so that a wrong option never depends on whether a server is up.
//!
//! The environment is read in one place (`Environment::from_lookup`). Connection URLs come only
//! from the environment, never argv, because they hold passwords; their passwords are registered
//! with `redact` as soon as they are read.

use std::io::IsTerminal;
use std::time::Duration;

use time::{Date, OffsetDateTime};

use crate::cli::{
    Cli, Command, DoctorArgs, FailuresArgs, ForgetArgs, IngestArgs, PruneArgs, ReportArgs,
    RetryArgs, RollupArgs, StatsArgs, SuppressionsArgs,
};
use crate::domain::erasure::ErasureKey;
use crate::domain::figures::GroupBy;
use crate::domain::partition::Partition;
use crate::domain::retention::Cutoffs;
use crate::domain::suppression::{Rules, RECENT_KEPT};
use crate::domain::timestamps;
use crate::domain::verdict::{self, Thresholds, Verdict};
use crate::domain::window::{self, BoundError, Window};
use crate::domain::zone::Zone;
use crate::error::{Error, Result};
use crate::redact;

/// Which failures `failures` lists (`store::failures::failure_rows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Unresolved and not dismissed: what `retry` applies again.
    Open,
    /// Dismissed by a person, with their reason.
    Dismissed,
    /// Every row, resolved and dismissed ones included.
    All,
}

/// How a reading command prints: an aligned table, CSV or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

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
    /// How long an ingest may run before it stops (`SES_REPORT_DEADLINE_SECS`): a server that
    /// accepts connections and then never answers cannot hold cron's job for ever.
    pub deadline: Duration,
    /// "Now", for the catch-up window: `SES_REPORT_NOW` lets tests and backfills pin it.
    pub now: OffsetDateTime,
    /// `SES_REPORT_METRICS_FILE`: the node_exporter textfile `ingest`, `retry` and `stats` write
    /// (their `--metrics-file` overrides it).
    pub metrics_file: Option<String>,
    /// `SES_REPORT_PING_URL`: a healthchecks.io-style URL pinged by `ingest` and `retry`.
    pub ping_url: Option<String>,
    /// Where user accounts are looked up (`SES_REPORT_USERS_TABLE`, `_ID_COLUMN`, `_EMAIL_COLUMN`).
    pub users: UsersTable,
    /// `SES_REPORT_REPORT_TYPE_NAMES` (`1=welcome,2=newsletter`): what the `report_type`
    /// numbers mean, for the reports people read.
    pub report_type_names: std::collections::BTreeMap<String, String>,
    /// `SES_REPORT_ERASURE_KEY`: the secret of the keyed hashes of erased addresses
    /// (docs/privacy.md). Needed by `forget`, by `suppressions --check` of an erased address, and
    /// by every ingest once an address was erased.
    pub erasure_key: Option<ErasureKey>,
    /// `SES_REPORT_STORE_SUBJECTS` (default true): false keeps subjects out of every table.
    pub store_subjects: bool,
}

/// `1=welcome,2=newsletter` as a map; a part without `=`, or with an empty side, is an error.
fn report_type_names(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let mut names = std::collections::BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((number, name))
                if number.trim().parse::<i64>().is_ok() && !name.trim().is_empty() =>
            {
                names.insert(number.trim().to_string(), name.trim().to_string());
            }
            _ => {
                return Err(Error::config(
                    "SES_REPORT_REPORT_TYPE_NAMES",
                    format!("{part:?}: want NUMBER=NAME pairs separated by commas, e.g. 1=welcome,2=newsletter"),
                ))
            }
        }
    }
    Ok(names)
}

/// The table of user accounts recipients are linked to: `auth_users (id, common_email)` in the
/// report database unless configured, possibly in another schema of the same server (`db.table`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsersTable {
    /// The schema, when not the report database's.
    pub schema: Option<String>,
    pub table: String,
    pub id_column: String,
    pub email_column: String,
}

impl Default for UsersTable {
    fn default() -> UsersTable {
        UsersTable {
            schema: None,
            table: "auth_users".into(),
            id_column: "id".into(),
            email_column: "common_email".into(),
        }
    }
}

impl UsersTable {
    /// `table` or `schema.table`, and the two columns; each name plain (letters, digits, `_`,
    /// `$`), as it is put in the SQL between backquotes.
    pub fn parse(
        table: &str,
        id_column: &str,
        email_column: &str,
    ) -> std::result::Result<UsersTable, (&'static str, String)> {
        let plain = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        let (schema, name) = match table.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, table),
        };
        if !plain(name) || schema.is_some_and(|s| !plain(s)) {
            return Err((
                "SES_REPORT_USERS_TABLE",
                format!("{table:?} is no table name: give `table` or `database.table`, letters, digits and _ only"),
            ));
        }
        for (variable, column) in [
            ("SES_REPORT_USERS_ID_COLUMN", id_column),
            ("SES_REPORT_USERS_EMAIL_COLUMN", email_column),
        ] {
            if !plain(column) {
                return Err((
                    variable,
                    format!("{column:?} is no column name: letters, digits and _ only"),
                ));
            }
        }
        Ok(UsersTable {
            schema: schema.map(str::to_string),
            table: name.to_string(),
            id_column: id_column.to_string(),
            email_column: email_column.to_string(),
        })
    }

    /// The table as SQL names it (`\`db\`.\`auth_users\``).
    pub fn sql_name(&self) -> String {
        match &self.schema {
            Some(schema) => format!("`{schema}`.`{}`", self.table),
            None => format!("`{}`", self.table),
        }
    }
}

impl Environment {
    pub fn from_process() -> Result<Environment> {
        Environment::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from any variable lookup (the process environment in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Environment> {
        let vars = Vars(get);
        let (mysql_url, mongo_url) = vars.database_urls()?;
        let ping_url = vars.ping_url()?;
        let zone_name = vars.var("SES_REPORT_TZ", "UTC")?;
        let zone =
            Zone::named(&zone_name).map_err(|e| Error::config("SES_REPORT_TZ", e.to_string()))?;
        let now = vars.now()?;
        Ok(Environment {
            mysql_url,
            mongo_url,
            mongo_db: vars.var("SES_REPORT_MONGO_DB", "ses")?,
            mongo_collection: vars.var("SES_REPORT_MONGO_COLLECTION", "sesevents")?,
            zone,
            connect_timeout: vars.seconds("SES_REPORT_CONNECT_TIMEOUT_SECS", 5)?,
            io_timeout: vars.seconds("SES_REPORT_IO_TIMEOUT_SECS", 60)?,
            deadline: vars.seconds("SES_REPORT_DEADLINE_SECS", 6 * 3600)?,
            retries: vars.retries()?,
            now,
            metrics_file: vars.optional("SES_REPORT_METRICS_FILE"),
            ping_url,
            users: UsersTable::parse(
                &vars.var("SES_REPORT_USERS_TABLE", "auth_users")?,
                &vars.var("SES_REPORT_USERS_ID_COLUMN", "id")?,
                &vars.var("SES_REPORT_USERS_EMAIL_COLUMN", "common_email")?,
            )
            .map_err(|(variable, problem)| Error::config(variable, problem))?,
            report_type_names: report_type_names(&vars.var("SES_REPORT_REPORT_TYPE_NAMES", "")?)?,
            erasure_key: vars.erasure_key()?,
            store_subjects: vars.switch("SES_REPORT_STORE_SUBJECTS", true)?,
        })
    }
}

/// The environment's variables, read through one lookup, each checked as it is read.
struct Vars<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// A setting with a default is unset or has a value: set but blank is a mistake (a typo'd
    /// `SES_REPORT_MONGO_DB=` would otherwise read the default database every night).
    fn var(&self, name: &'static str, default: &str) -> Result<String> {
        match (self.0)(name) {
            None => Ok(default.to_string()),
            Some(v) if v.trim().is_empty() => Err(Error::config(
                name,
                format!(
                    "is set but empty: give it a value, or unset it for the default ({})",
                    redact::url(default)
                ),
            )),
            Some(v) => Ok(v),
        }
    }

    /// A setting without a default: unset or blank is none.
    fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// The two database URLs, registered for redaction before anything can print them.
    fn database_urls(&self) -> Result<(String, String)> {
        let mysql_url = self.var("SES_REPORT_MYSQL_URL", DEFAULT_MYSQL_URL)?;
        let mongo_url = self.var("SES_REPORT_MONGO_URL", DEFAULT_MONGO_URL)?;
        redact::register_url(&mysql_url);
        redact::register_url(&mongo_url);
        if !mysql_url.starts_with("mysql://") {
            return Err(Error::config(
                "SES_REPORT_MYSQL_URL",
                format!(
                    "must look like mysql://user:password@host:3306/database, got {}",
                    redact::url(&mysql_url)
                ),
            ));
        }
        if !(mongo_url.starts_with("mongodb://") || mongo_url.starts_with("mongodb+srv://")) {
            return Err(Error::config(
                "SES_REPORT_MONGO_URL",
                format!(
                    "must start with mongodb:// or mongodb+srv://, got {}",
                    redact::url(&mongo_url)
                ),
            ));
        }
        Ok((mysql_url, mongo_url))
    }

    fn ping_url(&self) -> Result<Option<String>> {
        let ping_url = self.optional("SES_REPORT_PING_URL");
        if let Some(url) = &ping_url {
            redact::register_url_path(url);
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                // Not echoed: a ping URL's path is the check's secret token.
                return Err(Error::config(
                    "SES_REPORT_PING_URL",
                    "must be an http:// or https:// URL (its value is not shown: it holds the check's token)",
                ));
            }
        }
        Ok(ping_url)
    }

    /// The erasure key, registered as a secret before anything can print it. Not echoed in
    /// any message.
    fn erasure_key(&self) -> Result<Option<ErasureKey>> {
        let Some(secret) = (self.0)("SES_REPORT_ERASURE_KEY") else {
            return Ok(None);
        };
        redact::register_secret(&secret);
        if secret.trim().is_empty() {
            return Err(Error::config(
                "SES_REPORT_ERASURE_KEY",
                "is set but empty: give it the key addresses are erased with, or unset it",
            ));
        }
        ErasureKey::new(&secret)
            .map(Some)
            .map_err(|problem| Error::config("SES_REPORT_ERASURE_KEY", problem))
    }

    /// A true/false setting (`true`, `false`, `1`, `0`, `yes`, `no`).
    fn switch(&self, name: &'static str, default: bool) -> Result<bool> {
        let text = self.var(name, if default { "true" } else { "false" })?;
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(Error::config(
                name,
                format!("must be true or false, got {text:?}"),
            )),
        }
    }

    fn seconds(&self, name: &'static str, default: u64) -> Result<Duration> {
        let text = self.var(name, &default.to_string())?;
        match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
            _ => Err(Error::config(
                name,
                format!("must be a whole number of seconds above 0, got {text:?}"),
            )),
        }
    }

    fn retries(&self) -> Result<u32> {
        let text = self.var("SES_REPORT_RETRIES", "3")?;
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 20)
            .ok_or_else(|| {
                Error::config(
                    "SES_REPORT_RETRIES",
                    format!("must be a whole number from 0 to 20, got {text:?}"),
                )
            })
    }

    /// The program's "now": `SES_REPORT_NOW` pins it (tests, reruns of a past day).
    fn now(&self) -> Result<OffsetDateTime> {
        match self.optional("SES_REPORT_NOW") {
            None => Ok(OffsetDateTime::now_utc()),
            Some(text) => timestamps::parse(&text).map_err(|e| {
                Error::config(
                    "SES_REPORT_NOW",
                    format!("must be an RFC 3339 instant: {e}"),
                )
            }),
        }
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
    /// `--partition K/N` (the whole stream by default).
    pub partition: Partition,
    /// `--quiet`: the summary to the log; stdout only when a person is needed.
    pub quiet: bool,
}

/// The largest batch: bounds memory and statement size.
pub const MAX_BATCH_SIZE: usize = 10_000;

impl IngestConfig {
    pub fn new(args: &IngestArgs, mut env: Environment) -> Result<IngestConfig> {
        env.metrics_file = metrics_file(&args.metrics_file, env.metrics_file)?;
        if let Some(tz) = &args.tz {
            env.zone = zone_option(tz)?;
        }
        let batch_size = batch_size(args.batch_size)?;
        let zone = &env.zone;
        let source = match &args.file {
            Some(path) if path.trim().is_empty() => {
                return Err(Error::usage("--file needs a path, or - for stdin"))
            }
            Some(path) => Source::File(path.clone()),
            None => Source::Mongo,
        };
        let window = match window_options(&args.date, &args.from, &args.to, zone, env.now)? {
            Some(w) => WindowChoice::Fixed(not_after_now(w, env.now)?),
            None => match source {
                Source::File(_) | Source::Failures => WindowChoice::Everything,
                Source::Mongo => {
                    if args.max_days == 0 {
                        return Err(Error::usage("--max-days must be at least 1"));
                    }
                    WindowChoice::CatchUp {
                        lookback_hours: args.lookback_hours,
                        max_days: args.max_days,
                    }
                }
            },
        };
        let partition = partition_option(&args.partition)?;
        env.metrics_file = env
            .metrics_file
            .map(|path| metrics_file_of(&path, partition));
        Ok(IngestConfig {
            env,
            window,
            source,
            dry_run: args.dry_run,
            batch_size,
            partition,
            quiet: args.quiet,
        })
    }

    /// `ses-report retry`: every unresolved failure, with ingest's accounting.
    pub fn retry(args: &RetryArgs, mut env: Environment) -> Result<IngestConfig> {
        env.metrics_file = metrics_file(&args.metrics_file, env.metrics_file)?;
        let partition = partition_option(&args.partition)?;
        env.metrics_file = env
            .metrics_file
            .map(|path| metrics_file_of(&path, partition));
        Ok(IngestConfig {
            env,
            window: WindowChoice::Everything,
            source: Source::Failures,
            dry_run: args.dry_run,
            batch_size: batch_size(args.batch_size)?,
            partition,
            quiet: args.quiet,
        })
    }
}

/// A partition worker's own metrics file beside the configured one (`ses_report.prom` ->
/// `ses_report.1of4.prom`), so that N workers sharing one configuration do not overwrite each
/// other's figures; node_exporter reads every `*.prom` file of its directory.
fn metrics_file_of(path: &str, partition: Partition) -> String {
    if partition.is_whole() {
        return path.to_string();
    }
    let tag = partition.tag();
    match path.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() && !extension.contains('/') => {
            format!("{stem}.{tag}.{extension}")
        }
        _ => format!("{path}.{tag}"),
    }
}

fn partition_option(option: &Option<String>) -> Result<Partition> {
    match option {
        None => Ok(Partition::WHOLE),
        Some(text) => Partition::parse(text).map_err(Error::usage),
    }
}

/// `--metrics-file`, else `SES_REPORT_METRICS_FILE`; its directory must exist (the file is
/// replaced by a rename within it).
fn metrics_file(option: &Option<String>, from_env: Option<String>) -> Result<Option<String>> {
    let Some(path) = option.clone().or(from_env) else {
        return Ok(None);
    };
    let dir = std::path::Path::new(&path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if path.trim().is_empty() || path.ends_with('/') || !dir.is_dir() {
        return Err(Error::usage(format!(
            "--metrics-file {path:?}: want a file in an existing directory (node_exporter's --collector.textfile.directory)"
        )));
    }
    Ok(Some(path))
}

/// A window never reaches past now: notifications after now do not exist yet, and a run that
/// recorded a future end would make catch-up start after data it never read. A window that
/// starts after now is refused; one that ends after now is read up to now.
fn not_after_now(window: Window, now: OffsetDateTime) -> Result<Window> {
    if window.from >= now {
        return Err(Error::usage(format!(
            "the window starts at {}, after now ({}): there is nothing to read yet",
            timestamps::display(window.from),
            timestamps::display(now)
        )));
    }
    if window.to > now {
        log::info!(
            "the window ends at {}, after now: reading up to {}",
            timestamps::display(window.to),
            timestamps::display(now)
        );
        return Ok(Window {
            from: window.from,
            to: now,
        });
    }
    Ok(window)
}

fn batch_size(n: usize) -> Result<usize> {
    if n == 0 || n > MAX_BATCH_SIZE {
        return Err(Error::usage(format!(
            "--batch-size must be between 1 and {MAX_BATCH_SIZE}"
        )));
    }
    Ok(n)
}

/// The window `--date` or `--from`/`--to` give (`--to` defaults to the start of today), or `None`
/// when neither is given: the one reading of these options, for ingest and the reading commands.
fn window_options(
    date: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
    zone: &Zone,
    now: OffsetDateTime,
) -> Result<Option<Window>> {
    match (date, from, to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err(Error::usage("give either --date or --from/--to, not both"))
        }
        (Some(date), None, None) => Ok(Some(Window::day(
            zone,
            window::parse_date(date).map_err(bad("--date"))?,
        ))),
        (None, None, Some(_)) => Err(Error::usage("--to needs --from")),
        (None, Some(from), to) => {
            let from = window::parse_bound(from, zone).map_err(bad("--from"))?;
            let to_given = to.is_some();
            let to = match to {
                Some(to) => window::parse_bound(to, zone).map_err(bad("--to"))?,
                None => zone.start_of(zone.date_of(now)),
            };
            if to < from {
                let named = if to_given {
                    format!("--to ({})", timestamps::display(to))
                } else {
                    format!(
                        "the window's end, --to's default (the start of today in {}: {})",
                        zone.name(),
                        timestamps::display(to)
                    )
                };
                return Err(Error::usage(format!(
                    "{named} is before --from ({}): give a --from before it, or a later --to",
                    timestamps::display(from)
                )));
            }
            Ok(Some(Window { from, to }))
        }
        (None, None, None) => Ok(None),
    }
}

/// A usage error for `flag` from a bound that cannot be read.
fn bad(flag: &'static str) -> impl Fn(BoundError) -> Error {
    move |e| Error::usage(format!("{flag}: {e}"))
}

fn zone_option(tz: &str) -> Result<Zone> {
    Zone::named(tz).map_err(|e| Error::usage(format!("--tz: {e}")))
}

/// One of a fixed set of option values, or a usage error listing them.
fn choice<T: Copy>(flag: &str, text: &str, options: &[(&str, T)]) -> Result<T> {
    options
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            Error::usage(format!("{flag} {text:?}: want {}", names.join(", ")))
        })
}

const CSV_OR_JSON: [(&str, Format); 2] = [("csv", Format::Csv), ("json", Format::Json)];

/// The whole days a reading command covers, `[first, end)`, in `zone`.
#[derive(Clone, Debug)]
pub struct Days {
    pub zone: Zone,
    pub first: Date,
    pub end: Date,
}

impl Days {
    /// `--date`, `--from`/`--to` (instants are widened to the days that contain them), or by
    /// default the `default_days` full days before today.
    fn from_options(
        date: &Option<String>,
        from: &Option<String>,
        to: &Option<String>,
        tz: &Option<String>,
        env: &Environment,
        default_days: i64,
    ) -> Result<Days> {
        let zone = match tz {
            Some(tz) => zone_option(tz)?,
            None => env.zone.clone(),
        };
        let today = zone.date_of(env.now);
        let (first, end) = match window_options(date, from, to, &zone, env.now)? {
            // Whole days: the day of `from`, to the day `to` falls in (itself when at midnight).
            Some(w) => {
                let day = zone.date_of(w.to);
                let end = if zone.start_of(day) == w.to {
                    day
                } else {
                    day.next_day().unwrap_or(day)
                };
                (zone.date_of(w.from), end)
            }
            None => (today - time::Duration::days(default_days), today),
        };
        Ok(Days { zone, first, end })
    }

    /// Every day of the range, in order.
    pub fn dates(&self) -> std::collections::BTreeSet<Date> {
        match self.end.previous_day() {
            Some(last) if last >= self.first => {
                crate::domain::window::days_between(self.first, last)
            }
            _ => std::collections::BTreeSet::new(),
        }
    }

    /// How reports name the period: `2026-11-27 (UTC)` or `2026-11-01 to 2026-11-27 (UTC)`.
    pub fn period(&self) -> String {
        let last = self.end.previous_day().unwrap_or(self.end);
        if last <= self.first {
            format!("{} ({})", self.first, self.zone.name())
        } else {
            format!("{} to {last} ({})", self.first, self.zone.name())
        }
    }
}

/// `ses-report rollup`.
#[derive(Clone, Debug)]
pub struct RollupConfig {
    pub env: Environment,
    pub days: Days,
}

impl RollupConfig {
    pub fn new(args: &RollupArgs, env: Environment) -> Result<RollupConfig> {
        if args.date.is_none() && args.from.is_none() {
            return Err(Error::usage("rollup needs --date or --from"));
        }
        let days = Days::from_options(&args.date, &args.from, &args.to, &args.tz, &env, 0)?;
        Ok(RollupConfig { env, days })
    }
}

/// A group's verdict thresholds from `--min-volume`, `--block-warning` and `--block-critical`.
fn thresholds(
    min_volume: u64,
    warning: &Option<String>,
    critical: &Option<String>,
) -> Result<Thresholds> {
    let read = |name: &str, given: &Option<String>, default: u64| match given {
        None => Ok(default),
        Some(text) => verdict::parse_percent_bp(text).ok_or_else(|| {
            Error::usage(format!(
                "{name} {text:?}: want a percentage from 0 to 100, such as 2 or 0.5"
            ))
        }),
    };
    let block_warning_bp = read("--block-warning", warning, Thresholds::BLOCK_WARNING_BP)?;
    let block_critical_bp = read("--block-critical", critical, Thresholds::BLOCK_CRITICAL_BP)?;
    if block_warning_bp > block_critical_bp {
        return Err(Error::usage(format!(
            "--block-warning ({}%) is above --block-critical ({}%): a warning must come first",
            block_warning_bp as f64 / 100.0,
            block_critical_bp as f64 / 100.0
        )));
    }
    Ok(Thresholds {
        min_volume,
        block_warning_bp,
        block_critical_bp,
    })
}

/// `ses-report forget`.
#[derive(Clone, Debug)]
pub struct ForgetConfig {
    pub env: Environment,
    /// The key, checked present before anything connects.
    pub key: ErasureKey,
    /// The addresses given and read from `--file`, normalized, each once, in order.
    pub addresses: Vec<String>,
    pub user_id: Option<u64>,
    pub dry_run: bool,
}

impl ForgetConfig {
    pub fn new(args: &ForgetArgs, env: Environment) -> Result<ForgetConfig> {
        let Some(key) = env.erasure_key.clone() else {
            return Err(Error::usage(
                "forget needs SES_REPORT_ERASURE_KEY: erased addresses are kept (suppressed, and out of every later ingest) only as keyed hashes under it. Set it to a secret of at least 16 bytes (e.g. `openssl rand -hex 32`), keep it with the database credentials, and give the same key to every ingest",
            ));
        };
        let mut given: Vec<(String, String)> = args
            .addresses
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("argument {}", i + 1), a.clone()))
            .collect();
        if let Some(path) = &args.file {
            given.extend(read_address_file(path)?);
        }
        if given.is_empty() && args.user_id.is_none() {
            return Err(Error::usage(
                "forget needs addresses, --file FILE or --user-id N",
            ));
        }
        let mut addresses: Vec<String> = Vec::new();
        for (place, address) in given {
            let normalized = crate::domain::text::normalize_address(&address);
            let valid = normalized
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
            if !valid {
                return Err(Error::usage(format!(
                    "{place} is no email address (want local@domain.tld)"
                )));
            }
            if !addresses.contains(&normalized) {
                addresses.push(normalized);
            }
        }
        Ok(ForgetConfig {
            env,
            key,
            addresses,
            user_id: args.user_id,
            dry_run: args.dry_run,
        })
    }
}

/// The addresses of a file (`-`: stdin), one a line, with where each was (`line N of FILE`).
fn read_address_file(path: &str) -> Result<Vec<(String, String)>> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Error::io("reading addresses from stdin", e))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading addresses from {path}"), e))?
    };
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (format!("line {} of {path}", i + 1), l.to_string()))
        .collect())
}

/// `ses-report stats`.
#[derive(Clone, Debug)]
pub struct StatsConfig {
    pub env: Environment,
    pub days: Days,
    pub by: Vec<GroupBy>,
    pub format: Format,
    pub thresholds: Thresholds,
    /// `--check`: the least verdict that makes the command print and fail.
    pub check: Option<Verdict>,
    /// `--format` was given: with `--check`, offending groups in that format, not as lines.
    pub format_given: bool,
    /// `--allow-empty`: with `--check`, a period without events is no alert.
    pub allow_empty: bool,
}

impl StatsConfig {
    pub fn new(args: &StatsArgs, mut env: Environment) -> Result<StatsConfig> {
        env.metrics_file = metrics_file(&args.metrics_file, env.metrics_file)?;
        let days = Days::from_options(&args.date, &args.from, &args.to, &args.tz, &env, 7)?;
        let by = args
            .by
            .iter()
            .map(|b| {
                GroupBy::parse(b).ok_or_else(|| {
                    let names: Vec<&str> = GroupBy::OPTIONS.iter().map(|(n, _)| *n).collect();
                    Error::usage(format!(
                        "--by {b:?}: want {}, or tag:NAME for a custom mail tag",
                        names.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let format = match &args.format {
            Some(f) => choice(
                "--format",
                f,
                &[
                    ("table", Format::Table),
                    ("csv", Format::Csv),
                    ("json", Format::Json),
                ],
            )?,
            None if std::io::stdout().is_terminal() => Format::Table,
            None => Format::Csv,
        };
        let fail_on = choice(
            "--fail-on",
            &args.fail_on,
            &[
                ("critical", Verdict::Critical),
                ("warning", Verdict::Warning),
            ],
        )?;
        Ok(StatsConfig {
            env,
            days,
            by,
            format,
            thresholds: thresholds(args.min_volume, &args.block_warning, &args.block_critical)?,
            check: args.check.then_some(fail_on),
            format_given: args.format.is_some(),
            allow_empty: args.allow_empty,
        })
    }
}

/// `ses-report suppressions`.
#[derive(Clone, Debug)]
pub struct SuppressionsConfig {
    pub env: Environment,
    pub format: Format,
    /// Only evidence from this instant on (`None`: all of it).
    pub since: Option<OffsetDateTime>,
    pub rules: Rules,
    /// `--reconcile FILE`: SES's list to compare with.
    pub reconcile: Option<String>,
    /// `--check ADDRESS`: answer for this address only.
    pub check: Option<String>,
}

impl SuppressionsConfig {
    pub fn new(args: &SuppressionsArgs, env: Environment) -> Result<SuppressionsConfig> {
        let format = choice("--format", &args.format, &CSV_OR_JSON)?;
        let since = match &args.since {
            Some(s) => Some(window::parse_bound(s, &env.zone).map_err(bad("--since"))?),
            None => None,
        };
        let kept = RECENT_KEPT;
        if args.soft_limit == 0 || args.soft_limit as usize > kept {
            return Err(Error::usage(format!(
                "--soft-limit must be from 1 to {kept}: the suppression ledger keeps the {kept} latest soft bounces of each address, so a larger limit could never be reached"
            )));
        }
        let rules = Rules {
            include_ses_suppressed: args.include_ses_suppressed,
            soft_limit: args.soft_limit,
            soft_window: time::Duration::days(args.soft_expire_days.max(1) as i64),
            sunset: match args.sunset_days {
                Some(0) => return Err(Error::usage("--sunset-days must be at least 1")),
                Some(days) => Some((
                    time::Duration::days(days as i64),
                    args.sunset_min_deliveries.max(1),
                )),
                None => None,
            },
            now: env.now,
        };
        let reconcile = match &args.reconcile {
            Some(path) if path.trim().is_empty() => {
                return Err(Error::usage(
                    "--reconcile needs the path of the SES JSON (or - for stdin)",
                ))
            }
            other => other.clone(),
        };
        let check = match &args.check {
            None => None,
            Some(a) if !crate::domain::text::normalize_address(a).contains('@') => {
                return Err(Error::usage("--check needs an email address"))
            }
            Some(_) if reconcile.is_some() => {
                return Err(Error::usage(
                    "--check and --reconcile answer different questions: give one",
                ))
            }
            Some(a) => Some(a.clone()),
        };
        Ok(SuppressionsConfig {
            env,
            format,
            since,
            rules,
            reconcile,
            check,
        })
    }
}

/// `ses-report report --html FILE`.
#[derive(Clone, Debug)]
pub struct ReportConfig {
    pub env: Environment,
    pub days: Days,
    pub html: String,
    pub thresholds: Thresholds,
}

impl ReportConfig {
    pub fn new(args: &ReportArgs, env: Environment) -> Result<ReportConfig> {
        if args.html.trim().is_empty() {
            return Err(Error::usage("--html needs a file name"));
        }
        let days = Days::from_options(&args.date, &args.from, &args.to, &args.tz, &env, 7)?;
        Ok(ReportConfig {
            env,
            days,
            html: args.html.clone(),
            thresholds: thresholds(args.min_volume, &args.block_warning, &args.block_critical)?,
        })
    }
}

/// `ses-report failures`.
#[derive(Clone, Debug)]
pub struct FailuresConfig {
    pub env: Environment,
    pub format: Format,
    pub listing: Listing,
    pub documents: bool,
    /// `--dismiss ID... --reason TEXT`: dismiss these instead of listing.
    pub dismiss: Option<(Vec<u64>, String)>,
}

impl FailuresConfig {
    pub fn new(args: &FailuresArgs, env: Environment) -> Result<FailuresConfig> {
        let format = choice(
            "--format",
            &args.format,
            &[
                ("csv", Format::Csv),
                ("json", Format::Json),
                ("table", Format::Table),
            ],
        )?;
        let listing =
            match (args.all, args.dismissed) {
                (true, true) => return Err(Error::usage(
                    "--all already lists the dismissed failures: give one of --all, --dismissed",
                )),
                (true, false) => Listing::All,
                (false, true) => Listing::Dismissed,
                (false, false) => Listing::Open,
            };
        let dismiss = match (args.dismiss.is_empty(), &args.reason) {
            (true, None) => None,
            (true, Some(_)) => return Err(Error::usage("--reason goes with --dismiss ID")),
            (false, None) => {
                return Err(Error::usage(
                    "--dismiss needs --reason TEXT: why the failure can never apply (it is kept with the row)",
                ))
            }
            (false, Some(reason)) if reason.trim().is_empty() => {
                return Err(Error::usage("--reason must say why"))
            }
            (false, Some(reason)) => {
                let ids = args
                    .dismiss
                    .iter()
                    .map(|id| {
                        id.trim().parse::<u64>().map_err(|_| {
                            Error::usage(format!(
                                "--dismiss {id:?}: want a failure's id, the number `ses-report failures` lists first"
                            ))
                        })
                    })
                    .collect::<Result<Vec<u64>>>()?;
                Some((ids, reason.trim().chars().take(1000).collect()))
            }
        };
        Ok(FailuresConfig {
            format,
            env,
            listing,
            documents: args.documents,
            dismiss,
        })
    }
}

/// `ses-report prune`.
#[derive(Clone, Debug)]
pub struct PruneConfig {
    pub env: Environment,
    /// What goes, by kind of data.
    pub cutoffs: Cutoffs,
    pub batch: u64,
    pub dry_run: bool,
}

impl PruneConfig {
    pub fn new(args: &PruneArgs, env: Environment) -> Result<PruneConfig> {
        if args.older_than == 0 {
            return Err(Error::usage("--older-than must be at least 1 day"));
        }
        if args.batch == 0 {
            return Err(Error::usage("--batch must be at least 1"));
        }
        let days_ago = |days: u32| env.now - time::Duration::days(days as i64);
        if args.failures_older_than == Some(0) {
            return Err(Error::usage("--failures-older-than must be at least 1 day"));
        }
        if let Some(days) = args.summaries_older_than {
            if days < args.older_than {
                return Err(Error::usage(format!(
                    "--summaries-older-than ({days}) must be at least --older-than ({}): a summary row goes only once its details are gone",
                    args.older_than
                )));
            }
        }
        Ok(PruneConfig {
            cutoffs: Cutoffs {
                details: days_ago(args.older_than),
                failures: days_ago(args.failures_older_than.unwrap_or(args.older_than)),
                summaries: args.summaries_older_than.map(days_ago),
            },
            env,
            batch: args.batch,
            dry_run: args.dry_run,
        })
    }
}

/// `ses-report doctor`.
#[derive(Clone, Debug)]
pub struct DoctorConfig {
    pub env: Environment,
    /// The days whose rollups are compared with a recomputation.
    pub days: Days,
    pub examples: usize,
}

impl DoctorConfig {
    pub fn new(args: &DoctorArgs, env: Environment) -> Result<DoctorConfig> {
        let days = Days::from_options(&args.date, &args.from, &args.to, &args.tz, &env, 7)?;
        Ok(DoctorConfig {
            env,
            days,
            examples: args.examples,
        })
    }
}

/// The checked configuration of the command to run.
#[derive(Clone, Debug)]
pub enum Config {
    Migrate(Environment),
    Ingest(IngestConfig),
    /// An ingest whose source is the kept failures.
    Retry(IngestConfig),
    Rollup(RollupConfig),
    Stats(StatsConfig),
    Suppressions(SuppressionsConfig),
    Report(ReportConfig),
    Failures(FailuresConfig),
    Prune(PruneConfig),
    Doctor(DoctorConfig),
    Forget(ForgetConfig),
}

impl Config {
    /// The command's configuration: the environment first (a broken setting names its
    /// variable), then the command's own options.
    pub fn new(cli: &Cli, env: Environment) -> Result<Config> {
        Ok(match &cli.command {
            Command::Migrate(_) => Config::Migrate(env),
            Command::Ingest(args) => Config::Ingest(IngestConfig::new(args, env)?),
            Command::Retry(args) => Config::Retry(IngestConfig::retry(args, env)?),
            Command::Rollup(args) => Config::Rollup(RollupConfig::new(args, env)?),
            Command::Stats(args) => Config::Stats(StatsConfig::new(args, env)?),
            Command::Suppressions(args) => {
                Config::Suppressions(SuppressionsConfig::new(args, env)?)
            }
            Command::Report(args) => Config::Report(ReportConfig::new(args, env)?),
            Command::Failures(args) => Config::Failures(FailuresConfig::new(args, env)?),
            Command::Prune(args) => Config::Prune(PruneConfig::new(args, env)?),
            Command::Doctor(args) => Config::Doctor(DoctorConfig::new(args, env)?),
            Command::Forget(args) => Config::Forget(ForgetConfig::new(args, env)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::macros::{date, datetime};

    #[test]
    fn partition_workers_write_metrics_files_of_their_own() {
        let p = Partition::parse("2/4").unwrap();
        let of = |path| metrics_file_of(path, p);
        assert_eq!(
            of("/var/lib/node/ses_report.prom"),
            "/var/lib/node/ses_report.2of4.prom"
        );
        assert_eq!(
            of("/var/lib/node.d/ses_report"),
            "/var/lib/node.d/ses_report.2of4"
        );
        assert_eq!(of("ses.prom"), "ses.2of4.prom");
        assert_eq!(metrics_file_of("ses.prom", Partition::WHOLE), "ses.prom");
    }

    fn env_with(vars: &[(&str, &str)]) -> Result<Environment> {
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

    #[test]
    fn reading_commands_widen_a_window_to_whole_days() {
        let env = env_with(&[("SES_REPORT_NOW", "2026-11-28T07:00:00Z")]).unwrap();
        let days = |date: Option<&str>, from: Option<&str>, to: Option<&str>| {
            let o = |v: Option<&str>| v.map(str::to_string);
            Days::from_options(&o(date), &o(from), &o(to), &None, &env, 7)
        };
        let d = days(
            None,
            Some("2026-11-27T10:00:00Z"),
            Some("2026-11-28T06:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            (d.first, d.end),
            (date!(2026 - 11 - 27), date!(2026 - 11 - 29))
        );
        let d = days(None, Some("2026-11-27"), Some("2026-11-28")).unwrap();
        assert_eq!(
            (d.first, d.end),
            (date!(2026 - 11 - 27), date!(2026 - 11 - 28))
        );
        assert_eq!(d.dates().len(), 1);
        let d = days(Some("2026-11-27"), None, None).unwrap();
        assert_eq!(d.period(), "2026-11-27 (UTC)");
        let d = days(None, None, None).unwrap();
        assert_eq!(
            (d.first, d.end),
            (date!(2026 - 11 - 21), date!(2026 - 11 - 28))
        );
        assert_eq!(d.dates().len(), 7);
        assert!(days(Some("2026-11-27"), Some("2026-11-20"), None).is_err());
        assert!(days(None, Some("2026-11-28"), Some("2026-11-27")).is_err());
    }
}

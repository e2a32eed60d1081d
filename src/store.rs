//! MySQL: connection, schema migrations, the ingest lock, the runs and failures tables, user
//! lookup, and applying a batch of events.
//!
//! Deliberately thin: the decisions (which pairs are new, how rows merge) are made in
//! `accounting`; this module states them in SQL. Round trips are the cost of an ingest, so
//! everything here works on a batch with multi-row statements.

use std::collections::{HashMap, HashSet};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Value};
use time::OffsetDateTime;

use crate::accounting::{Applied, Fate, SummaryDelta, UserLink, UserSource};
use crate::config::Environment;
use crate::error::Fatal;
use crate::redact;
use crate::ses::{EventKind, SesEvent};
use crate::timestamps;
use crate::window::Window;

/// The schema, in order. Each file is applied once and recorded in `ses_report_migrations`.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "ingest tables",
        include_str!("../sql/0001_ingest_tables.sql"),
    ),
    (
        2,
        "daily rollups",
        include_str!("../sql/0002_daily_rollups.sql"),
    ),
    (
        3,
        "retention horizon",
        include_str!("../sql/0003_retention.sql"),
    ),
];

/// The schema version this binary needs.
pub fn schema_version() -> u32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// Rows per multi-row statement: keeps each statement far below the placeholder limit.
const ROWS_PER_STATEMENT: usize = 250;

/// The parsed MySQL URL plus the timeouts that keep a dead server from hanging cron.
fn options(env: &Environment) -> Result<(OptsBuilder, String), Fatal> {
    let opts = Opts::from_url(&env.mysql_url).map_err(|e| {
        Fatal::new(format!(
            "SES_REPORT_MYSQL_URL {} is not a valid MySQL URL: {}",
            redact::url(&env.mysql_url),
            redact::scrub(&e.to_string())
        ))
    })?;
    let database = opts
        .get_db_name()
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            Fatal::new(format!(
                "SES_REPORT_MYSQL_URL {} names no database: add one, e.g. .../ses_report",
                redact::url(&env.mysql_url)
            ))
        })?;
    let builder = OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(env.connect_timeout))
        .read_timeout(Some(env.io_timeout))
        .write_timeout(Some(env.io_timeout));
    Ok((builder, database))
}

fn connect_with(builder: OptsBuilder, env: &Environment) -> Result<Conn, Fatal> {
    Conn::new(builder).map_err(|e| {
        Fatal::new(format!(
            "cannot connect to MySQL at {}: {} (is the server up? check SES_REPORT_MYSQL_URL)",
            redact::url(&env.mysql_url),
            redact::scrub(&e.to_string())
        ))
    })
}

/// Connects to the configured database, which must exist.
pub fn connect(env: &Environment) -> Result<(Conn, String), Fatal> {
    let (builder, database) = options(env)?;
    let mut conn = connect_with(builder, env)?;
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
        .map_err(|e| sql_fatal("setting the session time zone", &e))?;
    Ok((conn, database))
}

/// A MySQL error as a fatal, password-free message.
pub fn sql_fatal(doing: &str, e: &mysql::Error) -> Fatal {
    Fatal::new(format!(
        "MySQL failed while {doing}: {}",
        redact::scrub(&e.to_string())
    ))
}

/// Errors that mean the connection or server is gone (or briefly unable), as opposed to a
/// problem with the data of one event.
pub fn is_connection_error(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::MySqlError(server) => matches!(
            server.code,
            // shutdown in progress, connection killed, lock wait timeout, deadlock,
            // server gone away / lost (reported by some proxies), too many connections
            1053 | 1927 | 1205 | 1213 | 2006 | 2013 | 1040
        ),
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            true
        }
        _ => false,
    }
}

/// `ses-report migrate`: creates the database if missing, then applies pending schema files.
/// Returns the versions applied now.
pub fn migrate(env: &Environment) -> Result<Vec<u32>, Fatal> {
    let (builder, database) = options(env)?;
    let mut server = connect_with(builder.clone().db_name(None::<String>), env)?;
    server
        .query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            quote_identifier(&database)
        ))
        .map_err(|e| sql_fatal(&format!("creating database {database}"), &e))?;
    drop(server);
    let (mut conn, _) = connect(env)?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS ses_report_migrations (
           version INT UNSIGNED PRIMARY KEY,
           name VARCHAR(255) NOT NULL,
           applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .map_err(|e| sql_fatal("creating ses_report_migrations", &e))?;
    let done: Vec<u32> = conn
        .query("SELECT version FROM ses_report_migrations")
        .map_err(|e| sql_fatal("reading ses_report_migrations", &e))?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        for statement in split_statements(sql) {
            conn.query_drop(&statement)
                .map_err(|e| sql_fatal(&format!("applying migration {version} ({name})"), &e))?;
        }
        conn.exec_drop(
            "INSERT INTO ses_report_migrations (version, name) VALUES (?, ?)",
            (version, name),
        )
        .map_err(|e| sql_fatal("recording a migration", &e))?;
        applied.push(*version);
    }
    Ok(applied)
}

/// Fails with what to run when the database is behind this binary's schema.
pub fn check_schema(conn: &mut Conn, database: &str) -> Result<(), Fatal> {
    let current: Option<Option<u32>> =
        match conn.query_first("SELECT MAX(version) FROM ses_report_migrations") {
            Ok(v) => v,
            Err(mysql::Error::MySqlError(e)) if e.code == 1146 => None,
            Err(e) => return Err(sql_fatal("reading the schema version", &e)),
        };
    let current = current.flatten().unwrap_or(0);
    if current < schema_version() {
        return Err(Fatal::new(format!(
            "database {database} is at schema version {current}, this ses-report needs {}: run `ses-report migrate` first",
            schema_version()
        )));
    }
    Ok(())
}

/// Splits a schema file into statements: each ends with `;` at the end of a line.
fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_string());
    }
    statements
}

fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The named lock one ingest holds on a database for its whole run (released with the
/// connection, so a killed run never leaves it behind).
pub fn lock_name(database: &str) -> String {
    let name = format!("ses-report.ingest.{database}");
    name.chars().take(64).collect()
}

pub fn try_lock(conn: &mut Conn, database: &str) -> Result<bool, mysql::Error> {
    let got: Option<Option<i64>> =
        conn.exec_first("SELECT GET_LOCK(?, 0)", (lock_name(database),))?;
    Ok(got.flatten() == Some(1))
}

// ---------------------------------------------------------------------------------------------
// Runs

/// The counts every run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub scanned: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub skipped: u64,
    pub failed: u64,
    pub users_resolved: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Ok,
    Partial,
    Failed,
    /// Stopped by a signal after the batch in flight.
    Interrupted,
    /// Found `running` by a later run that holds the lock: killed, or its machine lost.
    Abandoned,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

pub fn start_run(
    conn: &mut Conn,
    window: Window,
    source: &str,
    now: OffsetDateTime,
) -> Result<u64, mysql::Error> {
    conn.exec_drop(
        "INSERT INTO aws_report_runs (started_at, window_from, window_to, source, status) VALUES (?, ?, ?, ?, ?)",
        (
            timestamps::to_sql(now),
            timestamps::to_sql(window.from),
            timestamps::to_sql(window.to),
            source,
            RunStatus::Running.name(),
        ),
    )?;
    Ok(conn.last_insert_id())
}

pub fn finish_run(
    conn: &mut Conn,
    run_id: u64,
    status: RunStatus,
    counts: &Counts,
    message: Option<&str>,
) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "UPDATE aws_report_runs SET finished_at = ?, status = ?, scanned = ?, applied = ?, duplicates = ?,
           skipped = ?, failed = ?, users_resolved = ?, message = ? WHERE id = ?",
        vec![
            timestamps::to_sql(OffsetDateTime::now_utc()),
            status.name().into(),
            counts.scanned.into(),
            counts.applied.into(),
            counts.duplicates.into(),
            counts.skipped.into(),
            counts.failed.into(),
            counts.users_resolved.into(),
            message.map(redact::scrub).into(),
            run_id.into(),
        ],
    )
}

/// Marks `abandoned` every run still `running`: the caller holds the ingest lock, so none of them
/// is. Returns their ids and windows.
pub fn mark_abandoned_runs(conn: &mut Conn) -> Result<Vec<(u64, Window)>, mysql::Error> {
    let rows: Vec<(u64, Value, Value)> = conn
        .query("SELECT id, window_from, window_to FROM aws_report_runs WHERE status = 'running'")?;
    let mut out = Vec::new();
    for (id, from, to) in rows {
        conn.exec_drop(
            "UPDATE aws_report_runs SET status = 'abandoned', message = 'found running without a lock holder by a later run' WHERE id = ?",
            (id,),
        )?;
        if let (Some(from), Some(to)) = (timestamps::from_sql(&from), timestamps::from_sql(&to)) {
            out.push((id, Window { from, to }));
        }
    }
    Ok(out)
}

/// Where the last completed Mongo run's window ended: the catch-up window starts there.
pub fn last_completed_end(conn: &mut Conn) -> Result<Option<OffsetDateTime>, mysql::Error> {
    let end: Option<Value> = conn.query_first(
        "SELECT MAX(window_to) FROM aws_report_runs WHERE status IN ('ok', 'partial') AND source LIKE 'mongo%'",
    )?;
    Ok(end.as_ref().and_then(timestamps::from_sql))
}

// ---------------------------------------------------------------------------------------------
// Failures

/// A record that could not be applied, as the failures table keeps it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub notification_id: String,
    pub source: String,
    pub error: String,
    pub document: String,
}

pub fn record_failures(
    conn: &mut Conn,
    failures: &[Failure],
    now: OffsetDateTime,
) -> Result<(), mysql::Error> {
    for chunk in failures.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for f in chunk {
            params.push(Value::from(
                crate::ses::truncate(&f.notification_id, 255).0.as_ref(),
            ));
            params.push(Value::from(crate::ses::truncate(&f.source, 255).0.as_ref()));
            params.push(Value::from(
                crate::ses::truncate(&f.error, 16_000).0.as_ref(),
            ));
            params.push(Value::from(f.document.as_str()));
            params.push(timestamps::to_sql(now));
            params.push(timestamps::to_sql(now));
        }
        conn.exec_drop(
            format!(
                "INSERT INTO aws_report_failures (notification_id, source, error, document, first_failed_at, last_failed_at)
                 VALUES {}
                 ON DUPLICATE KEY UPDATE source = VALUES(source), error = VALUES(error), document = VALUES(document),
                   attempts = attempts + 1, last_failed_at = VALUES(last_failed_at), resolved_at = NULL",
                row_placeholders(chunk.len(), 6)
            ),
            params,
        )?;
    }
    Ok(())
}

pub fn unresolved_failure_ids(conn: &mut Conn) -> Result<HashSet<String>, mysql::Error> {
    let ids: Vec<String> =
        conn.query("SELECT notification_id FROM aws_report_failures WHERE resolved_at IS NULL")?;
    Ok(ids.into_iter().collect())
}

pub fn mark_resolved(
    conn: &mut Conn,
    ids: &[String],
    now: OffsetDateTime,
) -> Result<(), mysql::Error> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<Value> = vec![timestamps::to_sql(now)];
        params.extend(chunk.iter().map(|id| Value::from(id.as_str())));
        conn.exec_drop(
            format!(
                "UPDATE aws_report_failures SET resolved_at = ? WHERE resolved_at IS NULL AND notification_id IN ({})",
                placeholders(chunk.len())
            ),
            params,
        )?;
    }
    Ok(())
}

/// One unresolved (or, with `all`, any) failures row.
#[derive(Clone, Debug)]
pub struct FailureRow {
    pub id: u64,
    pub notification_id: String,
    pub source: String,
    pub error: String,
    pub document: String,
    pub attempts: u64,
    pub first_failed_at: Option<OffsetDateTime>,
    pub last_failed_at: Option<OffsetDateTime>,
    pub resolved_at: Option<OffsetDateTime>,
}

pub fn failure_rows(conn: &mut Conn, all: bool) -> Result<Vec<FailureRow>, mysql::Error> {
    let filter = if all {
        ""
    } else {
        " WHERE resolved_at IS NULL"
    };
    let rows: Vec<mysql::Row> = conn.query(format!(
        "SELECT id, notification_id, source, error, document, attempts, first_failed_at, last_failed_at, resolved_at
         FROM aws_report_failures{filter} ORDER BY id"
    ))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let v = row.unwrap();
            let text = |i: usize| mysql::from_value_opt::<String>(v[i].clone()).unwrap_or_default();
            FailureRow {
                id: mysql::from_value_opt::<u64>(v[0].clone()).unwrap_or(0),
                notification_id: text(1),
                source: text(2),
                error: text(3),
                document: text(4),
                attempts: mysql::from_value_opt::<u64>(v[5].clone()).unwrap_or(0),
                first_failed_at: timestamps::from_sql(&v[6]),
                last_failed_at: timestamps::from_sql(&v[7]),
                resolved_at: timestamps::from_sql(&v[8]),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Retention

/// Events before this instant have had their details pruned.
pub fn pruned_before(conn: &mut Conn) -> Result<Option<OffsetDateTime>, mysql::Error> {
    let value: Option<Value> =
        conn.query_first("SELECT pruned_before FROM aws_report_retention WHERE id = 1")?;
    Ok(value.as_ref().and_then(timestamps::from_sql))
}

/// What `prune` deletes (or, in a dry run, would delete).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pruned {
    pub details: u64,
    pub failures: u64,
    pub runs: u64,
    /// Unresolved failures older than the cutoff: kept, since nothing else holds them.
    pub kept_unresolved: u64,
}

/// Deletes details of events before `cutoff`, resolved failures and finished runs older than
/// it, `batch` rows per statement and transaction so no lock is held for long. Summaries and
/// rollups stay. Records the horizon first, so an ingest running meanwhile already skips them.
pub fn prune(
    conn: &mut Conn,
    cutoff: OffsetDateTime,
    batch: u64,
    dry_run: bool,
) -> Result<Pruned, mysql::Error> {
    let at = timestamps::to_sql(cutoff);
    let details_where = "event_type IN ('Send', 'Delivery', 'Reject', 'Rendering Failure', 'DeliveryDelay', 'Bounce',
                         'Complaint', 'Open', 'Click', 'Subscription') AND timestamp < ?";
    let failures_where = "resolved_at IS NOT NULL AND last_failed_at < ?";
    let runs_where = "status <> 'running' AND started_at < ?";
    let count = |conn: &mut Conn, table: &str, condition: &str| -> Result<u64, mysql::Error> {
        Ok(conn
            .exec_first(
                format!("SELECT COUNT(*) FROM {table} WHERE {condition}"),
                (at.clone(),),
            )?
            .unwrap_or(0))
    };
    let kept_unresolved = count(
        conn,
        "aws_report_failures",
        "resolved_at IS NULL AND last_failed_at < ?",
    )?;
    if dry_run {
        return Ok(Pruned {
            details: count(conn, "aws_report_details", details_where)?,
            failures: count(conn, "aws_report_failures", failures_where)?,
            runs: count(conn, "aws_report_runs", runs_where)?,
            kept_unresolved,
        });
    }
    conn.exec_drop(
        "INSERT INTO aws_report_retention (id, pruned_before, pruned_at) VALUES (1, ?, ?)
         ON DUPLICATE KEY UPDATE pruned_before = GREATEST(pruned_before, VALUES(pruned_before)), pruned_at = VALUES(pruned_at)",
        (at.clone(), timestamps::to_sql(OffsetDateTime::now_utc())),
    )?;
    let delete = |conn: &mut Conn, table: &str, condition: &str| -> Result<u64, mysql::Error> {
        let mut total = 0;
        loop {
            conn.exec_drop(
                format!("DELETE FROM {table} WHERE {condition} LIMIT {batch}"),
                (at.clone(),),
            )?;
            let n = conn.affected_rows();
            total += n;
            if n < batch {
                return Ok(total);
            }
        }
    };
    Ok(Pruned {
        details: delete(conn, "aws_report_details", details_where)?,
        failures: delete(conn, "aws_report_failures", failures_where)?,
        runs: delete(conn, "aws_report_runs", runs_where)?,
        kept_unresolved,
    })
}

// ---------------------------------------------------------------------------------------------
// Users

/// How `auth_users` can be searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserLookup {
    /// No `auth_users` table: only `user_id` headers link users.
    NoTable,
    /// `common_email` has a case-insensitive collation: `IN (...)` uses the index.
    CaseInsensitive,
    /// A case-sensitive collation: compare lower-cased (no index, but correct).
    CaseSensitive,
}

/// The most addresses the user cache holds: past that it starts afresh, so a day with millions
/// of distinct recipients cannot grow memory without bound (a refetch costs one query per batch).
const MAX_CACHED_ADDRESSES: usize = 20_000;

/// `auth_users` by email, cached for the run; misses are cached too.
pub struct UserDirectory {
    lookup: UserLookup,
    cache: HashMap<String, Option<u64>>,
}

impl UserDirectory {
    pub fn open(conn: &mut Conn) -> Result<UserDirectory, mysql::Error> {
        let collation: Option<Option<String>> = conn.query_first(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'auth_users' AND COLUMN_NAME = 'common_email'",
        )?;
        let lookup = match collation {
            None => {
                log::warn!("no auth_users table (with a common_email column) in this database: users are linked by user_id headers only");
                UserLookup::NoTable
            }
            Some(Some(c)) if c.ends_with("_ci") => UserLookup::CaseInsensitive,
            Some(_) => UserLookup::CaseSensitive,
        };
        Ok(UserDirectory {
            lookup,
            cache: HashMap::new(),
        })
    }

    /// Looks up, in as few queries as possible, every address not yet in the cache.
    pub fn prefetch<'a>(
        &mut self,
        conn: &mut Conn,
        addresses: impl Iterator<Item = &'a str>,
    ) -> Result<(), mysql::Error> {
        let mut wanted: Vec<&str> = addresses.collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|a| !self.cache.contains_key(*a))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.cache.len() + missing.len() > MAX_CACHED_ADDRESSES {
            // Start afresh, keeping nothing: every address of this batch is fetched again.
            log::debug!(
                "user cache full ({} addresses): starting afresh",
                self.cache.len()
            );
            self.cache.clear();
            self.cache.shrink_to(MAX_CACHED_ADDRESSES);
            missing = wanted;
        }
        if self.lookup == UserLookup::NoTable {
            for a in missing {
                self.cache.insert(a.to_string(), None);
            }
            return Ok(());
        }
        let column = match self.lookup {
            UserLookup::CaseSensitive => "LOWER(common_email)",
            _ => "common_email",
        };
        for chunk in missing.chunks(1000) {
            let rows: Vec<(Value, Option<String>)> = conn.exec(
                format!(
                    "SELECT id, common_email FROM auth_users WHERE {column} IN ({})",
                    placeholders(chunk.len())
                ),
                chunk.iter().map(|a| Value::from(*a)).collect::<Vec<_>>(),
            )?;
            let mut found: HashMap<String, Vec<u64>> = HashMap::new();
            for (id, email) in rows {
                let Some(email) = email else { continue };
                match mysql::from_value_opt::<u64>(id.clone()) {
                    Ok(id) => found.entry(crate::ses::normalize_address(&email)).or_default().push(id),
                    Err(_) => log::warn!("auth_users row for {email} has an id that is not a whole number: {id:?}; ignored"),
                }
            }
            for address in chunk {
                let ids = found.remove(*address).unwrap_or_default();
                let chosen = ids.iter().copied().min();
                if ids.len() > 1 {
                    log::warn!("{} auth_users rows have common_email {address} (ids {ids:?}): using the smallest, {}", ids.len(), chosen.unwrap_or(0));
                }
                self.cache.insert(address.to_string(), chosen);
            }
        }
        Ok(())
    }

    /// The user for an address already prefetched.
    pub fn by_email(&self, address: &str) -> Option<u64> {
        self.cache.get(address).copied().flatten()
    }

    /// The user a recipient of `event` resolves to: the `user_id` header speaks for the first
    /// destination address; everyone else is found by email.
    pub fn link(&self, event: &SesEvent, recipient: &str) -> UserLink {
        if let Some(id) = event
            .header_user_id
            .filter(|_| recipient == event.first_destination)
        {
            return UserLink {
                user_id: Some(id),
                source: UserSource::Header,
            };
        }
        match self.by_email(recipient) {
            Some(id) => UserLink {
                user_id: Some(id),
                source: UserSource::Email,
            },
            None => UserLink::NONE,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Applying events

/// Which of these notification ids have rows in `aws_report_details`.
pub fn notifications_applied<'a>(
    conn: &mut Conn,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>, mysql::Error> {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = HashSet::new();
    for chunk in ids.chunks(1000) {
        let rows: Vec<String> = conn.exec(
            format!(
                "SELECT DISTINCT notification_message_id FROM aws_report_details WHERE notification_message_id IN ({})",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|a| Value::from(*a)).collect::<Vec<_>>(),
        )?;
        found.extend(rows);
    }
    Ok(found)
}

/// Which of these events' pairs and feedback ids are already in `aws_report_details`.
/// `known_absent` lists notification ids the caller has just found to have no rows: their pairs
/// need no second look.
pub fn applied_among(
    conn: &mut Conn,
    events: &[&SesEvent],
    known_absent: &HashSet<&str>,
) -> Result<Applied, mysql::Error> {
    let mut applied = Applied::default();
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e.notification_id.as_str())
        .filter(|id| !known_absent.contains(id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(1000) {
        let rows: Vec<(String, String, Option<String>)> = conn.exec(
            format!(
                "SELECT notification_message_id, `to`, feedback_id FROM aws_report_details WHERE notification_message_id IN ({})",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|a| Value::from(*a)).collect::<Vec<_>>(),
        )?;
        for (id, to, feedback) in rows {
            if let Some(f) = feedback {
                applied.feedback.insert((f, to.clone()), id.clone());
            }
            applied.pairs.insert((id, to));
        }
    }
    let mut feedback_ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e.feedback_id.as_deref())
        .collect();
    feedback_ids.sort_unstable();
    feedback_ids.dedup();
    for chunk in feedback_ids.chunks(1000) {
        let rows: Vec<(String, String, String)> = conn.exec(
            format!(
                "SELECT feedback_id, `to`, notification_message_id FROM aws_report_details WHERE feedback_id IN ({})",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|a| Value::from(*a)).collect::<Vec<_>>(),
        )?;
        for (feedback, to, id) in rows {
            applied.feedback.insert((feedback, to), id);
        }
    }
    Ok(applied)
}

/// The summary columns per event type, in `EventKind::ALL` order.
fn time_column(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Send => "send_at",
        EventKind::Reject => "reject_at",
        EventKind::Bounce => "bounce_at",
        EventKind::Complaint => "complaint_at",
        EventKind::Delivery => "delivery_at",
        EventKind::Open => "open_at",
        EventKind::Click => "click_at",
        EventKind::RenderingFailure => "rendering_failure_at",
        EventKind::DeliveryDelay => "delivery_delay_at",
        EventKind::Subscription => "subscription_at",
    }
}

/// The upsert of summary rows: `accounting::SummaryDelta::merge` stated in SQL. MySQL applies
/// the assignments left to right, so `user_id` is decided before `user_source` changes.
fn upsert_summaries_sql(rows: usize) -> String {
    let times: Vec<&str> = EventKind::ALL.iter().map(|k| time_column(*k)).collect();
    let earliest: Vec<String> = times
        .iter()
        .map(|c| format!("{c} = LEAST(COALESCE({c}, VALUES({c})), COALESCE(VALUES({c}), {c}))"))
        .collect();
    format!(
        "INSERT INTO aws_reports (message_id, user_email, report_type, user_id, user_source, source_email, subject,
           {times}, open_count, click_count, bounce_type)
         VALUES {values}
         ON DUPLICATE KEY UPDATE
           report_type = GREATEST(report_type, VALUES(report_type)),
           user_id = IF(VALUES(user_source) > user_source
                        OR (VALUES(user_source) = user_source AND VALUES(user_id) < user_id)
                        OR (VALUES(user_source) = user_source AND user_id IS NULL),
                        VALUES(user_id), user_id),
           user_source = GREATEST(user_source, VALUES(user_source)),
           source_email = COALESCE(source_email, VALUES(source_email)),
           subject = COALESCE(subject, VALUES(subject)),
           {earliest},
           open_count = open_count + VALUES(open_count),
           click_count = click_count + VALUES(click_count),
           bounce_type = CASE
             WHEN 'Permanent' IN (bounce_type, VALUES(bounce_type)) THEN 'Permanent'
             WHEN 'Transient' IN (bounce_type, VALUES(bounce_type)) THEN 'Transient'
             ELSE COALESCE(bounce_type, VALUES(bounce_type)) END",
        times = times.join(", "),
        values = row_placeholders(rows, 20),
        earliest = earliest.join(",\n           "),
    )
}

fn summary_params(delta: &SummaryDelta, params: &mut Vec<Value>) {
    params.push(delta.message_id.as_str().into());
    params.push(delta.recipient.as_str().into());
    params.push(delta.report_type.into());
    params.push(delta.user.user_id.into());
    params.push((delta.user.source as u8).into());
    params.push(delta.source.as_deref().into());
    params.push(delta.subject.as_deref().into());
    for at in delta.first_at {
        params.push(at.map(timestamps::to_sql).unwrap_or(Value::NULL));
    }
    params.push(delta.open_count.into());
    params.push(delta.click_count.into());
    params.push(delta.bounce_type.map(|b| b.name()).into());
}

/// Writes one batch: summary upserts, then one detail row per new pair. The caller owns the
/// transaction (commit, or roll back and apply the batch in halves).
pub fn apply_batch<Q: Queryable>(
    conn: &mut Q,
    events: &[&SesEvent],
    fates: &[Fate],
    deltas: &[SummaryDelta],
) -> Result<(), mysql::Error> {
    let t0 = std::time::Instant::now();
    for chunk in deltas.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 20);
        for d in chunk {
            summary_params(d, &mut params);
        }
        conn.exec_drop(upsert_summaries_sql(chunk.len()), params)?;
    }

    let t1 = std::time::Instant::now();
    let mut message_ids: Vec<&str> = deltas.iter().map(|d| d.message_id.as_str()).collect();
    message_ids.sort_unstable();
    message_ids.dedup();
    let mut report_ids: HashMap<(String, String), u64> = HashMap::with_capacity(deltas.len());
    for chunk in message_ids.chunks(1000) {
        let rows: Vec<(u64, String, String)> = conn.exec(
            format!(
                "SELECT id, message_id, user_email FROM aws_reports WHERE message_id IN ({})",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|a| Value::from(*a)).collect::<Vec<_>>(),
        )?;
        for (id, message_id, email) in rows {
            report_ids.insert((message_id, email), id);
        }
    }

    let t2 = std::time::Instant::now();
    // The same bounce or complaint stored earlier under a larger notification id gives way.
    for (event, fate) in events.iter().zip(fates) {
        let Fate::Apply(claims) = fate else { continue };
        for claim in claims {
            if let Some(old) = &claim.supersedes {
                conn.exec_drop(
                    "DELETE FROM aws_report_details WHERE notification_message_id = ? AND `to` = ?",
                    (old, event.recipients[claim.recipient].as_str()),
                )?;
            }
        }
    }

    let mut pairs: Vec<(&SesEvent, &str, u64)> = Vec::new();
    for (event, fate) in events.iter().zip(fates) {
        for recipient in fate.recipients(event) {
            let report_id = *report_ids
                .get(&(event.message_id.clone(), recipient.to_string()))
                .ok_or_else(|| {
                    mysql::Error::MySqlError(mysql::MySqlError {
                        state: "HY000".into(),
                        message: format!(
                            "summary row for {} / {recipient} vanished",
                            event.message_id
                        ),
                        code: 0,
                    })
                })?;
            pairs.push((event, recipient, report_id));
        }
    }
    for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 10);
        for (event, recipient, report_id) in chunk {
            params.push(event.notification_id.as_str().into());
            params.push((*report_id).into());
            params.push(event.kind.ses_name().into());
            params.push(event.message_id.as_str().into());
            params.push(timestamps::to_sql(event.occurred_at));
            params.push(event.source.as_deref().into());
            params.push((*recipient).into());
            params.push(event.subject.as_deref().into());
            params.push(event.other_info.as_str().into());
            params.push(event.feedback_id.as_deref().into());
        }
        conn.exec_drop(
            format!(
                "INSERT INTO aws_report_details (notification_message_id, report_id, event_type, message_id, timestamp,
                   `from`, `to`, subject, other_info, feedback_id) VALUES {}",
                row_placeholders(chunk.len(), 10)
            ),
            params,
        )?;
    }
    log::debug!(
        "batch applied: summaries {:?}, ids {:?}, details {:?}",
        t1 - t0,
        t2 - t1,
        t2.elapsed()
    );
    Ok(())
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

fn row_placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", placeholders(columns));
    vec![row; rows].join(",")
}

/// Turns a MySQL error into a `Fatal` saying what was being done, never carrying a password.
pub trait SqlContext<T> {
    fn sql_context(self, doing: &str) -> Result<T, Fatal>;
}

impl<T> SqlContext<T> for Result<T, mysql::Error> {
    fn sql_context(self, doing: &str) -> Result<T, Fatal> {
        self.map_err(|e| sql_fatal(doing, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_split_into_statements() {
        let statements = split_statements(MIGRATIONS[0].2);
        assert_eq!(statements.len(), 4);
        assert!(statements
            .iter()
            .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")));
        assert!(statements.iter().all(|s| !s.ends_with(';')));
    }

    #[test]
    fn upsert_names_every_time_column_once() {
        let sql = upsert_summaries_sql(2);
        for kind in EventKind::ALL {
            let column = time_column(kind);
            assert_eq!(
                sql.matches(&format!("{column} = LEAST")).count(),
                1,
                "{column}"
            );
        }
        assert_eq!(sql.matches('?').count(), 40);
    }

    #[test]
    fn lock_names_fit_mysql() {
        assert!(lock_name(&"x".repeat(64)).chars().count() <= 64);
        assert_eq!(lock_name("ses_report"), "ses-report.ingest.ses_report");
    }

    #[test]
    fn connection_errors_are_told_from_data_errors() {
        let server = |code| {
            mysql::Error::MySqlError(mysql::MySqlError {
                state: "HY000".into(),
                message: String::new(),
                code,
            })
        };
        assert!(is_connection_error(&server(1927)));
        assert!(is_connection_error(&server(1213)));
        assert!(!is_connection_error(&server(1062)));
        assert!(!is_connection_error(&server(1644)));
    }
}

//! MySQL, the only room that speaks SQL: connection, the ingest lock, error classification, and
//! one helper for the chunked `IN (...)` lookups every table family needs. One file per table
//! family: `migrations`, `runs`, `failures`, `retention`, `users`, `details` (applying events),
//! `rollups`, `evidence` (what suppressions are read from).
//!
//! Deliberately thin: the decisions (which pairs are new, how rows merge, who a recipient is) are
//! made in `domain`; this room states them in SQL. Round trips are the cost of an ingest, so
//! everything here works on a batch with multi-row statements.

pub mod classification;
pub mod codes;
pub mod delivery;
pub mod details;
pub mod erasure;
pub mod evidence;
pub mod failures;
pub mod ledger;
pub mod migrations;
pub mod retention;
pub mod rollups;
pub mod runs;
pub mod summaries;
pub mod tls;
pub mod users;

use std::time::Duration;

use mysql::prelude::{FromRow, Queryable};
use mysql::{Conn, Opts, OptsBuilder, Value};

use crate::config::Environment;
use crate::domain::partition::Partition;
use crate::error::{Error, Result, Server};
use crate::redact;

/// Rows per multi-row statement: keeps each statement far below the placeholder limit.
const ROWS_PER_STATEMENT: usize = 250;

/// Keys per `IN (...)` lookup.
const KEYS_PER_LOOKUP: usize = 1000;

/// The key counts an `IN (...)` lookup is padded to (see `lookup_chunks`).
const LOOKUP_SIZES: [usize; 6] = [1, 4, 16, 64, 256, KEYS_PER_LOOKUP];

/// Prepared statements a connection keeps (the `mysql` crate's default is 32): every shape
/// `statement_chunks` and `lookup_chunks` make for every statement of a batch, with room to
/// spare, so that a batch prepares nothing its predecessors prepared. A URL's own
/// `stmt_cache_size` is kept.
const STATEMENT_CACHE: usize = 256;

/// Rows per page of a read whose size the data decides (the ledger, the failures, the evidence
/// of a rebuild): far below the 10,000 rows a Vitess tablet returns by default
/// (`queryserver-config-max-result-size`; docs/compatibility.md).
const PAGE_ROWS: u64 = 5000;

/// Every row of a read in pages keyed on its unique, ordered `key` (`key_of` reads it from a
/// row): `sql` takes the last key seen as its first parameter (`... WHERE k > ? ... ORDER BY k
/// LIMIT ?`, the page size last), with `params` between. `start` is below every key.
fn paged<R, K>(
    conn: &mut Conn,
    sql: &str,
    start: K,
    params: Vec<Value>,
    key_of: impl Fn(&R) -> K,
) -> Result<Vec<R>, mysql::Error>
where
    R: FromRow,
    K: Into<Value> + Clone,
{
    let mut rows: Vec<R> = Vec::new();
    let mut after = start;
    loop {
        let mut all = vec![after.clone().into()];
        all.extend(params.iter().cloned());
        all.push(PAGE_ROWS.into());
        let page: Vec<R> = conn.exec(sql, all)?;
        let full = page.len() as u64 == PAGE_ROWS;
        if let Some(last) = page.last() {
            after = key_of(last);
        }
        rows.extend(page);
        if !full {
            return Ok(rows);
        }
    }
}

/// The parsed MySQL URL (its TLS options apart) plus the timeouts that keep a dead server from
/// hanging cron.
fn options(env: &Environment) -> Result<(OptsBuilder, String, tls::Tls)> {
    let bad_url = |problem: String| {
        Error::config(
            "SES_REPORT_MYSQL_URL",
            format!("{}: {problem}", redact::url(&env.mysql_url)),
        )
    };
    let (url, tls) = tls::split_url(&env.mysql_url).map_err(bad_url)?;
    for (option, path) in tls.files() {
        if !path.is_file() {
            return Err(bad_url(format!(
                "{option}={} is not a readable file",
                path.display()
            )));
        }
    }
    let opts = Opts::from_url(&url).map_err(|e| {
        // `URL ParseError { invalid port number }` says it as a debug structure: the cause alone.
        let cause = e.to_string();
        let cause = cause
            .strip_prefix("URL ParseError { ")
            .and_then(|c| c.strip_suffix(" }"))
            .unwrap_or(&cause)
            .to_string();
        Error::config(
            "SES_REPORT_MYSQL_URL",
            format!(
                "{} is not a valid MySQL URL ({}): {}",
                redact::url(&env.mysql_url),
                redact::scrub(&cause),
                redact::PERCENT_ENCODE
            ),
        )
    })?;
    let database = opts
        .get_db_name()
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::config(
                "SES_REPORT_MYSQL_URL",
                format!(
                    "{} names no database: add one, e.g. .../ses_report",
                    redact::url(&env.mysql_url)
                ),
            )
        })?;
    let cache = opts.get_stmt_cache_size();
    let builder = OptsBuilder::from_opts(opts)
        .stmt_cache_size(Some(if url_sets(&url, "stmt_cache_size") {
            cache
        } else {
            STATEMENT_CACHE
        }))
        .tcp_connect_timeout(Some(env.connect_timeout))
        .read_timeout(Some(env.io_timeout))
        .write_timeout(Some(env.io_timeout));
    Ok((tls.apply(builder), database, tls))
}

/// Whether the URL's query names `option` (`...?option=value`).
fn url_sets(url: &str, option: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(option))
    })
}

/// Connects with `builder`; under `ssl-mode=PREFERRED`, a server without TLS is connected to
/// again in plain TCP, as MySQL's clients do.
fn connect_with(builder: OptsBuilder, tls: &tls::Tls, env: &Environment) -> Result<Conn> {
    let result = match Conn::new(builder.clone()) {
        Err(e) if tls.falls_back(&e) => {
            log::debug!("MySQL offers no TLS: connecting in plain TCP (ssl-mode=PREFERRED)");
            Conn::new(builder.ssl_opts(None))
        }
        other => other,
    };
    result.map_err(|e| Error::Unreachable {
        server: Server::MySql,
        target: redact::url(&env.mysql_url),
        detail: crate::error::mysql_plain(&e),
        hint: tls.hint(&e).unwrap_or_else(|| codes::connect_hint(&e)),
    })
}

/// The server's `max_allowed_packet`, in bytes: a value larger than it drops the connection.
pub fn max_allowed_packet(conn: &mut Conn) -> std::result::Result<usize, mysql::Error> {
    let bytes: u64 = conn
        .query_first("SELECT @@max_allowed_packet")?
        .unwrap_or(4 * 1024 * 1024);
    Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// How a connection reaches MySQL: what `doctor` reports.
pub struct Transport {
    pub mode: tls::SslMode,
    pub host: String,
    /// A Unix socket or a loopback address: nothing between here and the server to read it.
    pub local: bool,
    /// The TLS version and cipher the session uses, if it is encrypted.
    pub tls: Option<(String, String)>,
}

/// How `conn` (opened from `env`'s URL) reaches the server, from the session's own status.
pub fn transport(env: &Environment, conn: &mut Conn) -> Result<Transport> {
    let (builder, _, tls) = options(env)?;
    let opts = Opts::from(builder);
    let host = opts.get_ip_or_hostname().to_string();
    let local = opts.get_socket().is_some()
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let status: Vec<(String, String)> = conn
        .query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
        .unwrap_or_default();
    let value = |name: &str| {
        status
            .iter()
            .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let tls_in_use = value("Ssl_version").zip(value("Ssl_cipher"));
    Ok(Transport {
        mode: tls.mode,
        host,
        local,
        tls: tls_in_use,
    })
}

/// Whether the server takes writes now: neither `@@read_only` nor `@@innodb_read_only` (an
/// Aurora reader) is on. A server that knows neither variable (error 1193) is taken at its
/// word; one that does not answer is an error, as lost as it looks.
pub fn writable(conn: &mut Conn) -> std::result::Result<bool, mysql::Error> {
    for variable in ["@@global.read_only", "@@global.innodb_read_only"] {
        match conn.query_first::<Option<i64>, _>(format!("SELECT {variable}")) {
            Ok(Some(Some(on))) if on != 0 => return Ok(false),
            Ok(_) => {}
            Err(mysql::Error::MySqlError(e)) if e.code == 1193 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Connects to the configured database, which must exist.
pub fn connect(env: &Environment) -> Result<(Conn, String)> {
    let (builder, database, tls) = options(env)?;
    let mut conn = connect_with(builder, &tls, env)?;
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
        .sql_context("setting the session time zone")?;
    Ok((conn, database))
}

/// How long to wait before retry `attempt` (1-based): 0.5 s, 1 s, 2 s, ... up to 8 s.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.saturating_sub(1).min(4)))
}

/// A connection to a migrated database for the commands that are not ingests (`rollup`,
/// `stats`, `suppressions`, `report`, `failures`, `prune`): their statements are retried on a
/// new connection, like an ingest's batches, when MySQL is lost, deadlocks or times out a lock.
pub struct Session {
    env: Environment,
    conn: Conn,
}

impl Session {
    pub fn open(env: &Environment) -> Result<Session> {
        let (mut conn, database) = connect(env)?;
        migrations::check_schema(&mut conn, &database)?;
        Ok(Session {
            env: env.clone(),
            conn,
        })
    }

    /// Runs `work`; when it fails in a way a new connection can cure, waits, reconnects and
    /// runs it again, at most `SES_REPORT_RETRIES` times. `work` must be safe to repeat (a
    /// transaction of its own, or reads).
    pub fn retrying<T>(
        &mut self,
        doing: &str,
        mut work: impl FnMut(&mut Conn) -> Result<T, mysql::Error>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let error = match work(&mut self.conn) {
                Ok(value) => return Ok(value),
                Err(e) if codes::is_retryable(&e) && attempt < self.env.retries => e,
                Err(e) if attempt == 0 => return Err(Error::mysql(doing, e)),
                Err(e) => {
                    return Err(
                        Error::mysql(doing, e).context(format!("gave up after {attempt} retries"))
                    )
                }
            };
            attempt += 1;
            let wait = retry_delay(attempt);
            log::warn!(
                "MySQL failed while {doing}: {}; retry {attempt}/{} in {:.1} s",
                redact::scrub(&error.to_string()),
                self.env.retries,
                wait.as_secs_f64()
            );
            std::thread::sleep(wait);
            if let Ok((conn, _)) = connect(&self.env) {
                self.conn = conn;
            }
        }
    }
}

/// The named lock one ingest holds on a database for its whole run (released with the
/// connection, so a killed run never leaves it behind).
/// The name of the ingest lock of `database` for `partition` (each partition has its own; the
/// whole stream keeps the name it always had). MySQL allows 64 characters: a long database name
/// is cut, never the partition.
pub fn lock_name(database: &str, partition: Partition) -> String {
    let suffix = if partition.is_whole() {
        String::new()
    } else {
        format!(".{}", partition.tag())
    };
    let prefix = "ses-report.ingest.";
    let room = 64 - prefix.len() - suffix.len();
    let database: String = database.chars().take(room).collect();
    format!("{prefix}{database}{suffix}")
}

pub fn try_lock(
    conn: &mut Conn,
    database: &str,
    partition: Partition,
) -> Result<bool, mysql::Error> {
    wait_for_lock(conn, database, partition, Duration::ZERO)
}

/// (seconds in its current state, host, command) of a PROCESSLIST row.
type ProcessRow = (Option<u64>, Option<String>, Option<String>);

/// The session holding the ingest lock, as the server sees it: `connection 123 (idle 40 s,
/// from host:port)`. Asked with a bare `SELECT IS_USED_LOCK(?)` first (Vitess routes that form,
/// and TiDB answers it, if only with 1), then the process list by that id, where the server
/// shows it; `connection N` alone where it does not.
pub fn lock_holder(
    conn: &mut Conn,
    database: &str,
    partition: Partition,
) -> Result<Option<String>, mysql::Error> {
    let holder: Option<Option<u64>> =
        conn.exec_first("SELECT IS_USED_LOCK(?)", (lock_name(database, partition),))?;
    let Some(id) = holder.flatten() else {
        return Ok(None);
    };
    let row: Option<ProcessRow> = conn
        .exec_first(
            "SELECT TIME, HOST, COMMAND FROM information_schema.PROCESSLIST WHERE ID = ?",
            (id,),
        )
        .unwrap_or(None);
    Ok(Some(match row {
        Some((idle, host, command)) => format!(
            "connection {id} ({}, {} s, from {})",
            command.unwrap_or_default(),
            idle.unwrap_or(0),
            host.unwrap_or_default()
        ),
        None => format!("connection {id}"),
    }))
}

/// Takes the ingest lock, waiting up to `wait` for its holder to let it go.
pub fn wait_for_lock(
    conn: &mut Conn,
    database: &str,
    partition: Partition,
    wait: Duration,
) -> Result<bool, mysql::Error> {
    let got: Option<Option<i64>> = conn.exec_first(
        "SELECT GET_LOCK(?, ?)",
        (lock_name(database, partition), wait.as_secs()),
    )?;
    Ok(got.flatten() == Some(1))
}

/// The fixed-width key of an identifier in `aws_report_details` (`notification_key`,
/// `recipient_key`, `feedback_key`): the first 16 bytes of SHA-256 of its UTF-8 bytes, what
/// `UNHEX(LEFT(SHA2(x, 256), 32))` computes in SQL (migration 8 fills old rows so).
pub fn key_digest(text: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())[..16].to_vec()
}

/// The key digests of the notification ids a batch looked up before parsing, by id: the same
/// ids are digested again for their rows' insert, and SHA-256 is most of what a digest costs.
#[derive(Default)]
pub struct KeyDigests(std::collections::HashMap<String, Vec<u8>>);

impl KeyDigests {
    pub fn of_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        KeyDigests(
            ids.into_iter()
                .map(|id| (id.to_string(), key_digest(id)))
                .collect(),
        )
    }

    /// Whether `id` was among the ids looked up.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// `key_digest(text)`, computed again only for a text not among the ids.
    pub fn digest(&self, text: &str) -> Vec<u8> {
        self.0
            .get(text)
            .cloned()
            .unwrap_or_else(|| key_digest(text))
    }

    /// The digests, for the lookup.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.0.values().map(Vec::as_slice)
    }
}

/// The lookup every table family needs: `sql` with `IN ({keys})`, run once per chunk of the
/// distinct `keys` (so no statement outgrows the placeholder limit), all rows together.
pub fn select_in<R: FromRow, K: Ord + Clone + Into<Value>>(
    conn: &mut impl Queryable,
    sql: &str,
    keys: impl IntoIterator<Item = K>,
) -> Result<Vec<R>, mysql::Error> {
    let mut keys: Vec<K> = keys.into_iter().collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows = Vec::new();
    for chunk in lookup_chunks(&keys) {
        let statement = sql.replace("{keys}", &placeholders(chunk.len()));
        let params: Vec<Value> = chunk.into_iter().map(Into::into).collect();
        rows.extend(conn.exec::<R, _, _>(statement, params)?);
    }
    Ok(rows)
}

/// `rows` cut into multi-row statements of a few fixed sizes: `ROWS_PER_STATEMENT` rows while
/// that many are left, then the largest power of two that is left (128, 64, ... 1). A prepared
/// statement is cached by its text, so a batch's last, odd-sized statement would otherwise be
/// prepared anew every time (the server describing each of its thousands of placeholders, the
/// client parsing them, and the statement closed again); with these sizes there are nine texts
/// per statement, all prepared once per connection.
fn statement_chunks<T>(rows: &[T]) -> StatementChunks<'_, T> {
    StatementChunks { rest: rows }
}

struct StatementChunks<'a, T> {
    rest: &'a [T],
}

impl<'a, T> Iterator for StatementChunks<'a, T> {
    type Item = &'a [T];

    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let rows = if self.rest.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << self.rest.len().ilog2()
        };
        let (chunk, rest) = self.rest.split_at(rows);
        self.rest = rest;
        Some(chunk)
    }
}

/// `keys` cut into `IN (...)` lookups of `KEYS_PER_LOOKUP` keys, each padded to the next of
/// `LOOKUP_SIZES` with copies of its last key (a key twice in an `IN` list selects, updates or
/// deletes nothing more), so that a lookup has six texts rather than one per key count: see
/// `statement_chunks`.
fn lookup_chunks<K: Clone>(keys: &[K]) -> impl Iterator<Item = Vec<K>> + '_ {
    keys.chunks(KEYS_PER_LOOKUP).map(|chunk| {
        let size = LOOKUP_SIZES
            .into_iter()
            .find(|&size| size >= chunk.len())
            .unwrap_or(chunk.len());
        let mut padded = Vec::with_capacity(size);
        padded.extend_from_slice(chunk);
        if let Some(last) = chunk.last() {
            padded.resize(size, last.clone());
        }
        padded
    })
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

/// Turns a MySQL error into an `Error` saying what was being done (never carrying a password).
pub trait SqlContext<T> {
    fn sql_context(self, doing: &str) -> Result<T>;
}

impl<T> SqlContext<T> for Result<T, mysql::Error> {
    fn sql_context(self, doing: &str) -> Result<T> {
        self.map_err(|e| Error::mysql(doing, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_digests_are_the_first_16_bytes_of_sha_256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 ...
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23,
        ];
        assert_eq!(key_digest("abc"), expected);
        assert_ne!(key_digest("a@x.org"), key_digest("A@x.org"));
    }

    #[test]
    fn a_batchs_digests_equal_key_digest_whether_looked_up_or_not() {
        let digests = KeyDigests::of_ids(["n-1", "n-2", "n-1"]);
        assert!(digests.contains("n-1") && digests.contains("n-2"));
        assert!(!digests.contains("n-3"));
        for id in ["n-1", "n-2", "n-3"] {
            assert_eq!(digests.digest(id), key_digest(id), "{id}");
        }
        let mut keys: Vec<Vec<u8>> = digests.keys().map(<[u8]>::to_vec).collect();
        keys.sort();
        let mut expected = vec![key_digest("n-1"), key_digest("n-2")];
        expected.sort();
        assert_eq!(keys, expected, "each id once");
    }

    #[test]
    fn statements_take_a_few_fixed_row_counts() {
        let sizes = |n: usize| {
            statement_chunks(&vec![0u8; n])
                .map(<[u8]>::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(250), [250]);
        assert_eq!(sizes(1070), [250, 250, 250, 250, 64, 4, 2]);
        assert_eq!(sizes(249), [128, 64, 32, 16, 8, 1]);
        let rows: Vec<usize> = (0..777).collect();
        let again: Vec<usize> = statement_chunks(&rows).flatten().copied().collect();
        assert_eq!(again, rows, "every row once, in order");
        let mut shapes: Vec<usize> = (1..2000).flat_map(sizes).collect();
        shapes.sort_unstable();
        shapes.dedup();
        assert_eq!(shapes, [1, 2, 4, 8, 16, 32, 64, 128, 250]);
    }

    #[test]
    fn lookups_are_padded_with_their_last_key() {
        let keys: Vec<u32> = (1..=5).collect();
        let chunks: Vec<Vec<u32>> = lookup_chunks(&keys).collect();
        assert_eq!(
            chunks,
            [vec![1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]]
        );
        let many: Vec<u32> = (0..1001).collect();
        let chunks: Vec<Vec<u32>> = lookup_chunks(&many).collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0], many[..1000]);
        assert_eq!(chunks[1], [1000]);
        assert_eq!(lookup_chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn a_urls_own_statement_cache_is_kept() {
        assert!(url_sets(
            "mysql://h/db?stmt_cache_size=8",
            "stmt_cache_size"
        ));
        assert!(url_sets(
            "mysql://h/db?a=1&stmt_cache_size=0",
            "stmt_cache_size"
        ));
        assert!(!url_sets("mysql://h/db", "stmt_cache_size"));
        assert!(!url_sets(
            "mysql://h/db?x_stmt_cache_size=1",
            "stmt_cache_size"
        ));
    }

    #[test]
    fn lock_names_fit_mysql() {
        let whole = Partition::WHOLE;
        assert!(lock_name(&"x".repeat(64), whole).chars().count() <= 64);
        assert_eq!(
            lock_name("ses_report", whole),
            "ses-report.ingest.ses_report"
        );
        let part = Partition::parse("12/1024").unwrap();
        let long = lock_name(&"x".repeat(64), part);
        assert_eq!(long.chars().count(), 64);
        assert!(long.ends_with("x.12of1024"), "{long}");
        assert_eq!(lock_name("db", part), "ses-report.ingest.db.12of1024");
    }

    #[test]
    fn retries_back_off_from_half_a_second_to_eight() {
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(2), Duration::from_secs(1));
        assert_eq!(retry_delay(9), Duration::from_secs(8));
    }
}

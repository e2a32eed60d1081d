//! The test harness: every test gets its own MySQL database and Mongo database (dropped after),
//! runs the real `ses-report` binary against the real servers, and reads the resulting rows.
//!
//! Servers: `SES_REPORT_TEST_MYSQL_URL` (default mysql://root@127.0.0.1:3306) and
//! `SES_REPORT_TEST_MONGO_URL` (default mongodb://127.0.0.1:27017); `scripts/test.sh` starts them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mongodb::bson::Document;
use mongodb::sync::Client;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Value};
use serde_json::Value as Json;

pub const BIN: &str = env!("CARGO_BIN_EXE_ses-report");

pub fn mysql_server_url() -> String {
    std::env::var("SES_REPORT_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub fn mongo_server_url() -> String {
    std::env::var("SES_REPORT_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into())
}

/// A MySQL server as the harness reaches it (`admin`, a URL the mysql crate reads) and as the
/// job is given it (`job`, which may carry the job's own options such as `ssl-mode`).
#[derive(Clone)]
pub struct MySqlServer {
    pub admin: String,
    pub job: String,
}

impl MySqlServer {
    /// The server `scripts/services.sh` starts, shared by the tests.
    pub fn shared() -> MySqlServer {
        MySqlServer {
            admin: mysql_server_url(),
            job: mysql_server_url(),
        }
    }
}

/// `url` (no database, maybe a query) with `database` as its path.
pub fn with_database(url: &str, database: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => format!("{}/{database}?{query}", base.trim_end_matches('/')),
        None => format!("{}/{database}", url.trim_end_matches('/')),
    }
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A finished run of the binary, printable in full when an assertion fails.
/// One `key=value` of the summary line (the last line of a run's stdout), as a number.
pub fn summary_count(stdout: &str, key: &str) -> Option<u64> {
    let prefix = format!("{key}=");
    stdout
        .lines()
        .last()?
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

pub struct Run {
    pub command: String,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// The last line on stdout: the run's summary.
    pub fn summary(&self) -> String {
        self.stdout().lines().last().unwrap_or("").to_string()
    }
    /// One `key=value` of the summary line, as a number.
    pub fn count(&self, key: &str) -> u64 {
        summary_count(&self.stdout(), key).unwrap_or_else(|| panic!("no {key}= in summary\n{self}"))
    }
    /// One `key=value` of the summary line, 0 when the line does not name it.
    pub fn count_or_zero(&self, key: &str) -> u64 {
        summary_count(&self.stdout(), key).unwrap_or(0)
    }
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code(), code, "unexpected exit code\n{self}");
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {}\n--- stdout\n{}--- stderr\n{}",
            self.command,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// One test's databases. Dropped (both) when the value goes out of scope.
pub struct TestEnv {
    pub name: String,
    /// The MySQL server: how the harness reaches it, and the URL the job is given (no database).
    server: MySqlServer,
    admin: Conn,
    mongo: Client,
    /// Extra environment for every run (e.g. SES_REPORT_NOW).
    pub vars: Vec<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestEnv {
    /// `new`, with the bundled demo day in Mongo and its `auth_users` in MySQL, nothing ingested.
    pub fn demo(test: &str) -> TestEnv {
        TestEnv::demo_on(test, MySqlServer::shared())
    }

    /// `demo` on a MySQL server of the test's own.
    pub fn demo_on(test: &str, server: MySqlServer) -> TestEnv {
        let env = TestEnv::new_on(test, server);
        env.execute(&std::fs::read_to_string(repo_path("fixtures/demo/auth_users.sql")).unwrap());
        env.load_ndjson(&repo_path("fixtures/demo/notifications.ndjson"));
        env
    }

    /// New, empty databases named after the test; the MySQL one is migrated.
    pub fn new(test: &str) -> TestEnv {
        let env = TestEnv::unmigrated(test);
        env.run(&["migrate"]).expect_code(0);
        env
    }

    pub fn unmigrated(test: &str) -> TestEnv {
        TestEnv::unmigrated_on(test, MySqlServer::shared())
    }

    /// `new` on a MySQL server of the test's own (`crate::servers`).
    pub fn new_on(test: &str, server: MySqlServer) -> TestEnv {
        let env = TestEnv::unmigrated_on(test, server);
        env.run(&["migrate"]).expect_code(0);
        env
    }

    pub fn unmigrated_on(test: &str, server: MySqlServer) -> TestEnv {
        let short: String = test
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        let name = format!(
            "srt_{short}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let opts = Opts::from_url(&server.admin).expect("SES_REPORT_TEST_MYSQL_URL");
        let mut admin = Conn::new(
            OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(Duration::from_secs(5))),
        )
        .unwrap_or_else(|e| {
            panic!(
                "MySQL is not reachable at {} ({e}): run scripts/services.sh",
                server.admin
            )
        });
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .unwrap();
        let mongo = Client::with_uri_str(format!(
            "{}/?serverSelectionTimeoutMS=5000",
            mongo_server_url()
        ))
        .unwrap();
        mongo
            .database(&name)
            .run_command(mongodb::bson::doc! {"ping": 1})
            .run()
            .unwrap_or_else(|e| {
                panic!(
                    "Mongo is not reachable at {} ({e}): run scripts/services.sh",
                    mongo_server_url()
                )
            });
        mongo.database(&name).drop().run().unwrap();
        // The app's collection exists before its first notification, as in production (a run
        // over a collection that does not exist fails).
        mongo
            .database(&name)
            .create_collection("sesevents")
            .run()
            .unwrap();
        TestEnv {
            name,
            server,
            admin,
            mongo,
            vars: Vec::new(),
        }
    }

    /// The URL the job is given.
    pub fn mysql_url(&self) -> String {
        with_database(&self.server.job, &self.name)
    }

    /// The environment every run gets: this test's databases and nothing from the caller's.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("SES_REPORT_TZ")
            .env_remove("SES_REPORT_NOW")
            .env("SES_REPORT_MYSQL_URL", self.mysql_url())
            .env("SES_REPORT_MONGO_URL", mongo_server_url())
            .env("SES_REPORT_MONGO_DB", &self.name)
            .env("SES_REPORT_MONGO_COLLECTION", "sesevents")
            .env("RUST_LOG", "info");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_command(self.command(args), args, None)
    }

    /// `run`, with some variables set otherwise (`None`: unset) for this run only.
    pub fn run_with_vars(&self, args: &[&str], vars: &[(&str, Option<&str>)]) -> Run {
        let mut cmd = self.command(args);
        for (name, value) in vars {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        self.run_command(cmd, args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.run_command(self.command(args), args, Some(stdin))
    }

    pub fn run_command(&self, mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Run {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run ses-report");
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        Run {
            command: format!("ses-report {}", args.join(" ")),
            output,
        }
    }

    pub fn ingest(&self, args: &[&str]) -> Run {
        let mut all = vec!["ingest"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    // --- Mongo

    pub fn insert(&self, documents: &[Json]) {
        if documents.is_empty() {
            return;
        }
        let docs: Vec<Document> = documents
            .iter()
            .map(
                |d| match mongodb::bson::Bson::try_from(d.clone()).unwrap() {
                    mongodb::bson::Bson::Document(doc) => doc,
                    other => panic!("not a document: {other}"),
                },
            )
            .collect();
        self.mongo
            .database(&self.name)
            .collection::<Document>("sesevents")
            .insert_many(docs)
            .run()
            .unwrap();
    }

    /// Inserts an NDJSON file of notifications (Mongo extended JSON).
    pub fn load_ndjson(&self, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let docs: Vec<Json> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for chunk in docs.chunks(1000) {
            self.insert(chunk);
        }
    }

    // --- MySQL

    /// A connection of the harness to this test's database.
    pub fn conn(&self) -> Conn {
        let opts = Opts::from_url(&with_database(&self.server.admin, &self.name)).unwrap();
        let mut conn = Conn::new(opts).unwrap();
        conn.query_drop("SET time_zone = '+00:00'").unwrap();
        conn
    }

    pub fn execute(&self, sql: &str) {
        let mut conn = self.conn();
        for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            conn.query_drop(statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }

    /// Rows as text (NULL as "NULL", DATETIME as `YYYY-MM-DD HH:MM:SS.mmm`), in the query's order.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let mut conn = self.conn();
        let rows: Vec<mysql::Row> = conn.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .map(|row| row.unwrap().into_iter().map(text).collect())
            .collect()
    }

    /// The rows of `table`, in `order`, with the columns named in the header of the expected file.
    pub fn rows_as_in(&self, expected: &Path, table: &str, order: &str) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(expected).unwrap();
        let header = text.lines().next().unwrap_or_default();
        let columns: Vec<String> = header
            .split('\t')
            .map(|c| match c {
                "day" => "DATE_FORMAT(day, '%Y-%m-%d')".to_string(),
                c => format!("`{c}`"),
            })
            .collect();
        self.rows(&format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            columns.join(", ")
        ))
    }

    pub fn scalar(&self, sql: &str) -> String {
        self.rows(sql)
            .first()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_else(|| "NULL".into())
    }

    pub fn count(&self, table: &str) -> u64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .parse()
            .unwrap()
    }

    /// The report tables a user reads (summaries, details, daily rollups) without their
    /// surrogate ids and bookkeeping times, sorted: equal snapshots mean equal reports.
    pub fn snapshot(&self) -> Snapshot {
        let reports = self.rows(
            "SELECT message_id, user_email, report_type, COALESCE(user_id, 'NULL'), user_source, source_email, subject,
                    send_at, delivery_at, bounce_at, complaint_at, reject_at, open_at, click_at,
                    rendering_failure_at, delivery_delay_at, subscription_at, open_count, click_count, bounce_type,
                    human_open_count, human_click_count, first_human_open_at, first_human_click_at,
                    mailbox_provider, configuration_set, sending_ip, tags
             FROM aws_reports ORDER BY message_id, user_email",
        );
        let details = self.rows(
            "SELECT d.notification_message_id, d.`to`, d.event_type, d.message_id, d.timestamp, d.`from`, d.subject,
                    d.other_info, d.feedback_id, d.automated, d.bounce_class, d.delay_type, r.message_id, r.user_email
             FROM aws_report_details d JOIN aws_reports r ON r.id = d.report_id
             ORDER BY d.notification_message_id, d.`to`",
        );
        let daily = self.rows(
            "SELECT DATE_FORMAT(day, '%Y-%m-%d'), report_type, source_email, recipient_domain, mailbox_provider,
                    configuration_set, sending_ip, sent, delivered,
                    rejected, rendering_failures, delivery_delays, permanent_bounces, suppressed_bounces,
                    transient_bounces, undetermined_bounces, complaints, suppressed_complaints, unique_opens,
                    total_opens, human_unique_opens, unique_clicks, total_clicks, human_unique_clicks,
                    unsubscribes, bounces_invalid_address, bounces_mailbox_full, bounces_mailbox_disabled,
                    bounces_reputation, bounces_policy, bounces_content, bounces_rate_limit, bounces_technical,
                    bounces_unclassified, time_zone
             FROM aws_report_daily
             ORDER BY day, report_type, source_email, recipient_domain, mailbox_provider, configuration_set, sending_ip",
        );
        let suppressions = self.rows(
            "SELECT email, kind, first_at, last_at, evidence_count, COALESCE(last_diagnostic, 'NULL'),
                    COALESCE(last_diagnostic_at, 'NULL'), recent, COALESCE(expires_at, 'NULL'),
                    COALESCE(lifted_at, 'NULL'), COALESCE(bounce_class, 'NULL')
             FROM aws_report_suppressions ORDER BY email, kind",
        );
        Snapshot {
            reports,
            details,
            daily,
            suppressions,
        }
    }
}

impl TestEnv {
    /// The check `doctor` makes, over every day the tables hold: the stored rollups equal a
    /// recomputation from the rows. Every test that ingests ends with it (`Drop`), so no change
    /// can leave a rollup stale without a test failing. Run in the zone the rollups were
    /// computed in (the one `aws_report_daily.time_zone` names, else the test's own).
    pub fn assert_rollups_fresh(&self) {
        let admin = with_database(&self.server.admin, &self.name);
        let Ok(mut conn) = Conn::new(Opts::from_url(&admin).unwrap()) else {
            return;
        };
        let range: Result<Vec<(Option<String>, Option<String>)>, _> = conn.query(
            "SELECT DATE_FORMAT(MIN(d) - INTERVAL 1 DAY, '%Y-%m-%d'), DATE_FORMAT(MAX(d) + INTERVAL 2 DAY, '%Y-%m-%d')
             FROM (SELECT DATE(MIN(timestamp)) d FROM aws_report_details
                   UNION ALL SELECT DATE(MAX(timestamp)) FROM aws_report_details
                   UNION ALL SELECT MIN(day) FROM aws_report_daily
                   UNION ALL SELECT MAX(day) FROM aws_report_daily) days",
        );
        // Not migrated, or nothing ingested: nothing to check.
        let Some((Some(from), Some(to))) = range.ok().and_then(|r| r.into_iter().next()) else {
            return;
        };
        let zones: Vec<String> = conn
            .query("SELECT DISTINCT time_zone FROM aws_report_daily")
            .unwrap_or_default();
        let mut args = vec!["doctor", "--from", &from, "--to", &to];
        match zones.as_slice() {
            [zone] => args.extend(["--tz", zone.as_str()]),
            [] => {}
            // Days rolled up in several zones (a test of `rollup --tz`): doctor checks one zone.
            _ => return,
        }
        // The test's own variables may point at a proxy or a server it has stopped: only its zone.
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .env_remove("SES_REPORT_TZ")
            .env_remove("SES_REPORT_NOW")
            .env("SES_REPORT_MYSQL_URL", self.mysql_url())
            .env("SES_REPORT_MONGO_URL", mongo_server_url())
            .env("SES_REPORT_MONGO_DB", &self.name)
            .env("SES_REPORT_MONGO_COLLECTION", "sesevents");
        if let Some((_, zone)) = self.vars.iter().find(|(k, _)| k == "SES_REPORT_TZ") {
            cmd.env("SES_REPORT_TZ", zone);
        }
        let run = self.run_command(cmd, &args, None);
        let out = run.stdout();
        if out.contains("equal a recomputation from the rows") {
            return;
        }
        // A run that failed before its rollup leaves stale days marked: the next run recomputes
        // them. Stale is allowed only there (a zone day within a day of a marked UTC date).
        let marked: Vec<String> = conn
            .query("SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days")
            .unwrap_or_default();
        let drifted: Vec<String> = out
            .lines()
            .find_map(|l| l.strip_prefix("FIX   drift: the stored rollups of "))
            .and_then(|l| l.split(" differ").next())
            .map(|days| days.split(", ").map(str::to_string).collect())
            .unwrap_or_default();
        let near_a_mark = |day: &str| {
            let day = time::Date::parse(
                day,
                time::macros::format_description!("[year]-[month]-[day]"),
            );
            day.is_ok_and(|d| {
                [d.previous_day(), Some(d), d.next_day()]
                    .into_iter()
                    .flatten()
                    .any(|m| marked.contains(&m.to_string()))
            })
        };
        assert!(
            !drifted.is_empty() && drifted.iter().all(|d| near_a_mark(d)),
            "the stored rollups differ from a recomputation from the rows (days marked for a recompute: {marked:?}):\n{run}"
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_rollups_fresh();
        }
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        let _ = self.mongo.database(&self.name).drop().run();
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub reports: Vec<Vec<String>>,
    pub details: Vec<Vec<String>>,
    /// The suppression ledger.
    pub suppressions: Vec<Vec<String>>,
    pub daily: Vec<Vec<String>>,
}

fn text(value: Value) -> String {
    match value {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, mo, d, h, mi, s, us) => format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:03}",
            us / 1000
        ),
        Value::Time(neg, d, h, m, s, us) => {
            format!("{}{d} {h}:{m}:{s}.{us}", if neg { "-" } else { "" })
        }
    }
}

/// Reads a tab-separated expected-rows file (first line: column names, ignored).
pub fn expected_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// A TCP proxy to a server that can be frozen: its connections stay open but nothing more
/// passes either way, as with a server that hangs or a network that drops packets silently.
/// New connections are accepted and frozen too. Bounded: its threads end when it is dropped.
pub struct FreezableProxy {
    pub port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableProxy {
    /// Forwards 127.0.0.1:<port> to `target` ("host:port").
    pub fn start(target: &str) -> FreezableProxy {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let (f, c, target) = (frozen.clone(), closed.clone(), target.to_string());
        std::thread::spawn(move || {
            while !c.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (f, c) = (f.clone(), c.clone());
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        from.set_nonblocking(false).unwrap();
                        from.set_read_timeout(Some(std::time::Duration::from_millis(50)))
                            .unwrap();
                        let mut buffer = [0u8; 64 * 1024];
                        while !c.load(Ordering::SeqCst) {
                            if f.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(50));
                                continue;
                            }
                            match from.read(&mut buffer) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if to.write_all(&buffer[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                    });
                }
            }
        });
        FreezableProxy {
            port,
            frozen,
            closed,
        }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// "host:port" of a server URL such as mongodb://127.0.0.1:27017 or mysql://root@127.0.0.1:3306.
pub fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

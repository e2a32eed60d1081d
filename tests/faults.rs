//! Servers failing under a run: the run is recorded as failed, exits 1, and a rerun finishes the
//! window with nothing lost and nothing doubled.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::notifications::*;
use crate::util::{host_port, mongo_server_url, mysql_server_url, FreezableProxy, TestEnv};

pub(crate) fn day(count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| {
            let m = mail(
                &format!("m-{i:03}"),
                "2026-11-27T10:00:00.000Z",
                &["a@x.org"],
            );
            send(&format!("n-{i:03}"), &m)
        })
        .collect()
}

/// The tables one uninterrupted run over `day(count)` leaves: what every fault test must end with.
pub(crate) fn clean_run(name: &str, count: usize) -> TestEnv {
    let clean = TestEnv::new(name);
    clean.insert(&day(count));
    clean.ingest(&["--date", "2026-11-27"]).expect_code(0);
    clean
}

/// Waits until the ingest sleeps in a test trigger (`what`: the record or step it sleeps in), then
/// kills that connection.
/// (Only the sleeping statement is a sure target: a statement seen running a moment earlier may
/// have ended before the `KILL` arrives, and then the run need not meet the fault at all, as CI
/// saw at d8301ca: the run slept its 5 s and finished with no retry.)
fn kill_connection_sleeping(env: &TestEnv, what: &str) {
    let id = wait_until_slept(env, what);
    env.conn()
        .query_drop(format!("KILL CONNECTION {id}"))
        .unwrap();
}

#[test]
fn losing_mysql_mid_run_fails_the_run_and_a_rerun_completes_it() {
    let clean = clean_run("mysql_lost_clean", 30);

    let mut env = TestEnv::new("mysql_lost");
    env.vars.push(("SES_REPORT_RETRIES".into(), "0".into()));
    env.insert(&day(30));
    // Make one insert slow enough to be caught in the act.
    env.execute(
        "CREATE TRIGGER slow_one BEFORE INSERT ON aws_report_details FOR EACH ROW
         BEGIN IF NEW.message_id = 'm-015' THEN DO SLEEP(5); END IF; END",
    );
    let child = env.command(&["ingest", "--date", "2026-11-27", "--batch-size", "5"]);
    let handle = std::thread::spawn(move || {
        let mut child = child;
        child.output().unwrap()
    });
    kill_connection_sleeping(&env, "m-015");
    let output = handle.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("MySQL"), "{stderr}");
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "failed");
    let applied: u64 = env.count("aws_report_details");
    assert!(
        applied > 0 && applied < 30,
        "{applied} applied before the kill"
    );

    env.execute("DROP TRIGGER slow_one");
    let rerun = env.ingest(&["--date", "2026-11-27"]);
    rerun.expect_code(0);
    assert_eq!(rerun.count("duplicates"), applied, "{rerun}");
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// Two days of sends, the first day first in `_id` order.
fn two_days() -> Vec<serde_json::Value> {
    let mut docs = Vec::new();
    for (day, prefix) in [("2026-11-26", "a"), ("2026-11-27", "b")] {
        for i in 0..10 {
            let m = mail(
                &format!("m-{prefix}{i:02}"),
                &format!("{day}T10:00:00.000Z"),
                &["a@x.org"],
            );
            docs.push(send(&format!("n-{prefix}{i:02}"), &m));
        }
    }
    docs
}

/// Issue 9's reproduction: a run over two days fails after the first day is wholly applied;
/// the rerun finds that day's events all duplicates, yet its rollup must still be computed.
#[test]
fn a_failed_runs_days_are_rolled_up_by_the_next_run() {
    let window = ["--from", "2026-11-26", "--to", "2026-11-28"];
    let clean = TestEnv::new("failed_days_clean");
    clean.insert(&two_days());
    clean.ingest(&window).expect_code(0);

    let mut env = TestEnv::new("failed_days");
    env.vars.push(("SES_REPORT_RETRIES".into(), "0".into()));
    env.insert(&two_days());
    // The second day's sixth mail sleeps once; the kill comes while it does, so the first day
    // is wholly committed (batches of 5) and the second only in part.
    slow_once(&env, "m-b05", 5);
    let mut args = vec!["ingest", "--batch-size", "5"];
    args.extend(window);
    let child = env.command(&args);
    let handle = std::thread::spawn(move || {
        let mut child = child;
        child.output().unwrap()
    });
    kill_connection_sleeping(&env, "m-b05");
    let output = handle.join().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "failed");
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_report_details WHERE message_id LIKE 'm-a%'"),
        "10",
        "the first day was not wholly applied before the failure"
    );

    env.ingest(&window).expect_code(0);
    let clean = clean.snapshot();
    assert_eq!(clean.daily.len(), 2, "{:?}", clean.daily);
    assert_eq!(env.snapshot(), clean);
}

/// Makes the insert of one email's details sleep once (a MyISAM flag survives the rollback of
/// the transaction that was killed), so the run can be caught mid-way.
pub(crate) fn slow_once(env: &TestEnv, message_id: &str, seconds: u32) {
    env.execute("CREATE TABLE slept (done INT) ENGINE=MyISAM");
    env.execute(&format!(
        "CREATE TRIGGER slow_once BEFORE INSERT ON aws_report_details FOR EACH ROW
         BEGIN IF NEW.message_id = '{message_id}' AND (SELECT COUNT(*) FROM slept) = 0 THEN
           INSERT INTO slept VALUES (1); DO SLEEP({seconds}); END IF; END"
    ));
}

/// Waits until an ingest of `env` sleeps in a test trigger (`slow_once`'s, or another's `DO
/// SLEEP`), and returns its connection id; `what` names the record or step, for the failure
/// message. (By the process list: the flag table cannot be read meanwhile, since the sleeping
/// statement holds its MyISAM table lock, so a read would wait until the sleep was over.)
pub(crate) fn wait_until_slept(env: &TestEnv, what: &str) -> u64 {
    let mut admin = env.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sleeping: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE = 'User sleep' AND ID <> CONNECTION_ID()",
                (&env.name,),
            )
            .unwrap();
        if let Some(id) = sleeping {
            return id;
        }
        assert!(Instant::now() < deadline, "the ingest never reached {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn spawn(env: &TestEnv, args: &[&str]) -> std::process::Child {
    let mut cmd = env.command(args);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

pub(crate) fn wait_output(child: std::process::Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_killed_mysql_connection_is_retried_and_the_run_finishes() {
    let clean = clean_run("mysql_retry_clean", 30);

    let env = TestEnv::new("mysql_retry");
    env.insert(&day(30));
    slow_once(&env, "m-015", 5);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    kill_connection_sleeping(&env, "m-015");
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("retry 1/3") && stderr.contains("reconnected"),
        "{stderr}"
    );
    assert!(stdout.contains("applied=30 duplicates=0"), "{stdout}");
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "ok");
    assert_eq!(env.snapshot(), clean.snapshot());
}

#[test]
fn mysql_staying_down_fails_the_run_within_the_retries_and_a_rerun_completes() {
    let clean = clean_run("mysql_down_clean", 30);

    let mut env = TestEnv::new("mysql_down");
    env.vars.push(("SES_REPORT_RETRIES".into(), "2".into()));
    env.insert(&day(30));
    slow_once(&env, "m-010", 5);
    // The run connects as its own account, which the test then locks: the server is "down" for it.
    let user = format!("u{}", std::process::id());
    for host in ["%", "localhost"] {
        env.execute(&format!("CREATE USER '{user}'@'{host}'"));
        env.execute(&format!(
            "GRANT ALL ON `{}`.* TO '{user}'@'{host}'",
            env.name
        ));
    }
    let server = crate::util::mysql_server_url();
    let as_user = server.replacen("root", &user, 1);
    let mut cmd = env.command(&["ingest", "--date", "2026-11-27", "--batch-size", "5"]);
    cmd.env("SES_REPORT_MYSQL_URL", format!("{as_user}/{}", env.name))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let mut admin = env.conn();
    wait_until_slept(&env, "m-010");
    for host in ["%", "localhost"] {
        env.execute(&format!("ALTER USER '{user}'@'{host}' ACCOUNT LOCK"));
    }
    // Its sessions, by database: while the trigger sleeps, PROCESSLIST shows the trigger's
    // definer as the user, not the account that connected.
    let ids: Vec<u64> = admin
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE (USER = ? OR DB = ?) AND ID <> CONNECTION_ID()",
            (&user, &env.name),
        )
        .unwrap();
    assert!(!ids.is_empty(), "no session of the ingest found");
    for id in ids {
        let _ = admin.query_drop(format!("KILL CONNECTION {id}"));
    }
    let started = Instant::now();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("gave up after 2 retries"), "{stderr}");
    assert_eq!(
        env.scalar("SELECT status FROM aws_report_runs"),
        "running",
        "nothing could record the end"
    );
    for host in ["%", "localhost"] {
        env.execute(&format!("DROP USER '{user}'@'{host}'"));
    }

    let rerun = env.ingest(&["--date", "2026-11-27"]);
    rerun.expect_code(0);
    assert!(rerun.stderr().contains("marked abandoned"), "{rerun}");
    assert_eq!(
        env.scalar("SELECT status FROM aws_report_runs ORDER BY id LIMIT 1"),
        "abandoned"
    );
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

#[test]
fn sigterm_stops_the_run_promptly_and_a_rerun_completes() {
    let clean = clean_run("sigterm_clean", 40);

    let env = TestEnv::new("sigterm");
    env.insert(&day(40));
    slow_once(&env, "m-012", 3);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    // Signal while the batch holding m-012 is being written: the run finishes that batch only.
    wait_until_slept(&env, "m-012");
    let signalled = Instant::now();
    unsafe { libc_kill(child.id() as i32, 15) };
    let (code, stdout, stderr) = wait_output(child);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?}",
        signalled.elapsed()
    );
    assert_eq!(code, Some(130), "{stdout}{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert_eq!(
        env.scalar("SELECT status FROM aws_report_runs"),
        "interrupted"
    );
    let applied: u64 = env.count("aws_report_details");
    assert!(applied < 40, "{applied}");

    let rerun = env.ingest(&["--date", "2026-11-27"]);
    rerun.expect_code(0);
    assert_eq!(rerun.count("duplicates"), applied, "{rerun}");
    assert_eq!(env.snapshot(), clean.snapshot());
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// kill -9 at random points of fixed-window, catch-up and --file runs, thirty times: one
/// uninterrupted run then leaves exactly the clean tables, rollups included.
#[test]
fn kill_9_at_random_points_then_one_clean_run_gives_the_clean_tables() {
    let text =
        std::fs::read_to_string(crate::util::repo_path("fixtures/demo/notifications.ndjson"))
            .unwrap();
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let users =
        std::fs::read_to_string(crate::util::repo_path("fixtures/demo/auth_users.sql")).unwrap();
    let clean = TestEnv::new("kill9_clean");
    clean.execute(&users);
    clean.insert(&docs);
    clean.ingest(&["--date", "2026-11-27"]).expect_code(3);

    let mut env = TestEnv::new("kill9");
    env.execute(&users);
    env.insert(&docs);
    // Catch-up on the morning after reads the demo day too.
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let file = crate::util::repo_path("fixtures/demo/notifications.ndjson");
    let file = file.to_str().unwrap();
    let mut rng = ses_fixtures::Rng::new(9);
    let mut killed = 0;
    for i in 0..30 {
        // A fixed window, catch-up, and the same day read from its NDJSON file, in turn.
        let args: Vec<&str> = match i % 3 {
            0 => vec!["ingest", "--date", "2026-11-27", "--batch-size", "7"],
            1 => vec!["ingest", "--batch-size", "7"],
            _ => vec!["ingest", "--file", file, "--batch-size", "7"],
        };
        let mut child = spawn(&env, &args);
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = child.wait();
    }
    assert!(killed >= 10, "only {killed} runs were killed mid-way");
    let last = env.ingest(&["--date", "2026-11-27"]);
    last.expect_code(3);
    assert_eq!(env.snapshot(), clean.snapshot());
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_report_runs WHERE status = 'running'"),
        "0"
    );
    assert_eq!(
        env.rows("SELECT DATE_FORMAT(day, '%Y-%m-%d'), SUM(sent), SUM(delivered), SUM(total_opens) FROM aws_report_daily GROUP BY day"),
        clean.rows("SELECT DATE_FORMAT(day, '%Y-%m-%d'), SUM(sent), SUM(delivered), SUM(total_opens) FROM aws_report_daily GROUP BY day")
    );
}

#[test]
fn two_ingests_started_together_one_runs_one_exits_4() {
    let env = TestEnv::new("concurrent");
    env.insert(&day(20));
    slow_once(&env, "m-002", 2);
    let first = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    let second = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    let (a, b) = (wait_output(first), wait_output(second));
    let mut codes = vec![a.0, b.0];
    codes.sort();
    assert_eq!(codes, vec![Some(0), Some(4)], "{a:?}\n{b:?}");
    assert_eq!(env.count("aws_report_details"), 20);
    // With the lock released, overlapping windows one after the other double nothing.
    env.ingest(&[
        "--from",
        "2026-11-27T09:00:00Z",
        "--to",
        "2026-11-27T11:00:00Z",
    ])
    .expect_code(0);
    assert_eq!(env.count("aws_report_details"), 20);
}

/// A Mongo wire server of this test's own (so killing it disturbs no other test).
struct OwnMongo {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnMongo {
    /// On a free port: one the kernel just said unused, and another if a client's socket took it
    /// before the server could.
    fn start_anywhere(dir: &std::path::Path) -> OwnMongo {
        for _ in 0..5 {
            if let Some(mongo) = OwnMongo::try_start(crate::servers::free_port(), dir) {
                return mongo;
            }
        }
        panic!(
            "nx-27017 could not start on 5 free ports: see {}",
            dir.join("log").display()
        )
    }

    /// On `port` (a restart, where a test's clients know the port).
    fn start(port: u16, dir: &std::path::Path) -> OwnMongo {
        OwnMongo::try_start(port, dir).unwrap_or_else(|| {
            panic!(
                "nx-27017 exited before answering on port {port}: see {}",
                dir.join("log").display()
            )
        })
    }

    /// `None` when the server exits before it answers (its port was taken).
    fn try_start(port: u16, dir: &std::path::Path) -> Option<OwnMongo> {
        let server = crate::util::repo_path(".services/venv/bin/nx-27017");
        assert!(
            server.exists(),
            "{} is missing: run scripts/services.sh",
            server.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        let child = std::process::Command::new(server)
            .args(["--host", "127.0.0.1", "-p", &port.to_string(), "--data-dir"])
            .arg(dir.join("data"))
            .arg("--log-file")
            .arg(dir.join("log"))
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut mongo = OwnMongo {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if mongo.child.try_wait().unwrap().is_some() {
                return None;
            }
            // Answered while our server still runs: the port is ours.
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && mongo.child.try_wait().unwrap().is_none()
            {
                return Some(mongo);
            }
            assert!(
                Instant::now() < deadline,
                "nx-27017 did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnMongo {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Mongo wire server of the test's own on a free port, holding `day(40)`.
fn own_mongo_with_day(env: &TestEnv) -> (OwnMongo, u16, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{}-nx", env.name));
    let mongo = OwnMongo::start_anywhere(&dir);
    let port = mongo.port;
    let client = mongodb::sync::Client::with_uri_str(mongo.url()).unwrap();
    let docs: Vec<mongodb::bson::Document> = day(40)
        .into_iter()
        .filter_map(|d| match mongodb::bson::Bson::try_from(d).unwrap() {
            mongodb::bson::Bson::Document(doc) => Some(doc),
            _ => None,
        })
        .collect();
    client
        .database(&env.name)
        .collection("sesevents")
        .insert_many(docs)
        .run()
        .unwrap();
    (mongo, port, dir)
}

#[test]
fn the_mongo_server_dying_mid_run_is_survived() {
    let clean = clean_run("mongo_dies_clean", 40);

    let mut env = TestEnv::new("mongo_dies");
    let (mut mongo, port, dir) = own_mongo_with_day(&env);
    env.vars.push(("SES_REPORT_MONGO_URL".into(), mongo.url()));
    env.vars.push(("SES_REPORT_RETRIES".into(), "6".into()));
    slow_once(&env, "m-012", 2);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-012");
    // Killed while the ingest is busy writing; back a second later with the same data.
    mongo.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let _mongo_again = OwnMongo::start(port, &dir);
    // The first server is dead already; dropping it would delete the data dir the second one uses.
    std::mem::forget(mongo);
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("lost the MongoDB cursor") || stderr.contains("cannot query"),
        "{stderr}"
    );
    assert!(stdout.contains("scanned=40 applied=40"), "{stdout}");
    assert_eq!(env.snapshot(), clean.snapshot());
}

#[test]
fn the_mongo_server_staying_down_fails_the_run_and_a_rerun_completes() {
    let clean = clean_run("mongo_down_clean", 40);

    let mut env = TestEnv::new("mongo_down");
    let (mut mongo, port, dir) = own_mongo_with_day(&env);
    env.vars.push(("SES_REPORT_MONGO_URL".into(), mongo.url()));
    env.vars.push(("SES_REPORT_RETRIES".into(), "1".into()));
    env.vars
        .push(("SES_REPORT_CONNECT_TIMEOUT_SECS".into(), "2".into()));
    slow_once(&env, "m-012", 2);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-012");
    mongo.kill();
    let started = Instant::now();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("gave up after 1 retries"), "{stderr}");
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "failed");

    let _back = OwnMongo::start(port, &dir);
    // The first server is dead already; dropping it would delete the data dir the second one uses.
    std::mem::forget(mongo);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// After a lost connection the run takes its lock again; if another session holds it (the server
/// may not yet have noticed the old one is gone) it waits, within SES_REPORT_IO_TIMEOUT_SECS,
/// then exits 1 saying what happened. It used to exit 4 at once, "nothing done", although
/// batches were applied, and cron scripts read 4 as "the previous run is still going".
#[test]
fn a_lock_held_after_a_reconnect_is_waited_for_then_fails_with_exit_1() {
    let clean = clean_run("lock_lost_clean", 30);
    let mut env = TestEnv::new("lock_lost");
    env.vars
        .push(("SES_REPORT_IO_TIMEOUT_SECS".into(), "2".into()));
    env.insert(&day(30));
    slow_once(&env, "m-015", 5);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    let mut admin = env.conn();
    let id = wait_until_slept(&env, "m-015");
    admin.query_drop(format!("KILL CONNECTION {id}")).unwrap();
    // The killed session's lock is free now: take it before the run reconnects (after 0.5 s).
    let lock = format!("ses-report.ingest.{}", env.name);
    let got: Option<i64> = admin.exec_first("SELECT GET_LOCK(?, 5)", (&lock,)).unwrap();
    assert_eq!(got, Some(1));
    let started = Instant::now();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(2) && started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("could not take the ingest lock")
            && stderr.contains("run the same window again"),
        "{stderr}"
    );
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "failed");
    let _: Option<i64> = admin
        .exec_first("SELECT RELEASE_LOCK(?)", (&lock,))
        .unwrap();
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// Waits until the run has applied something, so that a freeze comes mid-run.
fn wait_for_first_rows(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.count("aws_report_details") == 0 {
        assert!(Instant::now() < deadline, "the ingest applied nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A Mongo server that accepts and then never answers (the driver has no socket timeout) holds
/// the run only until SES_REPORT_DEADLINE_SECS: then the run is recorded failed and ends, exit 1;
/// the next run completes the window.
#[test]
fn a_mongo_server_that_stops_answering_is_bounded_by_the_deadline() {
    let clean = clean_run("mongo_hang_clean", 900);
    let mut env = TestEnv::new("mongo_hang");
    env.insert(&day(900));
    let proxy = FreezableProxy::start(&host_port(&mongo_server_url()));
    let direct = env.vars.clone();
    env.vars.extend([
        (
            "SES_REPORT_MONGO_URL".to_string(),
            format!("mongodb://127.0.0.1:{}/?directConnection=true", proxy.port),
        ),
        ("SES_REPORT_DEADLINE_SECS".to_string(), "3".to_string()),
        ("SES_REPORT_IO_TIMEOUT_SECS".to_string(), "2".to_string()),
        (
            "SES_REPORT_CONNECT_TIMEOUT_SECS".to_string(),
            "2".to_string(),
        ),
    ]);
    let started = Instant::now();
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_for_first_rows(&env);
    proxy.freeze();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "failed");
    assert!(
        env.scalar("SELECT message FROM aws_report_runs")
            .contains("SES_REPORT_DEADLINE_SECS"),
        "{stderr}"
    );
    assert!(env.count("aws_report_details") < 900);

    env.vars = direct;
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// A MySQL server that stops answering mid-run ends the run within the I/O timeout and the
/// retries, exit 1; the run cannot record its end there, so the next run marks it abandoned
/// and completes the window.
#[test]
fn a_mysql_server_that_stops_answering_ends_the_run_within_its_timeouts() {
    let clean = clean_run("mysql_hang_clean", 900);
    let mut env = TestEnv::new("mysql_hang");
    env.insert(&day(900));
    let proxy = FreezableProxy::start(&host_port(&mysql_server_url()));
    let direct = env.vars.clone();
    env.vars.extend([
        (
            "SES_REPORT_MYSQL_URL".to_string(),
            // prefer_socket=false: on localhost the driver would switch to the server's Unix socket.
            format!(
                "mysql://root@127.0.0.1:{}/{}?prefer_socket=false",
                proxy.port, env.name
            ),
        ),
        ("SES_REPORT_IO_TIMEOUT_SECS".to_string(), "2".to_string()),
        (
            "SES_REPORT_CONNECT_TIMEOUT_SECS".to_string(),
            "2".to_string(),
        ),
        ("SES_REPORT_RETRIES".to_string(), "1".to_string()),
    ]);
    // One batch sleeps 2 s inside MySQL; the freeze comes meanwhile, so its answer never arrives.
    slow_once(&env, "m-050", 2);
    let started = Instant::now();
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-050");
    proxy.freeze();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("gave up after 1 retries"), "{stderr}");
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "running");

    env.vars = direct;
    // The server still has the dead run's session (the proxy keeps it open, as a silent network
    // drop would): its lock is held, and the message names the session to KILL.
    let blocked = env.ingest(&["--date", "2026-11-27"]);
    blocked.expect_code(4);
    assert!(
        blocked.stderr().contains("end that session with KILL"),
        "{blocked}"
    );
    drop(proxy);
    let deadline = Instant::now() + Duration::from_secs(10);
    let rerun = loop {
        let run = env.ingest(&["--date", "2026-11-27"]);
        if run.code() != 4 || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    rerun.expect_code(0);
    assert!(rerun.stderr().contains("marked abandoned"), "{rerun}");
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// A password registered from a connection URL never reaches the tables: not a failure's reason
/// or stored document (here a record whose eventType is the password), nor a run's message
/// after a failure whose message quotes a URL holding it.
#[test]
fn passwords_never_reach_the_tables() {
    let secret = "Tr0ub4dor-s3cret";
    let mut env = TestEnv::new("secret_tables");
    let user = format!("srt_secret_{}", std::process::id());
    env.execute(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}';\nGRANT ALL ON `{}`.* TO '{user}'@'%'",
        env.name
    ));
    env.vars.push((
        "SES_REPORT_MYSQL_URL".into(),
        format!(
            "mysql://{user}:{secret}@127.0.0.1:3306/{}?prefer_socket=false",
            env.name
        ),
    ));
    let m = mail("m-secret", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[
        send("n-ok", &m),
        notification(
            "n-secret",
            "2026-11-27T10:00:00.000Z",
            &record(secret, &m, "send", serde_json::json!({})),
        ),
    ]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    let (error, document) = {
        let row = env.rows(
            "SELECT error, document FROM aws_report_failures WHERE notification_id = 'n-secret'",
        );
        (row[0][0].clone(), row[0][1].clone())
    };
    assert!(
        error.contains("unknown eventType") && !error.contains(secret),
        "{error}"
    );
    assert!(
        document.contains("***") && !document.contains(secret),
        "{document}"
    );

    // A run that fails on a Mongo server gone mid-run records a message quoting its URL.
    let (mut mongo, _port, _dir) = own_mongo_with_day(&env);
    env.vars.extend([
        (
            "SES_REPORT_MONGO_URL".to_string(),
            format!("{}/?appName={secret}", mongo.url()),
        ),
        ("SES_REPORT_RETRIES".to_string(), "1".to_string()),
        (
            "SES_REPORT_CONNECT_TIMEOUT_SECS".to_string(),
            "2".to_string(),
        ),
    ]);
    slow_once(&env, "m-012", 2);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-012");
    mongo.kill();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(secret), "{stderr}");
    let message = env.scalar("SELECT message FROM aws_report_runs WHERE status = 'failed'");
    assert!(
        message.contains("appName=***") && !message.contains(secret),
        "{message}"
    );
    env.execute(&format!("DROP USER '{user}'@'%'"));
}

/// A connection lost while the closing rollup runs is retried like a batch: a new connection,
/// the lock taken again, the rollup done again; the run ends ok with the clean rollups.
#[test]
fn a_connection_killed_during_the_rollup_is_retried() {
    let clean = clean_run("rollup_retry_clean", 30);
    let env = TestEnv::new("rollup_retry");
    env.insert(&day(30));
    env.execute("CREATE TABLE slept (done INT) ENGINE=MyISAM");
    env.execute(
        "CREATE TRIGGER slow_rollup BEFORE INSERT ON aws_report_daily FOR EACH ROW
         BEGIN IF (SELECT COUNT(*) FROM slept) = 0 THEN INSERT INTO slept VALUES (1); DO SLEEP(5); END IF; END",
    );
    let child = spawn(&env, &["ingest", "--date", "2026-11-27"]);
    kill_connection_sleeping(&env, "the rollup");
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("recomputing the daily rollups") && stderr.contains("reconnected"),
        "{stderr}"
    );
    assert_eq!(env.scalar("SELECT status FROM aws_report_runs"), "ok");
    assert_eq!(env.count("aws_report_dirty_days"), 0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

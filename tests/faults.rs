//! Servers failing under a run: the run is recorded as failed, exits 1, and a rerun finishes the
//! window with nothing lost and nothing doubled.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::notifications::*;
use crate::util::TestEnv;

fn day(count: usize) -> Vec<serde_json::Value> {
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

/// Waits for the ingest's connection to run a statement matching `like`, then kills it.
fn kill_connection_running(env: &TestEnv, like: &str) {
    let mut admin = env.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let id: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND (INFO LIKE ? OR INFO LIKE '%SLEEP(%') AND ID <> CONNECTION_ID()",
                (&env.name, like),
            )
            .unwrap();
        if let Some(id) = id {
            admin.query_drop(format!("KILL CONNECTION {id}")).unwrap();
            return;
        }
        assert!(Instant::now() < deadline, "the ingest never ran {like}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn losing_mysql_mid_run_fails_the_run_and_a_rerun_completes_it() {
    let clean = TestEnv::new("mysql_lost_clean");
    clean.insert(&day(30));
    clean.ingest(&["--date", "2026-11-27"]).expect_code(0);

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
    kill_connection_running(&env, "%INSERT INTO aws_report_details%");
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

//! `ingest --partition K/N`: N workers, each with its own lock, together leave the tables of one
//! run, whatever order they run in, whether they run at once, beside a whole-stream run, or one
//! is killed and run again; and each catches up from where its own runs reached.

use std::time::Duration;

use mysql::prelude::Queryable;

use crate::faults::{clean_run, day, slow_once, spawn, wait_output, wait_until_slept};
use crate::util::TestEnv;

/// The failures' ids (a document with no readable id is named by its database and `_id`, which
/// differ between two tests' databases).
const FAILURES: &str =
    "SELECT IF(notification_id LIKE 'mongo:%', 'mongo:*', notification_id) FROM aws_report_failures ORDER BY 1";

#[test]
fn a_partition_applies_exactly_the_mails_mysqls_crc32_puts_there() {
    let env = TestEnv::demo("part_crc");
    let run = env.ingest(&["--date", "2026-11-27", "--partition", "2/3"]);
    run.expect_code(3);
    let rows = env.count("aws_reports");
    assert!(rows > 10, "{run}");
    // The documented rule, computed by the database itself.
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_reports WHERE CRC32(message_id) % 3 + 1 <> 2"),
        "0"
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_report_details WHERE CRC32(message_id) % 3 + 1 <> 2"),
        "0"
    );
    assert!(
        run.stderr()
            .contains("record(s) read belong to other partitions"),
        "{run}"
    );
    assert_eq!(
        env.scalar("SELECT partition_label FROM aws_report_runs"),
        "2/3"
    );
    // The other two complete the day.
    let clean = TestEnv::demo("part_crc_clean");
    clean.ingest(&["--date", "2026-11-27"]).expect_code(3);
    for k in ["3/3", "1/3"] {
        env.ingest(&["--date", "2026-11-27", "--partition", k])
            .expect_code(3);
    }
    assert_eq!(env.snapshot(), clean.snapshot());
    assert_eq!(env.rows(FAILURES), clean.rows(FAILURES));
    // `retry --partition` splits the kept failures the same way: each is retried by one worker.
    let retried: u64 = ["1/3", "2/3", "3/3"]
        .iter()
        .map(|k| env.run(&["retry", "--partition", k]).count("failed"))
        .sum();
    assert_eq!(retried, env.count("aws_report_failures"));
    assert_eq!(
        env.scalar("SELECT MIN(attempts) = MAX(attempts) FROM aws_report_failures"),
        "1"
    );
}

#[test]
fn partition_arguments_are_checked() {
    let env = TestEnv::new("part_args");
    for bad in ["0/2", "3/2", "2", "x/y"] {
        let run = env.ingest(&["--date", "2026-11-27", "--partition", bad]);
        run.expect_code(2);
        assert!(run.stderr().contains("want K/N"), "{run}");
    }
}

/// Two partitions and a whole-day run, started together three times over with small batches:
/// they meet on the same notifications, and the tables, rollups and failures are one run's,
/// with no failure that one run would not have.
#[test]
fn partitions_and_a_whole_run_at_once_leave_the_tables_of_one_run() {
    let clean = TestEnv::demo("part_conc_clean");
    clean.ingest(&["--date", "2026-11-27"]).expect_code(3);
    for round in 0..3 {
        let env = TestEnv::demo(&format!("part_conc{round}"));
        let mut children = Vec::new();
        for args in [
            vec![
                "ingest",
                "--date",
                "2026-11-27",
                "--partition",
                "1/2",
                "--batch-size",
                "4",
            ],
            vec!["ingest", "--date", "2026-11-27", "--batch-size", "6"],
            vec![
                "ingest",
                "--date",
                "2026-11-27",
                "--partition",
                "2/2",
                "--batch-size",
                "5",
            ],
        ] {
            children.push(spawn(&env, &args));
        }
        for child in children {
            let (code, stdout, stderr) = wait_output(child);
            assert_eq!(code, Some(3), "{stdout}{stderr}");
        }
        assert_eq!(env.snapshot(), clean.snapshot(), "round {round}");
        assert_eq!(env.rows(FAILURES), clean.rows(FAILURES));
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM aws_report_runs WHERE status <> 'partial'"),
            "0"
        );
    }
}

/// A whole-day run holds a batch open (a trigger sleeps inside it); a partition run then plans
/// the same notifications as new, waits on the whole run's rows, meets its unique keys, plans
/// again and finds them duplicates: nothing counts twice, nothing fails.
#[test]
fn a_partition_meeting_rows_another_run_is_writing_plans_again() {
    let clean = clean_run("part_meet_clean", 30);

    let env = TestEnv::new("part_meet");
    env.insert(&day(30));
    let k = env.scalar("SELECT CRC32('m-015') % 2 + 1");
    slow_once(&env, "m-015", 3);
    let whole = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-015");
    let partition = format!("{k}/2");
    let part = env.ingest(&[
        "--date",
        "2026-11-27",
        "--partition",
        &partition,
        "--batch-size",
        "5",
    ]);
    let (code, stdout, stderr) = wait_output(whole);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    part.expect_code(0);
    assert!(part.stderr().contains("planning the batch again"), "{part}");
    assert_eq!(part.count("failed"), 0);
    assert_eq!(
        part.count("applied") + crate::util::summary_count(&stdout, "applied").unwrap(),
        30,
        "{part}\n{stdout}"
    );
    assert_eq!(env.snapshot(), clean.snapshot());
    assert_eq!(env.count("aws_report_failures"), 0);
}

/// kill -9 of one partition's worker at random points; its rerun completes it.
#[test]
fn a_killed_partition_rerun_completes_the_day() {
    let clean = TestEnv::demo("part_kill_clean");
    clean.ingest(&["--date", "2026-11-27"]).expect_code(3);
    let env = TestEnv::demo("part_kill");
    env.ingest(&["--date", "2026-11-27", "--partition", "2/2"])
        .expect_code(3);
    let mut rng = ses_fixtures::Rng::new(12);
    let mut killed = 0;
    for _ in 0..8 {
        let mut child = spawn(
            &env,
            &[
                "ingest",
                "--date",
                "2026-11-27",
                "--partition",
                "1/2",
                "--batch-size",
                "3",
            ],
        );
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = child.wait();
    }
    assert!(killed >= 3, "only {killed} runs were killed mid-way");
    env.ingest(&["--date", "2026-11-27", "--partition", "1/2"])
        .expect_code(3);
    assert_eq!(env.snapshot(), clean.snapshot());
    assert_eq!(env.rows(FAILURES), clean.rows(FAILURES));
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_report_runs WHERE status = 'running'"),
        "0"
    );
}

fn last_window(env: &TestEnv, label: &str) -> Vec<String> {
    env.rows(&format!(
        "SELECT DATE_FORMAT(window_from, '%Y-%m-%d %H'), DATE_FORMAT(window_to, '%Y-%m-%d %H')
         FROM aws_report_runs WHERE partition_label = '{label}' ORDER BY id DESC LIMIT 1"
    ))
    .remove(0)
}

#[test]
fn each_partition_catches_up_from_where_its_own_runs_reached() {
    let mut env = TestEnv::new("part_catch_up");
    let catch_up = |env: &mut TestEnv, now: &str, partition: Option<&str>| {
        env.vars = vec![("SES_REPORT_NOW".into(), now.into())];
        let mut args = vec!["--lookback-hours", "0"];
        if let Some(p) = partition {
            args.extend(["--partition", p]);
        }
        env.ingest(&args).expect_code(0);
    };
    catch_up(&mut env, "2026-11-28T07:00:00Z", Some("1/2"));
    catch_up(&mut env, "2026-11-28T07:00:00Z", Some("2/2"));
    assert_eq!(last_window(&env, "1/2"), ["2026-11-27 00", "2026-11-28 00"]);
    // A day later only partition 1 runs; two days later partition 2 reads both missed days.
    catch_up(&mut env, "2026-11-29T07:00:00Z", Some("1/2"));
    assert_eq!(last_window(&env, "1/2"), ["2026-11-28 00", "2026-11-29 00"]);
    catch_up(&mut env, "2026-11-30T07:00:00Z", Some("2/2"));
    assert_eq!(last_window(&env, "2/2"), ["2026-11-28 00", "2026-11-30 00"]);
    // A whole run starts where the slower partition reached; a 3-way split, where the 2-way
    // split and the whole run left off.
    catch_up(&mut env, "2026-11-30T07:00:00Z", None);
    assert_eq!(last_window(&env, ""), ["2026-11-29 00", "2026-11-30 00"]);
    catch_up(&mut env, "2026-12-01T07:00:00Z", Some("1/3"));
    assert_eq!(last_window(&env, "1/3"), ["2026-11-30 00", "2026-12-01 00"]);
}

/// A run found `running` is abandoned only when its own partition's lock is free.
#[test]
fn a_running_partition_is_not_taken_for_abandoned() {
    let env = TestEnv::new("part_abandon");
    env.execute(
        "INSERT INTO aws_report_runs (started_at, window_from, window_to, source, partition_label, status)
         VALUES (UTC_TIMESTAMP(3), '2026-11-27', '2026-11-28', 'mongo test', '2/2', 'running')",
    );
    let lock = format!("ses-report.ingest.{}.2of2", env.name);
    let mut holder = env.conn();
    let got: Option<i64> = holder
        .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
        .unwrap();
    assert_eq!(got, Some(1));
    env.ingest(&["--date", "2026-11-27", "--partition", "1/2"])
        .expect_code(0);
    // Partition 2's own lock is taken: a second worker for it exits 4.
    env.ingest(&["--date", "2026-11-27", "--partition", "2/2"])
        .expect_code(4);
    let status = "SELECT status FROM aws_report_runs WHERE partition_label = '2/2'";
    assert_eq!(env.scalar(status), "running");
    drop(holder);
    std::thread::sleep(Duration::from_millis(200));
    env.ingest(&["--date", "2026-11-27", "--partition", "1/2"])
        .expect_code(0);
    assert_eq!(env.scalar(status), "abandoned");
}

/// A batch chosen as a deadlock's victim is applied again at once, on the same connection: here
/// another session (made the heavier transaction, so that InnoDB rolls the ingest back) holds the
/// day's dirty mark and waits for a summary row the ingest's batch holds, while the ingest, woken
/// from a trigger's sleep, comes to mark the day.
#[test]
fn a_deadlock_victim_batch_is_applied_again_at_once() {
    let clean = clean_run("deadlock_clean", 30);

    let env = TestEnv::new("deadlock");
    env.insert(&day(30));
    env.execute("CREATE TABLE ballast (n INT) ENGINE=InnoDB");
    // As `slow_once`, but the flag is an InnoDB table: a transaction that wrote a MyISAM table
    // counts as the heavier one, and InnoDB would never choose the ingest as the victim. (Its
    // flag row goes with the rolled-back batch, so the batch sleeps again when applied again.)
    env.execute(
        "CREATE TABLE slept (done INT) ENGINE=InnoDB;
         CREATE TRIGGER slow_once BEFORE INSERT ON aws_report_details FOR EACH ROW
         BEGIN IF NEW.message_id = 'm-015' AND (SELECT COUNT(*) FROM slept) = 0 THEN
           INSERT INTO slept VALUES (1); DO SLEEP(2); END IF; END",
    );
    let ingest = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-015");
    let mut other = env.conn();
    let waiter = std::thread::spawn(move || {
        let mut tx = other.start_transaction(mysql::TxOpts::default()).unwrap();
        tx.query_drop("INSERT INTO ballast SELECT seq FROM seq_1_to_5000")
            .unwrap();
        let marked: Option<String> = tx
            .query_first(
                "SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days FOR UPDATE",
            )
            .unwrap();
        assert_eq!(marked.as_deref(), Some("2026-11-27"));
        // Waits for the ingest's batch, which holds this summary row.
        tx.query_drop(
            "UPDATE aws_reports SET report_type = report_type WHERE message_id = 'm-015'",
        )
        .unwrap();
        tx.commit().unwrap();
    });
    let (code, stdout, stderr) = wait_output(ingest);
    waiter.join().unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("chosen as a deadlock's victim, applying it again (1/10)"),
        "{stderr}"
    );
    assert!(!stderr.contains("retry 1/3"), "{stderr}");
    assert!(stdout.contains("applied=30 duplicates=0"), "{stdout}");
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// A unique key that keeps refusing one event (here a trigger raising MySQL's duplicate-entry
/// error; in life, a digest collision) is planned again SES_REPORT_RETRIES times, then its batch
/// is bisected like any refused batch: that event alone fails and is kept, the rest land.
#[test]
fn a_duplicate_key_that_persists_fails_only_its_event() {
    let clean = clean_run("dup_persist_clean", 30);
    let mut env = TestEnv::new("dup_persist");
    env.vars.push(("SES_REPORT_RETRIES".into(), "2".into()));
    env.insert(&day(30));
    env.execute(
        "CREATE TRIGGER always_duplicate BEFORE INSERT ON aws_report_details FOR EACH ROW
         BEGIN IF NEW.message_id = 'm-007' THEN SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062,
           MESSAGE_TEXT = 'Duplicate entry for key uq_details_notification_key'; END IF; END",
    );
    let run = env.ingest(&["--date", "2026-11-27", "--batch-size", "5"]);
    run.expect_code(3);
    assert_eq!(
        (run.count("applied"), run.count("failed")),
        (29, 1),
        "{run}"
    );
    assert_eq!(
        run.stderr().matches("planning the batch again").count(),
        2,
        "{run}"
    );
    assert!(
        run.stderr()
            .contains("still refuses a row after planning again 2 times"),
        "{run}"
    );
    assert_eq!(
        env.rows("SELECT notification_id FROM aws_report_failures"),
        [["n-007"]]
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_report_details WHERE message_id = 'm-007'"),
        "0"
    );
    // Everything else is what a clean run wrote.
    let others = "SELECT notification_message_id, `to`, event_type FROM aws_report_details
                  WHERE message_id <> 'm-007' ORDER BY 1, 2";
    assert_eq!(env.rows(others), clean.rows(others));
}

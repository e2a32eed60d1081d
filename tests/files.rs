//! `--file`: NDJSON of SNS envelopes or bare Firehose records, gzip, stdin; and `--dry-run`.

use std::io::Write;

use crate::notifications::*;
use crate::util::{expected_rows, repo_path, TestEnv};

fn scenario() -> std::path::PathBuf {
    repo_path("fixtures/scenarios/every-event-type")
}

fn scratch(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn envelopes_from_a_file_give_the_same_rows_as_from_mongo() {
    let env = TestEnv::new("file_envelopes");
    env.execute(&std::fs::read_to_string(scenario().join("auth_users.sql")).unwrap());
    let path = scenario().join("notifications.ndjson");
    let run = env.ingest(&["--file", path.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.summary().starts_with("window=all "), "{run}");
    let expected = scenario().join("expected_reports.tsv");
    assert_eq!(
        env.rows_as_in(&expected, "aws_reports", "message_id, user_email"),
        expected_rows(&expected)
    );
    assert_eq!(
        env.scalar("SELECT source FROM aws_report_runs"),
        format!("file {}", path.display())
    );
}

#[test]
fn gzip_and_stdin_are_read_too() {
    let env = TestEnv::new("file_gzip");
    let text = std::fs::read(scenario().join("notifications.ndjson")).unwrap();
    let gz = scratch(&env, "day.ndjson.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&text).unwrap();
    encoder.finish().unwrap();
    let run = env.ingest(&["--file", gz.to_str().unwrap(), "--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(run.count("applied"), 14, "{run}");

    let again = env.run_with_stdin(&["ingest", "--file", "-"], &text);
    again.expect_code(0);
    assert_eq!(
        (again.count("applied"), again.count("duplicates")),
        (0, 14),
        "{again}"
    );
    let _ = std::fs::remove_dir_all(gz.parent().unwrap());
}

#[test]
fn bare_firehose_records_get_stable_ids_and_the_window_filters_lines() {
    let env = TestEnv::new("file_bare");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let next_day = mail("m-2", "2026-11-28T10:00:00.000Z", &["a@x.org"]);
    let lines = [
        record("Send", &m, "send", serde_json::json!({})),
        record(
            "Delivery",
            &m,
            "delivery",
            serde_json::json!({"timestamp": "2026-11-27T10:00:01.000Z", "recipients": ["a@x.org"]}),
        ),
        record("Send", &next_day, "send", serde_json::json!({})),
    ];
    let path = scratch(&env, "firehose.ndjson");
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, body).unwrap();
    let run = env.ingest(&["--file", path.to_str().unwrap(), "--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(
        (run.count("scanned"), run.count("applied")),
        (2, 2),
        "{run}"
    );
    let ids = env.rows("SELECT notification_message_id FROM aws_report_details");
    assert!(
        ids.iter()
            .all(|r| r[0].starts_with("sha256:") && r[0].len() == 7 + 64),
        "{ids:?}"
    );
    let rerun = env.ingest(&["--file", path.to_str().unwrap()]);
    assert_eq!(
        (rerun.count("applied"), rerun.count("duplicates")),
        (1, 2),
        "{rerun}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn dry_run_reads_everything_and_writes_nothing() {
    let env = TestEnv::new("dry_run");
    env.execute(&std::fs::read_to_string(scenario().join("auth_users.sql")).unwrap());
    env.load_ndjson(&scenario().join("notifications.ndjson"));
    let mut bad = send(
        "n-bad",
        &mail("m-bad", "2026-11-27T15:00:00.000Z", &["x@y.z"]),
    );
    bad["Message"] = "{not json".into();
    env.insert(&[bad]);
    let run = env.ingest(&["--date", "2026-11-27", "--dry-run"]);
    run.expect_code(3);
    assert_eq!(
        (
            run.count("scanned"),
            run.count("applied"),
            run.count("failed")
        ),
        (15, 14, 1),
        "{run}"
    );
    for table in [
        "aws_reports",
        "aws_report_details",
        "aws_report_failures",
        "aws_report_runs",
    ] {
        assert_eq!(env.count(table), 0, "{table} was written by a dry run");
    }
}

/// A file read with a window keeps the broken and skipped lines of other windows out: a broken
/// line stamped the day before neither fails nor counts in the next day's run, however often it
/// is rerun, and fails in its own day's.
#[test]
fn a_windowed_file_fails_and_skips_only_its_own_windows_lines() {
    let env = TestEnv::new("file_window_failures");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let mut broken = send(
        "n-broken",
        &mail("m-0", "2026-11-26T10:00:00.000Z", &["b@x.org"]),
    );
    broken["Message"] = serde_json::json!("{not json");
    let mut confirmation = send(
        "n-confirm",
        &mail("m-9", "2026-11-26T11:00:00.000Z", &["c@x.org"]),
    );
    confirmation["Type"] = serde_json::json!("SubscriptionConfirmation");
    let path = scratch(&env, "two-days.ndjson");
    let lines: Vec<String> = [broken, confirmation, send("n-1", &m)]
        .iter()
        .map(|n| n.to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let file = path.to_str().unwrap();
    for _ in 0..2 {
        let run = env.ingest(&["--file", file, "--date", "2026-11-27"]);
        run.expect_code(0);
        assert_eq!(
            (
                run.count("scanned"),
                run.count("failed"),
                run.count("skipped")
            ),
            (1, 0, 0),
            "{run}"
        );
        assert_eq!(env.count("aws_report_failures"), 0);
    }
    let run = env.ingest(&["--file", file, "--date", "2026-11-26"]);
    run.expect_code(3);
    assert_eq!((run.count("failed"), run.count("skipped")), (1, 1), "{run}");
    assert_eq!(
        env.rows("SELECT notification_id, attempts FROM aws_report_failures"),
        vec![vec!["n-broken".to_string(), "1".to_string()]]
    );
}

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

//! Fixture scenarios (fixtures/scenarios/*): load a folder's notifications, ingest, compare the
//! summary and the rows with the folder's expected files; and the demo day.

use crate::util::{expected_rows, repo_path, TestEnv};

/// Runs one scenario folder: loads `notifications.ndjson` into Mongo (unless `args` reads it
/// with `--file {dir}/...`), ingests with `args`, twice (the second run must change nothing),
/// and compares the summary counts and every row with the folder's expected files.
fn run_scenario(name: &str) {
    let dir = repo_path("fixtures/scenarios").join(name);
    let env = TestEnv::new(&format!("scenario_{name}"));
    if dir.join("auth_users.sql").exists() {
        env.execute(&std::fs::read_to_string(dir.join("auth_users.sql")).unwrap());
    }
    let args_text = std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .replace("{dir}", &dir.display().to_string());
    let args: Vec<&str> = args_text.split_whitespace().collect();
    if !args.contains(&"--file") {
        env.load_ndjson(&dir.join("notifications.ndjson"));
    }
    let expected = std::fs::read_to_string(dir.join("expected_summary.txt")).unwrap();
    let run = env.ingest(&args);
    for pair in expected.split_whitespace() {
        let (key, value) = pair.split_once('=').unwrap();
        if key == "exit" {
            run.expect_code(value.parse().unwrap());
        } else {
            assert_eq!(
                run.count(key),
                value.parse::<u64>().unwrap(),
                "{name}: {key}\n{run}"
            );
        }
    }
    let check = |env: &TestEnv| {
        // Each expected file's header names the columns it checks.
        for (file, table, order) in [
            ("expected_reports.tsv", "aws_reports", "message_id, user_email"),
            ("expected_details.tsv", "aws_report_details", "notification_message_id, `to`"),
            (
                "expected_daily.tsv",
                "aws_report_daily",
                "day, report_type, source_email, recipient_domain, mailbox_provider, configuration_set, sending_ip",
            ),
        ] {
            let path = dir.join(file);
            if !path.exists() {
                assert_ne!(file, "expected_reports.tsv", "{name}: every scenario checks aws_reports");
                continue;
            }
            assert_eq!(
                env.rows_as_in(&path, table, order),
                expected_rows(&path),
                "{name}: {table}"
            );
        }
        let failures_file = dir.join("expected_failures.tsv");
        let failures = env.rows(
            "SELECT notification_id, error FROM aws_report_failures WHERE resolved_at IS NULL ORDER BY notification_id",
        );
        if failures_file.exists() {
            assert_eq!(
                failures,
                expected_rows(&failures_file),
                "{name}: aws_report_failures"
            );
        } else {
            assert!(
                failures.is_empty(),
                "{name}: unexpected failures {failures:?}"
            );
        }
    };
    check(&env);
    // Idempotent: the same window again leaves every table as it was.
    let again = env.ingest(&args);
    assert_eq!(again.count("applied"), 0, "{name}: rerun\n{again}");
    check(&env);
}

/// Every folder under fixtures/scenarios is a case: a new folder is a new test case.
#[test]
fn every_scenario_folder_gives_its_expected_rows() {
    let mut names: Vec<String> = std::fs::read_dir(repo_path("fixtures/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        run_scenario(name);
    }
}

#[test]
fn every_event_type_keeps_the_events_own_object() {
    let dir = repo_path("fixtures/scenarios/every-event-type");
    let env = TestEnv::new("every_event_type");
    env.load_ndjson(&dir.join("notifications.ndjson"));
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    // other_info is the event's own object, as JSON text.
    let info = env
        .scalar("SELECT other_info FROM aws_report_details WHERE notification_message_id = 'n-12'");
    let bounce: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(bounce["bounceType"], "Permanent");
    assert_eq!(
        bounce["bouncedRecipients"][0]["diagnosticCode"],
        "smtp; 550 5.1.1 user unknown"
    );
}

#[test]
fn the_demo_day_ingests_with_its_malformed_records_kept() {
    let env = TestEnv::demo("demo_day");
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    assert_eq!(run.count("failed"), 6, "{run}");
    assert_eq!(run.count("skipped"), 3, "{run}");
    assert_eq!(env.count("aws_report_failures"), 6);
    let documents = env.rows("SELECT document FROM aws_report_failures");
    for doc in documents {
        let parsed: serde_json::Value =
            serde_json::from_str(&doc[0]).expect("failures keep the whole document as JSON");
        assert!(
            parsed.get("Message").is_some() || parsed.get("Type").is_some(),
            "{doc:?}"
        );
    }
    let kinds = env.rows("SELECT DISTINCT event_type FROM aws_report_details ORDER BY 1");
    assert_eq!(kinds.len(), 10, "{kinds:?}");
    let scanned = run.count("scanned");
    assert_eq!(
        scanned,
        run.count("applied") + run.count("duplicates") + run.count("skipped") + run.count("failed"),
        "{run}"
    );
}

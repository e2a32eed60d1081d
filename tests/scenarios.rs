//! Fixture scenarios: load a folder's notifications, ingest, compare the rows with the folder's
//! expected files.

use crate::util::{expected_rows, repo_path, TestEnv};

fn columns(rows: Vec<Vec<String>>, keep: &[usize]) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

#[test]
fn every_event_type_and_both_dialects_map_to_their_columns() {
    let dir = repo_path("fixtures/scenarios/every-event-type");
    let env = TestEnv::new("every_event_type");
    env.execute(&std::fs::read_to_string(dir.join("auth_users.sql")).unwrap());
    env.load_ndjson(&dir.join("notifications.ndjson"));

    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(run.count("scanned"), 14, "{run}");
    assert_eq!(run.count("applied"), 14, "{run}");
    assert_eq!(run.count("failed"), 0, "{run}");

    let snapshot = env.snapshot();
    assert_eq!(
        snapshot.reports,
        expected_rows(&dir.join("expected_reports.tsv"))
    );
    assert_eq!(
        columns(snapshot.details, &[0, 1, 2, 4, 8]),
        expected_rows(&dir.join("expected_details.tsv"))
    );

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
    let env = TestEnv::new("demo_day");
    env.execute(&std::fs::read_to_string(repo_path("fixtures/demo/auth_users.sql")).unwrap());
    env.load_ndjson(&repo_path("fixtures/demo/notifications.ndjson"));
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

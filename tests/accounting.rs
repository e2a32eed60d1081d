//! Per-recipient accounting end to end: fan-out, duplicates, earliest times and counters,
//! and the same tables whatever the order, the batch size or the number of reruns.

use serde_json::{json, Value};

use crate::notifications::*;
use crate::util::{repo_path, TestEnv};

#[test]
fn events_fan_out_to_their_own_recipients() {
    let env = TestEnv::new("fan_out");
    let m = mail(
        "m-1",
        "2026-11-27T10:00:00.000Z",
        &["a@x.org", "B@X.org", "c@x.org"],
    );
    env.insert(&[
        send("n-send", &m),
        delivery(
            "n-dlv",
            &m,
            "2026-11-27T10:00:01.000Z",
            &["a@x.org", "b@x.org"],
        ),
        bounce(
            "n-bnc",
            &m,
            "2026-11-27T10:00:02.000Z",
            "Permanent",
            "fb-1",
            &["C@x.org"],
        ),
        open("n-open", &m, "2026-11-27T11:00:00.000Z"),
        complaint(
            "n-cpl",
            &m,
            "2026-11-27T12:00:00.000Z",
            "fb-2",
            &["b@x.org"],
        ),
    ]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let rows = env.rows(
        "SELECT user_email, send_at IS NOT NULL, delivery_at IS NOT NULL, bounce_at IS NOT NULL, complaint_at IS NOT NULL, open_count, COALESCE(bounce_type, '-')
         FROM aws_reports ORDER BY user_email",
    );
    let expected: Vec<Vec<&str>> = vec![
        vec!["a@x.org", "1", "1", "0", "0", "1", "-"],
        vec!["b@x.org", "1", "1", "0", "1", "1", "-"],
        vec!["c@x.org", "1", "0", "1", "0", "1", "Permanent"],
    ];
    assert_eq!(rows, expected);
    assert_eq!(env.count("aws_report_details"), 3 + 2 + 1 + 3 + 1);
}

#[test]
fn sns_retries_and_second_routes_are_duplicates() {
    let env = TestEnv::new("duplicates");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let s = send("n-1", &m);
    let b = bounce(
        "n-2",
        &m,
        "2026-11-27T10:00:02.000Z",
        "Transient",
        "fb-1",
        &["a@x.org"],
    );
    let mut b_again = bounce(
        "n-3",
        &m,
        "2026-11-27T10:00:02.000Z",
        "Transient",
        "fb-1",
        &["a@x.org"],
    );
    b_again["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:classic-bounces".into();
    env.insert(&[s.clone(), s.clone(), s, b, b_again]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(
        (run.count("applied"), run.count("duplicates")),
        (2, 3),
        "{run}"
    );
    assert_eq!(env.count("aws_report_details"), 2);
    assert_eq!(
        env.scalar(
            "SELECT notification_message_id FROM aws_report_details WHERE event_type = 'Bounce'"
        ),
        "n-2"
    );
    let rerun = env.ingest(&["--date", "2026-11-27"]);
    assert_eq!(
        (rerun.count("applied"), rerun.count("duplicates")),
        (0, 5),
        "{rerun}"
    );
}

#[test]
fn earliest_times_and_counts_do_not_depend_on_order_or_reruns() {
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let docs = vec![
        send("n-1", &m),
        open("n-2", &m, "2026-11-27T12:00:00.000Z"),
        open("n-3", &m, "2026-11-27T11:00:00.000Z"),
        click("n-4", &m, "2026-11-27T12:05:00.000Z"),
        click("n-5", &m, "2026-11-27T11:05:00.000Z"),
        bounce(
            "n-6",
            &m,
            "2026-11-27T10:00:03.000Z",
            "Transient",
            "fb-1",
            &["a@x.org"],
        ),
        bounce(
            "n-7",
            &m,
            "2026-11-27T10:30:00.000Z",
            "Permanent",
            "fb-2",
            &["a@x.org"],
        ),
        bounce(
            "n-8",
            &m,
            "2026-11-27T10:40:00.000Z",
            "Undetermined",
            "fb-3",
            &["a@x.org"],
        ),
    ];
    let mut reversed = docs.clone();
    reversed.reverse();
    let forward = TestEnv::new("order_forward");
    forward.insert(&docs);
    forward.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let backward = TestEnv::new("order_backward");
    backward.insert(&reversed);
    backward
        .ingest(&["--date", "2026-11-27", "--batch-size", "1"])
        .expect_code(0);
    assert_eq!(forward.snapshot(), backward.snapshot());
    let row = &forward.rows("SELECT open_at, open_count, click_at, click_count, bounce_at, bounce_type FROM aws_reports")[0];
    assert_eq!(
        row,
        &vec![
            "2026-11-27 11:00:00.000",
            "2",
            "2026-11-27 11:05:00.000",
            "2",
            "2026-11-27 10:00:03.000",
            "Permanent"
        ]
    );
    let before = forward.snapshot();
    forward.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(forward.snapshot(), before, "a rerun changed the tables");
}

/// A deterministic shuffle (no rand dependency needed for one permutation).
fn shuffled(mut items: Vec<Value>, seed: u64) -> Vec<Value> {
    let mut rng = ses_fixtures::Rng::new(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    items
}

#[test]
fn a_generated_day_gives_the_same_tables_in_any_order_split_or_rerun() {
    let text = std::fs::read_to_string(repo_path("fixtures/demo/notifications.ndjson")).unwrap();
    let docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let users = std::fs::read_to_string(repo_path("fixtures/demo/auth_users.sql")).unwrap();

    let clean = TestEnv::new("day_clean");
    clean.execute(&users);
    clean.insert(&docs);
    clean.ingest(&["--date", "2026-11-27"]).expect_code(3);
    let expected = clean.snapshot();

    let messy = TestEnv::new("day_messy");
    messy.execute(&users);
    messy.insert(&shuffled(docs, 42));
    // Three overlapping windows in reverse order, small batches, then the whole day twice.
    for (from, to) in [
        ("2026-11-27T16:00:00Z", "2026-11-28"),
        ("2026-11-27T08:00:00Z", "2026-11-27T17:00:00Z"),
        ("2026-11-27", "2026-11-27T09:00:00Z"),
    ] {
        let run = messy.ingest(&["--from", from, "--to", to, "--batch-size", "7"]);
        assert!(matches!(run.code(), 0 | 3), "{run}");
    }
    messy
        .ingest(&["--date", "2026-11-27", "--batch-size", "50"])
        .expect_code(3);
    messy.ingest(&["--date", "2026-11-27"]).expect_code(3);
    assert_eq!(messy.snapshot(), expected);
}

#[test]
fn one_event_rejected_by_mysql_fails_alone() {
    let env = TestEnv::new("poisoned_event");
    // A trigger makes MySQL refuse one specific email: that event fails, its batch neighbours land.
    env.execute(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON aws_report_details FOR EACH ROW
         BEGIN IF NEW.message_id = 'm-poison' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison refused'; END IF; END",
    );
    let good = mail("m-good", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let poison = mail("m-poison", "2026-11-27T10:00:00.000Z", &["b@x.org"]);
    env.insert(&[
        send("n-1", &good),
        send("n-2", &poison),
        open("n-3", &good, "2026-11-27T11:00:00.000Z"),
    ]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    assert_eq!((run.count("applied"), run.count("failed")), (2, 1), "{run}");
    assert!(run.stderr().contains("poison refused"), "{run}");
    assert_eq!(
        env.rows("SELECT message_id FROM aws_reports"),
        vec![vec!["m-good"]]
    );
    let failure = &env.rows("SELECT notification_id, error, attempts FROM aws_report_failures")[0];
    assert_eq!(failure[0], "n-2");
    assert!(failure[1].contains("poison refused"), "{failure:?}");

    // Fixed: the next run applies it and marks the failure resolved.
    env.execute("DROP TRIGGER refuse_poison");
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.count("aws_reports"), 2);
    assert_ne!(
        env.scalar("SELECT resolved_at FROM aws_report_failures WHERE notification_id = 'n-2'"),
        "NULL"
    );
}

/// A dry run reports what the real run then does, however the duplicates fall into batches: it
/// used to count an SNS retry or a second route in a later batch as applied, since it had
/// written nothing for the earlier one.
#[test]
fn a_dry_run_summary_equals_the_real_runs_with_duplicates_across_batches() {
    let env = TestEnv::new("dry_run_counts");
    env.execute(
        &std::fs::read_to_string(crate::util::repo_path("fixtures/demo/auth_users.sql")).unwrap(),
    );
    env.load_ndjson(&crate::util::repo_path(
        "fixtures/demo/notifications.ndjson",
    ));
    let args = ["--date", "2026-11-27", "--batch-size", "3"];
    let mut dry_args = args.to_vec();
    dry_args.push("--dry-run");
    let dry = env.ingest(&dry_args);
    dry.expect_code(3);
    assert_eq!(env.count("aws_report_details"), 0, "a dry run wrote rows");
    let real = env.ingest(&args);
    real.expect_code(3);
    for key in [
        "scanned",
        "applied",
        "duplicates",
        "skipped",
        "failed",
        "users_resolved",
    ] {
        assert_eq!(dry.count(key), real.count(key), "{key}\n{dry}\n{real}");
    }
    assert!(real.count("duplicates") > 0, "{real}");
}

/// Both routes of one bounce, whichever comes first and whatever the batches: one detail row
/// (the smaller notification id's), and a summary row holding what both routes say (the
/// event-publishing one carries the outgoing IP and configuration set, the classic one neither),
/// in every table and in `stats --by sending-ip`.
#[test]
fn both_routes_of_a_bounce_give_one_runs_tables_in_any_order_and_batch_size() {
    let plain = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@gmail.com"]);
    let mut tagged = plain.clone();
    tagged["tags"] =
        json!({"ses:outgoing-ip": ["198.51.100.7"], "ses:configuration-set": ["marketing"]});
    // The routes differ in time and diagnostic, as they can: the ledger keeps the survivor's.
    let diagnosed = |n: Value, diagnostic: &str| {
        edited(n, |r| {
            r["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = json!(diagnostic)
        })
    };
    let s = send("n-5", &plain);
    let event_route = published(
        diagnosed(
            bounce(
                "n-9",
                &tagged,
                "2026-11-27T10:00:02.000Z",
                "Permanent",
                "fb-1",
                &["a@gmail.com"],
            ),
            "smtp; 550 5.1.1 event route",
        ),
        "2026-11-27T10:00:03.000Z",
    );
    let classic_route = classic(diagnosed(
        bounce(
            "n-3",
            &plain,
            "2026-11-27T10:00:02.500Z",
            "Permanent",
            "fb-1",
            &["a@gmail.com"],
        ),
        "smtp; 550 5.1.1 classic route",
    ));
    let late = |n: Value| published(n, "2026-11-27T10:00:04.000Z");
    let cases = [
        (
            "one batch",
            vec![s.clone(), event_route.clone(), classic_route.clone()],
            "1000",
        ),
        (
            "event route first",
            vec![s.clone(), event_route.clone(), late(classic_route.clone())],
            "1",
        ),
        (
            "classic route first",
            vec![
                s.clone(),
                published(classic_route.clone(), "2026-11-27T10:00:03.000Z"),
                late(event_route.clone()),
            ],
            "1",
        ),
    ];
    let mut seen = Vec::new();
    for (name, docs, batch) in cases {
        let env = TestEnv::new("routes");
        env.insert(&docs);
        env.ingest(&["--date", "2026-11-27", "--batch-size", batch])
            .expect_code(0);
        assert_eq!(
            env.rows("SELECT notification_message_id FROM aws_report_details WHERE event_type = 'Bounce'"),
            vec![vec!["n-3".to_string()]],
            "{name}"
        );
        assert_eq!(
            env.rows("SELECT sending_ip, configuration_set, bounce_at FROM aws_reports"),
            vec![vec![
                "198.51.100.7".to_string(),
                "marketing".to_string(),
                "2026-11-27 10:00:02.000".to_string()
            ]],
            "{name}"
        );
        assert_eq!(
            env.rows("SELECT kind, first_at, last_at, evidence_count, last_diagnostic FROM aws_report_suppressions"),
            vec![vec![
                "permanent-bounce".to_string(),
                "2026-11-27 10:00:02.500".to_string(),
                "2026-11-27 10:00:02.500".to_string(),
                "1".to_string(),
                "smtp; 550 5.1.1 classic route".to_string(),
            ]],
            "{name}"
        );
        let stats = env.run(&[
            "stats",
            "--date",
            "2026-11-27",
            "--by",
            "sending-ip",
            "--format",
            "csv",
        ]);
        stats.expect_code(0);
        seen.push((name, env.snapshot(), stats.stdout()));
    }
    for (name, snapshot, stats) in &seen[1..] {
        assert_eq!(snapshot, &seen[0].1, "{name}");
        assert_eq!(stats, &seen[0].2, "{name}");
    }
}

/// Instants are taken at milliseconds when read, as the tables keep them. Two clicks on
/// distinct links 1.0004 s apart (10:00:00.0004 and 10:00:01.0008) are exactly 1 s apart at
/// milliseconds, a scanner's burst: so they are whether they meet in one batch (both new) or
/// are read back from their rows when a later Delivery reclassifies them.
#[test]
fn sub_millisecond_digits_do_not_make_classes_depend_on_batches() {
    let m = mail("m-1", "2026-11-27T09:00:00.000Z", &["a@x.org"]);
    let click_on = |id: &str, at: &str, link: &str, published_at: &str| {
        published(click_on(id, &m, at, link), published_at)
    };
    let docs = vec![
        send("n-s", &m),
        click_on(
            "n-c1",
            "2026-11-27T10:00:00.000400Z",
            "https://shop.example/a",
            "2026-11-27T10:00:01.000Z",
        ),
        click_on(
            "n-c2",
            "2026-11-27T10:00:01.000800Z",
            "https://shop.example/b",
            "2026-11-27T10:00:02.000Z",
        ),
        published(
            delivery("n-d", &m, "2026-11-27T09:00:01.000Z", &["a@x.org"]),
            "2026-11-27T10:00:03.000Z",
        ),
    ];
    let mut seen = Vec::new();
    for batch in ["1000", "1"] {
        let env = TestEnv::new("sub_ms");
        env.insert(&docs);
        env.ingest(&["--date", "2026-11-27", "--batch-size", batch])
            .expect_code(0);
        seen.push((
            batch,
            env.rows("SELECT timestamp, COALESCE(automated, 'human') FROM aws_report_details WHERE event_type = 'Click' ORDER BY 1"),
            env.snapshot(),
        ));
    }
    let burst = |at: &str| vec![at.to_string(), "scanner-burst".to_string()];
    assert_eq!(
        seen[0].1,
        vec![
            burst("2026-11-27 10:00:00.000"),
            burst("2026-11-27 10:00:01.000")
        ]
    );
    assert_eq!(seen[1].1, seen[0].1);
    assert_eq!(seen[1].2, seen[0].2);
}

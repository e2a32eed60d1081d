//! retry, failures, prune, and documents built to break the parser.

use std::io::Write;

use serde_json::{json, Value};

use crate::notifications::*;
use crate::util::TestEnv;

#[test]
fn retry_reapplies_kept_documents_and_failures_lists_them() {
    let env = TestEnv::new("retry");
    env.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON aws_report_details FOR EACH ROW
         BEGIN IF NEW.message_id = 'm-2' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'not today'; END IF; END",
    );
    let mut broken = send(
        "n-broken",
        &mail("m-3", "2026-11-27T10:00:00.000Z", &["c@x.org"]),
    );
    broken["Message"] = json!("{not json");
    env.insert(&[
        send(
            "n-1",
            &mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]),
        ),
        send(
            "n-2",
            &mail("m-2", "2026-11-27T10:00:00.000Z", &["b@x.org"]),
        ),
        broken,
    ]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(3);

    let listed = env.run(&["failures", "--format", "json"]);
    listed.expect_code(0);
    let list: Value = serde_json::from_str(&listed.stdout()).unwrap();
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["notification_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["n-2", "n-broken"]);
    let csv = env.run(&["failures", "--documents"]);
    assert_eq!(csv.stdout().lines().count(), 3, "{csv}");
    assert!(csv.stdout().lines().next().unwrap().ends_with(",document"));

    env.execute("DROP TRIGGER refuse");
    let retry = env.run(&["retry"]);
    retry.expect_code(3);
    assert_eq!(
        (retry.count("applied"), retry.count("failed")),
        (1, 1),
        "{retry}"
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_reports WHERE message_id = 'm-2'"),
        "1"
    );
    assert_eq!(
        env.scalar("SELECT attempts FROM aws_report_failures WHERE notification_id = 'n-broken'"),
        "2"
    );
    let unresolved = env.run(&["failures"]);
    assert_eq!(unresolved.stdout().lines().count(), 2, "{unresolved}");
    let all = env.run(&["failures", "--all", "--format", "json"]);
    let all: Value = serde_json::from_str(&all.stdout()).unwrap();
    let resolved = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|f| f["notification_id"] == id)
            .unwrap()["resolved_at"]
            .clone()
    };
    assert!(
        resolved("n-2").is_string() && resolved("n-broken").is_null(),
        "{all}"
    );
    // Retrying again changes nothing that is applied.
    let before = env.snapshot();
    env.run(&["retry"]).expect_code(3);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn prune_keeps_summaries_and_a_pruned_window_cannot_count_twice() {
    let mut env = TestEnv::new("prune");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let old = mail("m-old", "2026-09-01T10:00:00.000Z", &["a@x.org"]);
    let new = mail("m-new", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[
        send("n-old", &old),
        open("n-old-open", &old, "2026-09-01T11:00:00.000Z"),
        send("n-new", &new),
        open("n-new-open", &new, "2026-11-27T11:00:00.000Z"),
    ]);
    env.ingest(&["--from", "2026-09-01", "--to", "2026-11-28"])
        .expect_code(0);
    let reports = env.rows("SELECT message_id, open_count, send_at FROM aws_reports ORDER BY 1");
    let rollups = env.rows("SELECT * FROM aws_report_daily ORDER BY day");

    let dry = env.run(&["prune", "--older-than", "30", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout().contains("would delete") && dry.stdout().contains("details=2"),
        "{dry}"
    );
    assert_eq!(env.count("aws_report_details"), 4);

    let run = env.run(&["prune", "--older-than", "30", "--batch", "1"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("details=2 failures=0 runs=0"),
        "{run}"
    );
    assert_eq!(
        env.rows("SELECT notification_message_id FROM aws_report_details ORDER BY 1"),
        vec![vec!["n-new"], vec!["n-new-open"]]
    );
    assert_eq!(
        env.rows("SELECT message_id, open_count, send_at FROM aws_reports ORDER BY 1"),
        reports
    );
    assert_eq!(
        env.rows("SELECT * FROM aws_report_daily ORDER BY day"),
        rollups
    );

    // Re-reading the pruned window must not count the old open again.
    let rerun = env.ingest(&["--from", "2026-09-01", "--to", "2026-11-28"]);
    rerun.expect_code(0);
    assert_eq!(rerun.count("skipped"), 2, "{rerun}");
    assert_eq!(
        env.rows("SELECT message_id, open_count, send_at FROM aws_reports ORDER BY 1"),
        reports
    );

    // Rebuilding rollups over the pruned days keeps them (rebuilt from the rows left they would
    // vanish), and says so; the days after the horizon are rebuilt as before.
    let counts = "SELECT DATE_FORMAT(day, '%Y-%m-%d'), sent, unique_opens, total_opens FROM aws_report_daily ORDER BY day";
    let before = env.rows(counts);
    assert_eq!(before.len(), 2, "{before:?}");
    let rebuild = env.run(&["rollup", "--from", "2026-09-01", "--to", "2026-11-28"]);
    rebuild.expect_code(0);
    assert!(
        rebuild
            .stdout()
            .contains("kept 59 day(s) from 2026-09-01 to 2026-10-29"),
        "{rebuild}"
    );
    assert_eq!(env.rows(counts), before);
}

/// The suppression ledger outlives `prune`: the same addresses for the same reasons before and
/// after it, and a soft bounce is still lifted by a delivery that arrives after the prune.
#[test]
fn prune_leaves_the_suppression_list_as_it_was() {
    let mut env = TestEnv::new("prune_suppressions");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let old = mail(
        "m-old",
        "2026-09-01T10:00:00.000Z",
        &["gone@x.org", "soft@x.org"],
    );
    let mut docs = vec![
        send("n-send", &old),
        bounce(
            "n-hard",
            &old,
            "2026-09-01T10:00:01.000Z",
            "Permanent",
            "fb-hard",
            &["gone@x.org"],
        ),
    ];
    // Three mailbox-full bounces of soft@ in the last 30 days.
    for (i, day) in ["2026-11-10", "2026-11-15", "2026-11-20"]
        .iter()
        .enumerate()
    {
        let m = mail(
            &format!("m-s{i}"),
            &format!("{day}T10:00:00.000Z"),
            &["soft@x.org"],
        );
        docs.push(soft_bounce(
            &format!("n-s{i}"),
            &m,
            &format!("{day}T10:00:01.000Z"),
            &format!("fb-s{i}"),
            &["soft@x.org"],
        ));
    }
    env.insert(&docs);
    env.ingest(&["--from", "2026-09-01", "--to", "2026-11-28"])
        .expect_code(0);
    let before = env.run(&["suppressions"]);
    before.expect_code(0);
    assert!(
        before.stdout().contains("gone@x.org,,permanent-bounce")
            && before.stdout().contains("soft@x.org,,soft-bounces"),
        "{before}"
    );
    env.run(&["prune", "--older-than", "5"]).expect_code(0);
    assert_eq!(
        env.count("aws_report_details"),
        0,
        "everything is older than 5 days"
    );
    assert_eq!(env.run(&["suppressions"]).stdout(), before.stdout());
    // A delivery to soft@ after the prune lifts its soft-bounce suppression.
    let later = mail("m-later", "2026-11-27T10:00:00.000Z", &["soft@x.org"]);
    env.insert(&[delivery(
        "n-later",
        &later,
        "2026-11-27T10:00:02.000Z",
        &["soft@x.org"],
    )]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let after = env.run(&["suppressions"]).stdout();
    assert!(
        !after.contains("soft@x.org") && after.contains("gone@x.org"),
        "{after}"
    );
    assert_eq!(
        env.rows("SELECT kind, lifted_at FROM aws_report_suppressions WHERE email = 'soft@x.org'"),
        vec![vec!["soft-bounce", "2026-11-27 10:00:02.000"]]
    );
}

/// Human counts cover every open and click ever applied: after `prune`, a later event of an
/// old mail is classified with the rows kept, and the pruned ones stay counted as they were.
#[test]
fn human_counts_survive_prune() {
    let mut env = TestEnv::new("prune_human");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let old = mail("m-old", "2026-09-01T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[
        send("n-send", &old),
        click("n-click-1", &old, "2026-09-01T11:00:00.000Z"),
    ]);
    env.ingest(&["--from", "2026-09-01", "--to", "2026-09-02"])
        .expect_code(0);
    env.run(&["prune", "--older-than", "30"]).expect_code(0);
    assert_eq!(env.count("aws_report_details"), 0);
    // Months later, the same person clicks again.
    env.insert(&[click("n-click-2", &old, "2026-11-27T10:00:00.000Z")]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(
        env.rows("SELECT click_count, human_click_count, first_human_click_at FROM aws_reports"),
        vec![vec!["2", "2", "2026-09-01 11:00:00.000"]]
    );
}

/// A click whose burst partner `prune` deleted stays a scanner's when a later event of the
/// same mail reclassifies the recipient: classes do not change because evidence was pruned, so
/// the human counts and the kept rollup of its day stay as they were.
#[test]
fn a_surviving_click_keeps_its_class_when_its_burst_partner_is_pruned() {
    let mut env = TestEnv::new("prune_burst");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T00:00:00Z".into()));
    let m = mail("m-1", "2026-11-20T09:00:00.000Z", &["a@x.org"]);
    let click_on = |id: &str, at: &str, link: &str| click_on(id, &m, at, link);
    env.insert(&[
        send("n-send", &m),
        delivery("n-delivery", &m, "2026-11-20T09:00:01.000Z", &["a@x.org"]),
        click_on("n-a", "2026-11-20T23:59:59.600Z", "https://shop.example/a"),
        click_on("n-b", "2026-11-21T00:00:00.200Z", "https://shop.example/b"),
    ]);
    env.ingest(&["--from", "2026-11-20", "--to", "2026-11-22"])
        .expect_code(0);
    let classes = "SELECT notification_message_id, COALESCE(automated, 'human') FROM aws_report_details WHERE event_type = 'Click' ORDER BY 1";
    assert_eq!(
        env.rows(classes),
        vec![vec!["n-a", "scanner-burst"], vec!["n-b", "scanner-burst"]]
    );
    // The horizon falls between the two clicks.
    env.run(&["prune", "--older-than", "7"]).expect_code(0);
    assert_eq!(env.rows(classes), vec![vec!["n-b", "scanner-burst"]]);
    let counts =
        "SELECT click_count, human_click_count, open_count, human_open_count FROM aws_reports";
    let daily = "SELECT DATE_FORMAT(day, '%Y-%m-%d'), total_clicks, human_unique_clicks, human_unique_opens FROM aws_report_daily ORDER BY 1";
    assert_eq!(env.rows(counts), vec![vec!["2", "0", "0", "0"]]);
    let rollups = env.rows(daily);
    // A week later the person opens the mail: the recipient is classified again.
    let opened = edited(open("n-open", &m, "2026-11-27T10:00:00.000Z"), |r| {
        r["open"]["userAgent"] = json!("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
    });
    env.insert(&[opened]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.rows(classes), vec![vec!["n-b", "scanner-burst"]]);
    assert_eq!(env.rows(counts), vec![vec!["2", "0", "1", "1"]]);
    let mut expected = rollups;
    expected.push(vec![
        "2026-11-27".into(),
        "0".into(),
        "0".into(),
        "1".into(),
    ]);
    assert_eq!(env.rows(daily), expected);
}

#[test]
fn documents_built_to_break_the_parser_become_failures_or_warnings() {
    let env = TestEnv::new("poison");
    let at = "2026-11-27T10:00:00.000Z";
    let m = mail("m-ok", at, &["a@x.org"]);
    let mut deep = json!("bottom");
    for _ in 0..300 {
        deep = json!({ "d": deep });
    }
    let many: Vec<String> = (0..10_000).map(|i| format!("r{i}@x.org")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut huge = mail("m-huge", at, &many_refs);
    huge["commonHeaders"]["subject"] = json!("x".repeat(1 << 20));
    let mut nul = mail("m-nul", at, &["nul@x.org"]);
    nul["commonHeaders"]["subject"] = json!("before\u{0}after");
    let mut nul_address = mail("m-nul-address", at, &["a\u{0}b@x.org"]);
    nul_address["headers"] =
        json!([{"name": "user_id", "value": [1, 2]}, {"name": "report_type", "value": null}]);
    let docs = vec![
        json!({"Type": "Notification", "MessageId": 42, "Timestamp": {"$date": at}, "Message": "{}"}),
        json!({"Type": "Notification", "MessageId": "p-binary", "Timestamp": {"$date": at}, "Message": {"$binary": {"base64": "AAEC", "subType": "00"}}}),
        json!({"Type": "Notification", "MessageId": "p-int-time", "Timestamp": 1_795_737_600, "Message": "{}"}),
        json!({"Type": ["Notification"], "MessageId": "p-list-type", "Timestamp": {"$date": at}, "Message": "{}"}),
        notification(
            "p-deep",
            at,
            &json!({"eventType": "Send", "mail": m, "send": deep}),
        ),
        notification(
            "p-year-0",
            at,
            &record(
                "Open",
                &m,
                "open",
                json!({"timestamp": "0000-01-01T00:00:00Z"}),
            ),
        ),
        notification(
            "p-year-9999",
            at,
            &record(
                "Open",
                &m,
                "open",
                json!({"timestamp": "9999-12-31T23:59:59.999Z"}),
            ),
        ),
        notification(
            "p-number-time",
            at,
            &record("Open", &m, "open", json!({"timestamp": 1e308})),
        ),
        notification(
            "p-null-mail",
            at,
            &json!({"eventType": "Send", "mail": null}),
        ),
        notification(
            "p-nul-address",
            at,
            &record("Send", &nul_address, "send", json!({})),
        ),
        notification("p-huge", at, &record("Send", &huge, "send", json!({}))),
        notification("p-nul", at, &record("Send", &nul, "send", json!({}))),
        send("p-ok", &m),
    ];
    env.insert(&docs);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    assert!(!run.stderr().contains("panicked"), "{run}");
    let failed: Vec<String> = env
        .rows("SELECT notification_id FROM aws_report_failures ORDER BY notification_id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    for id in [
        "p-binary",
        "p-deep",
        "p-list-type",
        "p-null-mail",
        "p-number-time",
        "p-year-0",
        "p-year-9999",
        "p-nul-address",
    ] {
        assert!(
            failed.iter().any(|f| f == id),
            "{id} is not a failure: {failed:?}\n{}",
            run.stderr()
        );
    }
    assert!(
        failed.iter().any(|f| f.starts_with("mongo:")),
        "the numeric MessageId gets a stand-in id: {failed:?}"
    );
    // Applied, with warnings: 10,000 recipients with a 1 MB subject (stored truncated), a NUL in a
    // subject, and the plain one.
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_reports WHERE message_id = 'm-huge'"),
        "10000"
    );
    assert_eq!(
        env.scalar("SELECT MAX(CHAR_LENGTH(subject)) FROM aws_reports WHERE message_id = 'm-huge'"),
        "998"
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_reports WHERE message_id = 'm-nul'"),
        "1"
    );
    assert_eq!(
        env.scalar(
            "SELECT COUNT(*) FROM aws_reports WHERE message_id = 'm-ok' AND open_at IS NULL"
        ),
        "1"
    );
}

/// `doctor` names what no ingest shows: documents no window selects (no Timestamp, another
/// type, a string not in the SNS form), the missing Timestamp index, and drift between stored
/// rollups and their rows; exit 7 until fixed. It changes nothing.
#[test]
fn doctor_names_invisible_documents_the_index_and_drift() {
    let env = TestEnv::new("doctor");
    let at = "2026-11-27T10:00:00.000Z";
    let m = mail("m-1", at, &["a@x.org"]);
    let mut no_time = send("n-no-time", &m);
    no_time.as_object_mut().unwrap().remove("Timestamp");
    let mut number_time = send("n-number-time", &m);
    number_time["Timestamp"] = json!(1_795_737_600_000_i64);
    let mut other_string = send("n-other-string", &m);
    // An RFC 2822 date, as some apps store it (no window selects it, here or in MongoDB).
    other_string["Timestamp"] = json!("Fri, 27 Nov 2026 10:00:00 GMT");
    env.insert(&[
        send("n-1", &m),
        notification_string_time(
            "n-2",
            "2026-11-27T11:00:00.000Z",
            &record("Send", &mail("m-2", at, &["b@x.org"]), "send", json!({})),
        ),
        no_time,
        number_time,
        other_string,
    ]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(
        run.count("scanned"),
        2,
        "the three odd documents are invisible to a window\n{run}"
    );
    env.execute("UPDATE aws_report_daily SET sent = sent + 5");
    let before = env.snapshot();

    let doctor = env.run(&["doctor", "--date", "2026-11-27"]);
    doctor.expect_code(7);
    let out = doctor.stdout();
    for expected in [
        "5 document(s), 1 with a BSON date Timestamp, 1 with an SNS-form string",
        "1 document(s) without a Timestamp",
        "1 document(s) whose Timestamp is neither a date nor a string",
        "1 document(s) with a Timestamp string not in the SNS form",
        "no index on Timestamp",
        "schema version 16",
        "drift: the stored rollups of 2026-11-27 differ from the rows: run `ses-report rollup --from 2026-11-27 --to 2026-11-28 --tz UTC`",
    ] {
        assert!(out.contains(expected), "missing {expected:?}\n{doctor}");
    }
    assert_eq!(env.snapshot(), before, "doctor changed the tables");

    env.run(&[
        "rollup",
        "--from",
        "2026-11-27",
        "--to",
        "2026-11-28",
        "--tz",
        "UTC",
    ])
    .expect_code(0);
    let after = env.run(&["doctor", "--date", "2026-11-27"]);
    assert!(
        after
            .stdout()
            .contains("equal a recomputation from the rows"),
        "{after}"
    );
    // Rollups of another zone's days are no drift: doctor names the zone and both ways on.
    let other = env.run(&["doctor", "--date", "2026-11-27", "--tz", "Asia/Tokyo"]);
    other.expect_code(7);
    assert!(
        other.stdout().contains("computed in the time zone UTC, not Asia/Tokyo: check them with `ses-report doctor --from 2026-11-27 --to 2026-11-28 --tz UTC`, or rebuild them in Asia/Tokyo with `ses-report rollup --from 2026-11-27 --to 2026-11-28 --tz Asia/Tokyo`")
            && !other.stdout().contains("drift"),
        "{other}"
    );
}

/// `prune` while an ingest re-reads old events through a pipe: the ingest read no horizon when
/// it started, but each batch reads it again (under a shared lock in its transaction), so the
/// opens of the pruned day are skipped, not counted a second time, and no detail row older than
/// the horizon comes back.
#[test]
fn prune_during_an_ingest_that_re_reads_pruned_events_counts_nothing_twice() {
    let mut env = TestEnv::new("prune_race");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-30T12:00:00Z".into()));
    let old = mail("m-old", "2026-11-20T10:00:00.000Z", &["a@x.org"]);
    let opens: Vec<String> = (1..=9)
        .map(|i| {
            open(
                &format!("n-open-{i}"),
                &old,
                &format!("2026-11-20T11:00:0{i}.000Z"),
            )
            .to_string()
        })
        .collect();
    let first: Vec<String> = std::iter::once(send("n-old", &old).to_string())
        .chain(opens.iter().cloned())
        .collect();
    env.run_with_stdin(
        &["ingest", "--file", "-"],
        (first.join("\n") + "\n").as_bytes(),
    )
    .expect_code(0);
    let open_count = "SELECT open_count FROM aws_reports WHERE message_id = 'm-old'";
    assert_eq!(env.scalar(open_count), "9");

    let mut cmd = env.command(&["ingest", "--file", "-", "--batch-size", "1"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let new = mail("m-new", "2026-11-29T10:00:00.000Z", &["b@x.org"]);
    writeln!(stdin, "{}", send("n-new", &new)).unwrap();
    stdin.flush().unwrap();
    // The ingest is under way (its first batch applied) when prune runs.
    let started = std::time::Instant::now();
    while env.scalar("SELECT COUNT(*) FROM aws_reports WHERE message_id = 'm-new'") != "1" {
        assert!(
            started.elapsed().as_secs() < 30,
            "the ingest never applied its first line"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    env.run(&["prune", "--older-than", "3"]).expect_code(0);
    for line in &opens {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(env.scalar(open_count), "9", "{stdout}");
    assert_eq!(
        crate::util::summary_count(&stdout, "skipped"),
        Some(9),
        "{stdout}"
    );
    assert_eq!(
        env.scalar(
            "SELECT COUNT(*) FROM aws_report_details WHERE timestamp < '2026-11-27 12:00:00'"
        ),
        "0"
    );
}

/// A failure that can never apply is dismissed with a reason: `retry` and the unresolved-failures
/// metric leave it alone from then on, a rerun does not log it again, and the row, its document
/// and the reason stay, listed by `failures --dismissed` (and `--all`). A database at version 12
/// gets the columns in place, its failures kept.
#[test]
fn a_dismissed_failure_is_left_alone_by_retry_and_the_metrics_and_kept() {
    let env = TestEnv::new("dismiss");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let mut teleport = send("n-teleport", &m);
    teleport["Message"] =
        json!(json!({"eventType": "Teleport", "mail": m, "teleport": {}}).to_string());
    let mut broken = send("n-broken", &m);
    broken["Message"] = json!("{not json");
    env.insert(&[send("n-1", &m), teleport, broken]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(3);
    // The database as version 12 left it: no dismissal columns.
    env.execute(
        "ALTER TABLE aws_report_failures DROP COLUMN dismissed_at, DROP COLUMN dismissed_reason;
         DELETE FROM ses_report_migrations WHERE version = 13",
    );
    env.run(&["migrate"]).expect_code(0);
    assert_eq!(env.count("aws_report_failures"), 2);

    let id = env.scalar("SELECT id FROM aws_report_failures WHERE notification_id = 'n-teleport'");
    // --dismiss needs a reason, and an id that is an open failure.
    env.run(&["failures", "--dismiss", &id]).expect_code(2);
    env.run(&["failures", "--dismiss", "999999", "--reason", "x"])
        .expect_code(2);
    let done = env.run(&[
        "failures",
        "--dismiss",
        &id,
        "--reason",
        "no such event type",
    ]);
    done.expect_code(0);
    assert!(
        done.stdout()
            .starts_with(&format!("dismissed 1 failure(s): {id}")),
        "{done}"
    );

    let open = env.run(&["failures", "--format", "json"]);
    let open: serde_json::Value = serde_json::from_str(&open.stdout()).unwrap();
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["notification_id"], "n-broken");
    let dismissed = env.run(&["failures", "--dismissed", "--format", "json"]);
    let dismissed: serde_json::Value = serde_json::from_str(&dismissed.stdout()).unwrap();
    assert_eq!(dismissed[0]["notification_id"], "n-teleport");
    assert_eq!(dismissed[0]["dismissed_reason"], "no such event type");
    let table = env.run(&["failures", "--all", "--format", "table"]);
    table.expect_code(0);
    assert!(
        table.stdout().starts_with("id")
            && table.stdout().contains("dismissed: no such event type")
            && table.stdout().contains("open"),
        "{table}"
    );

    // retry leaves it alone; the metric counts only the open one; a rerun does not name it.
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let metrics = dir.join("ses_report.prom");
    let retry = env.run(&["retry", "--metrics-file", metrics.to_str().unwrap()]);
    retry.expect_code(3);
    assert_eq!(retry.count("scanned"), 1, "{retry}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("\nses_report_unresolved_failures 1\n"),
        "{text}"
    );
    let rerun = env.ingest(&["--date", "2026-11-27"]);
    rerun.expect_code(3);
    assert!(
        !rerun.stderr().contains("ERROR notification n-teleport"),
        "{rerun}"
    );
    assert_eq!(
        env.scalar(
            "SELECT dismissed_reason FROM aws_report_failures WHERE notification_id = 'n-teleport'"
        ),
        "no such event type"
    );
    let _ = std::fs::remove_dir_all(dir);
}

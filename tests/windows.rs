//! Which notifications a run reads: window edges, date and instant forms, time zones, Timestamp
//! stored as a date or as a string, and the catch-up window.

use crate::notifications::*;
use crate::util::TestEnv;

/// A Send whose SNS Timestamp is `published`, stored as a date or as a string.
fn published_at(id: &str, published: &str, as_string: bool) -> serde_json::Value {
    let m = mail(&format!("m-{id}"), published, &["a@x.org"]);
    let r = record("Send", &m, "send", serde_json::json!({}));
    if as_string {
        notification_string_time(id, published, &r)
    } else {
        notification(id, published, &r)
    }
}

fn ingested(env: &TestEnv) -> Vec<String> {
    env.rows("SELECT notification_message_id FROM aws_report_details ORDER BY 1")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn the_window_is_half_open_for_dates_and_strings() {
    let env = TestEnv::new("half_open");
    let mut docs = Vec::new();
    for as_string in [false, true] {
        let tag = if as_string { "s" } else { "d" };
        docs.push(published_at(
            &format!("{tag}-before"),
            "2026-11-26T23:59:59.999Z",
            as_string,
        ));
        docs.push(published_at(
            &format!("{tag}-first"),
            "2026-11-27T00:00:00.000Z",
            as_string,
        ));
        docs.push(published_at(
            &format!("{tag}-last"),
            "2026-11-27T23:59:59.999Z",
            as_string,
        ));
        docs.push(published_at(
            &format!("{tag}-after"),
            "2026-11-28T00:00:00.000Z",
            as_string,
        ));
    }
    env.insert(&docs);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert!(
        run.summary()
            .starts_with("window=[2026-11-27T00:00:00Z, 2026-11-28T00:00:00Z)"),
        "{run}"
    );
    assert_eq!(
        ingested(&env),
        vec!["d-first", "d-last", "s-first", "s-last"]
    );
}

#[test]
fn instants_and_dates_bound_a_window() {
    let env = TestEnv::new("instants");
    env.insert(&[
        published_at("a", "2026-11-27T05:59:59.999Z", false),
        published_at("b", "2026-11-27T06:00:00.000Z", true),
        published_at("c", "2026-11-27T06:30:00.000Z", false),
        published_at("d", "2026-11-27T07:00:00.000Z", false),
    ]);
    env.ingest(&[
        "--from",
        "2026-11-27T07:00:00+01:00",
        "--to",
        "2026-11-27T07:00:00Z",
    ])
    .expect_code(0);
    assert_eq!(ingested(&env), vec!["b", "c"]);
    env.ingest(&["--from", "2026-11-27", "--to", "2026-11-28"])
        .expect_code(0);
    assert_eq!(ingested(&env), vec!["a", "b", "c", "d"]);
}

#[test]
fn a_dst_day_in_new_york_has_23_hours() {
    let env = TestEnv::new("dst_day");
    env.insert(&[
        published_at("before", "2026-03-08T04:59:59.999Z", false),
        published_at("first", "2026-03-08T05:00:00.000Z", false),
        published_at("last", "2026-03-09T03:59:59.999Z", true),
        published_at("after", "2026-03-09T04:00:00.000Z", false),
    ]);
    let run = env.ingest(&["--date", "2026-03-08", "--tz", "America/New_York"]);
    run.expect_code(0);
    assert!(
        run.summary()
            .starts_with("window=[2026-03-08T05:00:00Z, 2026-03-09T04:00:00Z)"),
        "{run}"
    );
    assert_eq!(ingested(&env), vec!["first", "last"]);

    // The zone can come from SES_REPORT_TZ too.
    let mut env2 = TestEnv::new("dst_day_env");
    env2.vars
        .push(("SES_REPORT_TZ".into(), "America/New_York".into()));
    let run = env2.ingest(&["--date", "2026-03-08"]);
    run.expect_code(0);
    assert!(
        run.summary()
            .starts_with("window=[2026-03-08T05:00:00Z, 2026-03-09T04:00:00Z)"),
        "{run}"
    );
}

#[test]
fn catch_up_continues_from_the_runs_table() {
    let mut env = TestEnv::new("catch_up");
    env.insert(&[
        published_at("d26", "2026-11-26T12:00:00.000Z", false),
        published_at("d27", "2026-11-27T12:00:00.000Z", false),
        published_at("d28", "2026-11-28T12:00:00.000Z", true),
    ]);
    // No earlier run: yesterday.
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let run = env.ingest(&[]);
    run.expect_code(0);
    assert!(
        run.summary()
            .starts_with("window=[2026-11-27T00:00:00Z, 2026-11-28T00:00:00Z)"),
        "{run}"
    );
    assert_eq!(ingested(&env), vec!["d27"]);

    // The same morning again: the lookback re-reads the day, nothing new.
    let again = env.ingest(&[]);
    assert!(
        again
            .summary()
            .starts_with("window=[2026-11-27T00:00:00Z, 2026-11-28T00:00:00Z)"),
        "{again}"
    );
    assert_eq!(again.count("duplicates"), 1);
    let up_to_date = env.ingest(&["--lookback-hours", "0"]);
    up_to_date.expect_code(0);
    assert!(up_to_date.stderr().contains("up to date"), "{up_to_date}");
    assert_eq!(up_to_date.count("scanned"), 0);

    // A day later: from the last end minus 24 hours to the start of today.
    env.vars[0].1 = "2026-11-29T07:00:00Z".into();
    let next = env.ingest(&[]);
    assert!(
        next.summary()
            .starts_with("window=[2026-11-27T00:00:00Z, 2026-11-29T00:00:00Z)"),
        "{next}"
    );
    assert_eq!(ingested(&env), vec!["d27", "d28"]);

    // Weeks later: never more than --max-days back, and the gap is named with the command to run.
    env.vars[0].1 = "2026-12-20T07:00:00Z".into();
    let late = env.ingest(&[]);
    late.expect_code(0);
    assert!(
        late.summary()
            .starts_with("window=[2026-12-13T00:00:00Z, 2026-12-20T00:00:00Z)"),
        "{late}"
    );
    assert!(
        late.stderr()
            .contains("ses-report ingest --from 2026-11-28T00:00:00Z --to 2026-12-13T00:00:00Z"),
        "{late}"
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_report_runs WHERE status = 'ok'"),
        "4"
    );
}

/// A window that ends in the future is read up to now, and catch-up later continues from there:
/// it used to record the future end, so catch-up started after data it had never read.
#[test]
fn a_window_into_the_future_is_read_up_to_now_and_hides_nothing_later() {
    let mut env = TestEnv::new("future_window");
    env.insert(&[
        published_at("n-1", "2026-11-27T10:00:00.000Z", false),
        published_at("n-2", "2026-11-27T14:00:00.000Z", true),
    ]);
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-27T12:00:00Z".into()));
    let run = env.ingest(&["--from", "2026-11-27", "--to", "2026-12-31"]);
    run.expect_code(0);
    assert!(
        run.stderr().contains("reading up to 2026-11-27T12:00:00Z"),
        "{run}"
    );
    assert_eq!(ingested(&env), vec!["n-1"]);
    assert_eq!(
        env.scalar("SELECT DATE_FORMAT(window_to, '%Y-%m-%dT%H:%i') FROM aws_report_runs"),
        "2026-11-27T12:00"
    );
    // A window that starts after now is refused before anything is read.
    env.ingest(&["--date", "2026-11-28"]).expect_code(2);

    // The next day's catch-up reads on from the clamped end (less the lookback).
    env.vars.pop();
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    env.ingest(&[]).expect_code(0);
    assert_eq!(ingested(&env), vec!["n-1", "n-2"]);
}

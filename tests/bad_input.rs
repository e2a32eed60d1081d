//! Bad input: each kind becomes a failures row naming the record and keeping its document, the
//! run goes on and exits 3; over-long fields are stored truncated with a warning.

use serde_json::json;

use crate::notifications::*;
use crate::util::TestEnv;

#[test]
fn each_bad_record_is_kept_with_its_reason_and_the_run_goes_on() {
    let env = TestEnv::new("bad_input");
    let m = mail("m-ok", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let at = "2026-11-27T10:00:00.000Z";
    let mut no_mail_id = m.clone();
    no_mail_id.as_object_mut().unwrap().remove("messageId");
    let mut no_destination = m.clone();
    no_destination
        .as_object_mut()
        .unwrap()
        .remove("destination");
    let mut empty_recipient = m.clone();
    empty_recipient["destination"] = json!(["  "]);
    let mut not_json = send("n-not-json", &m);
    not_json["Message"] = json!("{\"eventType\": \"Send\", \"mail\":");
    let mut no_message_id = send("unused", &m);
    no_message_id.as_object_mut().unwrap().remove("MessageId");
    let mut no_timestamp = send("n-no-ts", &m);
    no_timestamp.as_object_mut().unwrap().remove("Timestamp");
    let cases: Vec<(serde_json::Value, &str, &str)> = vec![
        (not_json, "n-not-json", "Message is not JSON"),
        (
            notification("n-array", at, &json!([1, 2])),
            "n-array",
            "not an SES record",
        ),
        (
            notification("n-no-mail", at, &json!({"eventType": "Send", "send": {}})),
            "n-no-mail",
            "no mail object",
        ),
        (
            notification(
                "n-no-mail-id",
                at,
                &record("Send", &no_mail_id, "send", json!({})),
            ),
            "n-no-mail-id",
            "mail.messageId is missing",
        ),
        (
            notification(
                "n-no-dest",
                at,
                &record("Send", &no_destination, "send", json!({})),
            ),
            "n-no-dest",
            "mail.destination is missing",
        ),
        (
            notification(
                "n-unknown",
                at,
                &record("Teleport", &m, "teleport", json!({})),
            ),
            "n-unknown",
            "unknown eventType \"Teleport\"",
        ),
        (
            notification(
                "n-bad-time",
                at,
                &record(
                    "Open",
                    &m,
                    "open",
                    json!({"timestamp": "2026-13-45T99:00:00Z"}),
                ),
            ),
            "n-bad-time",
            "open.timestamp",
        ),
        (no_timestamp, "n-no-ts", "no Timestamp"),
        (
            notification(
                "n-empty",
                at,
                &record("Send", &empty_recipient, "send", json!({})),
            ),
            "n-empty",
            "empty address",
        ),
    ];
    let mut docs: Vec<serde_json::Value> = cases.iter().map(|c| c.0.clone()).collect();
    docs.push(no_message_id);
    docs.push(send("n-good", &m));
    env.insert(&docs);
    // An envelope without a Timestamp cannot be selected by a Mongo window: it is checked by file below.
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    assert_eq!(run.count("applied"), 1, "{run}");
    // Every case but the Timestamp-less one, plus the envelope without a MessageId.
    assert_eq!(run.count("failed"), cases.len() as u64, "{run}");
    for (_, id, reason) in cases.iter().filter(|c| c.1 != "n-no-ts") {
        let row = env.rows(&format!(
            "SELECT error, document FROM aws_report_failures WHERE notification_id = '{id}'"
        ));
        assert_eq!(row.len(), 1, "no failures row for {id}\n{run}");
        assert!(
            row[0][0].contains(reason),
            "{id}: {:?} does not say {reason:?}",
            row[0][0]
        );
        assert!(
            row[0][1].contains(id),
            "{id}: the document is not kept whole: {}",
            row[0][1]
        );
        assert!(
            run.stderr().contains(id),
            "{id} not named in the log\n{run}"
        );
    }
    let stand_in = env.scalar(
        "SELECT notification_id FROM aws_report_failures WHERE error LIKE '%no MessageId%'",
    );
    assert!(
        stand_in.starts_with(&format!("mongo:{}.sesevents:", env.name)),
        "{stand_in}"
    );

    // Read by file, the envelope without a Timestamp fails too (Mongo's window cannot select it).
    let path = std::env::temp_dir().join(format!("{}-no-ts.ndjson", env.name));
    std::fs::write(&path, format!("{}\n", cases[7].0)).unwrap();
    let by_file = env.ingest(&["--file", path.to_str().unwrap()]);
    by_file.expect_code(3);
    assert!(env
        .scalar("SELECT error FROM aws_report_failures WHERE notification_id = 'n-no-ts'")
        .contains("no Timestamp"));
    let _ = std::fs::remove_file(path);
}

#[test]
fn over_long_fields_are_stored_truncated_with_a_warning() {
    let env = TestEnv::new("truncation");
    let mut m = mail("m-long", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    m["commonHeaders"]["subject"] = json!("é".repeat(1500));
    env.insert(&[send("n-1", &m)]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert!(
        run.stderr()
            .contains("subject is longer than 998 characters"),
        "{run}"
    );
    assert_eq!(
        env.scalar("SELECT CHAR_LENGTH(subject) FROM aws_reports"),
        "998"
    );
}

/// Instants outside 1970-2099 are a record's failure with its reason. At the end of the calendar
/// east of UTC the day arithmetic used to panic the whole run (exit 101).
#[test]
fn events_outside_1970_to_2099_fail_alone_even_east_of_utc() {
    let env = TestEnv::new("calendar_ends");
    let at = "2026-11-27T03:00:00.000Z";
    let m = mail("m-1", at, &["a@x.org"]);
    let far = |id: &str, when: &str| {
        notification(
            id,
            at,
            &record("Open", &m, "open", json!({"timestamp": when})),
        )
    };
    env.insert(&[
        send("n-1", &m),
        far("n-9999", "9999-12-31T23:59:59.999Z"),
        far("n-2100", "2100-01-01T00:00:00.000Z"),
        far("n-1969", "1969-12-31T23:59:59.000Z"),
    ]);
    let run = env.ingest(&["--date", "2026-11-27", "--tz", "Asia/Tokyo"]);
    run.expect_code(3);
    assert_eq!(run.count("applied"), 1, "{run}");
    assert_eq!(
        env.rows("SELECT notification_id FROM aws_report_failures WHERE error LIKE '%outside the storable years 1970-2099%' ORDER BY 1"),
        vec![vec!["n-1969"], vec!["n-2100"], vec!["n-9999"]]
    );
    assert_eq!(
        env.rows("SELECT DATE_FORMAT(day, '%Y-%m-%d'), sent, time_zone FROM aws_report_daily"),
        vec![vec!["2026-11-27", "1", "Asia/Tokyo"]]
    );
}

/// A recipient longer than RFC 5321 allows fails its own record; it used to be applied, and then
/// its domain overflowed `recipient_domain` and failed every rollup of its day.
#[test]
fn an_address_longer_than_rfc_5321_allows_fails_only_its_record() {
    let env = TestEnv::new("long_domain");
    let long = format!("a@{}.example", "d".repeat(250));
    let good = mail("m-good", "2026-11-27T10:00:00.000Z", &["b@x.org"]);
    let bad = mail("m-bad", "2026-11-27T10:00:00.000Z", &[long.as_str()]);
    env.insert(&[send("n-good", &good), send("n-bad", &bad)]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    let error = env.scalar("SELECT error FROM aws_report_failures WHERE notification_id = 'n-bad'");
    assert!(
        error.contains("RFC 5321") && error.contains("domain over 255 octets"),
        "{error}"
    );
    assert_eq!(
        env.rows("SELECT recipient_domain, sent FROM aws_report_daily"),
        vec![vec!["x.org", "1"]]
    );
}

/// A batch whose rows together outgrow the server's max_allowed_packet is applied (the driver
/// sends large values apart from the statement).
#[test]
fn a_batch_larger_than_max_allowed_packet_is_applied() {
    let env = TestEnv::new("big_batch");
    let at = "2026-11-27T10:00:00.000Z";
    let m = mail("m-1", at, &["a@x.org"]);
    let agent = "A".repeat(1_000_000);
    let mut docs = vec![send("n-send", &m)];
    for i in 0..20 {
        docs.push(notification(
            &format!("n-open-{i:02}"),
            at,
            &record(
                "Open",
                &m,
                "open",
                json!({"timestamp": at, "ipAddress": "192.0.2.1", "userAgent": agent}),
            ),
        ));
    }
    env.insert(&docs);
    let packet: u64 = env.scalar("SELECT @@max_allowed_packet").parse().unwrap();
    assert!(
        packet < 21 * 1_000_000,
        "max_allowed_packet {packet} holds the whole batch"
    );
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(run.count("applied"), 21, "{run}");
    assert_eq!(
        env.scalar("SELECT open_count FROM aws_reports WHERE message_id = 'm-1'"),
        "20"
    );
}

/// One value larger than max_allowed_packet (a file line may hold up to 64 MB) is a data error
/// of that record: it fails alone, kept with its reason, and the batch around it is applied. It
/// used to be taken for a lost connection, retried whole, and fail the run.
#[test]
fn a_value_larger_than_max_allowed_packet_fails_only_its_record() {
    let env = TestEnv::new("huge_value");
    let packet: usize = env.scalar("SELECT @@max_allowed_packet").parse().unwrap();
    let at = "2026-11-27T10:00:00.000Z";
    let m = mail("m-1", at, &["a@x.org"]);
    let agent = "A".repeat(packet + 1_000_000);
    let huge = notification(
        "n-huge",
        at,
        &record(
            "Open",
            &m,
            "open",
            json!({"timestamp": at, "ipAddress": "192.0.2.1", "userAgent": agent}),
        ),
    );
    let path = std::env::temp_dir().join(format!("{}.ndjson", env.name));
    let lines = [
        send("n-send", &m).to_string(),
        huge.to_string(),
        send("n-send-2", &mail("m-2", at, &["b@x.org"])).to_string(),
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let run = env.ingest(&["--file", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    run.expect_code(3);
    assert_eq!(run.count("applied"), 2, "{run}");
    assert_eq!(run.count("failed"), 1, "{run}");
    let error =
        env.scalar("SELECT error FROM aws_report_failures WHERE notification_id = 'n-huge'");
    assert!(error.contains("max_allowed_packet"), "{error}");
}

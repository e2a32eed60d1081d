//! Why mail does not arrive, per group: bounces by class in the rollups and in `stats`, the block
//! rate and its `--check` thresholds, and delivery timing (send to delivery, SES's
//! processingTimeMillis, first attempts, delays by type).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::notifications::*;
use crate::util::TestEnv;

const DAY: &str = "2026-11-27";

/// The replies of the day's bounces at Google: (SES type, status, diagnostic, expected class).
const GOOGLE_BOUNCES: [(&str, &str, &str, &str); 8] = [
    ("Permanent", "5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.", "invalid-address"),
    ("Permanent", "5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", "invalid-address"),
    ("Permanent", "5.7.1", "smtp; 550 5.7.1 Service unavailable, Client host [198.51.100.7] blocked using Spamhaus", "reputation"),
    ("Permanent", "5.7.1", "smtp; 550 5.7.1 Service unavailable, Client host [198.51.100.7] blocked using Spamhaus", "reputation"),
    ("Permanent", "5.7.1", "smtp; 554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org", "reputation"),
    ("Permanent", "5.7.1", "smtp; 550 5.7.1 Service unavailable, Client host [198.51.100.7] blocked using Spamhaus", "reputation"),
    ("Permanent", "5.7.1", "smtp; 550 5.7.1 Service unavailable, Client host [198.51.100.7] blocked using Spamhaus", "reputation"),
    ("Permanent", "5.7.26", "smtp; 550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked.", "policy"),
];

/// Nearest rank, computed here independently of the program.
fn rank(values: &[i64], percent: usize) -> i64 {
    let mut v = values.to_vec();
    v.sort();
    let index = (v.len() * percent).div_ceil(100).max(1) - 1;
    v[index]
}

fn latency(values: &[i64]) -> Value {
    json!({"count": values.len(), "median_ms": rank(values, 50), "p95_ms": rank(values, 95), "p99_ms": rank(values, 99)})
}

/// What the day's notifications should give one provider.
#[derive(Default)]
struct Expected {
    send_to_delivery: Vec<i64>,
    processing: Vec<i64>,
    first_attempt: u64,
    delays: BTreeMap<String, u64>,
}

/// A day at Google (200 sent: 8 bounces of three classes; 10 delayed, then delivered after half
/// an hour) and Yahoo (100 sent, all delivered, one after a MailboxFull delay).
fn the_day() -> (Vec<Value>, Expected, Expected) {
    let mut docs = Vec::new();
    let (mut google, mut yahoo) = (Expected::default(), Expected::default());
    let at = |seconds: i64| {
        let t = time::macros::datetime!(2026-11-27 10:00 UTC) + time::Duration::seconds(seconds);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .replace('Z', ".000Z")
    };
    for i in 0..200 {
        let address = format!("g{i}@gmail.com");
        let m = mail(&format!("m-g-{i}"), &at(0), &[address.as_str()]);
        docs.push(send(&format!("n-g-s-{i}"), &m));
        if let Some((kind, status, diagnostic, _)) = GOOGLE_BOUNCES.get(i) {
            docs.push(bounce_replied(
                &format!("n-g-b-{i}"),
                &m,
                &at(3),
                (kind, "General"),
                &address,
                (status, diagnostic),
            ));
            continue;
        }
        let delayed = (8..18).contains(&i);
        let seconds = if delayed { 1800 } else { (i as i64 % 10) + 1 };
        if delayed {
            docs.push(delivery_delay(
                &format!("n-g-dd-{i}"),
                &m,
                &at(300),
                "TransientCommunicationFailure",
                &address,
                ("4.4.7", "smtp; 421 4.4.7 Connection timed out"),
            ));
            *google
                .delays
                .entry("TransientCommunicationFailure".into())
                .or_default() += 1;
        } else {
            google.first_attempt += 1;
        }
        let processing = seconds * 1000 - 40;
        docs.push(delivery_timed(
            &format!("n-g-d-{i}"),
            &m,
            &at(seconds),
            processing as u64,
            &[&address],
        ));
        google.send_to_delivery.push(seconds * 1000);
        google.processing.push(processing);
    }
    for i in 0..100 {
        let address = format!("y{i}@yahoo.com");
        let m = mail(&format!("m-y-{i}"), &at(0), &[address.as_str()]);
        docs.push(send(&format!("n-y-s-{i}"), &m));
        let seconds = if i == 0 {
            docs.push(delivery_delay(
                "n-y-dd-0",
                &m,
                &at(60),
                "MailboxFull",
                &address,
                ("4.2.2", "smtp; 452 4.2.2 Mailbox full"),
            ));
            yahoo.delays.insert("MailboxFull".into(), 1);
            3600
        } else {
            yahoo.first_attempt += 1;
            1
        };
        docs.push(delivery_timed(
            &format!("n-y-d-{i}"),
            &m,
            &at(seconds),
            900,
            &[&address],
        ));
        yahoo.send_to_delivery.push(seconds * 1000);
        yahoo.processing.push(900);
    }
    (docs, google, yahoo)
}

fn by_provider(env: &TestEnv, extra: &[&str]) -> BTreeMap<String, Value> {
    let mut args = vec![
        "stats", "--date", DAY, "--by", "provider", "--format", "json",
    ];
    args.extend_from_slice(extra);
    let run = env.run(&args);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout()).unwrap();
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["mailbox_provider"].as_str().unwrap().to_string(),
                g.clone(),
            )
        })
        .collect()
}

#[test]
fn bounce_classes_block_rates_and_delivery_timing_by_provider() {
    let env = TestEnv::new("deliverability");
    let (docs, google, yahoo) = the_day();
    env.insert(&docs);
    env.ingest(&["--date", DAY]).expect_code(0);

    // Each bounce got the class its reply says, whatever SES's type.
    let classes = env.rows(
        "SELECT r.user_email, d.bounce_class FROM aws_report_details d JOIN aws_reports r ON r.id = d.report_id
         WHERE d.event_type = 'Bounce' ORDER BY CAST(SUBSTRING(r.user_email, 2) AS UNSIGNED)",
    );
    let expected: Vec<Vec<String>> = GOOGLE_BOUNCES
        .iter()
        .enumerate()
        .map(|(i, b)| vec![format!("g{i}@gmail.com"), b.3.to_string()])
        .collect();
    assert_eq!(classes, expected);
    let delays = env.rows(
        "SELECT delay_type, bounce_class, COUNT(*) FROM aws_report_details WHERE event_type = 'DeliveryDelay'
         GROUP BY delay_type, bounce_class ORDER BY 1",
    );
    assert_eq!(
        delays,
        [
            ["MailboxFull", "mailbox-full", "1"],
            ["TransientCommunicationFailure", "technical", "10"]
        ]
    );

    // The rollups count each class, the table a user reads.
    let rollup = env.rows(
        "SELECT mailbox_provider, SUM(bounces_invalid_address), SUM(bounces_reputation), SUM(bounces_policy),
                SUM(bounces_mailbox_full + bounces_mailbox_disabled + bounces_content + bounces_rate_limit
                    + bounces_technical + bounces_unclassified), SUM(permanent_bounces), SUM(delivery_delays)
         FROM aws_report_daily GROUP BY mailbox_provider ORDER BY 1",
    );
    assert_eq!(
        rollup,
        [
            ["google", "2", "5", "1", "0", "8", "10"],
            ["yahoo", "0", "0", "0", "0", "0", "1"]
        ]
    );

    // stats: classes, block rate, verdict and timing per provider.
    let groups = by_provider(&env, &[]);
    let g = &groups["google"];
    assert_eq!(
        g["bounces_by_class"],
        json!({"invalid-address": 2, "mailbox-full": 0, "mailbox-disabled": 0, "reputation": 5,
               "policy": 1, "content": 0, "rate-limit": 0, "technical": 0, "unclassified": 0})
    );
    assert_eq!(g["block_rate"], json!(6.0 / 200.0));
    assert_eq!(g["bounce_rate"], json!(8.0 / 200.0));
    // 4% bounces is healthy by SES's thresholds; 3% blocks is a warning by the block rate's.
    assert_eq!(g["verdict"], "warning");
    assert_eq!(groups["yahoo"]["block_rate"], json!(0.0));
    assert_eq!(groups["yahoo"]["verdict"], "healthy");
    for (name, expected) in [("google", &google), ("yahoo", &yahoo)] {
        let delivered = expected.send_to_delivery.len() as u64;
        assert_eq!(
            groups[name]["delivery_timing"],
            json!({
                "delivered": delivered,
                "first_attempt": expected.first_attempt,
                "first_attempt_share": expected.first_attempt as f64 / delivered as f64,
                "send_to_delivery": latency(&expected.send_to_delivery),
                "processing_time": latency(&expected.processing),
                "delays": expected.delays.values().sum::<u64>(),
                "delays_by_type": expected.delays,
            }),
            "{name}"
        );
    }

    // The CSV carries the class columns and the block rate.
    let csv = env.run(&[
        "stats", "--date", DAY, "--by", "provider", "--format", "csv",
    ]);
    csv.expect_code(0);
    let lines: Vec<Vec<String>> = csv
        .stdout()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let column = |name: &str| lines[0].iter().position(|c| c == name).unwrap();
    let google_row = lines.iter().find(|l| l[0] == "google").unwrap();
    assert_eq!(google_row[column("bounces_reputation")], "5");
    assert_eq!(google_row[column("block_rate")], "0.030000");
    assert_eq!(
        google_row[column("delays_by_type")],
        "TransientCommunicationFailure=10"
    );

    // --check: the block rate alerts at the thresholds given.
    let check = |extra: &[&str]| {
        let mut args = vec!["stats", "--date", DAY, "--by", "provider", "--check"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let quiet = check(&[]);
    quiet.expect_code(0);
    assert_eq!(quiet.stdout(), "");
    let warned = check(&["--fail-on", "warning"]);
    warned.expect_code(6);
    assert_eq!(
        warned.stdout(),
        "mailbox_provider google: block rate 3% >= 2% (warning), 200 sent\n",
        "{warned}"
    );
    let critical = check(&["--block-critical", "3"]);
    critical.expect_code(5);
    assert_eq!(
        critical.stdout(),
        "mailbox_provider google: block rate 3% >= 3% (critical), 200 sent\n",
        "{critical}"
    );
    check(&["--block-warning", "3.5%", "--fail-on", "warning"]).expect_code(0);
    let wrong = check(&["--block-warning", "10", "--block-critical", "5"]);
    wrong.expect_code(2);
    assert!(
        wrong
            .stderr()
            .contains("--block-warning (10%) is above --block-critical (5%)"),
        "{wrong}"
    );
    let not_a_number = check(&["--block-warning", "two"]);
    not_a_number.expect_code(2);
    assert!(
        not_a_number.stderr().contains("--block-warning \"two\""),
        "{not_a_number}"
    );
}

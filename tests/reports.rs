//! Deliverability reports: rollups, stats (rates, verdicts, --check), suppressions, HTML.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use crate::notifications::*;
use crate::util::{repo_path, TestEnv};

/// The counter columns of `aws_report_daily`, as the schema and the JSON output name them.
const COUNTERS: [&str; 27] = [
    "sent",
    "delivered",
    "rejected",
    "rendering_failures",
    "delivery_delays",
    "permanent_bounces",
    "suppressed_bounces",
    "transient_bounces",
    "undetermined_bounces",
    "complaints",
    "suppressed_complaints",
    "unique_opens",
    "total_opens",
    "unique_clicks",
    "total_clicks",
    "unsubscribes",
    "human_unique_opens",
    "human_unique_clicks",
    "bounces_invalid_address",
    "bounces_mailbox_full",
    "bounces_mailbox_disabled",
    "bounces_reputation",
    "bounces_policy",
    "bounces_content",
    "bounces_rate_limit",
    "bounces_technical",
    "bounces_unclassified",
];

/// The rollup table as (day, report_type, source, domain, provider, configuration set,
/// sending IP) -> counters.
fn rollups(env: &TestEnv) -> BTreeMap<Vec<String>, Vec<u64>> {
    env.rows(&format!(
        "SELECT DATE_FORMAT(day, '%Y-%m-%d'), report_type, source_email, recipient_domain, mailbox_provider,
                configuration_set, sending_ip, {} FROM aws_report_daily",
        COUNTERS.join(", ")
    ))
    .into_iter()
    .map(|r| (r[..7].to_vec(), r[7..].iter().map(|v| v.parse().unwrap()).collect()))
    .collect()
}

/// The same figures computed here, independently, from the detail rows (UTC days).
fn expected_rollups(env: &TestEnv) -> BTreeMap<Vec<String>, Vec<u64>> {
    let rows = env.rows(
        "SELECT DATE_FORMAT(d.timestamp, '%Y-%m-%d'), r.report_type, COALESCE(r.source_email, ''), r.user_email,
                d.event_type, d.report_id, d.other_info, r.mailbox_provider, COALESCE(r.configuration_set, ''),
                COALESCE(r.sending_ip, ''), COALESCE(d.automated, 'human'), COALESCE(d.bounce_class, '')
         FROM aws_report_details d JOIN aws_reports r ON r.id = d.report_id",
    );
    let mut sets: BTreeMap<Vec<String>, Vec<HashSet<String>>> = BTreeMap::new();
    let mut totals: BTreeMap<Vec<String>, (u64, u64)> = BTreeMap::new();
    for r in rows {
        let domain = r[3].rsplit('@').next().unwrap().to_string();
        let key = vec![
            r[0].clone(),
            r[1].clone(),
            r[2].clone(),
            domain,
            r[7].clone(),
            r[8].clone(),
            r[9].clone(),
        ];
        let info: Value = serde_json::from_str(&r[6]).unwrap_or(Value::Null);
        let bounce_type = info["bounceType"].as_str().unwrap_or("");
        let sub_type = info["bounceSubType"].as_str().unwrap_or("");
        let counter = match r[4].as_str() {
            "Send" => Some(0),
            "Delivery" => Some(1),
            "Reject" => Some(2),
            "Rendering Failure" => Some(3),
            "DeliveryDelay" => Some(4),
            "Bounce" if bounce_type == "Permanent" && sub_type != "OnAccountSuppressionList" => {
                Some(5)
            }
            "Bounce" if bounce_type == "Permanent" => Some(6),
            "Bounce" if bounce_type == "Transient" => Some(7),
            "Bounce" => Some(8),
            "Complaint" if info["complaintSubType"] == json!("OnAccountSuppressionList") => {
                Some(10)
            }
            "Complaint" => Some(9),
            "Open" => Some(11),
            "Click" => Some(13),
            "Subscription" if info["newTopicPreferences"]["unsubscribeAll"] == json!(true) => {
                Some(15)
            }
            _ => None,
        };
        let entry = sets
            .entry(key.clone())
            .or_insert_with(|| vec![HashSet::new(); COUNTERS.len()]);
        let total = totals.entry(key).or_default();
        if let Some(c) = counter {
            entry[c].insert(r[5].clone());
        }
        if r[4] == "Bounce" && sub_type != "OnAccountSuppressionList" {
            let column = format!("bounces_{}", r[11].replace('-', "_"));
            let index = COUNTERS.iter().position(|c| *c == column).unwrap();
            entry[index].insert(r[5].clone());
        }
        match (r[4].as_str(), r[10].as_str()) {
            ("Open", "human") => entry[16].insert(r[5].clone()),
            ("Click", "human") => entry[17].insert(r[5].clone()),
            _ => false,
        };
        match r[4].as_str() {
            "Open" => total.0 += 1,
            "Click" => total.1 += 1,
            _ => {}
        }
    }
    sets.into_iter()
        .map(|(key, s)| {
            let (opens, clicks) = totals[&key];
            let mut counts: Vec<u64> = s.iter().map(|set| set.len() as u64).collect();
            counts[12] = opens;
            counts[14] = clicks;
            (key, counts)
        })
        .collect()
}

fn generated_day(seed: u64) -> (Vec<Value>, String) {
    let plan = ses_fixtures::Plan {
        notifications: 1500,
        day: time::macros::date!(2026 - 11 - 20),
        seed,
        users: 60,
        string_timestamps_percent: 30.0,
        malformed: 0,
    };
    let mut out = Vec::new();
    ses_fixtures::generate(&plan, &mut out).unwrap();
    let docs = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut users = Vec::new();
    ses_fixtures::write_auth_users_sql(60, &mut users).unwrap();
    (docs, String::from_utf8(users).unwrap())
}

#[test]
fn rollups_equal_the_rows_after_reruns_and_in_any_order() {
    let (docs, users) = generated_day(23);
    let env = TestEnv::new("rollups");
    env.execute(&users);
    env.insert(&docs);
    env.ingest(&["--date", "2026-11-20"]).expect_code(0);
    let first = rollups(&env);
    assert!(first.len() > 10, "{first:?}");
    assert_eq!(first, expected_rollups(&env));
    env.ingest(&["--date", "2026-11-20"]).expect_code(0);
    assert_eq!(rollups(&env), first, "a rerun changed the rollups");

    let shuffled = TestEnv::new("rollups_shuffled");
    shuffled.execute(&users);
    let mut reversed = docs.clone();
    reversed.reverse();
    shuffled.insert(&reversed);
    for (from, to) in [
        ("2026-11-20T12:00:00Z", "2026-11-21"),
        ("2026-11-20", "2026-11-20T12:00:00Z"),
    ] {
        shuffled
            .ingest(&["--from", from, "--to", to, "--batch-size", "13"])
            .expect_code(0);
    }
    assert_eq!(rollups(&shuffled), first);

    // A hand rebuild gives the same rows; a deleted day comes back.
    env.execute("DELETE FROM aws_report_daily");
    env.run(&["rollup", "--date", "2026-11-20"]).expect_code(0);
    assert_eq!(rollups(&env), first);
}

/// `sent` recipients at one domain, `bounced` of them bouncing permanently.
fn domain_day(env: &TestEnv, domain: &str, sent: usize, bounced: usize, complained: usize) {
    let mut docs = Vec::new();
    for i in 0..sent {
        let address = format!("r{i}@{domain}");
        let m = mail(
            &format!("m-{domain}-{i}"),
            "2026-11-27T10:00:00.000Z",
            &[address.as_str()],
        );
        docs.push(send(&format!("n-s-{domain}-{i}"), &m));
        if i < bounced {
            docs.push(bounce(
                &format!("n-b-{domain}-{i}"),
                &m,
                "2026-11-27T10:00:05.000Z",
                "Permanent",
                &format!("fb-{domain}-{i}"),
                &[&address],
            ));
        } else {
            docs.push(delivery(
                &format!("n-d-{domain}-{i}"),
                &m,
                "2026-11-27T10:00:05.000Z",
                &[&address],
            ));
            if i < bounced + complained {
                docs.push(complaint(
                    &format!("n-c-{domain}-{i}"),
                    &m,
                    "2026-11-27T12:00:00.000Z",
                    &format!("fc-{domain}-{i}"),
                    &[&address],
                ));
            }
        }
    }
    env.insert(&docs);
}

#[test]
fn check_is_silent_when_healthy_and_exits_5_or_6_otherwise() {
    let mut env = TestEnv::new("stats_check");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    domain_day(&env, "fine.example", 100, 4, 0);
    domain_day(&env, "tiny.example", 99, 50, 0);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let check = |extra: &[&str]| {
        let mut args = vec!["stats", "--by", "domain", "--check", "--format", "csv"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    // Healthy (and a small group with a terrible rate, below --min-volume): silence.
    let run = check(&[]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "", "{run}");
    assert_eq!(check(&["--fail-on", "warning"]).code(), 0);
    let tiny = check(&["--min-volume", "99"]);
    tiny.expect_code(5);
    assert!(
        tiny.stdout().contains("tiny.example") && !tiny.stdout().contains("fine.example"),
        "{tiny}"
    );

    // Exactly 5% permanent bounces: a warning, which only --fail-on warning reports.
    domain_day(&env, "warn.example", 100, 5, 0);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(check(&[]).stdout(), "");
    let warn = check(&["--fail-on", "warning"]);
    warn.expect_code(6);
    assert_eq!(warn.stdout().lines().count(), 2, "{warn}");
    assert!(
        warn.stdout().contains("warn.example") && warn.stdout().contains(",0.050000,"),
        "{warn}"
    );

    // 10% is critical: exit 5 either way.
    domain_day(&env, "bad.example", 100, 10, 0);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let bad = check(&[]);
    bad.expect_code(5);
    assert!(
        bad.stdout().contains("bad.example") && !bad.stdout().contains("warn.example"),
        "{bad}"
    );
    check(&["--fail-on", "warning"]).expect_code(5);

    // Without --format, an alert a person reads at 3 a.m.: one line per offending group.
    let lines = env.run(&["stats", "--by", "domain", "--check", "--fail-on", "warning"]);
    lines.expect_code(5);
    assert_eq!(
        lines.stdout(),
        "domain bad.example: bounce rate 10% >= 10% (critical), 100 sent\ndomain warn.example: bounce rate 5% >= 5% (warning), 100 sent\n",
        "{lines}"
    );

    // A period without any event, after days with some: the ingest may not have run.
    let empty = env.run(&["stats", "--date", "2026-11-28", "--check"]);
    empty.expect_code(5);
    assert!(
        empty
            .stdout()
            .starts_with("no data: no event in 2026-11-28")
            && empty
                .stdout()
                .contains("the last day with events is 2026-11-27"),
        "{empty}"
    );
    env.run(&["stats", "--date", "2026-11-28", "--check", "--allow-empty"])
        .expect_code(0);
    let warned = env.run(&[
        "stats",
        "--date",
        "2026-11-28",
        "--check",
        "--fail-on",
        "warning",
    ]);
    warned.expect_code(6);
}

/// Where JSON keeps what a CSV column holds: the class counters in `bounces_by_class`, the
/// timing columns in `delivery_timing` (`delays_by_type` as CSV spells it).
fn json_of_csv_column(group: &Value, name: &str) -> Value {
    let timing = &group["delivery_timing"];
    if let Some(class) = name.strip_prefix("bounces_") {
        return group["bounces_by_class"][class.replace('_', "-")].clone();
    }
    for (prefix, object) in [
        ("send_to_delivery_", "send_to_delivery"),
        ("processing_", "processing_time"),
    ] {
        if let Some(field) = name.strip_prefix(prefix) {
            return timing[object][field].clone();
        }
    }
    match name {
        "first_attempt_share" => timing[name].clone(),
        "delays_by_type" => json!(timing[name]
            .as_object()
            .map(|o| o
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"))
            .unwrap_or_default()),
        _ => group[name].clone(),
    }
}

#[test]
fn stats_csv_and_json_carry_the_same_figures() {
    let mut env = TestEnv::new("stats_formats");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    domain_day(&env, "a.example", 200, 12, 0);
    domain_day(&env, "b.example", 150, 0, 0);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let csv = env.run(&["stats", "--by", "day", "--by", "domain", "--format", "csv"]);
    csv.expect_code(0);
    let json = env.run(&["stats", "--by", "day", "--by", "domain", "--format", "json"]);
    let doc: Value = serde_json::from_str(&json.stdout()).unwrap();
    let csv_text = csv.stdout();
    let lines: Vec<&str> = csv_text.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(lines.len() - 1, doc["groups"].as_array().unwrap().len());
    for (line, group) in lines[1..].iter().zip(doc["groups"].as_array().unwrap()) {
        for (name, cell) in header.iter().zip(line.split(',')) {
            let value = &json_of_csv_column(group, name);
            let same = match value {
                Value::String(s) => s == cell,
                Value::Number(n) => {
                    (n.as_f64().unwrap() - cell.parse::<f64>().unwrap()).abs() < 1e-6
                }
                Value::Null => cell.is_empty(),
                _ => false,
            };
            assert!(same, "{name}: csv {cell:?} vs json {value}");
        }
    }
    let a = &doc["groups"][0];
    assert_eq!(
        (a["day"].as_str(), a["domain"].as_str()),
        (Some("2026-11-27"), Some("a.example"))
    );
    assert_eq!(
        (
            a["sent"].as_u64(),
            a["delivered"].as_u64(),
            a["permanent_bounces"].as_u64()
        ),
        (Some(200), Some(188), Some(12))
    );
    assert_eq!(a["bounce_rate"].as_f64(), Some(0.06));
    assert_eq!(a["verdict"], "warning");
    // The default period is the last 7 full days, which include the 27th.
    let default = env.run(&["stats", "--format", "csv"]);
    assert!(
        default
            .stdout()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("all,350,"),
        "{default}"
    );
}

#[test]
fn suppressions_follow_each_rule() {
    let mut env = TestEnv::new("suppressions");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let mut docs = Vec::new();
    let mut n = 0;
    let mut bounce_of = |address: &str,
                         day: u32,
                         bounce_type: &str,
                         sub_type: &str,
                         status: Option<&str>| {
        n += 1;
        let at = format!("2026-11-{day:02}T10:00:00.000Z");
        let m = mail(&format!("m-{n}"), &at, &[address]);
        let mut recipient = json!({"emailAddress": address});
        if let Some(s) = status {
            recipient["status"] = json!(s);
            recipient["diagnosticCode"] = json!(format!("smtp; {s} said no"));
        }
        let object = json!({"timestamp": at, "bounceType": bounce_type, "bounceSubType": sub_type, "feedbackId": format!("fb-{n}"), "bouncedRecipients": [recipient]});
        notification(
            &format!("n-{n}"),
            &at,
            &record("Bounce", &m, "bounce", object),
        )
    };
    docs.push(bounce_of(
        "hard@x.org",
        20,
        "Permanent",
        "General",
        Some("5.1.1"),
    ));
    docs.push(bounce_of(
        "listed@x.org",
        20,
        "Permanent",
        "OnAccountSuppressionList",
        None,
    ));
    docs.push(bounce_of(
        "nodomain@x.org",
        21,
        "Transient",
        "General",
        Some("5.4.4"),
    ));
    for day in [10, 15, 20] {
        docs.push(bounce_of("ooto@x.org", day, "Transient", "General", None));
        docs.push(bounce_of(
            "full@x.org",
            day,
            "Transient",
            "MailboxFull",
            Some("4.2.2"),
        ));
        docs.push(bounce_of(
            "recovered@x.org",
            day,
            "Transient",
            "MailboxFull",
            Some("4.2.2"),
        ));
    }
    let later = mail("m-later", "2026-11-25T10:00:00.000Z", &["recovered@x.org"]);
    docs.push(delivery(
        "n-later",
        &later,
        "2026-11-25T10:00:02.000Z",
        &["recovered@x.org"],
    ));
    let annoyed = mail("m-annoyed", "2026-11-22T10:00:00.000Z", &["annoyed@x.org"]);
    docs.push(complaint(
        "n-annoyed",
        &annoyed,
        "2026-11-22T11:00:00.000Z",
        "fc-1",
        &["annoyed@x.org"],
    ));
    let leaving = mail("m-leaving", "2026-11-23T10:00:00.000Z", &["leaving@x.org"]);
    let unsubscribe = json!({"timestamp": "2026-11-23T11:00:00.000Z", "contactList": "news",
        "newTopicPreferences": {"unsubscribeAll": true}, "oldTopicPreferences": {"unsubscribeAll": false}});
    docs.push(notification(
        "n-leaving",
        "2026-11-23T11:00:00.000Z",
        &record("Subscription", &leaving, "subscription", unsubscribe),
    ));
    let topic = json!({"timestamp": "2026-11-23T11:00:00.000Z", "contactList": "news", "newTopicPreferences": {"unsubscribeAll": false}});
    docs.push(notification(
        "n-topic",
        "2026-11-23T11:00:00.000Z",
        &record("Subscription", &leaving, "subscription", topic),
    ));
    env.insert(&docs);
    env.ingest(&["--from", "2026-11-01", "--to", "2026-11-28"])
        .expect_code(0);

    let run = env.run(&["suppressions"]);
    run.expect_code(0);
    let reasons: Vec<(String, String, String)> = run
        .stdout()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[2].to_string(), c[5].to_string())
        })
        .collect();
    let expected = [
        ("annoyed@x.org", "complaint", "1"),
        ("full@x.org", "soft-bounces", "3"),
        ("hard@x.org", "permanent-bounce", "1"),
        ("leaving@x.org", "unsubscribed", "1"),
        ("nodomain@x.org", "permanent-bounce", "1"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(reasons, expected, "{run}");
    assert!(run.stdout().contains("smtp; 5.1.1 said no"));

    let with_ses = env.run(&[
        "suppressions",
        "--include-ses-suppressed",
        "--format",
        "json",
    ]);
    let list: Value = serde_json::from_str(&with_ses.stdout()).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["email"] == "listed@x.org" && s["reason"] == "ses-suppressed"));
    let since = env.run(&["suppressions", "--since", "2026-11-22"]);
    assert_eq!(since.stdout().lines().count(), 1 + 2, "{since}");
    let strict = env.run(&["suppressions", "--soft-limit", "4"]);
    assert!(!strict.stdout().contains("full@x.org"), "{strict}");
    // A limit the ledger cannot answer (it keeps 16 instants an address) is refused.
    env.run(&["suppressions", "--soft-limit", "16"])
        .expect_code(0);
    for limit in ["17", "0"] {
        let refused = env.run(&["suppressions", "--soft-limit", limit]);
        refused.expect_code(2);
        assert!(
            refused
                .stderr()
                .contains("--soft-limit must be from 1 to 16"),
            "{refused}"
        );
    }
}

#[test]
fn the_html_report_of_the_demo_day_renders_in_a_browser() {
    let mut env = TestEnv::demo("html_report");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    env.ingest(&["--date", "2026-11-27"]).expect_code(3);
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    let run = env.run(&[
        "report",
        "--html",
        page.to_str().unwrap(),
        "--date",
        "2026-11-27",
    ]);
    run.expect_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    for text in [
        "Email deliverability report",
        "2026-11-27 (UTC)",
        "Bounce rate",
        "By report type",
        "Suppression list",
        "permanent-bounce",
        "Human and machine engagement",
        "<tr><td>apple-mpp</td>",
        "<tr><td>scanner-burst</td>",
        "Human opens by hour of day (UTC)",
        "By mailbox provider",
        "<tr><td>microsoft</td>",
        "Why mail bounced, by mailbox provider",
        "Most frequent replies per class",
        "Delivery timing by mailbox provider",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    // Each bounce class of the day's rows (but the bounce SES suppressed itself, which has no
    // receiving server's reply) is listed with its replies, and no address is.
    let classes = env.rows(
        "SELECT DISTINCT bounce_class FROM aws_report_details WHERE event_type = 'Bounce'
           AND other_info NOT LIKE '%OnAccountSuppressionList%' ORDER BY 1",
    );
    assert!(!classes.is_empty());
    for class in classes {
        assert!(
            html.contains(&format!("<tr><td>{}</td><td class=\"reply\">", class[0])),
            "no replies of {}",
            class[0]
        );
    }
    let replies: Vec<&str> = html
        .split("<td class=\"reply\">")
        .skip(1)
        .map(|r| r.split("</td>").next().unwrap())
        .collect();
    assert!(replies.iter().all(|r| !r.contains('@')), "{replies:?}");
    // The share of machine opens shown is the one the rows hold.
    let machine: f64 = env
        .scalar("SELECT 100 * SUM(automated IS NOT NULL) / COUNT(*) FROM aws_report_details WHERE event_type = 'Open'")
        .parse()
        .unwrap();
    assert!(machine > 10.0, "the demo day has machine opens: {machine}");
    assert!(
        html.contains(&format!(
            "<div class=\"label\">Machine opens</div><div class=\"value\">{machine:.1}%</div>"
        )),
        "machine opens tile {machine:.1}%"
    );
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "the page must be self-contained"
    );

    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| std::process::Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is needed for this test: scripts/test.sh installs it (apt-get install chromium)");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let profile = dir.join("profile");
    let url = format!("file://{}", page.display());
    let dom = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Reputation rates")
            && dom.contains("<svg")
            && dom.contains("By mailbox provider"),
        "chromium did not render the page: {dom}"
    );
    let shot = dir.join("report.png");
    let status = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,2900",
            &url,
        ])
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&status.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot too small: {} bytes",
        png.len()
    );

    // Over several days: every day is on the axis, those no completed run covers starred; who
    // drives a verdict is said, low-volume groups included; report types by name; tables by
    // configuration set and sending IP; when and by which version the page was made.
    env.vars.push((
        "SES_REPORT_REPORT_TYPE_NAMES".into(),
        "1=welcome,2=newsletter,3=receipt,4=reminder".into(),
    ));
    let week = dir.join("week.html");
    env.run(&[
        "report",
        "--html",
        week.to_str().unwrap(),
        "--from",
        "2026-11-25",
        "--to",
        "2026-11-28",
        "--min-volume",
        "100000",
    ])
    .expect_code(0);
    let html = std::fs::read_to_string(&week).unwrap();
    for text in [
        ">2026-11-25*<",
        ">2026-11-26*<",
        ">2026-11-27<",
        "No completed ingest covers 2026-11-25, 2026-11-26",
        "What drives the verdict",
        "low volume (under 100000)",
        "<td>1 welcome</td>",
        "By configuration set",
        "By sending IP",
        &format!("Generated by ses-report {} at ", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The suppression lifecycle on real rows: a `not-spam` report lifts a complaint, the sunset
/// rule takes addresses that get mail and never read it (machine opens do not count), and
/// `--reconcile` compares with SES's account-level list as the AWS CLI prints it.
#[test]
fn not_spam_lifts_sunset_takes_the_unread_and_reconcile_names_the_differences() {
    let mut env = TestEnv::new("suppression_lifecycle");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let mut docs = Vec::new();
    // A complaint, then the same person's not-spam report.
    let m = mail("m-c", "2026-11-20T10:00:00.000Z", &["fan@x.org"]);
    docs.push(complaint(
        "n-c1",
        &m,
        "2026-11-20T11:00:00.000Z",
        "fb-1",
        &["fan@x.org"],
    ));
    let mut not_spam = complaint(
        "n-c2",
        &m,
        "2026-11-21T11:00:00.000Z",
        "fb-2",
        &["fan@x.org"],
    );
    let message: serde_json::Value =
        serde_json::from_str(not_spam["Message"].as_str().unwrap()).unwrap();
    let mut message = message;
    message["complaint"]["complaintFeedbackType"] = json!("not-spam");
    not_spam["Message"] = json!(message.to_string());
    docs.push(not_spam);
    // Five deliveries each to cold@ (only Apple's prefetch opens) and warm@ (one human click).
    for i in 0..5 {
        let at = format!("2026-11-{:02}T10:00:00.000Z", 10 + i);
        let delivered = format!("2026-11-{:02}T10:00:02.000Z", 10 + i);
        let opened = format!("2026-11-{:02}T10:00:09.000Z", 10 + i);
        let cold = mail(&format!("m-cold-{i}"), &at, &["cold@x.org"]);
        docs.push(delivery(
            &format!("n-cold-d{i}"),
            &cold,
            &delivered,
            &["cold@x.org"],
        ));
        docs.push(open(&format!("n-cold-o{i}"), &cold, &opened));
        let warm = mail(&format!("m-warm-{i}"), &at, &["warm@x.org"]);
        docs.push(delivery(
            &format!("n-warm-d{i}"),
            &warm,
            &delivered,
            &["warm@x.org"],
        ));
        if i == 2 {
            docs.push(click("n-warm-c", &warm, "2026-11-12T18:00:00.000Z"));
        }
    }
    let h = mail("m-h", "2026-11-25T10:00:00.000Z", &["gone@x.org"]);
    docs.push(bounce(
        "n-h",
        &h,
        "2026-11-25T10:00:01.000Z",
        "Permanent",
        "fb-h",
        &["gone@x.org"],
    ));
    env.insert(&docs);
    env.ingest(&["--from", "2026-11-01", "--to", "2026-11-28"])
        .expect_code(0);

    let listed = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["suppressions", "--format", "json"];
        all.extend_from_slice(args);
        let run = env.run(&all);
        run.expect_code(0);
        let rows: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["email"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pair = |e: &str, r: &str| (e.to_string(), r.to_string());
    assert_eq!(listed(&[]), vec![pair("gone@x.org", "permanent-bounce")]);
    assert_eq!(
        listed(&["--sunset-days", "90", "--sunset-min-deliveries", "5"]),
        vec![
            pair("cold@x.org", "sunset"),
            pair("gone@x.org", "permanent-bounce")
        ]
    );
    assert_eq!(
        listed(&["--sunset-days", "90", "--sunset-min-deliveries", "6"]),
        vec![pair("gone@x.org", "permanent-bounce")]
    );

    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let ses = dir.join("ses.json");
    std::fs::write(
        &ses,
        r#"{"SuppressedDestinationSummaries": [{"EmailAddress": "fan@x.org", "Reason": "COMPLAINT", "LastUpdateTime": "2026-11-20T11:00:05Z"}]}
{"SuppressedDestinationSummaries": [{"EmailAddress": "GONE@x.org", "Reason": "COMPLAINT", "LastUpdateTime": "2026-11-25T10:00:05Z"}]}"#,
    )
    .unwrap();
    let run = env.run(&["suppressions", "--reconcile", ses.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(
        run.stdout(),
        "email,action,our_reasons,ses_reason\nfan@x.org,only-in-ses,,COMPLAINT\ngone@x.org,reason-differs,permanent-bounce,COMPLAINT\n"
    );
    std::fs::write(&ses, "{\"Nope\": []}").unwrap();
    let bad = env.run(&["suppressions", "--reconcile", ses.to_str().unwrap()]);
    bad.expect_code(2);
    assert!(
        bad.stderr().contains("SuppressedDestinationSummaries"),
        "{bad}"
    );
    // An empty or blank file (what a failed `aws ... > ses.json` leaves) is no empty list.
    for empty in ["", " \n\n"] {
        std::fs::write(&ses, empty).unwrap();
        let run = env.run(&["suppressions", "--reconcile", ses.to_str().unwrap()]);
        run.expect_code(2);
        assert!(
            run.stderr().contains(ses.to_str().unwrap()) && run.stderr().contains("empty"),
            "{run}"
        );
        assert!(!run.stdout().contains("add-to-ses"), "{run}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The engagement scenario's day (fixtures/scenarios/engagement-and-providers, whose README
/// works out each figure by hand), grouped by provider, tag, configuration set and sending IP.
#[test]
fn stats_group_by_provider_tags_configuration_sets_and_ips_with_human_figures() {
    let mut env = TestEnv::new("stats_engagement");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let file = repo_path("fixtures/scenarios/engagement-and-providers/notifications.ndjson");
    env.ingest(&["--file", file.to_str().unwrap(), "--batch-size", "4"])
        .expect_code(0);
    let stats = |by: &str| -> Value {
        let run = env.run(&[
            "stats",
            "--date",
            "2026-11-27",
            "--by",
            by,
            "--format",
            "json",
            "--min-volume",
            "1",
        ]);
        run.expect_code(0);
        serde_json::from_str(&run.stdout()).unwrap()
    };
    let group = |doc: &Value, key: &str, value: &str| -> Value {
        doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g[key] == json!(value))
            .unwrap_or_else(|| panic!("no group {key}={value}: {doc}"))
            .clone()
    };
    let providers = stats("provider");
    let names: Vec<&str> = providers["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["mailbox_provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["apple", "google", "microsoft", "other", "yahoo"]);
    let google = group(&providers, "mailbox_provider", "google");
    let figures =
        |g: &Value, names: &[&str]| -> Vec<Value> { names.iter().map(|n| g[*n].clone()).collect() };
    let counted = [
        "sent",
        "delivered",
        "unique_opens",
        "human_unique_opens",
        "unique_clicks",
        "total_clicks",
        "human_unique_clicks",
        "human_open_rate",
        "human_click_rate",
    ];
    // m-11 (gmail.com) and m-12 (acme.example, Google Workspace): five clicks, two by people.
    assert_eq!(
        figures(&google, &counted),
        [2, 2, 1, 1, 2, 6, 2]
            .map(|n| json!(n))
            .into_iter()
            .chain([json!(0.5), json!(1.0)])
            .collect::<Vec<_>>()
    );
    // Delivery to first human click: 1259 s (m-11) and 2399 s (m-12); first open 1199 s.
    assert_eq!(
        google["time_to_first_human_click"],
        json!({"count": 2, "median_seconds": 1259, "p90_seconds": 2399})
    );
    assert_eq!(
        google["time_to_first_human_open"],
        json!({"count": 1, "median_seconds": 1199, "p90_seconds": 1199})
    );
    // Apple: one recipient, two opens, the MPP prefetch not human; first human open 10798 s.
    let apple = group(&providers, "mailbox_provider", "apple");
    assert_eq!(
        figures(
            &apple,
            &[
                "total_opens",
                "unique_opens",
                "human_unique_opens",
                "human_open_rate"
            ]
        ),
        vec![json!(2), json!(1), json!(1), json!(1.0)]
    );
    assert_eq!(apple["time_to_first_human_open"]["median_seconds"], 10798);
    let microsoft = group(&providers, "mailbox_provider", "microsoft");
    assert_eq!(
        microsoft["time_to_first_human_open"],
        json!({"count": 2, "median_seconds": 599, "p90_seconds": 19197})
    );
    assert_eq!(microsoft["human_unique_clicks"], 0);
    assert!(microsoft["verdict"].is_string());
    // Human opens at 09:30, 09:40, 12:00 and 15:00 UTC.
    let mut hours = [0u64; 24];
    hours[9] = 2;
    hours[12] = 1;
    hours[15] = 1;
    assert_eq!(
        providers["human_opens_by_hour"],
        json!({"time_zone": "UTC", "counts": hours})
    );

    let campaigns = stats("tag:campaign");
    let fall = group(&campaigns, "tag:campaign", "fall");
    assert_eq!(
        figures(
            &fall,
            &["sent", "human_unique_opens", "human_unique_clicks"]
        ),
        vec![json!(3), json!(2), json!(2)]
    );
    let untagged = group(&campaigns, "tag:campaign", "");
    assert_eq!(
        figures(&untagged, &["sent", "delivered"]),
        vec![json!(4), json!(5)]
    );

    let sets = stats("configuration-set");
    assert_eq!(group(&sets, "configuration_set", "marketing")["sent"], 3);
    assert_eq!(
        group(&sets, "configuration_set", "transactional")["sent"],
        4
    );
    assert_eq!(group(&sets, "configuration_set", "")["delivered"], 1);
    let ips = stats("sending-ip");
    assert_eq!(group(&ips, "sending_ip", "198.51.100.7")["sent"], 5);
    assert_eq!(group(&ips, "sending_ip", "198.51.100.8")["sent"], 2);

    // CSV carries the human rates too; a bad --by names the choices, tag:NAME among them.
    let csv = env.run(&[
        "stats",
        "--date",
        "2026-11-27",
        "--by",
        "provider",
        "--format",
        "csv",
    ]);
    assert!(
        csv.stdout()
            .lines()
            .next()
            .unwrap()
            .contains("human_unique_opens")
            && csv
                .stdout()
                .contains(",human_open_rate,human_click_rate,block_rate,verdict,"),
        "{csv}"
    );
    let bad = env.run(&["stats", "--by", "isp"]);
    bad.expect_code(2);
    assert!(bad.stderr().contains("tag:NAME"), "{bad}");
}

/// Complaints SES had already suppressed (`complaintSubType: OnAccountSuppressionList`) are
/// counted apart, like such bounces: not in `complaints` (nor the complaint rate), and not a
/// suppression the app must act on unless asked for with --include-ses-suppressed.
#[test]
fn complaints_ses_already_suppressed_are_counted_and_listed_apart() {
    let mut env = TestEnv::new("ses_suppressed_complaints");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org", "b@x.org"]);
    let mut suppressed = complaint("n-2", &m, "2026-11-27T11:00:00.000Z", "fb-a", &["a@x.org"]);
    let mut record: Value = serde_json::from_str(suppressed["Message"].as_str().unwrap()).unwrap();
    record["complaint"]["complaintSubType"] = json!("OnAccountSuppressionList");
    suppressed["Message"] = json!(record.to_string());
    env.insert(&[
        send("n-1", &m),
        suppressed,
        complaint("n-3", &m, "2026-11-27T12:00:00.000Z", "fb-b", &["b@x.org"]),
    ]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(
        env.rows("SELECT sent, complaints, suppressed_complaints FROM aws_report_daily"),
        vec![vec!["2", "1", "1"]]
    );
    let list = env.run(&["suppressions"]);
    list.expect_code(0);
    assert!(list.stdout().contains("b@x.org,,complaint,"), "{list}");
    assert!(!list.stdout().contains("a@x.org"), "{list}");
    let all = env.run(&["suppressions", "--include-ses-suppressed"]);
    assert!(all.stdout().contains("a@x.org,,ses-suppressed,"), "{all}");
}

/// With classic notifications only (no Send events), the volume is deliveries + bounces +
/// rejects, so a bad bounce rate alerts; it used to be 0 sent, "low-volume", forever silent.
#[test]
fn without_send_events_the_volume_is_the_outcomes_and_check_still_alerts() {
    let env = TestEnv::new("classic_only");
    let mut docs = Vec::new();
    for i in 0..130 {
        let to = format!("r{i}@x.org");
        let m = mail(
            &format!("m-{i}"),
            "2026-11-27T10:00:00.000Z",
            &[to.as_str()],
        );
        docs.push(classic(if i < 10 {
            bounce(
                &format!("n-{i}"),
                &m,
                "2026-11-27T10:00:05.000Z",
                "Permanent",
                &format!("fb-{i}"),
                &[to.as_str()],
            )
        } else {
            delivery(
                &format!("n-{i}"),
                &m,
                "2026-11-27T10:00:02.000Z",
                &[to.as_str()],
            )
        }));
    }
    env.insert(&docs);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let check = env.run(&[
        "stats",
        "--date",
        "2026-11-27",
        "--check",
        "--fail-on",
        "warning",
        "--format",
        "json",
    ]);
    check.expect_code(6);
    let doc: Value = serde_json::from_str(&check.stdout()).unwrap();
    let group = &doc["groups"][0];
    assert_eq!(group["sent"], 0, "{doc}");
    assert_eq!(group["volume"], 130, "{doc}");
    assert_eq!(group["volume_basis"], "delivered+bounced+rejected", "{doc}");
    assert_eq!(group["verdict"], "warning", "{doc}");
}

/// Rollups computed in another zone than the days asked for are refused, naming the command
/// that rebuilds them; they used to be summed silently.
#[test]
fn stats_refuse_rollups_of_another_zone_and_name_the_fix() {
    let env = TestEnv::new("mixed_zones");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[send("n-1", &m)]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    env.run(&["stats", "--date", "2026-11-27", "--format", "csv"])
        .expect_code(0);
    env.run(&["rollup", "--date", "2026-11-27", "--tz", "Europe/Paris"])
        .expect_code(0);
    let refused = env.run(&["stats", "--date", "2026-11-27", "--format", "csv"]);
    refused.expect_code(1);
    let fix = "ses-report rollup --from 2026-11-27 --to 2026-11-28 --tz UTC";
    assert!(
        refused.stderr().contains("Europe/Paris") && refused.stderr().contains(fix),
        "{refused}"
    );
    env.run(&["report", "--date", "2026-11-27", "--html", "/dev/null"])
        .expect_code(1);
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
    env.run(&["stats", "--date", "2026-11-27", "--format", "csv"])
        .expect_code(0);
}

/// An address's soft-bounce lift is the latest delivery among its summary rows when that is
/// later than its last soft bounce, whatever order the events arrive in. Here they arrive in
/// orders that take each path of the ledger's update: a later delivery moves the lift; a second
/// route's earlier Delivery of the same mail moves that row's delivery time back (and with it the
/// lift it had set); a first bounce after deliveries reads them; a later bounce keeps or clears
/// the stored lift. One event per batch, and two, so that a batch also brings a delivery and a
/// bounce of the same address together.
#[test]
fn soft_bounce_lifts_are_the_same_in_any_order() {
    let to = ["soft@x.org"];
    let m1 = mail("m-1", "2026-11-27T08:59:00.000Z", &to);
    let m2 = mail("m-2", "2026-11-27T10:29:00.000Z", &to);
    let mb = mail("m-b", "2026-11-27T09:59:00.000Z", &to);
    let mc = mail("m-c", "2026-11-27T10:14:00.000Z", &to);
    // (time of the second bounce, the lift every order must leave)
    for (second_bounce, lift) in [
        ("2026-11-27T10:15:00.000Z", "2026-11-27 10:30:00.000"),
        ("2026-11-27T10:45:00.000Z", "NULL"),
    ] {
        let docs = [
            soft_bounce("n-b1", &mb, "2026-11-27T10:00:00.000Z", "fb-1", &to),
            soft_bounce("n-b2", &mc, second_bounce, "fb-2", &to),
            delivery("n-d1", &m1, "2026-11-27T11:00:00.000Z", &to),
            delivery("n-d1-second-route", &m1, "2026-11-27T09:00:00.000Z", &to),
            delivery("n-d2", &m2, "2026-11-27T10:30:00.000Z", &to),
        ];
        for order in [
            [0, 1, 2, 3, 4],
            [4, 3, 2, 1, 0],
            [0, 2, 3, 4, 1],
            [2, 0, 3, 1, 4],
            [2, 4, 0, 3, 1],
            [1, 2, 0, 4, 3],
            [3, 2, 4, 1, 0],
        ] {
            for batch_size in ["1", "2"] {
                let env = TestEnv::new("soft_lift_order");
                let ordered: Vec<Value> = order.iter().map(|&i| docs[i].clone()).collect();
                env.insert(&ordered);
                env.ingest(&["--date", "2026-11-27", "--batch-size", batch_size])
                    .expect_code(0);
                assert_eq!(
                env.rows(
                    "SELECT kind, evidence_count, COALESCE(lifted_at, 'NULL') FROM aws_report_suppressions"
                ),
                [["soft-bounce", "2", lift]],
                "order {order:?}, second bounce at {second_bounce}, batches of {batch_size}"
            );
                assert_eq!(
                env.rows("SELECT message_id, delivery_at FROM aws_reports WHERE delivery_at IS NOT NULL ORDER BY 1"),
                [
                    ["m-1", "2026-11-27 09:00:00.000"],
                    ["m-2", "2026-11-27 10:30:00.000"]
                ]
            );
            }
        }
    }
}

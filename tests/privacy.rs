//! Erasure on request (`forget`), `suppressions --check`, erased addresses kept out of later
//! runs, retention per kind of data, subjects kept out.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::notifications::*;
use crate::util::{repo_path, TestEnv};

const KEY: &str = "erasure-key-of-the-test-0123456789";
const FIRST: &str = "2026-11-20";
const END: &str = "2026-11-27";

/// A week of generated days (with bounces, complaints, deliveries), one `--date` a day as cron
/// runs it.
fn a_week(env: &TestEnv) -> Vec<Value> {
    let mut all = Vec::new();
    let mut users = Vec::new();
    ses_fixtures::write_auth_users_sql(40, &mut users).unwrap();
    env.execute(&String::from_utf8(users).unwrap());
    for i in 0..7 {
        let day = time::macros::date!(2026 - 11 - 20) + time::Duration::days(i);
        let plan = ses_fixtures::Plan {
            notifications: 300,
            day,
            seed: 100 + i as u64,
            users: 40,
            string_timestamps_percent: 30.0,
            malformed: 0,
        };
        let mut out = Vec::new();
        ses_fixtures::generate(&plan, &mut out).unwrap();
        let docs: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        env.insert(&docs);
        all.extend(docs);
    }
    all
}

fn ingest_the_week(env: &TestEnv) -> Vec<crate::util::Run> {
    (0..7)
        .map(|i| {
            let day = time::macros::date!(2026 - 11 - 20) + time::Duration::days(i);
            let run = env.ingest(&["--date", &day.to_string()]);
            assert!(matches!(run.code(), 0 | 3), "{run}");
            run
        })
        .collect()
}

/// Everything a user reads that counts: the rollups, stats by provider, the suppression
/// reasons, and the HTML report (without the line saying when it was made).
#[derive(Debug, PartialEq)]
struct Figures {
    daily: Vec<Vec<String>>,
    stats: Value,
    reasons: BTreeMap<String, usize>,
    html: String,
}

fn figures(env: &TestEnv) -> Figures {
    let stats = env.run(&[
        "stats", "--from", FIRST, "--to", END, "--by", "provider", "--format", "json",
    ]);
    stats.expect_code(0);
    let suppressions = env.run(&["suppressions"]);
    suppressions.expect_code(0);
    let mut reasons = BTreeMap::new();
    for line in suppressions.stdout().lines().skip(1) {
        *reasons
            .entry(line.split(',').nth(2).unwrap().to_string())
            .or_default() += 1;
    }
    let page = std::env::temp_dir().join(format!("{}.html", env.name));
    env.run(&[
        "report",
        "--html",
        page.to_str().unwrap(),
        "--from",
        FIRST,
        "--to",
        END,
    ])
    .expect_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::remove_file(&page).ok();
    let html = html.split("<footer>").next().unwrap().to_string();
    Figures {
        daily: env.snapshot().daily,
        stats: serde_json::from_str(&stats.stdout()).unwrap(),
        reasons,
        html,
    }
}

/// Rows of every text column of every table of ours that contain `address` (any case) as an
/// address (not as the end of a longer one: `erased.…a@x.org` is no trace of `a@x.org`), and
/// detail rows whose recipient key is the bare SHA-256 of it.
fn traces_of(env: &TestEnv, address: &str) -> Vec<String> {
    let lower = address.to_lowercase();
    let pattern = format!("(^|[^a-z0-9._%+-]){}", lower.replace('.', "[.]"));
    let columns = env.rows(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'auth_users'
           AND DATA_TYPE IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'json')",
    );
    assert!(columns.len() > 20, "{columns:?}");
    let mut found = Vec::new();
    for c in columns {
        let n: u64 = env
            .scalar(&format!(
                "SELECT COUNT(*) FROM `{0}` WHERE LOWER(`{1}`) LIKE '%{lower}%' AND LOWER(`{1}`) REGEXP '{pattern}'",
                c[0], c[1]
            ))
            .parse()
            .unwrap();
        if n > 0 {
            found.push(format!("{}.{}: {n}", c[0], c[1]));
        }
    }
    let bare: u64 = env
        .scalar(&format!(
            "SELECT COUNT(*) FROM aws_report_details WHERE recipient_key = UNHEX(LEFT(SHA2('{}', 256), 32))",
            address.to_lowercase()
        ))
        .parse()
        .unwrap();
    if bare > 0 {
        found.push(format!("aws_report_details.recipient_key: {bare}"));
    }
    found
}

fn check(env: &TestEnv, address: &str) -> Value {
    let run = env.run(&["suppressions", "--check", address, "--format", "json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).unwrap()
}

/// The reasons `suppressions` lists for an address.
fn reasons_of(env: &TestEnv, address: &str) -> Vec<String> {
    let run = env.run(&["suppressions"]);
    let mut reasons: Vec<String> = run
        .stdout()
        .lines()
        .filter(|l| l.starts_with(&format!("{address},")))
        .map(|l| l.split(',').nth(2).unwrap().to_string())
        .collect();
    reasons.sort();
    reasons
}

#[test]
fn forget_erases_three_addresses_keeps_two_suppressed_and_changes_no_figure() {
    let mut env = TestEnv::new("forget");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    env.vars.push(("SES_REPORT_ERASURE_KEY".into(), KEY.into()));
    let week = a_week(&env);
    let pick = |sql: &str| {
        env.rows(sql)
            .first()
            .map(|r| r[0].clone())
            .unwrap_or_else(|| panic!("none: {sql}"))
    };
    ingest_the_week(&env);
    let bounced = pick("SELECT email FROM aws_report_suppressions WHERE kind = 'permanent-bounce' ORDER BY email LIMIT 1");
    let complained = pick(&format!(
        "SELECT email FROM aws_report_suppressions WHERE kind = 'complaint' AND email <> '{bounced}' ORDER BY email LIMIT 1"
    ));
    let never = pick(
        "SELECT user_email FROM aws_reports WHERE delivery_at IS NOT NULL
           AND user_email NOT IN (SELECT email FROM aws_report_suppressions) ORDER BY 1 LIMIT 1",
    );
    let kept = pick(&format!(
        "SELECT email FROM aws_report_suppressions WHERE email NOT IN ('{bounced}', '{complained}') ORDER BY email LIMIT 1"
    ));
    // A failure that names the first: its whole document is kept, address and all.
    let broken = json!({"Type": "Notification", "MessageId": "n-broken",
        "Message": format!("{{\"eventType\": \"Bounce\", \"mail\": {{\"destination\": [\"{}\"]", bounced.to_uppercase()),
        "Timestamp": {"$date": "2026-11-26T10:00:00.000Z"}});
    env.insert(&[broken]);
    env.ingest(&["--date", "2026-11-26"]).expect_code(3);
    assert!(!traces_of(&env, &bounced).is_empty());
    let late_mail = pick(&format!(
        "SELECT message_id FROM aws_reports WHERE user_email = '{bounced}' ORDER BY 1 LIMIT 1"
    ));
    let before = figures(&env);
    let bounced_reasons = reasons_of(&env, &bounced);
    let complained_reasons = reasons_of(&env, &complained);
    assert!(bounced_reasons.contains(&"permanent-bounce".to_string()));
    assert!(complained_reasons.contains(&"complaint".to_string()));

    // Without the key: refused, exit 2, saying why.
    let refused = env.run_with_vars(&["forget", &bounced], &[("SES_REPORT_ERASURE_KEY", None)]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("SES_REPORT_ERASURE_KEY"),
        "{refused}"
    );

    // A dry run says what it would change and changes nothing.
    let dry = env.run(&["forget", "--dry-run", &bounced]);
    dry.expect_code(0);
    assert!(dry.stdout().contains("would change"), "{dry}");
    assert!(!traces_of(&env, &bounced).is_empty());

    let forget = env.run_with_stdin(
        &["forget", &bounced.to_uppercase(), "--file", "-"],
        format!("# to erase\n{complained}\n\n{never}\n").as_bytes(),
    );
    forget.expect_code(0);
    assert!(
        forget.stdout().contains("3 address(es): changed"),
        "{forget}"
    );
    for secret in [KEY, &bounced, &complained, &never] {
        assert!(
            !forget.stdout().contains(secret) && !forget.stderr().contains(secret),
            "{forget}"
        );
    }

    for address in [&bounced, &complained, &never] {
        assert_eq!(traces_of(&env, address), Vec::<String>::new(), "{address}");
    }
    assert_eq!(env.count("aws_report_erasures"), 3);
    // An erased address stays suppressed; the third was never suppressed.
    assert_eq!(
        check(&env, &bounced.to_uppercase()),
        json!({"address": bounced, "suppressed": true, "erased": true, "reasons": bounced_reasons})
    );
    assert_eq!(
        check(&env, &complained),
        json!({"address": complained, "suppressed": true, "erased": true, "reasons": complained_reasons})
    );
    assert_eq!(
        check(&env, &never),
        json!({"address": never, "suppressed": false, "erased": true, "reasons": []})
    );
    assert_eq!(check(&env, &kept)["erased"], json!(false));
    assert_eq!(check(&env, &kept)["suppressed"], json!(true));
    assert_eq!(
        check(&env, "nobody@nowhere.example"),
        json!({"address": "nobody@nowhere.example", "suppressed": false, "erased": false, "reasons": []})
    );

    // Nothing counted changed: rollups, stats, the suppression counts, the HTML report; nor
    // after a rollup over the range, and doctor finds no drift.
    assert_eq!(figures(&env), before);
    env.run(&["rollup", "--from", FIRST, "--to", END])
        .expect_code(0);
    assert_eq!(figures(&env), before);
    let doctor = env.run(&["doctor", "--from", FIRST, "--to", END]);
    assert!(
        doctor
            .stdout()
            .contains("equal a recomputation from the rows")
            && !doctor.stdout().contains("drift"),
        "{doctor}"
    );

    // The week again, with a late open of the first: nothing comes back, the open is counted
    // as erased.
    let m = with_headers(
        mail(&late_mail, "2026-11-26T09:00:00.000Z", &[&bounced]),
        &[],
    );
    env.insert(&[open("n-late-open", &m, "2026-11-26T20:00:00.000Z")]);
    let reruns = ingest_the_week(&env);
    let erased: u64 = reruns.iter().map(|r| r.count_or_zero("erased")).sum();
    assert_eq!(erased, 1, "{}", reruns[6]);
    for address in [&bounced, &complained, &never] {
        assert_eq!(traces_of(&env, address), Vec::<String>::new(), "{address}");
    }
    assert_eq!(figures(&env), before);
    // A retry of the failures kept brings no plaintext back either.
    env.run(&["retry"]);
    assert_eq!(traces_of(&env, &bounced), Vec::<String>::new());
    let _ = week;
}

#[test]
fn an_ingest_without_the_key_or_with_another_is_refused_once_an_address_was_erased() {
    let mut env = TestEnv::new("forget_key");
    env.vars.push(("SES_REPORT_ERASURE_KEY".into(), KEY.into()));
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org", "b@x.org"]);
    env.insert(&[send("n-1", &m)]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    env.run(&["forget", "a@x.org"]).expect_code(0);
    for (key, says) in [
        (None, "were erased"),
        (Some("another key of at least 16 bytes"), "is not the key"),
    ] {
        let run = env.run_with_vars(
            &["ingest", "--date", "2026-11-27"],
            &[("SES_REPORT_ERASURE_KEY", key)],
        );
        run.expect_code(1);
        assert!(
            run.stderr().contains("SES_REPORT_ERASURE_KEY") && run.stderr().contains(says),
            "{run}"
        );
        assert!(!run.stderr().contains(KEY) && !run.stdout().contains(KEY));
        if let Some(key) = key {
            assert!(!run.stderr().contains(key), "{run}");
        }
    }
    // doctor says so too.
    let doctor = env.run_with_vars(&["doctor"], &[("SES_REPORT_ERASURE_KEY", None)]);
    assert!(
        doctor
            .stdout()
            .contains("FIX   1 address(es) were erased and SES_REPORT_ERASURE_KEY is not set"),
        "{doctor}"
    );
    assert!(env
        .run(&["doctor"])
        .stdout()
        .contains("ok    1 erased address(es), recognized with this SES_REPORT_ERASURE_KEY"));
    // A key too short is a configuration error that does not echo it.
    let run = env.run_with_vars(
        &["forget", "b@x.org"],
        &[("SES_REPORT_ERASURE_KEY", Some("tiny-key"))],
    );
    run.expect_code(1);
    assert!(
        run.stderr().contains("at least 16") && !run.stderr().contains("tiny-key"),
        "{run}"
    );
    // The other recipient of the same mail is unchanged, and a new event of it still counts.
    assert_eq!(
        env.rows("SELECT COUNT(*) FROM aws_reports WHERE user_email = 'b@x.org'"),
        [["1"]]
    );
    let run = env.run(&["forget", "--user-id", "999"]);
    run.expect_code(0);
    assert!(run.stdout().contains("user 999: 0 address(es)"), "{run}");
}

#[test]
fn subjects_can_be_kept_out_of_every_table() {
    let mut env = TestEnv::new("no_subjects");
    env.vars
        .push(("SES_REPORT_STORE_SUBJECTS".into(), "false".into()));
    let file = repo_path("fixtures/scenarios/every-event-type/notifications.ndjson");
    env.ingest(&["--file", file.to_str().unwrap()])
        .expect_code(0);
    assert!(env.count("aws_report_details") > 10);
    assert_eq!(
        env.rows("SELECT COUNT(*) FROM aws_reports WHERE subject IS NOT NULL"),
        [["0"]]
    );
    assert_eq!(
        env.rows("SELECT COUNT(*) FROM aws_report_details WHERE subject IS NOT NULL"),
        [["0"]]
    );
    env.vars.retain(|(k, _)| k != "SES_REPORT_STORE_SUBJECTS");
    env.vars
        .push(("SES_REPORT_STORE_SUBJECTS".into(), "maybe".into()));
    let bad = env.run(&["ingest", "--date", "2026-11-27"]);
    bad.expect_code(1);
    assert!(bad.stderr().contains("SES_REPORT_STORE_SUBJECTS"), "{bad}");
}

#[test]
fn prune_keeps_each_kind_of_data_for_its_own_time() {
    let mut env = TestEnv::new("prune_kinds");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let old = mail("m-old", "2026-08-01T10:00:00.000Z", &["a@x.org"]);
    let middle = mail("m-middle", "2026-10-01T10:00:00.000Z", &["a@x.org"]);
    let new = mail("m-new", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[
        send("n-old", &old),
        send("n-middle", &middle),
        send("n-new", &new),
    ]);
    env.ingest(&["--from", "2026-08-01", "--to", "2026-11-28"])
        .expect_code(0);
    let daily = env.snapshot().daily;
    // Two failures, resolved 20 and 2 days ago (dismissed): a 10-day failure retention drops the
    // first only.
    env.execute(
        "INSERT INTO aws_report_failures (notification_id, source, error, document, attempts, first_failed_at, last_failed_at, resolved_at)
         VALUES ('f-old', 'test', 'bad', '{\"to\": \"a@x.org\"}', 1, '2026-11-08', '2026-11-08', '2026-11-09'),
                ('f-new', 'test', 'bad', '{}', 1, '2026-11-26', '2026-11-26', '2026-11-26')",
    );
    let wrong = env.run(&[
        "prune",
        "--older-than",
        "30",
        "--summaries-older-than",
        "10",
    ]);
    wrong.expect_code(2);
    let run = env.run(&[
        "prune",
        "--older-than",
        "30",
        "--failures-older-than",
        "10",
        "--summaries-older-than",
        "90",
    ]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .contains("details=2 failures=1 runs=0 summaries=1"),
        "{run}"
    );
    assert_eq!(
        env.rows("SELECT message_id FROM aws_reports ORDER BY 1"),
        [["m-middle"], ["m-new"]]
    );
    assert_eq!(
        env.rows("SELECT notification_id FROM aws_report_failures"),
        [["f-new"]]
    );
    assert_eq!(env.snapshot().daily, daily, "the rollups stay");
}

#[test]
fn forget_by_user_id_erases_every_address_linked_to_the_account() {
    let mut env = TestEnv::new("forget_user");
    env.vars.push(("SES_REPORT_ERASURE_KEY".into(), KEY.into()));
    let tagged = |m: Value| {
        let mut m = with_headers(m, &[("user_id", "7")]);
        m["tags"] = json!({"contact": ["A@X.org"]});
        m
    };
    let first = tagged(mail(
        "m-1",
        "2026-11-27T10:00:00.000Z",
        &["a@x.org", "b@x.org"],
    ));
    let second = tagged(mail("m-2", "2026-11-27T11:00:00.000Z", &["c@y.org"]));
    env.insert(&[send("n-1", &first), send("n-2", &second)]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(
        env.rows("SELECT user_email FROM aws_reports WHERE user_id = 7 ORDER BY 1"),
        [["a@x.org"], ["c@y.org"]]
    );
    let run = env.run(&["forget", "--user-id", "7"]);
    run.expect_code(0);
    assert!(run.stdout().contains("user 7: 2 address(es)"), "{run}");
    for address in ["a@x.org", "c@y.org"] {
        assert_eq!(traces_of(&env, address), Vec::<String>::new(), "{address}");
        assert_eq!(check(&env, address)["erased"], json!(true));
    }
    // b@x.org, another person on the same mail, keeps its row (user 7 is the header's link of
    // the first destination only).
    assert_eq!(
        env.rows("SELECT COUNT(*) FROM aws_reports WHERE user_email = 'b@x.org'"),
        [["1"]]
    );
    assert_eq!(check(&env, "b@x.org")["erased"], json!(false));

    // A later bounce of the first mail, listing both recipients: applied for b@x.org only, its
    // event object naming the erased one by pseudonym; no record is kept out whole.
    env.insert(&[bounce(
        "n-late-bounce",
        &first,
        "2026-11-27T12:00:00.000Z",
        "Permanent",
        "fb-late",
        &["a@x.org", "b@x.org"],
    )]);
    let late = env.ingest(&["--date", "2026-11-27"]);
    assert_eq!(late.count("applied"), 1, "{late}");
    assert_eq!(late.count_or_zero("erased"), 0, "{late}");
    assert_eq!(
        env.rows("SELECT `to` FROM aws_report_details WHERE event_type = 'Bounce'"),
        [["b@x.org"]]
    );
    let info = env.scalar("SELECT other_info FROM aws_report_details WHERE event_type = 'Bounce'");
    assert!(
        info.contains("erased.") && info.contains("b@x.org"),
        "{info}"
    );
    assert_eq!(traces_of(&env, "a@x.org"), Vec::<String>::new());
}

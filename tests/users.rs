//! Which user account each recipient row is linked to, and its report_type.

use crate::notifications::*;
use crate::util::TestEnv;

const AUTH_USERS: &str = "CREATE TABLE auth_users (id BIGINT UNSIGNED PRIMARY KEY, common_email VARCHAR(255) NOT NULL, KEY (common_email));
INSERT INTO auth_users VALUES (10, 'Known@Example.com'), (20, 'twice@example.com'), (21, 'Twice@Example.com'), (30, 'second@example.com')";

fn users_of(env: &TestEnv) -> Vec<Vec<String>> {
    env.rows("SELECT message_id, user_email, COALESCE(user_id, 'NULL'), report_type FROM aws_reports ORDER BY message_id, user_email")
}

#[test]
fn header_then_email_case_insensitive_smallest_of_several_then_none() {
    let env = TestEnv::new("user_resolution");
    env.execute(AUTH_USERS);
    let header = with_headers(
        mail(
            "m-1",
            "2026-11-27T10:00:00.000Z",
            &["first@example.com", "Second@Example.com"],
        ),
        &[("user_id", "99"), ("report_type", "4")],
    );
    let by_email = mail("m-2", "2026-11-27T10:00:00.000Z", &["KNOWN@example.com"]);
    let ambiguous = mail("m-3", "2026-11-27T10:00:00.000Z", &["twice@example.com"]);
    let unknown = mail("m-4", "2026-11-27T10:00:00.000Z", &["nobody@example.com"]);
    let bad_header = with_headers(
        mail("m-5", "2026-11-27T10:00:00.000Z", &["known@example.com"]),
        &[("user_id", "10; DROP TABLE"), ("report_type", "seven")],
    );
    env.insert(&[
        send("n-1", &header),
        send("n-2", &by_email),
        send("n-3", &ambiguous),
        send("n-4", &unknown),
        send("n-5", &bad_header),
    ]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(
        users_of(&env),
        vec![
            vec!["m-1", "first@example.com", "99", "4"],
            vec!["m-1", "second@example.com", "30", "4"],
            vec!["m-2", "known@example.com", "10", "0"],
            vec!["m-3", "twice@example.com", "20", "0"],
            vec!["m-4", "nobody@example.com", "NULL", "0"],
            vec!["m-5", "known@example.com", "10", "0"],
        ]
    );
    let log = run.stderr();
    assert!(
        log.contains("twice@example.com") && log.contains("smallest"),
        "{run}"
    );
    assert!(
        log.contains("user_id header") && log.contains("report_type header"),
        "{run}"
    );
    assert_eq!(run.count("users_resolved"), 5, "{run}");
}

#[test]
fn without_auth_users_only_headers_link_users() {
    let env = TestEnv::new("no_auth_users");
    let header = with_headers(
        mail("m-1", "2026-11-27T10:00:00.000Z", &["a@example.com"]),
        &[("user_id", "5")],
    );
    let plain = mail("m-2", "2026-11-27T10:00:00.000Z", &["b@example.com"]);
    env.insert(&[send("n-1", &header), send("n-2", &plain)]);
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert_eq!(
        run.stderr()
            .matches("no table `auth_users` with a column common_email")
            .count(),
        1,
        "{run}"
    );
    assert_eq!(
        users_of(&env),
        vec![
            vec!["m-1", "a@example.com", "5", "0"],
            vec!["m-2", "b@example.com", "NULL", "0"]
        ]
    );
}

#[test]
fn a_header_outranks_an_email_match_whichever_arrives_first() {
    let env = TestEnv::new("user_precedence");
    env.execute(AUTH_USERS);
    let with_header = with_headers(
        mail("m-1", "2026-11-27T10:00:00.000Z", &["known@example.com"]),
        &[("user_id", "77")],
    );
    let classic = mail("m-1", "2026-11-27T10:00:00.000Z", &["known@example.com"]);
    // The delivery (no headers: email match, 10) is read in an earlier window than the send (header, 77).
    env.insert(&[
        delivery(
            "n-2",
            &classic,
            "2026-11-27T09:00:00.000Z",
            &["known@example.com"],
        ),
        send("n-1", &with_header),
    ]);
    env.ingest(&[
        "--from",
        "2026-11-27T09:00:00Z",
        "--to",
        "2026-11-27T09:30:00Z",
    ])
    .expect_code(0);
    assert_eq!(users_of(&env)[0][2], "10");
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(users_of(&env)[0][2], "77");
}

#[test]
fn more_addresses_than_the_user_cache_holds_all_resolve() {
    let env = TestEnv::new("user_cache_overflow");
    let mut sql = Vec::new();
    ses_fixtures::write_auth_users_sql(30_000, &mut sql).unwrap();
    env.execute(&String::from_utf8(sql).unwrap());
    let docs: Vec<serde_json::Value> = (0..3)
        .map(|m| {
            let addresses: Vec<String> = (1 + m * 10_000..=(m + 1) * 10_000)
                .map(ses_fixtures::user_email)
                .collect();
            let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
            send(
                &format!("n-{m}"),
                &mail(&format!("m-{m}"), "2026-11-27T10:00:00.000Z", &refs),
            )
        })
        .collect();
    env.insert(&docs);
    // One mail per batch: the third batch finds the cache full and starts it afresh.
    let run = env.ingest(&["--date", "2026-11-27", "--batch-size", "1"]);
    run.expect_code(0);
    assert_eq!(run.count("users_resolved"), 30_000, "{run}");
    // Every summary row carries the id of its own address (auth_users id i is user{i}@...).
    let wrong = env.scalar(
        "SELECT COUNT(*) FROM aws_reports WHERE user_id IS NULL
           OR user_id <> CAST(SUBSTRING_INDEX(SUBSTRING(user_email, 5), '@', 1) AS UNSIGNED)",
    );
    assert_eq!(wrong, "0");
}

/// The users table is a setting: another name, other columns, in another schema of the same
/// server (`db.table`); a name that is no plain identifier is a configuration error.
#[test]
fn the_users_table_and_its_columns_are_settings_even_in_another_schema() {
    let mut env = TestEnv::new("users_elsewhere");
    let schema = format!("{}_accounts", env.name);
    env.execute(&format!(
        "CREATE DATABASE `{schema}`;\n\
         CREATE TABLE `{schema}`.accounts (account_id BIGINT UNSIGNED PRIMARY KEY, login_email VARCHAR(320) COLLATE utf8mb4_unicode_ci);\n\
         INSERT INTO `{schema}`.accounts VALUES (7, 'Known@Example.com'), (8, 'other@example.com')"
    ));
    env.vars.extend([
        (
            "SES_REPORT_USERS_TABLE".to_string(),
            format!("{schema}.accounts"),
        ),
        (
            "SES_REPORT_USERS_ID_COLUMN".to_string(),
            "account_id".to_string(),
        ),
        (
            "SES_REPORT_USERS_EMAIL_COLUMN".to_string(),
            "login_email".to_string(),
        ),
    ]);
    let m = mail(
        "m-1",
        "2026-11-27T10:00:00.000Z",
        &["known@example.com", "nobody@example.com"],
    );
    env.insert(&[send("n-1", &m)]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(
        env.rows("SELECT user_email, COALESCE(user_id, 'NULL') FROM aws_reports ORDER BY 1"),
        vec![
            vec!["known@example.com", "7"],
            vec!["nobody@example.com", "NULL"]
        ]
    );
    for (var, value) in [
        ("SES_REPORT_USERS_TABLE", "accounts; DROP TABLE x"),
        ("SES_REPORT_USERS_EMAIL_COLUMN", "email`"),
    ] {
        let mut cmd = env.command(&["ingest", "--date", "2026-11-27"]);
        cmd.env(var, value);
        let run = env.run_command(cmd, &["ingest"], None);
        run.expect_code(1);
        assert!(run.stderr().contains(var), "{run}");
    }
    env.execute(&format!("DROP DATABASE `{schema}`"));
}

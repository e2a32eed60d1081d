//! Schema upgrades: a database left at an older version, with data, is upgraded in place by
//! `ses-report migrate`, and what the new version changes is recomputed from the rows kept.

use mysql::prelude::Queryable;

use crate::util::{mysql_server_url, repo_path, TestEnv};

/// Applies the schema files up to `version` as that release's `migrate` did.
fn schema_at(env: &TestEnv, version: u32) {
    let mut admin = mysql::Conn::new(mysql::Opts::from_url(&mysql_server_url()).unwrap()).unwrap();
    admin
        .query_drop(format!(
            "CREATE DATABASE `{}` CHARACTER SET utf8mb4",
            env.name
        ))
        .unwrap();
    env.execute(
        "CREATE TABLE ses_report_migrations (version INT UNSIGNED PRIMARY KEY, name VARCHAR(255) NOT NULL,
           applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
    );
    let mut files: Vec<_> = std::fs::read_dir(repo_path("sql"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (i, file) in files.iter().take(version as usize).enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let sql: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        env.execute(&sql);
        env.execute(&format!(
            "INSERT INTO ses_report_migrations (version, name) VALUES ({}, 'v{}')",
            i + 1,
            i + 1
        ));
    }
}

#[test]
fn version_3_with_data_upgrades_in_place_and_its_rollups_are_recomputed() {
    let mut env = TestEnv::unmigrated("upgrade_v3");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    schema_at(&env, 3);
    // What version 3 left: a mail sent and complained about, though SES had the address on its
    // account-level suppression list, and a rollup that counted that complaint as a complaint.
    env.execute(
        "INSERT INTO aws_reports (id, message_id, user_email, report_type, user_source, source_email, send_at, complaint_at)
           VALUES (1, 'm-1', 'a@x.org', 0, 0, 'news@shop.example', '2026-11-27 10:00:00', '2026-11-27 11:00:00');
         INSERT INTO aws_report_details (notification_message_id, report_id, event_type, message_id, timestamp, `to`, other_info)
           VALUES ('n-1', 1, 'Send', 'm-1', '2026-11-27 10:00:00', 'a@x.org', '{}'),
                  ('n-2', 1, 'Complaint', 'm-1', '2026-11-27 11:00:00', 'a@x.org',
                   '{\"complaintSubType\":\"OnAccountSuppressionList\",\"complaintFeedbackType\":\"abuse\"}');
         INSERT INTO aws_report_daily (day, report_type, source_email, recipient_domain, sent, complaints, time_zone, computed_at)
           VALUES ('2026-11-27', 0, 'news@shop.example', 'x.org', 1, 1, 'UTC', '2026-11-28 02:00:00');",
    );

    let migrate = env.run(&["migrate"]);
    migrate.expect_code(0);
    assert!(
        migrate.stdout().contains("applied schema versions [4]"),
        "{migrate}"
    );
    assert_eq!(env.count("aws_reports"), 1);
    assert_eq!(env.count("aws_report_details"), 2);
    let daily = "SELECT DATE_FORMAT(day, '%Y-%m-%d'), sent, complaints, suppressed_complaints FROM aws_report_daily";
    assert_eq!(env.rows(daily), vec![vec!["2026-11-27", "1", "1", "0"]]);
    assert_eq!(
        env.rows("SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days"),
        vec![vec!["2026-11-27"]]
    );

    // The next ingest, whatever its window, recomputes the marked day under the new rules.
    env.ingest(&["--date", "2026-11-20"]).expect_code(0);
    assert_eq!(env.rows(daily), vec![vec!["2026-11-27", "1", "0", "1"]]);
    assert_eq!(env.count("aws_report_dirty_days"), 0);
    let again = env.run(&["migrate"]);
    again.expect_code(0);
    assert!(again.stdout().contains("up to date"), "{again}");
}

/// A migration cut short after its ALTER TABLE (MySQL commits DDL one statement at a time) is
/// completed by the next `migrate`, not stopped by its own half.
#[test]
fn a_migration_cut_short_completes_on_the_next_migrate() {
    let env = TestEnv::unmigrated("upgrade_cut");
    schema_at(&env, 3);
    env.execute("ALTER TABLE aws_report_daily ADD COLUMN suppressed_complaints INT UNSIGNED NOT NULL DEFAULT 0 AFTER complaints");
    let migrate = env.run(&["migrate"]);
    migrate.expect_code(0);
    assert!(
        migrate.stdout().contains("applied schema versions [4]"),
        "{migrate}"
    );
    assert_eq!(env.count("aws_report_dirty_days"), 0);
}

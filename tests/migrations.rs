//! Schema upgrades: a database left at an older version, with data, is upgraded in place by
//! `ses-report migrate`, and what the new version changes is recomputed from the rows kept.

use mysql::prelude::Queryable;

use crate::notifications::*;
use crate::util::{mysql_server_url, repo_path, TestEnv};

/// Runs `migrate`, which must succeed applying exactly `versions` (as it prints them, `[8, 9]`).
fn migrate_applies(env: &TestEnv, versions: &str) -> crate::util::Run {
    let migrate = env.run(&["migrate"]);
    migrate.expect_code(0);
    assert!(
        migrate
            .stdout()
            .contains(&format!("applied schema versions {versions}")),
        "{migrate}"
    );
    migrate
}

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

    migrate_applies(&env, "[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]");
    assert_eq!(env.count("aws_reports"), 1);
    // Version 5's columns, filled in place: no opens, a domain no table or reply names.
    assert_eq!(
        env.rows(
            "SELECT human_open_count, mailbox_provider, COALESCE(tags, 'NULL') FROM aws_reports"
        ),
        vec![vec!["0", "other", "NULL"]]
    );
    assert_eq!(env.count("aws_report_details"), 2);
    // Version 8's digests, filled in place: the first 16 bytes of SHA-256, as Python's hashlib
    // computes them (`hashlib.sha256(b"n-1").hexdigest()[:32]`).
    assert_eq!(
        env.rows(
            "SELECT notification_message_id, HEX(notification_key), HEX(recipient_key), COALESCE(HEX(feedback_key), 'NULL')
             FROM aws_report_details ORDER BY 1"
        ),
        [
            ["n-1", "51AEEA8FFA05D2620D35C87463465885", "907D7BF93D60CBE6565458BB0FE7E8FA", "NULL"],
            ["n-2", "CF7E2B71151C83DBEB9D6149693D36FC", "907D7BF93D60CBE6565458BB0FE7E8FA", "NULL"],
        ]
    );
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
    migrate_applies(&env, "[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]");
    assert_eq!(env.count("aws_report_dirty_days"), 0);
}

/// Version 4 with opens, clicks and deliveries in place: migration 5 classifies every existing
/// open and click, fills the human counts and mailbox providers, and the next ingest rebuilds
/// the rollups with the new dimensions and counters. Cut short after its first ALTER TABLE, it
/// completes on the next `migrate`.
#[test]
fn version_4_with_engagement_upgrades_in_place() {
    let mut env = TestEnv::unmigrated("upgrade_v4");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    schema_at(&env, 4);
    env.execute(
        "INSERT INTO aws_reports (id, message_id, user_email, report_type, user_source, source_email, send_at, delivery_at, open_at, click_at, open_count, click_count)
           VALUES (1, 'm-1', 'a@gmail.com', 0, 0, 'news@shop.example', '2026-11-27 10:00:00', '2026-11-27 10:00:02', '2026-11-27 10:00:05', '2026-11-27 10:00:06', 2, 3),
                  (2, 'm-2', 'b@corp.example', 0, 0, 'news@shop.example', '2026-11-27 10:00:00', '2026-11-27 10:00:02', NULL, NULL, 0, 0);
         INSERT INTO aws_report_details (notification_message_id, report_id, event_type, message_id, timestamp, `to`, other_info)
           VALUES ('n-1', 1, 'Send', 'm-1', '2026-11-27 10:00:00', 'a@gmail.com', '{}'),
                  ('n-2', 1, 'Delivery', 'm-1', '2026-11-27 10:00:02', 'a@gmail.com', '{\"smtpResponse\":\"250 OK\"}'),
                  ('n-3', 1, 'Open', 'm-1', '2026-11-27 10:00:05', 'a@gmail.com', '{\"userAgent\":\"Mozilla/5.0\"}'),
                  ('n-4', 1, 'Open', 'm-1', '2026-11-27 11:00:00', 'a@gmail.com', '{\"userAgent\":\"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)\"}'),
                  ('n-5', 1, 'Click', 'm-1', '2026-11-27 10:00:06', 'a@gmail.com', '{\"link\":\"https://x.example/a\",\"userAgent\":\"curl/8.5\"}'),
                  ('n-6', 1, 'Click', 'm-1', '2026-11-27 11:00:30', 'a@gmail.com', '{\"link\":\"https://x.example/a\",\"userAgent\":\"Mozilla/5.0 (iPhone)\"}'),
                  ('n-7', 1, 'Click', 'm-1', '2026-11-27 11:05:00', 'a@gmail.com', '{\"link\":\"https://x.example/unsubscribe\",\"userAgent\":\"Mozilla/5.0 (iPhone)\"}'),
                  ('n-8', 2, 'Delivery', 'm-2', '2026-11-27 10:00:02', 'b@corp.example', '{\"smtpResponse\":\"250 2.0.0 OK 1764 x.45 - gsmtp\"}');
         INSERT INTO aws_report_daily (day, report_type, source_email, recipient_domain, sent, delivered, unique_opens, total_opens, unique_clicks, total_clicks, time_zone, computed_at)
           VALUES ('2026-11-27', 0, 'news@shop.example', 'gmail.com', 1, 1, 1, 2, 1, 3, 'UTC', '2026-11-28 02:00:00'),
                  ('2026-11-27', 0, 'news@shop.example', 'corp.example', 1, 1, 0, 0, 0, 0, 'UTC', '2026-11-28 02:00:00');",
    );
    // Cut short: the first ALTER TABLE of migration 5 went through, nothing after it.
    env.execute(
        "ALTER TABLE aws_report_details ADD COLUMN automated VARCHAR(24) NULL AFTER feedback_id",
    );

    migrate_applies(&env, "[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]");
    assert_eq!(
        env.rows("SELECT notification_message_id, COALESCE(automated, 'human') FROM aws_report_details WHERE event_type IN ('Open', 'Click') ORDER BY 1"),
        vec![
            vec!["n-3", "apple-mpp"],
            vec!["n-4", "human"],
            vec!["n-5", "scanner-agent"],
            vec!["n-6", "human"],
            vec!["n-7", "unsubscribe-link"],
        ]
    );
    assert_eq!(
        env.rows(
            "SELECT message_id, open_count, click_count, human_open_count, human_click_count,
                    COALESCE(first_human_open_at, 'NULL'), COALESCE(first_human_click_at, 'NULL'), mailbox_provider
             FROM aws_reports ORDER BY id"
        ),
        vec![
            vec!["m-1", "2", "3", "1", "1", "2026-11-27 11:00:00.000", "2026-11-27 11:00:30.000", "google"],
            vec!["m-2", "0", "0", "0", "0", "NULL", "NULL", "google"],
        ]
    );
    // The old rollups wait for their recomputation, marked.
    assert_eq!(env.count("aws_report_dirty_days"), 1);
    env.ingest(&["--date", "2026-11-20"]).expect_code(0);
    assert_eq!(
        env.rows(
            "SELECT recipient_domain, mailbox_provider, configuration_set, sending_ip, unique_opens, total_opens,
                    human_unique_opens, unique_clicks, total_clicks, human_unique_clicks
             FROM aws_report_daily ORDER BY recipient_domain"
        ),
        vec![
            vec!["corp.example", "google", "", "", "0", "0", "0", "0", "0", "0"],
            vec!["gmail.com", "google", "", "", "1", "2", "1", "1", "3", "1"],
        ]
    );
    let again = env.run(&["migrate"]);
    assert!(again.stdout().contains("up to date"), "{again}");
}

/// Migration 6 builds the suppression ledger from the detail rows in place, and what it builds
/// equals the ledger the ingests kept, batch by batch: the ledger is rebuildable from the rows.
#[test]
fn version_5_gets_the_suppression_ledger_its_ingests_would_have_kept() {
    let mut env = TestEnv::demo("upgrade_v5");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    env.ingest(&["--date", "2026-11-27", "--batch-size", "50"])
        .expect_code(3);
    let kept = env.snapshot().suppressions;
    assert!(kept.len() >= 5, "{kept:?}");
    let listed = env.run(&["suppressions"]);
    listed.expect_code(0);
    // Back to version 5: no ledger (and no bounce classes or erased hashes, which migrations 14
    // and 16 add to it).
    env.execute(
        "DROP TABLE aws_report_suppressions;
         DROP TABLE aws_report_erasures;
         ALTER TABLE aws_report_details DROP COLUMN bounce_class, DROP COLUMN delay_type;
         DELETE FROM ses_report_migrations WHERE version IN (6, 14, 16)",
    );
    migrate_applies(&env, "[6, 14, 16]");
    assert_eq!(env.snapshot().suppressions, kept);
    assert_eq!(env.run(&["suppressions"]).stdout(), listed.stdout());
}

/// Version 6's runs (no partitions) upgrade to version 7 as whole-stream runs: a partition's
/// first catch-up continues from where they reached.
#[test]
fn version_6_runs_become_whole_stream_runs_that_partitions_continue_from() {
    let mut env = TestEnv::new("upgrade_v6");
    env.vars = vec![("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into())];
    env.ingest(&["--lookback-hours", "0"]).expect_code(0);
    // Back to version 6.
    env.execute(
        "ALTER TABLE aws_report_runs DROP COLUMN partition_label;
         DELETE FROM ses_report_migrations WHERE version = 7",
    );
    migrate_applies(&env, "[7]");
    assert_eq!(
        env.rows("SELECT partition_label, status FROM aws_report_runs"),
        [["", "ok"]]
    );
    env.vars = vec![("SES_REPORT_NOW".into(), "2026-11-29T07:00:00Z".into())];
    env.ingest(&["--lookback-hours", "0", "--partition", "1/2"])
        .expect_code(0);
    assert_eq!(
        env.rows(
            "SELECT DATE_FORMAT(window_from, '%Y-%m-%d'), DATE_FORMAT(window_to, '%Y-%m-%d')
             FROM aws_report_runs WHERE partition_label = '1/2'"
        ),
        [["2026-11-28", "2026-11-29"]]
    );
}

/// Back from version 11 to version 9: the feedback unique key on (feedback_key, recipient_key),
/// the address index on user_email alone.
const TO_VERSION_9: &str = "DROP TABLE aws_report_erasures;
     ALTER TABLE aws_report_suppressions DROP COLUMN erased_hash;
     ALTER TABLE aws_report_daily DROP COLUMN bounces_invalid_address, DROP COLUMN bounces_mailbox_full,
       DROP COLUMN bounces_mailbox_disabled, DROP COLUMN bounces_reputation, DROP COLUMN bounces_policy,
       DROP COLUMN bounces_content, DROP COLUMN bounces_rate_limit, DROP COLUMN bounces_technical,
       DROP COLUMN bounces_unclassified;
     ALTER TABLE aws_report_details DROP COLUMN bounce_class, DROP COLUMN delay_type;
     ALTER TABLE aws_report_suppressions DROP COLUMN bounce_class;
     ALTER TABLE aws_reports ADD INDEX idx_aws_reports_email (user_email);
     ALTER TABLE aws_reports DROP INDEX idx_aws_reports_email_delivery;
     ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_feedback_key (feedback_key, recipient_key);
     ALTER TABLE aws_report_details DROP INDEX uq_details_feedback_recipient_key;
     ALTER TABLE aws_report_details DROP COLUMN feedback_recipient_key;
     ALTER TABLE aws_report_failures DROP COLUMN dismissed_at, DROP COLUMN dismissed_reason;
     DELETE FROM ses_report_migrations WHERE version IN (10, 11, 12, 13, 14, 15, 16)";

/// Back from version 9 to version 7: the two wide unique keys, no digests.
const TO_VERSION_7: &str = "ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_notification_recipient (notification_message_id, `to`);
     ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_feedback_recipient (feedback_id, `to`);
     ALTER TABLE aws_report_details DROP INDEX uq_details_notification_key;
     ALTER TABLE aws_report_details DROP INDEX uq_details_feedback_key;
     ALTER TABLE aws_report_details DROP COLUMN notification_key, DROP COLUMN recipient_key, DROP COLUMN feedback_key;
     DELETE FROM ses_report_migrations WHERE version IN (8, 9)";

/// The demo day ingested, then taken back to version 7; with the tables as ingest left them
/// (the upgrade must give them back, bounce classes included).
fn demo_day_at_version_7(name: &str) -> (TestEnv, crate::util::Snapshot) {
    let env = TestEnv::demo(name);
    env.ingest(&["--date", "2026-11-27", "--batch-size", "50"])
        .expect_code(3);
    let before = env.snapshot();
    env.execute(TO_VERSION_9);
    env.execute(TO_VERSION_7);
    (env, before)
}

/// The digests SQL computed equal the ones ingest computes: re-reading the day after the
/// upgrade finds every notification applied (a mismatch would apply them again, doubled).
fn rereading_changes_nothing(env: &TestEnv, before: &crate::util::Snapshot) {
    // Migration 15 marks the days with bounces, whose rollups gain the class counts at the next
    // ingest: until then only the rollups differ.
    let mut upgraded = env.snapshot();
    assert_ne!(upgraded.daily, before.daily);
    upgraded.daily.clone_from(&before.daily);
    assert_eq!(&upgraded, before);
    let again = env.ingest(&["--date", "2026-11-27"]);
    again.expect_code(3);
    assert_eq!(again.count("applied"), 0, "{again}");
    assert_eq!(&env.snapshot(), before);
    let keys = env.rows(
        "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
           AND TABLE_NAME = 'aws_report_details' AND NON_UNIQUE = 0 AND SEQ_IN_INDEX = 1 ORDER BY 1",
    );
    assert_eq!(
        keys,
        [
            ["PRIMARY"],
            ["uq_details_feedback_recipient_key"],
            ["uq_details_notification_key"]
        ]
    );
}

/// Version 7 with a day of rows: migrations 8 and 9 move uniqueness onto the digests in place.
#[test]
fn version_7_details_get_narrow_unique_keys_in_place() {
    let (env, before) = demo_day_at_version_7("upgrade_v7");
    let migrate = migrate_applies(&env, "[8, 9, 10, 11, 12, 13, 14, 15, 16]");
    assert!(
        migrate.stderr().contains(&format!(
            "key digests of {} detail row(s)",
            env.count("aws_report_details")
        )),
        "{migrate}"
    );
    rereading_changes_nothing(&env, &before);
}

/// Killed half-way through filling the digests, or between the two unique keys of migration 9:
/// the next `migrate` completes it, and the tables are as if it had never stopped.
#[test]
fn narrow_keys_cut_short_complete_on_the_next_migrate() {
    // Migration 8's columns added, half the rows filled, its version not recorded.
    let (env, before) = demo_day_at_version_7("upgrade_v7_cut8");
    env.execute(
        "ALTER TABLE aws_report_details ADD COLUMN notification_key BINARY(16) NULL AFTER notification_message_id;
         ALTER TABLE aws_report_details ADD COLUMN recipient_key BINARY(16) NULL AFTER `to`;
         ALTER TABLE aws_report_details ADD COLUMN feedback_key BINARY(16) NULL AFTER feedback_id;
         UPDATE aws_report_details SET notification_key = UNHEX(LEFT(SHA2(notification_message_id, 256), 32)),
           recipient_key = UNHEX(LEFT(SHA2(`to`, 256), 32)),
           feedback_key = IF(feedback_id IS NULL, NULL, UNHEX(LEFT(SHA2(feedback_id, 256), 32)))
         WHERE id % 2 = 0",
    );
    let half = env.count("aws_report_details") / 2;
    let migrate = migrate_applies(&env, "[8, 9, 10, 11, 12, 13, 14, 15, 16]");
    assert!(
        migrate.stderr().contains("migration 8: already applied"),
        "{migrate}"
    );
    let filled: u64 = migrate
        .stderr()
        .split("key digests of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(filled.abs_diff(half) <= 1, "filled {filled} of {half}");
    rereading_changes_nothing(&env, &before);

    // Migration 8 done; 9 stopped after its first unique key.
    let (env, before) = demo_day_at_version_7("upgrade_v7_cut9");
    let to_8 = env.run(&["migrate"]);
    to_8.expect_code(0);
    env.execute(TO_VERSION_9);
    env.execute(
        "ALTER TABLE aws_report_details DROP INDEX uq_details_feedback_key;
         ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_feedback_recipient (feedback_id, `to`);
         ALTER TABLE aws_report_details ADD UNIQUE KEY uq_details_notification_recipient (notification_message_id, `to`);
         DELETE FROM ses_report_migrations WHERE version = 9",
    );
    migrate_applies(&env, "[9, 10, 11, 12, 13, 14, 15, 16]");
    rereading_changes_nothing(&env, &before);
}

/// The rows with a feedback id carry their recipient's key a second time, the others none.
fn feedback_recipient_keys_are_filled(env: &TestEnv) {
    let feedback_rows = env.count("aws_report_details WHERE feedback_id IS NOT NULL");
    assert!(feedback_rows > 0, "the demo day has bounces and complaints");
    assert_eq!(
        env.rows(
            "SELECT feedback_id IS NOT NULL, COUNT(*), SUM(feedback_recipient_key <=> recipient_key),
                    SUM(feedback_recipient_key IS NULL)
             FROM aws_report_details GROUP BY 1 ORDER BY 1"
        ),
        [
            [
                "0".to_string(),
                (env.count("aws_report_details") - feedback_rows).to_string(),
                "0".to_string(),
                (env.count("aws_report_details") - feedback_rows).to_string()
            ],
            [
                "1".to_string(),
                feedback_rows.to_string(),
                feedback_rows.to_string(),
                "0".to_string()
            ]
        ]
    );
}

/// Version 9 with a day of rows: migration 10 moves the feedback unique key onto
/// (feedback_key, feedback_recipient_key) in place, and, cut short after filling half the rows,
/// completes on the next `migrate`; migration 11 puts delivery_at in the address index.
#[test]
fn version_9_details_get_the_feedback_key_of_feedback_rows_in_place() {
    for cut_short in [false, true] {
        let env = TestEnv::demo(if cut_short {
            "upgrade_v9_cut10"
        } else {
            "upgrade_v9"
        });
        env.ingest(&["--date", "2026-11-27", "--batch-size", "50"])
            .expect_code(3);
        let before = env.snapshot();
        env.execute(TO_VERSION_9);
        if cut_short {
            env.execute(
                "ALTER TABLE aws_report_details ADD COLUMN feedback_recipient_key BINARY(16) NULL AFTER feedback_key;
                 UPDATE aws_report_details SET feedback_recipient_key = recipient_key
                   WHERE feedback_key IS NOT NULL AND id % 2 = 0",
            );
        }
        let migrate = migrate_applies(&env, "[10, 11, 12, 13, 14, 15, 16]");
        assert_eq!(
            migrate.stderr().contains("migration 10: already applied"),
            cut_short,
            "{migrate}"
        );
        feedback_recipient_keys_are_filled(&env);
        assert_eq!(
            env.rows(
                "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'aws_reports' AND INDEX_NAME LIKE 'idx_aws_reports_email%'
                 GROUP BY INDEX_NAME"
            ),
            [["user_email,delivery_at"]]
        );
        rereading_changes_nothing(&env, &before);
    }
}

/// Version 11 counted a not-spam report as a complaint. Migration 12 marks the days holding one,
/// and the next ingest recomputes them: the complaint column and rate count it no more, while
/// the detail rows and the suppression ledger stay as they were.
#[test]
fn version_11_rollups_stop_counting_not_spam_reports_as_complaints() {
    let env = TestEnv::new("upgrade_v11_not_spam");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org", "b@x.org"]);
    let not_spam = edited(
        complaint(
            "n-not-spam",
            &m,
            "2026-11-27T12:00:00.000Z",
            "fb-2",
            &["b@x.org"],
        ),
        |r| r["complaint"]["complaintFeedbackType"] = serde_json::json!("not-spam"),
    );
    env.insert(&[
        send("n-send", &m),
        complaint(
            "n-abuse",
            &m,
            "2026-11-27T11:00:00.000Z",
            "fb-1",
            &["a@x.org"],
        ),
        not_spam,
    ]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let complaints = "SELECT DATE_FORMAT(day, '%Y-%m-%d'), sent, complaints FROM aws_report_daily";
    assert_eq!(env.rows(complaints), [["2026-11-27", "2", "1"]]);
    let details = env.count("aws_report_details");
    let ledger =
        env.rows("SELECT email, kind, evidence_count FROM aws_report_suppressions ORDER BY 1, 2");
    assert_eq!(
        ledger,
        [["a@x.org", "complaint", "1"], ["b@x.org", "not-spam", "1"]]
    );

    // The database as version 11 left it: the not-spam report counted as a complaint.
    env.execute(
        "UPDATE aws_report_daily SET complaints = complaints + 1;
         DELETE FROM ses_report_migrations WHERE version = 12",
    );
    migrate_applies(&env, "[12]");
    assert_eq!(
        env.rows("SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days"),
        [["2026-11-27"]]
    );
    env.ingest(&["--date", "2026-11-28"]).expect_code(0);
    assert_eq!(env.rows(complaints), [["2026-11-27", "2", "1"]]);
    assert_eq!(env.count("aws_report_dirty_days"), 0);
    assert_eq!(env.count("aws_report_details"), details);
    assert_eq!(
        env.rows("SELECT email, kind, evidence_count FROM aws_report_suppressions ORDER BY 1, 2"),
        ledger
    );
    let stats = env.run(&["stats", "--date", "2026-11-27", "--format", "json"]);
    stats.expect_code(0);
    let stats: serde_json::Value = serde_json::from_str(&stats.stdout()).unwrap();
    assert_eq!(stats["groups"][0]["complaints"], 1, "{stats}");
}

/// A bounce of one recipient with its reply as a receiving server gave it.
fn replied_bounce(
    n: &str,
    recipient: &str,
    bounce_type: &str,
    status: &str,
    diagnostic: &str,
) -> serde_json::Value {
    let m = mail(&format!("m-{n}"), "2026-11-27T10:00:00.000Z", &[recipient]);
    let object = serde_json::json!({"timestamp": "2026-11-27T10:05:00.000Z", "bounceType": bounce_type,
        "bounceSubType": "General", "feedbackId": format!("fb-{n}"),
        "bouncedRecipients": [{"emailAddress": recipient, "status": status, "diagnosticCode": diagnostic}]});
    notification(
        &format!("n-{n}"),
        "2026-11-27T10:05:00.000Z",
        &record("Bounce", &m, "bounce", object),
    )
}

/// Bounces whose SES bounceType and reply disagree, as version 13 kept them and as 14 reads them.
fn disagreeing_bounces() -> Vec<serde_json::Value> {
    vec![
        replied_bounce("1", "blocked@x.org", "Permanent", "5.7.1",
            "smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
        replied_bounce("2", "unknown@x.org", "Transient", "4.1.1",
            "smtp; 450 4.1.1 <unknown@x.org>: Recipient address rejected: User unknown in local recipient table"),
        replied_bounce("3", "gone@x.org", "Permanent", "5.1.1", "smtp; 550 5.1.1 user unknown"),
        replied_bounce("4", "slow@x.org", "Transient", "4.4.7", "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes."),
        replied_bounce("5", "full@x.org", "Transient", "4.2.2", "smtp; 452 4.2.2 Mailbox full"),
    ]
}

/// Version 13 with bounces that SES's bounceType and the reply disagree on: migration 14 gives
/// each row the class ingest gives it, and takes the ledger's bounce entries again under the
/// rules that read it: the upgraded tables, ledger included, equal one run's at version 14. An
/// entry whose rows `prune` took is classified by the diagnostic it kept.
#[test]
fn version_13_bounces_get_their_class_and_the_ledger_the_new_rules() {
    let clean = TestEnv::new("upgrade_v13_clean");
    clean.insert(&disagreeing_bounces());
    clean.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(
        clean.rows("SELECT `to`, bounce_class FROM aws_report_details ORDER BY 1"),
        [
            ["blocked@x.org", "reputation"],
            ["full@x.org", "mailbox-full"],
            ["gone@x.org", "invalid-address"],
            ["slow@x.org", "technical"],
            ["unknown@x.org", "invalid-address"],
        ]
    );

    let env = TestEnv::new("upgrade_v13");
    env.insert(&disagreeing_bounces());
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    // Back to version 13: no class columns, and the ledger version 13's rules made.
    env.execute(
        "ALTER TABLE aws_report_details DROP COLUMN bounce_class, DROP COLUMN delay_type;
         ALTER TABLE aws_report_suppressions DROP COLUMN bounce_class;
         DELETE FROM ses_report_migrations WHERE version = 14;
         DELETE FROM aws_report_suppressions;
         INSERT INTO aws_report_suppressions (email, kind, first_at, last_at, evidence_count, last_diagnostic,
             last_diagnostic_at, recent, expires_at, updated_at)
           SELECT d.`to`, CASE d.`to` WHEN 'blocked@x.org' THEN 'permanent-bounce' WHEN 'gone@x.org' THEN 'permanent-bounce'
                              ELSE 'soft-bounce' END,
                  d.timestamp, d.timestamp, 1,
                  JSON_UNQUOTE(JSON_EXTRACT(IF(JSON_VALID(d.other_info), d.other_info, NULL), '$.bouncedRecipients[0].diagnosticCode')),
                  d.timestamp, '[]', NULL, NOW(3)
           FROM aws_report_details d WHERE d.event_type = 'Bounce';
         INSERT INTO aws_report_suppressions (email, kind, first_at, last_at, evidence_count, last_diagnostic,
             last_diagnostic_at, recent, expires_at, updated_at)
           VALUES ('pruned-block@x.org', 'permanent-bounce', '2026-10-01 10:00:00', '2026-10-02 10:00:00', 2,
                   'smtp; 550 5.7.1 Unfortunately, messages from [192.0.2.1] weren''t sent. Please contact your Internet service provider since part of their network is on our block list (S3150).',
                   '2026-10-02 10:00:00', '[]', NULL, NOW(3)),
                  ('pruned-unknown@x.org', 'transient-bounce-5xx', '2026-10-01 10:00:00', '2026-10-01 10:00:00', 1,
                   'smtp; 550 5.1.1 <pruned-unknown@x.org>: Recipient address rejected: User unknown', '2026-10-01 10:00:00', '[]', NULL, NOW(3))",
    );
    let migrate = migrate_applies(&env, "[14]");
    assert!(
        migrate
            .stderr()
            .contains("migration 14: 5 bounce and delay row(s) classified"),
        "{migrate}"
    );
    // The pruned entries, classified by the diagnostic they kept; the rest as one run made them.
    assert_eq!(
        env.rows("SELECT email, kind, evidence_count FROM aws_report_suppressions WHERE email LIKE 'pruned%'"),
        [["pruned-unknown@x.org", "permanent-bounce", "1"]]
    );
    env.execute("DELETE FROM aws_report_suppressions WHERE email LIKE 'pruned%'");
    assert_eq!(env.snapshot(), clean.snapshot());
    let listed = env.run(&["suppressions"]);
    listed.expect_code(0);
    let out = listed.stdout();
    let addresses: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(addresses, ["gone@x.org", "unknown@x.org"], "{listed}");
}

/// Version 14 counted no bounce class in the rollups: migration 15 adds the columns and marks
/// every day with a bounce, and the next `rollup` (or ingest) gives the rollups one run at
/// version 15 gives. Until then the days are pending, as `doctor` says.
#[test]
fn version_14_rollups_count_bounce_classes_after_the_next_rollup() {
    let clean = TestEnv::new("upgrade_v14_clean");
    clean.insert(&disagreeing_bounces());
    clean.ingest(&["--date", "2026-11-27"]).expect_code(0);
    let classes =
        "SELECT SUM(bounces_invalid_address), SUM(bounces_reputation), SUM(bounces_mailbox_full),
                          SUM(bounces_technical) FROM aws_report_daily";
    assert_eq!(clean.rows(classes), [["2", "1", "1", "1"]]);

    let env = TestEnv::new("upgrade_v14");
    env.insert(&disagreeing_bounces());
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    env.execute(
        "ALTER TABLE aws_report_daily DROP COLUMN bounces_invalid_address, DROP COLUMN bounces_mailbox_full,
           DROP COLUMN bounces_mailbox_disabled, DROP COLUMN bounces_reputation, DROP COLUMN bounces_policy,
           DROP COLUMN bounces_content, DROP COLUMN bounces_rate_limit, DROP COLUMN bounces_technical,
           DROP COLUMN bounces_unclassified;
         DELETE FROM ses_report_migrations WHERE version = 15",
    );
    migrate_applies(&env, "[15]");
    assert_eq!(env.rows(classes), [["0", "0", "0", "0"]]);
    assert_eq!(
        env.rows("SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days"),
        [["2026-11-27"]]
    );
    env.run(&["rollup", "--date", "2026-11-27"]).expect_code(0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

/// Version 15 had no erasures: migration 16 adds their table and the ledger's hash column with
/// every row as it was, and `forget` works on the upgraded database.
#[test]
fn version_15_gets_erasures_with_its_rows_unchanged() {
    let mut env = TestEnv::demo("upgrade_v15");
    env.ingest(&["--date", "2026-11-27"]).expect_code(3);
    let before = env.snapshot();
    env.execute(
        "DROP TABLE aws_report_erasures;
         ALTER TABLE aws_report_suppressions DROP INDEX idx_suppressions_erased, DROP COLUMN erased_hash;
         DELETE FROM ses_report_migrations WHERE version = 16",
    );
    migrate_applies(&env, "[16]");
    assert_eq!(env.snapshot(), before);
    env.vars.push((
        "SES_REPORT_ERASURE_KEY".into(),
        "an erasure key of the upgrade test".into(),
    ));
    env.run(&["forget", "user9@yahoo.com"]).expect_code(0);
    assert_eq!(
        env.rows("SELECT COUNT(*) FROM aws_report_suppressions WHERE erased_hash IS NOT NULL"),
        [["1"]]
    );
}

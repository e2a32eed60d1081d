//! What keeps the job portable across MySQL-compatible servers (issue 21, docs/compatibility.md):
//! JSON read only from valid JSON, a rollup transaction per day, long reads in pages. Run
//! against MariaDB, whose strict mode fails an `INSERT ... SELECT` over broken JSON as MySQL
//! fails any statement over it.

use std::path::Path;

use crate::notifications::{mail, send};
use crate::util::{repo_path, TestEnv};

/// Every `.rs` file under `src/` and every migration.
fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![repo_path("src"), repo_path("sql")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("rs" | "sql")
            ) {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((display(&path), text));
            }
        }
    }
    out
}

fn display(path: &Path) -> String {
    path.strip_prefix(repo_path(""))
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_json_function_over_stored_text_reads_only_valid_json() {
    let mut unguarded = Vec::new();
    for (file, text) in sources() {
        for (at, _) in text.match_indices("JSON_EXTRACT(") {
            let rest = &text[at + "JSON_EXTRACT(".len()..];
            if !rest.starts_with("IF(JSON_VALID(") {
                let line = text[..at].lines().count();
                unguarded.push(format!("{file}:{line}"));
            }
        }
    }
    assert!(
        unguarded.is_empty(),
        "JSON_EXTRACT over text that may be no JSON (wrap it: IF(JSON_VALID(c), c, NULL)): {unguarded:?}"
    );
}

#[test]
fn a_foreign_row_that_is_no_json_never_fails_a_rollup() {
    let env = TestEnv::demo("foreign_json");
    env.ingest(&["--date", "2026-11-27"]);
    let sums = "SELECT SUM(permanent_bounces + suppressed_bounces + transient_bounces + undetermined_bounces), SUM(undetermined_bounces) FROM aws_report_daily";
    let before = env.rows(sums);
    // Another program's row: a bounce whose other_info is no JSON at all.
    env.execute(
        "UPDATE aws_report_details SET other_info = 'not json {' WHERE event_type = 'Bounce'
         AND JSON_UNQUOTE(JSON_EXTRACT(other_info, '$.bounceType')) = 'Permanent' ORDER BY id LIMIT 1",
    );
    let run = env.run(&["rollup", "--date", "2026-11-27"]);
    run.expect_code(0);
    let after = env.rows(sums);
    let n = |rows: &Vec<Vec<String>>, i: usize| rows[0][i].parse::<i64>().unwrap();
    assert_eq!(
        n(&after, 0),
        n(&before, 0),
        "every bounce still counted once"
    );
    assert_eq!(
        n(&after, 1),
        n(&before, 1) + 1,
        "the broken one as undetermined"
    );
    // The drift check and the ledger read it too, and neither fails.
    let doctor = env.run(&["doctor", "--date", "2026-11-27"]);
    assert!(
        doctor
            .stdout()
            .contains("equal a recomputation from the rows"),
        "{doctor}"
    );
    assert_ne!(doctor.code(), 1, "{doctor}");
    env.run(&["suppressions"]).expect_code(0);
}

/// Three days of mail (one a day, 2026-11-25 to 27), each a Send and a Delivery.
fn three_days() -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (i, day) in ["2026-11-25", "2026-11-26", "2026-11-27"]
        .iter()
        .enumerate()
    {
        for j in 0..4 {
            let m = mail(
                &format!("m-{i}-{j}"),
                &format!("{day}T10:0{j}:00.000Z"),
                &["a@x.org"],
            );
            out.push(send(&format!("n-{i}-{j}"), &m));
        }
    }
    out
}

#[test]
fn each_dirty_day_is_rolled_up_in_a_transaction_of_its_own_and_keeps_its_progress() {
    let clean = TestEnv::new("day_tx_clean");
    clean.insert(&three_days());
    clean
        .ingest(&["--from", "2026-11-25", "--to", "2026-11-28"])
        .expect_code(0);

    let env = TestEnv::new("day_tx");
    env.insert(&three_days());
    env.execute(
        "CREATE TRIGGER refuse_26 BEFORE INSERT ON aws_report_daily FOR EACH ROW
         BEGIN IF NEW.day = '2026-11-26' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused for the test'; END IF; END",
    );
    let failed = env.ingest(&["--from", "2026-11-25", "--to", "2026-11-28"]);
    assert_ne!(failed.code(), 0, "{failed}");
    assert!(failed.stderr().contains("refused for the test"), "{failed}");
    // The 25th was rolled up and committed before the 26th failed; the 26th and 27th wait.
    assert_eq!(
        env.rows("SELECT DATE_FORMAT(day_utc, '%Y-%m-%d') FROM aws_report_dirty_days ORDER BY 1"),
        vec![
            vec!["2026-11-26".to_string()],
            vec!["2026-11-27".to_string()]
        ]
    );
    assert_eq!(
        env.rows(
            "SELECT DATE_FORMAT(day, '%Y-%m-%d'), SUM(sent) FROM aws_report_daily GROUP BY day"
        ),
        vec![vec!["2026-11-25".to_string(), "4".to_string()]]
    );
    env.execute("DROP TRIGGER refuse_26");
    env.ingest(&["--from", "2026-11-25", "--to", "2026-11-28"])
        .expect_code(0);
    assert_eq!(env.count("aws_report_dirty_days"), 0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

#[test]
fn long_lists_are_read_in_pages() {
    let env = TestEnv::new("pages");
    // 12,001 ledger entries (more than two pages), two kinds for some addresses.
    env.execute(
        "INSERT INTO aws_report_suppressions (email, kind, first_at, last_at, evidence_count, recent, updated_at)
         SELECT CONCAT('a', seq, '@x.org'), IF(seq % 3 = 0, 'complaint', 'permanent-bounce'),
                '2026-11-27 10:00:00', '2026-11-27 10:00:00', 1, '[]', '2026-11-27 10:00:00'
         FROM seq_1_to_12000",
    );
    env.execute(
        "INSERT INTO aws_report_suppressions (email, kind, first_at, last_at, evidence_count, recent, updated_at)
         VALUES ('a3@x.org', 'permanent-bounce', '2026-11-27 10:00:00', '2026-11-27 10:00:00', 1, '[]', '2026-11-27 10:00:00')",
    );
    let listed = env.run(&["suppressions", "--format", "csv"]);
    listed.expect_code(0);
    let lines: Vec<String> = listed
        .stdout()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    let expected: u64 = env
        .scalar("SELECT COUNT(*) FROM aws_report_suppressions")
        .parse()
        .unwrap();
    assert_eq!(lines.len() as u64, expected, "one line per ledger entry");
    assert!(
        lines.iter().any(|l| l.starts_with("a12000@x.org,")),
        "the last page too"
    );
    // 6,001 open failures: every one listed.
    env.execute(
        "INSERT INTO aws_report_failures (notification_id, source, error, document, first_failed_at, last_failed_at)
         SELECT CONCAT('n-', seq), 'test', 'e', '{}', '2026-11-27 10:00:00', '2026-11-27 10:00:00'
         FROM seq_1_to_6001",
    );
    let failures = env.run(&["failures", "--format", "json"]);
    failures.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&failures.stdout()).unwrap();
    assert_eq!(
        json.as_array().map(Vec::len),
        Some(6001),
        "{}",
        &failures.stdout()[..200]
    );
}

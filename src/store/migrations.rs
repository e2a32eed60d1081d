//! The schema: the files in `sql/`, applied in order once each and recorded in
//! `ses_report_migrations`, and the check every command makes before touching the tables.

use mysql::prelude::Queryable;
use mysql::Conn;

use std::collections::BTreeMap;

use super::{connect, connect_with, options, select_in, SqlContext};
use crate::config::Environment;
use crate::domain::bounce::{self, BounceClass};
use crate::domain::event_kind::EventKind;
use crate::domain::provider;
use crate::error::{Error, Result};

/// One schema version: its SQL file and, where SQL alone cannot state it, a data step run after
/// the SQL and before the version is recorded (idempotent, so a migration cut short runs it
/// again).
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
    data: Option<fn(&mut Conn) -> Result<()>>,
}

/// The schema, in order. Each file is applied once and recorded in `ses_report_migrations`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ingest tables",
        sql: include_str!("../../sql/0001_ingest_tables.sql"),
        data: None,
    },
    Migration {
        version: 2,
        name: "daily rollups",
        sql: include_str!("../../sql/0002_daily_rollups.sql"),
        data: None,
    },
    Migration {
        version: 3,
        name: "retention horizon",
        sql: include_str!("../../sql/0003_retention.sql"),
        data: None,
    },
    Migration {
        version: 4,
        name: "dirty days, suppressed complaints",
        sql: include_str!("../../sql/0004_dirty_days_and_suppressed_complaints.sql"),
        data: None,
    },
    Migration {
        version: 5,
        name: "human engagement, mailbox providers, tags",
        sql: include_str!("../../sql/0005_engagement_and_dimensions.sql"),
        data: Some(backfill_engagement_and_providers),
    },
    Migration {
        version: 6,
        name: "suppression ledger",
        sql: include_str!("../../sql/0006_suppression_ledger.sql"),
        data: Some(rebuild_ledger),
    },
    Migration {
        version: 7,
        name: "partitioned runs",
        sql: include_str!("../../sql/0007_partitioned_runs.sql"),
        data: None,
    },
    Migration {
        version: 8,
        name: "narrow detail keys: digests",
        sql: include_str!("../../sql/0008_narrow_detail_keys.sql"),
        data: Some(fill_detail_keys),
    },
    Migration {
        version: 9,
        name: "narrow detail keys: unique keys",
        sql: include_str!("../../sql/0009_narrow_detail_unique_keys.sql"),
        data: None,
    },
    Migration {
        version: 10,
        name: "feedback key for feedback rows only",
        sql: include_str!("../../sql/0010_feedback_key_for_feedback_rows_only.sql"),
        data: None,
    },
    Migration {
        version: 11,
        name: "delivery times by address",
        sql: include_str!("../../sql/0011_delivery_times_by_address.sql"),
        data: None,
    },
    Migration {
        version: 12,
        name: "not-spam reports are no complaints",
        sql: include_str!("../../sql/0012_not_spam_reports_are_no_complaints.sql"),
        data: None,
    },
    Migration {
        version: 13,
        name: "dismissed failures",
        sql: include_str!("../../sql/0013_dismissed_failures.sql"),
        data: None,
    },
    Migration {
        version: 14,
        name: "bounce classes",
        sql: include_str!("../../sql/0014_bounce_classes.sql"),
        data: Some(classify_bounces),
    },
    Migration {
        version: 15,
        name: "bounce classes in the rollups",
        sql: include_str!("../../sql/0015_bounce_classes_in_rollups.sql"),
        data: None,
    },
    Migration {
        version: 16,
        name: "erasures",
        sql: include_str!("../../sql/0016_erasures.sql"),
        data: None,
    },
];

/// Duplicate column name, duplicate key name, no such key to drop: what re-running an
/// `ALTER TABLE ... ADD` or `... DROP INDEX` of a migration that was cut short reports (MySQL 8
/// has no `ADD COLUMN IF NOT EXISTS`).
const ALREADY_APPLIED: [u16; 3] = [1060, 1061, 1091];

/// The schema version this binary needs.
pub fn schema_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Returns the versions applied now.
pub fn migrate(env: &Environment) -> Result<Vec<u32>> {
    let (builder, database, tls) = options(env)?;
    let mut server = connect_with(builder.clone().db_name(None::<String>), &tls, env)?;
    server
        .query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            quote_identifier(&database)
        ))
        .sql_context(&format!("creating database {database}"))?;
    drop(server);
    let (mut conn, _) = connect(env)?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS ses_report_migrations (
           version INT UNSIGNED PRIMARY KEY,
           name VARCHAR(255) NOT NULL,
           applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .sql_context("creating ses_report_migrations")?;
    let done: Vec<u32> = conn
        .query("SELECT version FROM ses_report_migrations")
        .sql_context("reading ses_report_migrations")?;
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        let Migration {
            version,
            name,
            sql,
            data,
        } = migration;
        if done.contains(version) {
            continue;
        }
        for statement in split_statements(sql) {
            match run_statement(&mut conn, &statement) {
                Ok(()) => {}
                // MySQL commits each DDL statement on its own: a migration cut short re-runs from
                // its first statement, and a column or index it already added is no error.
                Err(mysql::Error::MySqlError(e)) if ALREADY_APPLIED.contains(&e.code) => {
                    log::info!("migration {version}: already applied ({})", e.message);
                }
                Err(e) => {
                    return Err(e).sql_context(&format!("applying migration {version} ({name})"))
                }
            }
        }
        if let Some(data) = data {
            data(&mut conn)?;
        }
        conn.exec_drop(
            "INSERT INTO ses_report_migrations (version, name) VALUES (?, ?)",
            (version, name),
        )
        .sql_context("recording a migration")?;
        applied.push(*version);
    }
    Ok(applied)
}

/// Migration 8's data step: the key digests of existing detail rows, in SQL (the same bytes as
/// `store::key_digest`), one primary-key range per statement so that a large table is filled in
/// short transactions; a cut-short run resumes with the rows still NULL.
fn fill_detail_keys(conn: &mut Conn) -> Result<()> {
    const RANGE: u64 = 20_000;
    let context = "applying migration 8 (key digests of the detail rows)";
    let bounds: Option<(Option<u64>, Option<u64>)> = conn
        .query_first(
            "SELECT MIN(id), MAX(id) FROM aws_report_details WHERE notification_key IS NULL",
        )
        .sql_context(context)?;
    let Some((Some(first), Some(last))) = bounds else {
        return Ok(());
    };
    let digest = |column: &str| format!("UNHEX(LEFT(SHA2({column}, 256), 32))");
    let statement = format!(
        "UPDATE aws_report_details SET notification_key = {}, recipient_key = {},
           feedback_key = IF(feedback_id IS NULL, NULL, {})
         WHERE id >= ? AND id < ? AND notification_key IS NULL",
        digest("notification_message_id"),
        digest("`to`"),
        digest("feedback_id")
    );
    let mut filled = 0;
    let mut from = first;
    while from <= last {
        conn.exec_drop(&statement, (from, from + RANGE))
            .sql_context(context)?;
        filled += conn.affected_rows();
        from += RANGE;
    }
    log::info!("migration 8: key digests of {filled} detail row(s)");
    Ok(())
}

/// Migration 14's data step: the class of every stored bounce and delay (in ranges of ids, rows
/// not yet classified), then the ledger's bounce entries under the rules that read it.
fn classify_bounces(conn: &mut Conn) -> Result<()> {
    const RANGE: u64 = 5_000;
    let context = "applying migration 14 (bounce classes)";
    let bounds: Option<(Option<u64>, Option<u64>)> = conn
        .query_first(
            "SELECT MIN(id), MAX(id) FROM aws_report_details
             WHERE event_type IN ('Bounce', 'DeliveryDelay') AND bounce_class IS NULL",
        )
        .sql_context(context)?;
    let mut classified = 0;
    if let Some((Some(first), Some(last))) = bounds {
        let mut from = first;
        while from <= last {
            let rows: Vec<(u64, String, String, Option<String>)> = conn
                .exec(
                    "SELECT id, event_type, `to`, other_info FROM aws_report_details
                     WHERE id >= ? AND id < ? AND event_type IN ('Bounce', 'DeliveryDelay')
                       AND bounce_class IS NULL",
                    (from, from + RANGE),
                )
                .sql_context(context)?;
            let updates: Vec<(Option<&str>, Option<String>, u64)> = rows
                .iter()
                .filter_map(|(id, kind, to, info)| {
                    let kind = EventKind::from_ses_name(kind)?;
                    let info: serde_json::Value =
                        serde_json::from_str(info.as_deref().unwrap_or("")).unwrap_or_default();
                    let (class, delay_type) = bounce::of_event(kind, &info, to);
                    Some((class.map(BounceClass::as_str), delay_type, *id))
                })
                .collect();
            classified += updates.len();
            conn.exec_batch(
                "UPDATE aws_report_details SET bounce_class = ?, delay_type = ? WHERE id = ?",
                updates,
            )
            .sql_context(context)?;
            from += RANGE;
        }
    }
    let entries = super::ledger::rederive_bounces(conn).sql_context(context)?;
    log::info!(
        "migration 14: {classified} bounce and delay row(s) classified; the bounce entries of {entries} address(es) taken again"
    );
    Ok(())
}

/// Migration 6's data step: the suppression ledger from the detail rows kept.
fn rebuild_ledger(conn: &mut Conn) -> Result<()> {
    let entries = super::ledger::rebuild(conn)
        .sql_context("applying migration 6 (the suppression ledger from the detail rows)")?;
    log::info!("migration 6: {entries} suppression ledger entries from the detail rows");
    Ok(())
}

/// Migration 5's data step, which SQL alone cannot state: classify every existing open and
/// click (`domain::engagement`) and find each existing recipient's mailbox provider from its
/// domain and its Delivery rows (`domain::provider`). Tags, configuration sets and sending IPs
/// of rows written before version 5 stay empty: the records' `mail` objects were not kept.
/// Idempotent, so a migration cut short here runs it again.
fn backfill_engagement_and_providers(conn: &mut Conn) -> Result<()> {
    let context = "applying migration 5 (classifying existing opens and clicks)";
    let pruned_before = super::retention::pruned_before(conn).sql_context(context)?;
    let classified =
        super::classification::reclassify_all(conn, pruned_before).sql_context(context)?;
    let context = "applying migration 5 (mailbox providers of existing rows)";
    let mut after = 0u64;
    let mut found = 0u64;
    loop {
        let rows: Vec<(u64, String)> = conn
            .exec(
                "SELECT id, user_email FROM aws_reports WHERE id > ? ORDER BY id LIMIT 1000",
                (after,),
            )
            .sql_context(context)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        // A Delivery's reply speaks for its recipients only when they share one domain (as
        // `accounting` decides for new events).
        let deliveries: Vec<(u64, String)> = select_in(
            conn,
            "SELECT d.report_id, d.other_info FROM aws_report_details d
             WHERE d.event_type = 'Delivery' AND d.report_id IN ({keys})
               AND (SELECT COUNT(DISTINCT SUBSTRING_INDEX(o.`to`, '@', -1)) FROM aws_report_details o
                    WHERE o.notification_message_id = d.notification_message_id) = 1",
            rows.iter().map(|r| r.0),
        )
        .sql_context(context)?;
        let emails: BTreeMap<u64, &str> = rows.iter().map(|(id, e)| (*id, e.as_str())).collect();
        let mut providers: BTreeMap<u64, &'static str> = emails
            .iter()
            .map(|(id, email)| (*id, provider::of_recipient(email, None)))
            .collect();
        for (id, delivery) in &deliveries {
            if let (Some(p), Some(email)) = (providers.get_mut(id), emails.get(id)) {
                *p = provider::merge(
                    p,
                    provider::of_recipient(email, provider::of_delivery(delivery)),
                );
            }
        }
        let mut by_provider: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (id, p) in providers {
            if p != provider::OTHER {
                by_provider.entry(p).or_default().push(id);
            }
        }
        for (p, ids) in by_provider {
            found += ids.len() as u64;
            let mut params: Vec<mysql::Value> = vec![p.into()];
            params.extend(ids.iter().map(|id| mysql::Value::from(*id)));
            conn.exec_drop(
                format!(
                    "UPDATE aws_reports SET mailbox_provider = ? WHERE id IN ({})",
                    super::placeholders(ids.len())
                ),
                params,
            )
            .sql_context(context)?;
        }
        after = last;
    }
    log::info!(
        "migration 5: classified the opens and clicks of {classified} summary row(s); {found} recipient(s) have a known mailbox provider"
    );
    Ok(())
}

/// Fails with what to run when the database is behind this binary's schema.
pub fn check_schema(conn: &mut Conn, database: &str) -> Result<()> {
    let current: Option<Option<u32>> =
        match conn.query_first("SELECT MAX(version) FROM ses_report_migrations") {
            Ok(v) => v,
            Err(mysql::Error::MySqlError(e)) if e.code == 1146 => None,
            Err(e) => return Err(Error::mysql("reading the schema version", e)),
        };
    let current = current.flatten().unwrap_or(0);
    if current < schema_version() {
        return Err(Error::Schema {
            database: database.to_string(),
            found: current,
            needed: schema_version(),
        });
    }
    Ok(())
}

/// Splits a schema file into statements: each ends with `;` at the end of a line.
/// Rows of a table one statement of a ranged migration step touches.
const STATEMENT_RANGE: u64 = 20_000;

/// A statement whose WHERE clause holds `{id_range:TABLE}` and that template, if it is one.
fn ranged(statement: &str) -> Option<(&str, String)> {
    let start = statement.find("{id_range:")?;
    let end = start + statement[start..].find('}')?;
    let table = &statement[start + "{id_range:".len()..end];
    let template = format!(
        "{}id >= ? AND id < ?{}",
        &statement[..start],
        &statement[end + 1..]
    );
    Some((table, template))
}

/// Runs one statement of a migration file. One written with `{id_range:TABLE}` runs once per
/// range of TABLE's ids (`STATEMENT_RANGE` at a time), each on its own (autocommit), so that a
/// large table's upgrade stays within proxies' transaction and query limits (Vitess: 30 s) and
/// TiDB's transaction size; its WHERE clause makes it re-runnable, like every step here.
fn run_statement(conn: &mut Conn, statement: &str) -> Result<(), mysql::Error> {
    let Some((table, template)) = ranged(statement) else {
        return conn.query_drop(statement);
    };
    let bounds: Option<(Option<u64>, Option<u64>)> =
        conn.query_first(format!("SELECT MIN(id), MAX(id) FROM {table}"))?;
    let Some((Some(first), Some(last))) = bounds else {
        return Ok(());
    };
    let mut from = first;
    while from <= last {
        conn.exec_drop(&template, (from, from + STATEMENT_RANGE))?;
        from += STATEMENT_RANGE;
    }
    Ok(())
}

fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_string());
    }
    statements
}

fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_split_into_statements() {
        let statements = split_statements(MIGRATIONS[0].sql);
        assert_eq!(statements.len(), 4);
        assert!(statements
            .iter()
            .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")));
        assert!(statements.iter().all(|s| !s.ends_with(';')));
    }

    #[test]
    fn ranged_statements_name_their_table_and_take_the_range_as_parameters() {
        let (table, template) =
            ranged("UPDATE aws_reports SET a = b WHERE a = 0 AND {id_range:aws_reports}").unwrap();
        assert_eq!(table, "aws_reports");
        assert_eq!(
            template,
            "UPDATE aws_reports SET a = b WHERE a = 0 AND id >= ? AND id < ?"
        );
        assert!(ranged("UPDATE t SET a = 1").is_none());
        // The whole-table statements of the migrations go by ranges.
        let ranged_count = MIGRATIONS
            .iter()
            .flat_map(|m| split_statements(m.sql))
            .filter(|s| ranged(s).is_some())
            .count();
        assert_eq!(ranged_count, 4);
    }
}

//! `aws_report_suppressions`, the suppression ledger: merged (`LedgerEntry::merge`) by every
//! batch inside its transaction, read by `ses-report suppressions`, rebuilt from the detail rows
//! by migration 6, never touched by `prune`.

use std::collections::{BTreeMap, BTreeSet};

use mysql::prelude::Queryable;
use mysql::{Conn, TxOpts, Value};
use time::{Duration, OffsetDateTime};

use super::{evidence, row_placeholders, select_in, statement_chunks};
use crate::domain::bounce::{classify, BounceClass, Reply};
use crate::domain::suppression::{
    aggregate, Delivered, Evidence, LedgerEntry, LedgerKind, Signal, SOFT_EXPIRE_DAYS,
};
use crate::domain::timestamps;

/// How long a soft-bounce entry lasts after its last bounce unless renewed: the `expires_at` the
/// sending app joins on (the default rules' window, `SOFT_EXPIRE_DAYS`).
fn soft_expiry() -> Duration {
    Duration::days(i64::from(SOFT_EXPIRE_DAYS))
}

const COLUMNS: &str = "email, kind, first_at, last_at, evidence_count, last_diagnostic,
    last_diagnostic_at, recent, expires_at, updated_at, bounce_class";

fn recent_json(recent: &[OffsetDateTime]) -> String {
    serde_json::to_string(
        &recent
            .iter()
            .map(|t| timestamps::sns(*t))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into())
}

fn parse_recent(text: &str) -> Vec<OffsetDateTime> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| timestamps::parse(t).ok())
        .collect()
}

/// The stored entries of these addresses.
fn read_for<Q: Queryable>(
    conn: &mut Q,
    emails: &BTreeSet<&str>,
    lock: bool,
) -> Result<Vec<LedgerEntry>, mysql::Error> {
    let sql = format!(
        "SELECT email, kind, NULL, first_at, last_at, evidence_count, last_diagnostic,
                last_diagnostic_at, recent, bounce_class
         FROM aws_report_suppressions WHERE email IN ({{keys}}){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<mysql::Row> = select_in(conn, &sql, emails.iter().copied())?;
    Ok(rows.into_iter().filter_map(entry_of_row).collect())
}

fn entry_of_row(row: mysql::Row) -> Option<LedgerEntry> {
    let v = row.unwrap();
    let text = |v: &Value| {
        mysql::from_value_opt::<Option<String>>(v.clone())
            .ok()
            .flatten()
    };
    // Unknown kinds are skipped.
    let kind = LedgerKind::parse(&text(&v[1])?)?;
    Some(LedgerEntry {
        email: text(&v[0])?,
        kind,
        user_id: mysql::from_value_opt(v[2].clone()).ok().flatten(),
        first_at: timestamps::from_sql(&v[3])?,
        last_at: timestamps::from_sql(&v[4])?,
        count: mysql::from_value_opt(v[5].clone()).ok()?,
        last_diagnostic: text(&v[6]),
        last_diagnostic_at: timestamps::from_sql(&v[7]),
        recent: parse_recent(&text(&v[8]).unwrap_or_default()),
        bounce_class: v.get(9).and_then(text).and_then(|c| BounceClass::parse(&c)),
    })
}

/// Writes entries as they are (already merged with what was stored).
fn write<Q: Queryable>(conn: &mut Q, entries: &[LedgerEntry]) -> Result<(), mysql::Error> {
    write_columns(conn, entries, true)
}

/// `write`; without `bounce_class` for the ledger migration 6 builds, before migration 14 adds
/// that column (whose own step then takes the bounce entries again, classes included).
fn write_columns<Q: Queryable>(
    conn: &mut Q,
    entries: &[LedgerEntry],
    with_class: bool,
) -> Result<(), mysql::Error> {
    let values = if with_class { 11 } else { 10 };
    let columns = if with_class {
        COLUMNS
    } else {
        COLUMNS.trim_end_matches(", bounce_class")
    };
    let class_update = if with_class {
        ",\n                   bounce_class = VALUES(bounce_class)"
    } else {
        ""
    };
    let now = timestamps::to_sql(OffsetDateTime::now_utc());
    for chunk in statement_chunks(entries) {
        let mut params = Vec::with_capacity(chunk.len() * values);
        for e in chunk {
            params.push(e.email.as_str().into());
            params.push(e.kind.as_str().into());
            params.push(timestamps::to_sql(e.first_at));
            params.push(timestamps::to_sql(e.last_at));
            params.push(e.count.into());
            params.push(e.last_diagnostic.as_deref().into());
            params.push(
                e.last_diagnostic_at
                    .map(timestamps::to_sql)
                    .unwrap_or(Value::NULL),
            );
            params.push(recent_json(&e.recent).into());
            params.push(if e.kind == LedgerKind::SoftBounce {
                timestamps::to_sql(e.last_at + soft_expiry())
            } else {
                Value::NULL
            });
            params.push(now.clone());
            if with_class {
                params.push(e.bounce_class.map(BounceClass::as_str).into());
            }
        }
        conn.exec_drop(
            format!(
                "INSERT INTO aws_report_suppressions ({columns}) VALUES {}
                 ON DUPLICATE KEY UPDATE first_at = VALUES(first_at),
                   last_at = VALUES(last_at), evidence_count = VALUES(evidence_count),
                   last_diagnostic = VALUES(last_diagnostic), last_diagnostic_at = VALUES(last_diagnostic_at),
                   recent = VALUES(recent), expires_at = VALUES(expires_at), updated_at = VALUES(updated_at){class_update}",
                row_placeholders(chunk.len(), values)
            ),
            params,
        )?;
    }
    Ok(())
}

/// Merges new entries into the ledger inside the caller's transaction, then brings `lifted_at`
/// up to date for every address with new evidence or a delivery (`lift_soft_bounces`,
/// `lift_complaints`).
pub fn merge<Q: Queryable>(
    conn: &mut Q,
    new: Vec<LedgerEntry>,
    delivered: &BTreeMap<&str, Delivered>,
) -> Result<(), mysql::Error> {
    let owned: Vec<String> = new.iter().map(|e| e.email.clone()).collect();
    let emails: BTreeSet<&str> = owned.iter().map(String::as_str).collect();
    // Addresses whose soft-bounce entry this batch creates: their lift is read from the rows.
    let mut fresh: BTreeSet<String> = BTreeSet::new();
    if !new.is_empty() {
        let mut merged: BTreeMap<(String, LedgerKind), LedgerEntry> = BTreeMap::new();
        for stored in read_for(conn, &emails, true)? {
            merged.insert((stored.email.clone(), stored.kind), stored);
        }
        for entry in new {
            match merged.entry((entry.email.clone(), entry.kind)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    if entry.kind == LedgerKind::SoftBounce {
                        fresh.insert(entry.email.clone());
                    }
                    v.insert(entry);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(entry),
            }
        }
        let entries: Vec<LedgerEntry> = merged.into_values().collect();
        write(conn, &entries)?;
        lift_complaints(conn, &emails)?;
    }
    lift_soft_bounces(conn, &emails, delivered, |email| fresh.contains(email))
}

/// The lift of a soft bounce from one row: the latest delivery among the address's summary
/// rows (which `prune` keeps), when it is later than the last bounce.
const SOFT_LIFT: &str = "(SELECT IF(MAX(r.delivery_at) > s.last_at, MAX(r.delivery_at), NULL)
                          FROM aws_reports r WHERE r.user_email = s.email)";

/// A complaint's lift: a later not-spam report of the same address (ledger rows only).
fn lift_complaints<Q: Queryable>(
    conn: &mut Q,
    emails: &BTreeSet<&str>,
) -> Result<(), mysql::Error> {
    let emails: Vec<&str> = emails.iter().copied().collect();
    for chunk in super::lookup_chunks(&emails) {
        let keys = super::placeholders(chunk.len());
        let params: Vec<Value> = chunk.into_iter().map(Value::from).collect();
        conn.exec_drop(
            format!(
                "UPDATE aws_report_suppressions c
                 LEFT JOIN aws_report_suppressions n ON n.email = c.email AND n.kind = 'not-spam'
                 SET c.lifted_at = IF(n.last_at > c.last_at, n.last_at, NULL)
                 WHERE c.kind = 'complaint' AND c.email IN ({keys})"
            ),
            params,
        )?;
    }
    Ok(())
}

/// What a batch tells the soft-bounce lift of one address.
#[derive(Clone, Copy, Debug)]
struct LiftNews {
    /// The batch's deliveries to the address, if any.
    delivered: Option<Delivered>,
    /// The batch created the address's soft-bounce entry.
    fresh: bool,
}

/// Brings the soft-bounce lifts of these addresses up to date after the batch's upserts and
/// ledger writes, reading their summary rows only where the stored lift cannot tell. The lift is
/// `SOFT_LIFT`: the latest delivery `D` of all the address's rows when it is later than
/// `last_at`, so a stored lift `L` (committed with the rows it was computed from) says
/// `D = L` when set, and `D <= last_at` (as it was) when NULL. With `d` the latest delivery
/// among the rows the batch touched (NULL without one) and `last_at` as the batch leaves it
/// (never earlier than before):
/// - if no row moved back, `D` is the later of `L` and `d`; and when `L` is NULL, the rows the
///   batch did not touch cannot exceed the new `last_at`, so the later of `L` and `d` decides
///   all the same: the lift is that, when it is later than `last_at`, else NULL;
/// - if a row moved back to `d` or earlier and `L` is later than `d`, that row may have held
///   `L`: it is read from the rows again (`SOFT_LIFT`). A row moved back under a lift no later
///   than `d`, or under none, held no more than `d` or `last_at`, and the first rule holds;
/// - an entry the batch creates (or the ledger's rebuild writes) has no stored lift to go by:
///   read from the rows.
///
/// Either way the result is `SOFT_LIFT`'s, in any order of the events
/// (`reports::soft_bounce_lifts_are_the_same_in_any_order`).
///
/// `emails` have new evidence, `delivered` had deliveries; `fresh` tells which addresses' entries
/// the batch created.
fn lift_soft_bounces<Q: Queryable>(
    conn: &mut Q,
    emails: &BTreeSet<&str>,
    delivered: &BTreeMap<&str, Delivered>,
    fresh: impl Fn(&str) -> bool,
) -> Result<(), mysql::Error> {
    let news: BTreeMap<&str, LiftNews> = delivered
        .keys()
        .chain(emails)
        .map(|email| {
            let news = LiftNews {
                delivered: delivered.get(email).copied(),
                fresh: fresh(email),
            };
            (*email, news)
        })
        .collect();
    let news: Vec<(&str, LiftNews)> = news.into_iter().collect();
    for chunk in statement_chunks(&news) {
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (email, news) in chunk {
            params.push((*email).into());
            params.push(
                news.delivered
                    .map(|d| timestamps::to_sql(d.latest))
                    .unwrap_or(Value::NULL),
            );
            params.push(news.delivered.is_some_and(|d| d.moved_back).into());
            params.push(news.fresh.into());
        }
        let rows = vec!["SELECT ?, ?, ?, ?"; chunk.len()].join(" UNION ALL ");
        let latest = "GREATEST(COALESCE(s.lifted_at, d.at), COALESCE(d.at, s.lifted_at))";
        conn.exec_drop(
            format!(
                "UPDATE aws_report_suppressions s
                 JOIN (SELECT CAST('' AS CHAR(320)) COLLATE utf8mb4_bin AS email, CAST(NULL AS DATETIME(3)) AS at,
                              FALSE AS moved_back, FALSE AS fresh
                       FROM DUAL WHERE FALSE UNION ALL {rows}) d ON d.email = s.email
                 SET s.lifted_at = IF(d.fresh OR (d.moved_back AND s.lifted_at > d.at), {SOFT_LIFT},
                                      IF({latest} > s.last_at, {latest}, NULL))
                 WHERE s.kind = 'soft-bounce'"
            ),
            params,
        )?;
    }
    Ok(())
}

/// Rows per page of `read`: far below the 10,000 rows a Vitess tablet returns by default.
const LEDGER_PAGE_ROWS: u64 = 5000;

/// The whole ledger, or the entries with evidence since `since`, each with the user account of
/// the address (the summary rows' user_id).
/// The entries of these addresses (`suppressions --check`).
pub fn read_of(conn: &mut Conn, emails: &[String]) -> Result<Vec<LedgerEntry>, mysql::Error> {
    let rows: Vec<mysql::Row> = select_in(
        conn,
        "SELECT s.email, s.kind, (SELECT MAX(r.user_id) FROM aws_reports r WHERE r.user_email = s.email),
                s.first_at, s.last_at, s.evidence_count, s.last_diagnostic, s.last_diagnostic_at, s.recent,
                s.bounce_class
         FROM aws_report_suppressions s WHERE s.email IN ({keys})",
        emails.iter().cloned(),
    )?;
    Ok(rows.into_iter().filter_map(entry_of_row).collect())
}

pub fn read(
    conn: &mut Conn,
    since: Option<OffsetDateTime>,
) -> Result<Vec<LedgerEntry>, mysql::Error> {
    let since = since.unwrap_or(time::macros::datetime!(1000-01-01 0:00 UTC));
    // In pages, keyed on the primary key (email, kind).
    let mut rows: Vec<mysql::Row> = Vec::new();
    let (mut email, mut kind) = (String::new(), String::new());
    loop {
        let page: Vec<mysql::Row> = conn.exec(
            "SELECT s.email, s.kind, (SELECT MAX(r.user_id) FROM aws_reports r WHERE r.user_email = s.email),
                    s.first_at, s.last_at, s.evidence_count, s.last_diagnostic, s.last_diagnostic_at, s.recent,
                    s.bounce_class
             FROM aws_report_suppressions s
             WHERE (s.email > ? OR (s.email = ? AND s.kind > ?)) AND s.last_at >= ?
             ORDER BY s.email, s.kind LIMIT ?",
            (&email, &email, &kind, timestamps::to_sql(since), LEDGER_PAGE_ROWS),
        )?;
        let full = page.len() as u64 == LEDGER_PAGE_ROWS;
        if let Some(last) = page.last() {
            email = last.get::<String, _>(0).unwrap_or_default();
            kind = last.get::<String, _>(1).unwrap_or_default();
        }
        rows.extend(page);
        if !full {
            break;
        }
    }
    Ok(rows.into_iter().filter_map(entry_of_row).collect())
}

/// After another route of the same bounce or complaint replaced a detail row of these
/// addresses, their entries are taken again from their rows, so that the ledger holds the
/// surviving route's time and diagnostic whichever route arrived first (the merge had kept the
/// first one's). Only where the rows still hold all of an address's evidence (each entry's
/// count equals its rows'): evidence `prune` took is in no row, and then the entries stand.
/// Inside the caller's transaction, after the batch's rows and its `merge`.
pub fn rebase_replaced<Q: Queryable>(
    conn: &mut Q,
    emails: &BTreeSet<&str>,
) -> Result<(), mysql::Error> {
    if emails.is_empty() {
        return Ok(());
    }
    let from_rows = aggregate(&evidence::evidence_of(conn, emails)?);
    let stored = read_for(conn, emails, true)?;
    let counts = |entries: &[LedgerEntry], email: &str| -> BTreeMap<LedgerKind, u64> {
        entries
            .iter()
            .filter(|e| e.email == email)
            .map(|e| (e.kind, e.count))
            .collect()
    };
    let whole: BTreeSet<&str> = emails
        .iter()
        .copied()
        .filter(|email| counts(&stored, email) == counts(&from_rows, email))
        .collect();
    let entries: Vec<LedgerEntry> = from_rows
        .into_iter()
        .filter(|e| whole.contains(e.email.as_str()))
        .collect();
    write(conn, &entries)?;
    lift_complaints(conn, &whole)?;
    // Taken again from the rows: each soft bounce's lift is read from the rows too.
    lift_soft_bounces(conn, &whole, &BTreeMap::new(), |_| true)
}

/// The bounce kinds the ledger held before migration 14 (`transient-bounce-5xx` is gone).
const BOUNCE_KINDS_BEFORE_14: &str = "'permanent-bounce', 'transient-bounce-5xx', 'soft-bounce'";

/// Whether the rules before migration 14 made a ledger entry of this signal: every bounce but
/// SES's own suppressions and auto-replies (Transient/General without a 4.x or 5.x status).
fn counted_before_14(signal: &Signal) -> bool {
    let Signal::Bounce {
        bounce_type,
        sub_type,
        status,
        ..
    } = signal
    else {
        return false;
    };
    let class = status.as_deref().and_then(|s| s.trim().chars().next());
    match bounce_type.as_str() {
        "Permanent" => sub_type != "OnAccountSuppressionList",
        "Transient" if class == Some('5') => true,
        "Transient" => !(sub_type == "General" && class != Some('4')),
        _ => false,
    }
}

/// Migration 14's ledger step: the bounce entries of every address that has one, taken again
/// under the rules that read the reply's class (`suppression::ledger_kind`). Where the detail
/// rows still hold all of an address's bounce evidence (as many rows as the old rules counted),
/// its entries are rebuilt from them, exactly; where `prune` took some, each stored entry is
/// classified by its last diagnostic, the one reply it kept, and merged into the kind that
/// class gives (or dropped, for a bounce about the sender). A transaction per 1,000 addresses.
/// Returns the addresses taken again.
pub fn rederive_bounces(conn: &mut Conn) -> Result<usize, mysql::Error> {
    let emails: Vec<String> = super::paged(
        conn,
        &format!(
            "SELECT DISTINCT email FROM aws_report_suppressions
             WHERE email > ? AND kind IN ({BOUNCE_KINDS_BEFORE_14}) ORDER BY email LIMIT ?"
        ),
        String::new(),
        Vec::new(),
        |email: &String| email.clone(),
    )?;
    for chunk in emails.chunks(super::KEYS_PER_LOOKUP) {
        let mut tx = conn.start_transaction(TxOpts::default())?;
        let set: BTreeSet<&str> = chunk.iter().map(String::as_str).collect();
        // The old kind 'transient-bounce-5xx' is read as permanent: only its fields matter here.
        let stored: Vec<LedgerEntry> = select_in(
            &mut tx,
            &format!(
                "SELECT email, IF(kind = 'transient-bounce-5xx', 'permanent-bounce', kind), NULL, first_at, last_at,
                        evidence_count, last_diagnostic, last_diagnostic_at, recent, NULL
                 FROM aws_report_suppressions
                 WHERE kind IN ({BOUNCE_KINDS_BEFORE_14}) AND email IN ({{keys}}) FOR UPDATE"
            ),
            set.iter().copied(),
        )?
        .into_iter()
        .filter_map(entry_of_row)
        .collect();
        let evidence = evidence::evidence_of(&mut tx, &set)?;
        let mut out: BTreeMap<(String, LedgerKind), LedgerEntry> = BTreeMap::new();
        for email in &set {
            let stored_count: u64 = stored
                .iter()
                .filter(|e| e.email == *email)
                .map(|e| e.count)
                .sum();
            let bounces: Vec<Evidence> = evidence
                .iter()
                .filter(|e| e.email == *email && matches!(e.signal, Signal::Bounce { .. }))
                .cloned()
                .collect();
            let counted = bounces
                .iter()
                .filter(|e| counted_before_14(&e.signal))
                .count() as u64;
            let entries: Vec<LedgerEntry> = if counted == stored_count {
                aggregate(&bounces)
            } else {
                stored
                    .iter()
                    .filter(|e| e.email == *email)
                    .filter_map(|e| reclassified(e.clone()))
                    .collect()
            };
            for entry in entries
                .into_iter()
                .filter(|e| matches!(e.kind, LedgerKind::PermanentBounce | LedgerKind::SoftBounce))
            {
                match out.entry((entry.email.clone(), entry.kind)) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(entry);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(entry),
                }
            }
        }
        let params: Vec<Value> = set.iter().map(|e| Value::from(*e)).collect();
        tx.exec_drop(
            format!(
                "DELETE FROM aws_report_suppressions WHERE kind IN ({BOUNCE_KINDS_BEFORE_14}) AND email IN ({})",
                super::placeholders(set.len())
            ),
            params,
        )?;
        let entries: Vec<LedgerEntry> = out.into_values().collect();
        write(&mut tx, &entries)?;
        lift_soft_bounces(&mut tx, &set, &BTreeMap::new(), |_| true)?;
        tx.commit()?;
    }
    Ok(emails.len())
}

/// A stored bounce entry whose evidence the rows no longer hold, in the kind its last
/// diagnostic's class gives; `None` for a bounce about the sender or the network.
fn reclassified(mut entry: LedgerEntry) -> Option<LedgerEntry> {
    let class = classify(Reply {
        sub_type: None,
        status: None,
        diagnostic: entry.last_diagnostic.as_deref(),
    });
    entry.bounce_class = Some(class);
    entry.kind = match class {
        BounceClass::InvalidAddress => LedgerKind::PermanentBounce,
        BounceClass::MailboxFull | BounceClass::MailboxDisabled | BounceClass::Unclassified => {
            LedgerKind::SoftBounce
        }
        _ => return None,
    };
    Some(entry)
}

/// Rebuilds the ledger from the detail rows kept (migration 6, when there was no ledger yet).
/// Evidence already pruned is not in it: the ledger starts from what the rows still say.
pub fn rebuild(conn: &mut Conn) -> Result<usize, mysql::Error> {
    let found = evidence::evidence(conn, None)?;
    let entries = aggregate(&found);
    let mut tx = conn.start_transaction(TxOpts::default())?;
    let emails: BTreeSet<&str> = entries.iter().map(|e| e.email.as_str()).collect();
    tx.query_drop("DELETE FROM aws_report_suppressions")?;
    write_columns(&mut tx, &entries, false)?;
    lift_complaints(&mut tx, &emails)?;
    // Every entry is new: each soft bounce's lift is read from the rows.
    lift_soft_bounces(&mut tx, &emails, &BTreeMap::new(), |_| true)?;
    tx.commit()?;
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_instants_round_trip() {
        let at = time::macros::datetime!(2026-11-27 10:00:00.123 UTC);
        assert_eq!(
            parse_recent(&recent_json(&[at, at - Duration::days(1)])),
            vec![at, at - Duration::days(1)]
        );
        assert!(parse_recent("not json").is_empty());
    }
}

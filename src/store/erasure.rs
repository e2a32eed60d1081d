//! Erasing an address (docs/privacy.md): its rows pseudonymized in place, one transaction per
//! address, so that nothing counted changes and no table holds the address afterwards; and the
//! erased hashes every ingest keeps out.

use mysql::prelude::Queryable;
use mysql::{Conn, Transaction, TxOpts};
use time::OffsetDateTime;

use super::{key_digest, select_in};
use crate::domain::erasure::{self, ErasureKey};
use crate::domain::text::normalize_address;
use crate::domain::timestamps;

/// The rows an erasure changed (or, in a dry run, would change), per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub summaries: u64,
    pub details: u64,
    pub suppressions: u64,
    pub failures: u64,
    pub runs: u64,
}

impl Changed {
    pub fn total(&self) -> u64 {
        self.summaries + self.details + self.suppressions + self.failures + self.runs
    }
}

/// The hashes of the erased addresses, and whether they were erased under another key than
/// `key` (then nothing could recognize them).
pub fn erased_hashes(
    conn: &mut Conn,
    key: Option<&ErasureKey>,
) -> Result<(Vec<String>, bool), mysql::Error> {
    let rows: Vec<(String, String)> =
        conn.query("SELECT DISTINCT address_hash, key_check FROM aws_report_erasures")?;
    let other_key = match key {
        Some(key) => {
            let check = erasure::key_check(key);
            rows.iter().any(|(_, c)| *c != check)
        }
        None => false,
    };
    Ok((rows.into_iter().map(|(h, _)| h).collect(), other_key))
}

/// `LIKE` pattern for lower-cased text that contains `address` (already lower case).
fn containing(address: &str) -> String {
    let escaped = address
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Erases `address`: every row that holds it, in any case, now holds its pseudonym instead
/// (summaries and details, whose subjects are dropped too; the suppression ledger, which also
/// keeps the keyed hash; failures' documents and errors; runs' messages), and the request is
/// recorded in `aws_report_erasures`. A dry run rolls it all back.
pub fn forget(
    conn: &mut Conn,
    key: &ErasureKey,
    address: &str,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<Changed, mysql::Error> {
    let normalized = normalize_address(address);
    let hash = erasure::address_hash(key, &normalized);
    let pseudonym = erasure::pseudonym(&hash, &normalized);
    let replace =
        |candidate: &str| (normalize_address(candidate) == normalized).then(|| pseudonym.clone());
    let mut tx = conn.start_transaction(TxOpts::default())?;
    // The details first: they are found by the summary rows' address.
    let details = details(&mut tx, &normalized, &pseudonym, &replace)?;
    let tagged = tags(&mut tx, &normalized, &replace)?;
    let summaries = tx
        .exec_iter(
            "UPDATE aws_reports SET user_email = ?, subject = NULL WHERE user_email = ?",
            (&pseudonym, &normalized),
        )?
        .affected_rows()
        + tagged;
    let changed = Changed {
        summaries,
        details,
        suppressions: ledger(&mut tx, &normalized, &pseudonym, &hash, &replace)?,
        failures: failures(&mut tx, &normalized, &replace)?,
        runs: runs(&mut tx, &normalized, &replace)?,
    };
    tx.exec_drop(
        "INSERT INTO aws_report_erasures (address_hash, key_check, erased_at, summaries, details, suppressions, failures, runs)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            &hash,
            erasure::key_check(key),
            timestamps::to_sql(now),
            changed.summaries,
            changed.details,
            changed.suppressions,
            changed.failures,
            changed.runs,
        ),
    )?;
    if dry_run {
        tx.rollback()?;
    } else {
        tx.commit()?;
    }
    Ok(changed)
}

/// The mails sent to the address.
fn messages_of(tx: &mut Transaction<'_>, normalized: &str) -> Result<Vec<String>, mysql::Error> {
    tx.exec(
        "SELECT DISTINCT message_id FROM aws_reports WHERE user_email = ?",
        (normalized,),
    )
}

/// The address's own detail rows (recipient, keys, subject) in one statement, then the event
/// objects that name it among the rows of the mails sent to it (a bounce of two recipients lists
/// both): the rows changed.
fn details(
    tx: &mut Transaction<'_>,
    normalized: &str,
    pseudonym: &str,
    replace: &dyn Fn(&str) -> Option<String>,
) -> Result<u64, mysql::Error> {
    let digest = key_digest(pseudonym);
    let own = tx
        .exec_iter(
            "UPDATE aws_report_details SET `to` = ?, recipient_key = ?,
               feedback_recipient_key = IF(feedback_recipient_key IS NULL, NULL, ?), subject = NULL
             WHERE report_id IN (SELECT id FROM aws_reports WHERE user_email = ?)",
            (pseudonym, &digest, &digest, normalized),
        )?
        .affected_rows();
    let messages = messages_of(tx, normalized)?;
    let reports: Vec<u64> = select_in(
        tx,
        "SELECT id FROM aws_reports WHERE message_id IN ({keys})",
        messages,
    )?;
    let rows: Vec<(u64, String, Option<String>)> = select_in(
        tx,
        "SELECT id, `to`, other_info FROM aws_report_details WHERE report_id IN ({keys})",
        reports,
    )?;
    let mut others = 0;
    for (id, to, info) in rows {
        let scrubbed = info
            .as_deref()
            .and_then(|i| erasure::scrub_json_text(i, replace));
        if let Some(info) = scrubbed {
            tx.exec_drop(
                "UPDATE aws_report_details SET other_info = ? WHERE id = ?",
                (info, id),
            )?;
            others += u64::from(to != pseudonym);
        }
    }
    Ok(own + others)
}

/// Mail tags (on every recipient's summary row) that name the address, of any mail: the sender
/// may tag mails with a contact's address. The rows changed.
fn tags(
    tx: &mut Transaction<'_>,
    normalized: &str,
    replace: &dyn Fn(&str) -> Option<String>,
) -> Result<u64, mysql::Error> {
    let tagged: Vec<(u64, String)> = tx.exec(
        "SELECT id, tags FROM aws_reports WHERE LOWER(tags) LIKE ?",
        (containing(normalized),),
    )?;
    let mut changed = 0;
    for (id, tags) in tagged {
        if let Some(scrubbed) = erasure::scrub_json_text(&tags, replace) {
            tx.exec_drop(
                "UPDATE aws_reports SET tags = ? WHERE id = ?",
                (scrubbed, id),
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// The ledger's entries of the address: under its pseudonym and hash, their kinds and evidence
/// kept, the diagnostic scrubbed.
fn ledger(
    tx: &mut Transaction<'_>,
    normalized: &str,
    pseudonym: &str,
    hash: &str,
    replace: &dyn Fn(&str) -> Option<String>,
) -> Result<u64, mysql::Error> {
    let entries: Vec<(String, Option<String>)> = tx.exec(
        "SELECT kind, last_diagnostic FROM aws_report_suppressions WHERE email = ?",
        (normalized,),
    )?;
    for (kind, diagnostic) in &entries {
        let diagnostic = diagnostic
            .as_deref()
            .map(|d| erasure::scrub_text(d, replace).unwrap_or_else(|| d.to_string()));
        tx.exec_drop(
            "UPDATE aws_report_suppressions SET email = ?, erased_hash = ?, last_diagnostic = ?
             WHERE email = ? AND kind = ?",
            (pseudonym, hash, diagnostic, normalized, kind),
        )?;
    }
    Ok(entries.len() as u64)
}

/// Failures whose stored document or error names the address, in any case.
fn failures(
    tx: &mut Transaction<'_>,
    normalized: &str,
    replace: &dyn Fn(&str) -> Option<String>,
) -> Result<u64, mysql::Error> {
    let pattern = containing(normalized);
    let rows: Vec<(u64, String, String)> = tx.exec(
        "SELECT id, document, error FROM aws_report_failures WHERE LOWER(document) LIKE ? OR LOWER(error) LIKE ?",
        (&pattern, &pattern),
    )?;
    for (id, document, error) in &rows {
        let document = erasure::scrub_json_text(document, replace).unwrap_or(document.clone());
        let error = erasure::scrub_text(error, replace).unwrap_or(error.clone());
        tx.exec_drop(
            "UPDATE aws_report_failures SET document = ?, error = ? WHERE id = ?",
            (document, error, id),
        )?;
    }
    Ok(rows.len() as u64)
}

/// Runs whose message names the address.
fn runs(
    tx: &mut Transaction<'_>,
    normalized: &str,
    replace: &dyn Fn(&str) -> Option<String>,
) -> Result<u64, mysql::Error> {
    let rows: Vec<(u64, String)> = tx.exec(
        "SELECT id, message FROM aws_report_runs WHERE LOWER(message) LIKE ?",
        (containing(normalized),),
    )?;
    for (id, message) in &rows {
        let message = erasure::scrub_text(message, replace).unwrap_or(message.clone());
        tx.exec_drop(
            "UPDATE aws_report_runs SET message = ? WHERE id = ?",
            (message, id),
        )?;
    }
    Ok(rows.len() as u64)
}

/// The addresses the summary rows link to a user account (`forget --user-id`), erased ones left
/// out.
pub fn addresses_of_user(conn: &mut Conn, user_id: u64) -> Result<Vec<String>, mysql::Error> {
    let addresses: Vec<String> = conn.exec(
        "SELECT DISTINCT user_email FROM aws_reports WHERE user_id = ? ORDER BY 1",
        (user_id,),
    )?;
    Ok(addresses
        .into_iter()
        .filter(|a| !erasure::is_pseudonym(a))
        .collect())
}

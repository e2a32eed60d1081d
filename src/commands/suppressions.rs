//! `ses-report suppressions`: the addresses to stop mailing, or the differences with SES's list.

use crate::commands::period::decide_suppressions;
use crate::config::{Format, SuppressionsConfig};
use crate::domain::erasure;
use crate::domain::suppression;
use crate::domain::text::normalize_address;
use crate::error::{Error, Exit, Result};
use crate::reports::suppressions;
use crate::store::{self, evidence, ledger, Session};

pub fn run(config: &SuppressionsConfig) -> Result<Exit> {
    // SES's list first: a file that cannot be read fails before any connection.
    let ses_list = match &config.reconcile {
        None => None,
        Some(path) => {
            let text = if path == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Error::io("cannot read SES's list from stdin", e))?
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("cannot read {path}"), e))?
            };
            Some(
                suppressions::read_ses_list(&text)
                    .map_err(|e| Error::usage(format!("--reconcile {path}: {e}")))?,
            )
        }
    };
    let mut session = Session::open(&config.env)?;
    if let Some(address) = &config.check {
        return check(&mut session, config, address);
    }
    let mut rules = config.rules.clone();
    // Reconciling compares with everything SES suppresses, its own suppressions included.
    rules.include_ses_suppressed |= ses_list.is_some();
    let mut rows = decide_suppressions(&mut session, config.since, &rules)?;
    if let Some((days, _)) = rules.sunset {
        let from = rules.now - days;
        let engagement = session.retrying("reading deliveries and human engagement", |conn| {
            evidence::delivery_histories_between(conn, from, rules.now)
        })?;
        rows.extend(suppression::sunset(&engagement, &rules));
        rows.sort_by(|a, b| (&a.email, a.reason).cmp(&(&b.email, b.reason)));
    }
    if let Some(ses) = ses_list {
        let differences = suppressions::reconcile(&rows, &ses);
        print!(
            "{}",
            match config.format {
                Format::Json => suppressions::differences_json(&differences),
                _ => suppressions::differences_csv(&differences),
            }
        );
        return Ok(Exit::Done);
    }
    print!(
        "{}",
        match config.format {
            Format::Json => suppressions::to_json(&rows),
            _ => suppressions::to_csv(&rows),
        }
    );
    Ok(Exit::Done)
}

/// `--check ADDRESS`: whether the address is suppressed (and why), and whether it was erased;
/// an erased address is found by its keyed hash, so the key is needed once anything was erased.
fn check(session: &mut Session, config: &SuppressionsConfig, address: &str) -> Result<Exit> {
    let normalized = normalize_address(address);
    let key = config.env.erasure_key.as_ref();
    let (hashes, other_key) = session.retrying("reading aws_report_erasures", |conn| {
        store::erasure::erased_hashes(conn, key)
    })?;
    let mut emails = vec![normalized.clone()];
    let mut erased = false;
    if !hashes.is_empty() {
        let Some(key) = key else {
            return Err(Error::usage(
                "--check cannot tell whether an address was erased without SES_REPORT_ERASURE_KEY (addresses were erased): set the key `forget` used",
            ));
        };
        if other_key {
            return Err(Error::config(
                "SES_REPORT_ERASURE_KEY",
                "is not the key the erased addresses were hashed with: set the key `forget` used",
            ));
        }
        let hash = erasure::address_hash(key, &normalized);
        if hashes.contains(&hash) {
            erased = true;
            emails.push(erasure::pseudonym(&hash, &normalized));
        }
    }
    let entries = session.retrying("reading the suppression ledger", |conn| {
        ledger::read_of(conn, &emails)
    })?;
    let deliveries = session.retrying("reading deliveries", |conn| {
        evidence::last_deliveries(conn, emails.iter().map(String::as_str))
    })?;
    let mut reasons: Vec<String> =
        suppression::decide_entries(&entries, &deliveries, &config.rules)
            .iter()
            .map(|s| s.reason.to_string())
            .collect();
    reasons.sort();
    reasons.dedup();
    print!(
        "{}",
        suppressions::check_output(config.format, &normalized, erased, &reasons)
    );
    Ok(Exit::Done)
}

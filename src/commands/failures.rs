//! `ses-report failures`: what could not be applied, and dismissing what never will be.

use crate::config::{FailuresConfig, Format};
use crate::error::{Error, Exit, Result};
use crate::reports::failures as failures_out;
use crate::store::{failures, Session};

pub fn run(config: &FailuresConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    if let Some((ids, reason)) = &config.dismiss {
        return dismiss(&mut session, config, ids, reason);
    }
    let rows = session.retrying("reading aws_report_failures", |conn| {
        failures::failure_rows(conn, config.listing)
    })?;
    print!(
        "{}",
        match config.format {
            Format::Json => failures_out::to_json(&rows, config.documents),
            Format::Table => failures_out::to_table(&rows),
            Format::Csv => failures_out::to_csv(&rows, config.documents),
        }
    );
    Ok(Exit::Done)
}

/// `--dismiss ID... --reason TEXT`: all or nothing.
fn dismiss(
    session: &mut Session,
    config: &FailuresConfig,
    ids: &[u64],
    reason: &str,
) -> Result<Exit> {
    let now = config.env.now;
    let missing = session.retrying("dismissing failures", |conn| {
        failures::dismiss(conn, ids, reason, now)
    })?;
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(u64::to_string).collect();
        return Err(Error::usage(format!(
                "no unresolved, undismissed failure has the id {}: nothing dismissed (`ses-report failures` lists them)",
                missing.join(", ")
            )));
    }
    let listed: Vec<String> = ids.iter().map(u64::to_string).collect();
    println!(
        "dismissed {} failure(s): {} (`ses-report failures --dismissed` lists them)",
        ids.len(),
        listed.join(", ")
    );
    Ok(Exit::Done)
}

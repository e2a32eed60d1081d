//! `ses-report suppressions`: the addresses to stop mailing, or the differences with SES's list.

use crate::commands::period::decide_suppressions;
use crate::config::{Format, SuppressionsConfig};
use crate::domain::suppression;
use crate::error::{Error, Exit, Result};
use crate::reports::suppressions;
use crate::store::{evidence, Session};

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

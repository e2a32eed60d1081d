//! `ses-report prune`: deletes what the retention period no longer keeps.

use crate::config::PruneConfig;
use crate::domain::timestamps;
use crate::error::{Exit, Result};
use crate::store::{retention, Session};

pub fn run(config: &PruneConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    let cutoffs = config.cutoffs;
    // Each delete is its own small statement: repeating the whole prune after a lost connection
    // deletes what is left.
    let pruned = session.retrying("pruning", |conn| {
        retention::prune(conn, &cutoffs, config.batch, config.dry_run)
    })?;
    let verb = if config.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let summaries = match cutoffs.summaries {
        Some(at) => format!(
            " summaries={} (without details, last event before {})",
            pruned.summaries,
            timestamps::display(at)
        ),
        None => String::new(),
    };
    println!(
        "{verb} before {}: details={} failures={} runs={}{summaries} (kept: {} unresolved failures, {}rollups and the suppression ledger)",
        timestamps::display(cutoffs.details),
        pruned.details,
        pruned.failures,
        pruned.runs,
        pruned.kept_unresolved,
        if cutoffs.summaries.is_none() { "all summaries, " } else { "" }
    );
    Ok(Exit::Done)
}

//! `ses-report prune`: deletes what the retention period no longer keeps.

use crate::config::PruneConfig;
use crate::domain::timestamps;
use crate::error::{Exit, Result};
use crate::store::{retention, Session};

pub fn run(config: &PruneConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    let cutoff = config.cutoff;
    // Each delete is its own small statement: repeating the whole prune after a lost connection
    // deletes what is left.
    let pruned = session.retrying("pruning", |conn| {
        retention::prune(conn, cutoff, config.batch, config.dry_run)
    })?;
    let verb = if config.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "{verb} before {}: details={} failures={} runs={} (kept: {} unresolved failures, all summaries and rollups)",
        timestamps::display(cutoff),
        pruned.details,
        pruned.failures,
        pruned.runs,
        pruned.kept_unresolved
    );
    Ok(Exit::Done)
}

//! One file per command, each `run(&config) -> Result<Exit>`: the command's whole story at the
//! level of the rooms it calls (`ingest`, `store`, `reports`, `domain`). `period` holds what the
//! reading commands read alike.

mod doctor;
mod failures;
mod forget;
mod ingest;
mod migrate;
mod period;
mod prune;
mod report;
mod retry;
mod rollup;
mod stats;
mod suppressions;

use crate::config::Config;
use crate::error::{Exit, Result};

/// Runs a checked configuration's command.
pub fn run(config: &Config) -> Result<Exit> {
    match config {
        Config::Migrate(env) => migrate::run(env),
        Config::Ingest(c) => ingest::run(c),
        Config::Retry(c) => retry::run(c),
        Config::Rollup(c) => rollup::run(c),
        Config::Stats(c) => stats::run(c),
        Config::Suppressions(c) => suppressions::run(c),
        Config::Report(c) => report::run(c),
        Config::Failures(c) => failures::run(c),
        Config::Prune(c) => prune::run(c),
        Config::Doctor(c) => doctor::run(c),
        Config::Forget(c) => forget::run(c),
    }
}

//! `ses-report ingest`: applies a window of notifications (`ingest::run`), watched by the
//! job's monitor (ping and metrics file) however it ends.

use std::sync::Arc;

use crate::config::IngestConfig;
use crate::error::{Exit, Result};
use crate::ingest;
use crate::ops::Monitor;

pub fn run(config: &IngestConfig) -> Result<Exit> {
    let monitor = Arc::new(monitor_of(config));
    monitor.start();
    let result = ingest::run(config, &monitor);
    monitor.finish(match &result {
        Ok(exit) => *exit,
        Err(error) => error.exit(),
    });
    result
}

/// A dry run is someone trying things out: it neither pings the job's check nor overwrites the
/// metrics of the last real run. A partition's metrics carry its label.
fn monitor_of(config: &IngestConfig) -> Monitor {
    if config.dry_run {
        return Monitor::new(None, None);
    }
    let env = &config.env;
    let monitor = Monitor::new(env.metrics_file.as_deref(), env.ping_url.as_deref());
    if config.partition.is_whole() {
        monitor
    } else {
        monitor.labelled("partition", &config.partition.to_string())
    }
}

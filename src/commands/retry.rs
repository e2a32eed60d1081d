//! `ses-report retry`: an ingest whose source is the kept failures (`source::failures`) rather
//! than a window of the collection; `IngestConfig::retry` chose the source, so the run is the
//! same as `ingest`'s, monitor included.

use crate::config::IngestConfig;
use crate::error::{Exit, Result};

pub fn run(config: &IngestConfig) -> Result<Exit> {
    super::ingest::run(config)
}

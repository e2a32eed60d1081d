//! `ses-report rollup`: rebuilds the daily rollups of some days from the rows.

use crate::config::RollupConfig;
use crate::domain::timestamps;
use crate::error::{Exit, Result};
use crate::ops::progress::Progress;
use crate::store::{retention, rollups, Session};

pub fn run(config: &RollupConfig) -> Result<Exit> {
    let zone = &config.days.zone;
    let mut session = Session::open(&config.env)?;
    let days = config.days.dates();
    let horizon = session.retrying("reading aws_report_retention", retention::pruned_before)?;
    // A day whose details are (even partly) pruned would be rebuilt from what is left: keep it.
    let (kept, days) = rollups::split_at_horizon(days, zone, horizon);
    let progress = Progress::new(Some(days.len() as u64), "days");
    session.retrying("rebuilding the daily rollups", |conn| {
        rollups::recompute(conn, zone, &days, &mut |done| {
            progress.set(done as u64, String::new())
        })
    })?;
    progress.finish();
    print!(
        "rebuilt the rollups of {} day(s), {}",
        days.len(),
        config.days.period()
    );
    match (kept.first(), kept.last(), horizon) {
        (Some(first), Some(last), Some(horizon)) => println!(
            "; kept {} day(s) from {first} to {last} as they are: their details were pruned before {}",
            kept.len(),
            timestamps::display(horizon)
        ),
        _ => println!(),
    }
    Ok(Exit::Done)
}

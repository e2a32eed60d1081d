//! `ses-report stats`: rates and SES verdicts per group, or with `--check` a cron alert.

use crate::commands::period::{assess_groups, check_zone, read_engagement};
use crate::config::StatsConfig;
use crate::domain::figures::GroupBy;
use crate::domain::verdict::Verdict;
use crate::error::{Exit, Result};
use crate::ops;
use crate::reports::stats;
use crate::store::{rollups, Session};

pub fn run(config: &StatsConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    if config.by.iter().all(GroupBy::in_rollups) {
        check_zone(&mut session, &config.days)?;
    }
    let engagement = read_engagement(&mut session, &config.days, &[&config.by])?;
    let groups = assess_groups(
        &mut session,
        &config.days,
        &config.by,
        &config.thresholds,
        &engagement,
    )?;
    let hours = &engagement.hours;
    if let Some(path) = &config.env.metrics_file {
        ops::metrics::update_file(std::path::Path::new(path), |_| {
            stats::metric_families(&config.by, &groups)
        });
    }
    let period = config.days.period();
    let Some(fail_on) = config.check else {
        print!(
            "{}",
            stats::render(config.format, &config.by, &groups, &period, hours)
        );
        return Ok(Exit::Done);
    };
    // Cron alert: silent when healthy, only the offending groups otherwise.
    if groups.is_empty() && !config.allow_empty {
        // No event at all in the period, though earlier days had some: the ingest may not have
        // run, which no rate can show.
        let first = config.days.first;
        let last = session.retrying("reading aws_report_daily", |conn| {
            rollups::last_day_before(conn, first)
        })?;
        if let Some(last) = last {
            println!(
                "no data: no event in {period}, the last day with events is {last}: check that the ingest ran (`ses-report doctor`), or pass --allow-empty when an empty period is expected"
            );
            return Ok(if fail_on == Verdict::Critical {
                Exit::Critical
            } else {
                Exit::Warning
            });
        }
    }
    let offending: Vec<_> = groups
        .into_iter()
        .filter(|g| g.verdict >= fail_on)
        .collect();
    if offending.is_empty() {
        return Ok(Exit::Done);
    }
    if config.format_given {
        print!(
            "{}",
            stats::render(config.format, &config.by, &offending, &period, hours)
        );
    } else {
        print!("{}", stats::alert_lines(&config.by, &offending));
    }
    Ok(
        if offending.iter().any(|g| g.verdict == Verdict::Critical) {
            Exit::Critical
        } else {
            Exit::Warning
        },
    )
}

//! What the reading commands (`stats`, `suppressions`, `report`) read alike: the rollups of
//! a period in one zone, each group's assessment with its timing, the suppression decisions.

use mysql::Conn;
use time::OffsetDateTime;

use crate::config::Days;
use crate::domain::figures::{GroupBy, Totals};
use crate::domain::suppression::{self, Rules, Suppression};
use crate::domain::verdict::{self, GroupStats};
use crate::error::{Error, Result};
use crate::reports::stats;
use crate::store::{classification, evidence, ledger, rollups, Session};

/// Refuses to sum rollups computed in another zone than the days asked for (or in several): a
/// "day" would mean different hours in different rows, silently.
pub fn check_zone(session: &mut Session, days: &Days) -> Result<()> {
    let zones = session.retrying("reading aws_report_daily", |conn| {
        rollups::zones_between(conn, days.first, days.end)
    })?;
    let asked = days.zone.name();
    if zones.iter().all(|z| z == asked) {
        return Ok(());
    }
    Err(Error::NeedsAction {
        problem: format!(
            "the rollups of {} were computed in time zone(s) {}, not in {asked} as asked",
            days.period(),
            zones.join(", ")
        ),
        fix: format!(
            "ses-report rollup --from {} --to {} --tz {asked}",
            days.first, days.end
        ),
    })
}

pub fn totals(session: &mut Session, days: &Days, by: &[GroupBy]) -> Result<Vec<Totals>> {
    if by.iter().all(GroupBy::in_rollups) {
        return session.retrying("reading aws_report_daily", |conn| {
            rollups::totals(conn, days.first, days.end, by)
        });
    }
    session.retrying("reading the summary and detail rows by tag", |conn| {
        rollups::totals_from_rows(conn, &days.zone, days.first, days.end, by)
    })
}

/// What the period's summary and detail rows say about people: each delivered recipient's first
/// human open and click (for the timing figures), and the human opens by hour. Read once per
/// command, whatever groupings are then assessed.
pub struct PeriodEngagement {
    pub firsts: Vec<classification::FirstHuman>,
    pub hours: stats::OpenHours,
}

pub fn read_engagement(session: &mut Session, days: &Days) -> Result<PeriodEngagement> {
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let firsts = session.retrying("reading first human opens and clicks", |conn| {
        classification::first_human_times(conn, from, to)
    })?;
    let opens = session.retrying("reading human opens", |conn| {
        classification::human_open_instants(conn, from, to)
    })?;
    Ok(PeriodEngagement {
        firsts,
        hours: stats::OpenHours::of(&opens, &days.zone),
    })
}

/// Each group's counts, rates, verdict and timing.
pub fn assess_groups(
    session: &mut Session,
    days: &Days,
    by: &[GroupBy],
    min_volume: u64,
    engagement: &PeriodEngagement,
) -> Result<Vec<GroupStats>> {
    let mut groups: Vec<_> = totals(session, days, by)?
        .into_iter()
        .map(|t| verdict::assess(t, min_volume))
        .collect();
    stats::with_timing(&mut groups, &engagement.firsts, by, &days.zone);
    Ok(groups)
}

pub fn decide_suppressions(
    session: &mut Session,
    since: Option<OffsetDateTime>,
    rules: &Rules,
) -> Result<Vec<Suppression>> {
    // The ledger, which every ingest keeps and prune never shrinks.
    let entries = session.retrying("reading the suppression ledger", |conn| {
        ledger::read(conn, since)
    })?;
    let deliveries = session.retrying("reading deliveries", |conn: &mut Conn| {
        evidence::last_deliveries(conn, entries.iter().map(|e| e.email.as_str()))
    })?;
    Ok(suppression::decide_entries(&entries, &deliveries, rules))
}

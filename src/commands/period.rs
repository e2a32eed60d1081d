//! What the reading commands (`stats`, `suppressions`, `report`) read alike: the rollups of
//! a period in one zone, each group's assessment with its timing, the suppression decisions.

use std::collections::{BTreeMap, BTreeSet};

use mysql::Conn;
use time::OffsetDateTime;

use crate::config::Days;
use crate::domain::figures::{GroupBy, Totals};
use crate::domain::suppression::{self, Rules, Suppression};
use crate::domain::timing::TimingTally;
use crate::domain::verdict::{self, GroupStats, Thresholds};
use crate::error::{Error, Result};
use crate::reports::stats;
use crate::store::{classification, delivery, evidence, ledger, rollups, Session};

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

/// What the period's summary and detail rows say about people and delivery: each delivered
/// recipient's first human open and click (for the timing figures), the human opens by hour,
/// and the delivery timing of each grouping the command assesses. Read once per command.
pub struct PeriodEngagement {
    pub firsts: Vec<classification::FirstHuman>,
    pub hours: stats::OpenHours,
    /// Per grouping asked for: the delivery timing of each group.
    delivery: Vec<(Vec<GroupBy>, Tallies)>,
}

/// Reads the period's engagement, and its deliveries and delays tallied for each of `groupings`
/// in one pass over the rows.
pub fn read_engagement(
    session: &mut Session,
    days: &Days,
    groupings: &[&[GroupBy]],
) -> Result<PeriodEngagement> {
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let delivery = read_delivery(session, days, groupings)?;
    let firsts = session.retrying("reading first human opens and clicks", |conn| {
        classification::first_human_times(conn, from, to)
    })?;
    let opens = session.retrying("reading human opens", |conn| {
        classification::human_open_instants(conn, from, to)
    })?;
    Ok(PeriodEngagement {
        firsts,
        hours: stats::OpenHours::of(&opens, &days.zone),
        delivery,
    })
}

/// Each group's counts, rates, verdict and timing.
pub fn assess_groups(
    session: &mut Session,
    days: &Days,
    by: &[GroupBy],
    thresholds: &Thresholds,
    engagement: &PeriodEngagement,
) -> Result<Vec<GroupStats>> {
    let mut groups: Vec<_> = totals(session, days, by)?
        .into_iter()
        .map(|t| verdict::assess(t, thresholds))
        .collect();
    stats::with_timing(&mut groups, &engagement.firsts, by, &days.zone);
    let tallies = engagement.delivery.iter().find(|(b, _)| b.as_slice() == by);
    for g in &mut groups {
        g.delivery = tallies
            .and_then(|(_, t)| t.get(&g.totals.key))
            .map(|t| t.clone().finish());
    }
    Ok(groups)
}

type Tallies = BTreeMap<Vec<String>, TimingTally>;

/// Each grouping's delivery timing: its recipients first delivered in the period, and those
/// delayed in it (each once per delay type and group), in one read of each kind of row.
fn read_delivery(
    session: &mut Session,
    days: &Days,
    groupings: &[&[GroupBy]],
) -> Result<Vec<(Vec<GroupBy>, Tallies)>> {
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let zone = &days.zone;
    let tallies = session.retrying("reading delivery times and delays", |conn| {
        let mut tallies: Vec<Tallies> = vec![BTreeMap::new(); groupings.len()];
        delivery::deliveries(conn, from, to, &mut |dims, delivered| {
            for (by, tally) in groupings.iter().zip(tallies.iter_mut()) {
                tally
                    .entry(dims.key(delivered.delivered_at, by, zone))
                    .or_default()
                    .add_delivery(&delivered);
            }
        })?;
        let mut seen = BTreeSet::new();
        delivery::delays(conn, from, to, &mut |id, dims, at, delay_type| {
            for (i, (by, tally)) in groupings.iter().zip(tallies.iter_mut()).enumerate() {
                let key = dims.key(at, by, zone);
                if seen.insert((i, id, delay_type.clone(), key.clone())) {
                    tally.entry(key).or_default().add_delay(&delay_type);
                }
            }
        })?;
        Ok(tallies)
    })?;
    Ok(groupings.iter().map(|b| b.to_vec()).zip(tallies).collect())
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

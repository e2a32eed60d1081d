//! `ses-report report`: the self-contained HTML deliverability report of a period.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::commands::period::{
    assess_groups, check_zone, decide_suppressions, read_engagement, totals,
};
use crate::config::{Days, ReportConfig};
use crate::domain::bounce::{ReplyTally, TopReplies};
use crate::domain::figures::{Counter, GroupBy, Totals};
use crate::domain::suppression::Rules;
use crate::domain::timestamps;
use crate::domain::verdict::{self, GroupStats, Verdict};
use crate::domain::window::{self, Window};
use crate::error::{Error, Exit, Result};
use crate::reports::html;
use crate::store::{classification, delivery, runs, Session};

pub fn run(config: &ReportConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    check_zone(&mut session, &config.days)?;
    let report = gather(&mut session, config)?;
    std::fs::write(&config.html, html::render(&report))
        .map_err(|e| Error::io(format!("cannot write {}", config.html), e))?;
    println!("wrote {}", config.html);
    Ok(Exit::Done)
}

/// Everything the page shows, read from the rollups, the rows and the ledger.
fn gather(session: &mut Session, config: &ReportConfig) -> Result<html::Report> {
    let days = &config.days;
    let thresholds = &config.thresholds;
    let groupings: [&[GroupBy]; 4] = [
        &[],
        &[GroupBy::Provider],
        &[GroupBy::ConfigurationSet],
        &[GroupBy::SendingIp],
    ];
    let period_engagement = read_engagement(session, days, &groupings)?;
    let assess = |session: &mut Session, by: &[GroupBy]| {
        assess_groups(session, days, by, thresholds, &period_engagement)
    };
    let overall = assess(session, &[])?.into_iter().next();
    let mut providers = assess(session, &[GroupBy::Provider])?;
    providers.sort_by(|a, b| {
        b.totals[Counter::Sent]
            .cmp(&a.totals[Counter::Sent])
            .then(a.totals.key.cmp(&b.totals.key))
    });
    let configuration_sets = assess(session, &[GroupBy::ConfigurationSet])?;
    let sending_ips = assess(session, &[GroupBy::SendingIp])?;
    let report_types: Vec<GroupStats> = totals(session, days, &[GroupBy::ReportType])?
        .into_iter()
        .map(|t| verdict::assess(t, thresholds))
        .collect();
    let drivers = drivers(
        &[
            ("provider", &providers),
            ("report_type", &report_types),
            ("configuration set", &configuration_sets),
            ("sending IP", &sending_ips),
        ],
        thresholds.min_volume,
    );
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let engagement = session.retrying("reading open and click classes", |conn| {
        classification::reasons_between(conn, from, to)
    })?;
    let (all_days, days_without_run) = every_day(session, days)?;
    let now = OffsetDateTime::now_utc();
    Ok(html::Report {
        title: "Email deliverability report".into(),
        period: days.period(),
        overall,
        days: all_days,
        days_without_run,
        report_type_names: config.env.report_type_names.clone(),
        configuration_sets,
        sending_ips,
        drivers,
        generated: format!(
            "ses-report {} at {}",
            env!("CARGO_PKG_VERSION"),
            timestamps::display(now.replace_nanosecond(0).unwrap_or(now))
        ),
        report_types,
        worst_domains: worst_domains(session, days)?,
        top_replies: top_replies(session, days)?,
        suppressions: suppressions_by_reason(session, config.env.now)?,
        providers,
        engagement,
        open_hours: period_engagement.hours,
    })
}

/// The ten domains with the most permanent bounces and complaints: (domain, bounces,
/// complaints, sent).
fn worst_domains(session: &mut Session, days: &Days) -> Result<Vec<(String, u64, u64, u64)>> {
    let mut domains: Vec<(String, u64, u64, u64)> = totals(session, days, &[GroupBy::Domain])?
        .into_iter()
        .map(|t| {
            (
                t.key[0].clone(),
                t[Counter::PermanentBounces],
                t[Counter::Complaints],
                t[Counter::Sent],
            )
        })
        .filter(|d| d.1 + d.2 > 0)
        .collect();
    domains.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
    domains.truncate(10);
    Ok(domains)
}

/// The five most frequent replies of each bounce class in the period.
fn top_replies(session: &mut Session, days: &Days) -> Result<TopReplies> {
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let tally = session.retrying("reading the bounces' replies", |conn| {
        let mut tally = ReplyTally::default();
        delivery::bounce_replies(conn, from, to, &mut |class, diagnostic| {
            tally.add(class, diagnostic)
        })?;
        Ok(tally)
    })?;
    Ok(tally.top(5))
}

/// How many addresses the default rules suppress, per reason.
fn suppressions_by_reason(
    session: &mut Session,
    now: OffsetDateTime,
) -> Result<Vec<(String, u64)>> {
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for s in decide_suppressions(session, None, &Rules::at(now))? {
        *by_reason.entry(s.reason.to_string()).or_default() += 1;
    }
    Ok(by_reason.into_iter().collect())
}

/// Who crosses a threshold, low-volume groups included (their rates count in the whole).
fn drivers(groupings: &[(&str, &Vec<GroupStats>)], min_volume: u64) -> Vec<String> {
    let mut drivers = Vec::new();
    for (name, groups) in groupings {
        for g in groups.iter() {
            let crossed = verdict::crossed(g);
            if crossed.is_empty() {
                continue;
            }
            let key = g.totals.key.first().map(String::as_str).unwrap_or("");
            let low = if g.verdict == Verdict::LowVolume {
                format!(", low volume (under {min_volume})")
            } else {
                String::new()
            };
            drivers.push(format!(
                "{name} {}: {} ({} {}{low})",
                if key.is_empty() { "(none)" } else { key },
                crossed.join("; "),
                g.volume,
                g.volume_basis.name()
            ));
        }
    }
    drivers
}

/// Every day of the period, those without events at zero; and the days no completed run covers.
fn every_day(session: &mut Session, days: &Days) -> Result<(Vec<Totals>, Vec<String>)> {
    let mut per_day = totals(session, days, &[GroupBy::Day])?;
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let windows = session.retrying("reading aws_report_runs", |conn| {
        runs::completed_windows(conn, from, to)
    })?;
    let mut all_days = Vec::new();
    let mut days_without_run = Vec::new();
    for day in days.dates() {
        let key = day.to_string();
        if !window::covered_by(Window::day(&days.zone, day), &windows) {
            days_without_run.push(key.clone());
        }
        match per_day.iter().position(|t| t.key.first() == Some(&key)) {
            Some(i) => all_days.push(per_day.swap_remove(i)),
            None => all_days.push(Totals {
                key: vec![key],
                counts: [0; Counter::ALL.len()],
            }),
        }
    }
    Ok((all_days, days_without_run))
}

//! The reading commands: `rollup`, `stats`, `suppressions` and `report --html`. Each takes its
//! checked configuration, opens MySQL, checks the schema, and turns rollups and detail rows into
//! answers: the figures model (`figures`), the verdicts and output formats (`stats`), the
//! suppression rules (`suppressions`) and the HTML page (`html`) are pure; `store` reads.

pub mod html;
pub mod stats;
pub mod suppressions;

use std::collections::BTreeMap;

use mysql::Conn;
use time::OffsetDateTime;

use crate::config::Format;
use crate::config::{Days, ReportConfig, RollupConfig, StatsConfig, SuppressionsConfig};
use crate::domain::figures::{Counter, GroupBy, Totals};
use crate::domain::suppression::{self, Rules, Suppression};
use crate::domain::timestamps;
use crate::domain::verdict::{self, Verdict};
use crate::error::{Error, Exit, Result};
use crate::ops;
use crate::ops::progress::Progress;
use crate::store::{engagement, evidence, ledger, retention, rollups, runs, Session};

/// Columns padded to their widest cell, two spaces apart: a table for a person at a terminal.
pub fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// CSV text (RFC 4180 quoting, by the `csv` crate) of a header and rows: the one writer behind
/// every CSV output (stats, suppressions, failures).
pub fn csv_text<I, R, C>(header: &[&str], rows: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut writer = csv::WriterBuilder::new()
        .flexible(false)
        .from_writer(Vec::new());
    // Writing into memory only fails on a row of another length: a bug, shown rather than hidden.
    let mut write = |record: csv::ByteRecord| {
        if let Err(e) = writer.write_byte_record(&record) {
            log::error!("CSV output: {e}");
        }
    };
    write(header.iter().collect());
    for row in rows {
        write(row.into_iter().collect());
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

pub fn run_rollup(config: &RollupConfig) -> Result<Exit> {
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

/// Refuses to sum rollups computed in another zone than the days asked for (or in several): a
/// "day" would mean different hours in different rows, silently.
fn check_zone(session: &mut Session, days: &Days) -> Result<()> {
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

fn totals(session: &mut Session, days: &Days, by: &[GroupBy]) -> Result<Vec<Totals>> {
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
struct PeriodEngagement {
    firsts: Vec<engagement::FirstHuman>,
    hours: stats::OpenHours,
}

fn read_engagement(session: &mut Session, days: &Days) -> Result<PeriodEngagement> {
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let firsts = session.retrying("reading first human opens and clicks", |conn| {
        engagement::first_human_times(conn, from, to)
    })?;
    let opens = session.retrying("reading human opens", |conn| {
        engagement::human_open_instants(conn, from, to)
    })?;
    Ok(PeriodEngagement {
        firsts,
        hours: stats::OpenHours::of(&opens, &days.zone),
    })
}

/// Each group's counts, rates, verdict and timing.
fn assess_groups(
    session: &mut Session,
    days: &Days,
    by: &[GroupBy],
    min_volume: u64,
    engagement: &PeriodEngagement,
) -> Result<Vec<verdict::GroupStats>> {
    let mut groups: Vec<_> = totals(session, days, by)?
        .into_iter()
        .map(|t| verdict::assess(t, min_volume))
        .collect();
    stats::with_timing(&mut groups, &engagement.firsts, by, &days.zone);
    Ok(groups)
}

pub fn run_stats(config: &StatsConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    if config.by.iter().all(GroupBy::in_rollups) {
        check_zone(&mut session, &config.days)?;
    }
    let engagement = read_engagement(&mut session, &config.days)?;
    let groups = assess_groups(
        &mut session,
        &config.days,
        &config.by,
        config.min_volume,
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

pub fn run_suppressions(config: &SuppressionsConfig) -> Result<Exit> {
    // SES's list first: a file that cannot be read fails before any connection.
    let ses_list = match &config.reconcile {
        None => None,
        Some(path) => {
            let text = if path == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Error::io("cannot read SES's list from stdin", e))?
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("cannot read {path}"), e))?
            };
            Some(
                suppressions::read_ses_list(&text)
                    .map_err(|e| Error::usage(format!("--reconcile {path}: {e}")))?,
            )
        }
    };
    let mut session = Session::open(&config.env)?;
    let mut rules = config.rules.clone();
    // Reconciling compares with everything SES suppresses, its own suppressions included.
    rules.include_ses_suppressed |= ses_list.is_some();
    let mut rows = decide_suppressions(&mut session, config.since, &rules)?;
    if let Some((days, _)) = rules.sunset {
        let from = rules.now - days;
        let engagement = session.retrying("reading deliveries and human engagement", |conn| {
            evidence::delivery_histories_between(conn, from, rules.now)
        })?;
        rows.extend(suppression::sunset(&engagement, &rules));
        rows.sort_by(|a, b| (&a.email, a.reason).cmp(&(&b.email, b.reason)));
    }
    if let Some(ses) = ses_list {
        let differences = suppressions::reconcile(&rows, &ses);
        print!(
            "{}",
            match config.format {
                Format::Json => suppressions::differences_json(&differences),
                _ => suppressions::differences_csv(&differences),
            }
        );
        return Ok(Exit::Done);
    }
    print!(
        "{}",
        match config.format {
            Format::Json => suppressions::to_json(&rows),
            _ => suppressions::to_csv(&rows),
        }
    );
    Ok(Exit::Done)
}

fn decide_suppressions(
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

pub fn run_report(config: &ReportConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    check_zone(&mut session, &config.days)?;
    let days = &config.days;
    let per_day = totals(&mut session, days, &[GroupBy::Day])?;
    let report_types = totals(&mut session, days, &[GroupBy::ReportType])?
        .into_iter()
        .map(|t| verdict::assess(t, config.min_volume))
        .collect();
    let mut domains: Vec<(String, u64, u64, u64)> = totals(&mut session, days, &[GroupBy::Domain])?
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
    let rules = Rules::at(config.env.now);
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for s in decide_suppressions(&mut session, None, &rules)? {
        *by_reason.entry(s.reason.to_string()).or_default() += 1;
    }
    let period_engagement = read_engagement(&mut session, days)?;
    let mut providers = assess_groups(
        &mut session,
        days,
        &[GroupBy::Provider],
        config.min_volume,
        &period_engagement,
    )?;
    let overall = assess_groups(
        &mut session,
        days,
        &[],
        config.min_volume,
        &period_engagement,
    )?
    .into_iter()
    .next();
    providers.sort_by(|a, b| {
        b.totals[Counter::Sent]
            .cmp(&a.totals[Counter::Sent])
            .then(a.totals.key.cmp(&b.totals.key))
    });
    let (from, to) = (days.zone.start_of(days.first), days.zone.start_of(days.end));
    let engagement = session.retrying("reading open and click classes", |conn| {
        engagement::reasons_between(conn, from, to)
    })?;
    let configuration_sets = assess_groups(
        &mut session,
        days,
        &[GroupBy::ConfigurationSet],
        config.min_volume,
        &period_engagement,
    )?;
    let sending_ips = assess_groups(
        &mut session,
        days,
        &[GroupBy::SendingIp],
        config.min_volume,
        &period_engagement,
    )?;
    // Who crosses a threshold, low-volume groups included (their rates count in the whole).
    let mut drivers = Vec::new();
    for (name, groups) in [
        ("provider", &providers),
        ("report_type", &report_types),
        ("configuration set", &configuration_sets),
        ("sending IP", &sending_ips),
    ] {
        for g in groups {
            let crossed = verdict::crossed(g);
            if crossed.is_empty() {
                continue;
            }
            let key = g.totals.key.first().map(String::as_str).unwrap_or("");
            let low = if g.verdict == Verdict::LowVolume {
                format!(", low volume (under {})", config.min_volume)
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
    // Every day of the period, those without events at zero; and which no completed run covers.
    let windows = session.retrying("reading aws_report_runs", |conn| {
        runs::completed_windows(conn, from, to)
    })?;
    let mut per_day = per_day;
    let mut all_days = Vec::new();
    let mut days_without_run = Vec::new();
    for day in days.dates() {
        let key = day.to_string();
        if !crate::domain::window::covered_by(days.zone.day(day), &windows) {
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
    let now = OffsetDateTime::now_utc();
    let report = html::Report {
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
        worst_domains: domains,
        suppressions: by_reason.into_iter().collect(),
        providers,
        engagement,
        open_hours: period_engagement.hours,
    };
    std::fs::write(&config.html, html::render(&report))
        .map_err(|e| Error::io(format!("cannot write {}", config.html), e))?;
    println!("wrote {}", config.html);
    Ok(Exit::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_nothing_else() {
        let text = csv_text(
            &["a", "b"],
            [
                vec!["plain".to_string(), "with, comma".to_string()],
                vec!["say \"hi\"".to_string(), "two\nlines".to_string()],
                vec![String::new(), "x".to_string()],
            ],
        );
        assert_eq!(
            text,
            "a,b\nplain,\"with, comma\"\n\"say \"\"hi\"\"\",\"two\nlines\"\n,x\n"
        );
    }
}

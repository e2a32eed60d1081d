//! The reading subcommands: `rollup`, `stats`, `suppressions` and `report --html`. Each opens
//! MySQL, checks the schema, and turns rollups and detail rows into answers.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use mysql::Conn;
use time::{Date, Duration};

use crate::cli::{DayRange, ReportArgs, RollupArgs, StatsArgs, SuppressionsArgs};
use crate::config::Environment;
use crate::error::{Exit, Fatal};
use crate::html;
use crate::rollup::{self, GroupBy};
use crate::stats::{self, Format, Verdict};
use crate::store::{self, SqlContext};
use crate::suppression::{self, Rules};
use crate::window::{self, Zone};

fn open(env: &Environment) -> Result<Conn, Fatal> {
    let (mut conn, database) = store::connect(env)?;
    store::check_schema(&mut conn, &database)?;
    Ok(conn)
}

/// The whole days `[first, end)` a command covers: `--date`, `--from`/`--to` (instants are widened
/// to the days that contain them), or by default the `default_days` full days before today.
pub fn day_range(
    range: &DayRange,
    env: &Environment,
    default_days: i64,
) -> Result<(Zone, Date, Date), Fatal> {
    let zone = match &range.tz {
        Some(tz) => Zone::named(tz).map_err(|e| Fatal::usage(format!("--tz: {e}")))?,
        None => env.zone.clone(),
    };
    let usage = |flag: &str, e: String| Fatal::usage(format!("{flag}: {e}"));
    let today = zone.date_of(env.now).map_err(Fatal::new)?;
    let (first, end) = match (&range.date, &range.from, &range.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(Fatal::usage("give either --date or --from/--to, not both"))
        }
        (Some(date), None, None) => {
            let d = window::parse_date(date).map_err(|e| usage("--date", e))?;
            (
                d,
                d.next_day()
                    .ok_or_else(|| Fatal::usage("--date is out of range"))?,
            )
        }
        (None, None, Some(_)) => return Err(Fatal::usage("--to needs --from")),
        (None, Some(from), to) => {
            let from = window::parse_bound(from, &zone).map_err(|e| usage("--from", e))?;
            let first = zone.date_of(from).map_err(Fatal::new)?;
            let end = match to {
                None => today,
                Some(to) => {
                    let to = window::parse_bound(to, &zone).map_err(|e| usage("--to", e))?;
                    let day = zone.date_of(to).map_err(Fatal::new)?;
                    if zone.start_of(day).map_err(Fatal::new)? == to {
                        day
                    } else {
                        day.next_day().unwrap_or(day)
                    }
                }
            };
            if end < first {
                return Err(Fatal::usage("--to is before --from"));
            }
            (first, end)
        }
        (None, None, None) => (today - Duration::days(default_days), today),
    };
    Ok((zone, first, end))
}

fn period(first: Date, end: Date, zone: &Zone) -> String {
    let last = end.previous_day().unwrap_or(end);
    if last <= first {
        format!("{first} ({})", zone.name())
    } else {
        format!("{first} to {last} ({})", zone.name())
    }
}

pub fn run_rollup(args: &RollupArgs, env: &Environment) -> Result<Exit, Fatal> {
    if args.date.is_none() && args.from.is_none() {
        return Err(Fatal::usage("rollup needs --date or --from"));
    }
    let (zone, first, end) = day_range(&args.range(), env, 0)?;
    let mut conn = open(env)?;
    let days: BTreeSet<Date> = rollup::days_between(first, end.previous_day().unwrap_or(end))
        .into_iter()
        .filter(|d| *d < end)
        .collect();
    rollup::recompute(&mut conn, &zone, &days)
        .map_err(|e| Fatal::new(format!("rebuilding rollups: {e}")))?;
    println!(
        "rebuilt the rollups of {} day(s), {}",
        days.len(),
        period(first, end, &zone)
    );
    Ok(Exit::Done)
}

pub fn run_stats(args: &StatsArgs, env: &Environment) -> Result<Exit, Fatal> {
    let (zone, first, end) = day_range(&args.range(), env, 7)?;
    let by: Vec<GroupBy> = args
        .by
        .iter()
        .map(|b| GroupBy::parse(b))
        .collect::<Result<_, _>>()
        .map_err(Fatal::usage)?;
    let format = match &args.format {
        Some(f) => Format::parse(f).map_err(Fatal::usage)?,
        None if std::io::stdout().is_terminal() => Format::Table,
        None => Format::Csv,
    };
    let fail_on = match args.fail_on.as_str() {
        "critical" => Verdict::Critical,
        "warning" => Verdict::Warning,
        other => {
            return Err(Fatal::usage(format!(
                "--fail-on {other:?}: want critical or warning"
            )))
        }
    };
    let mut conn = open(env)?;
    let groups: Vec<_> = rollup::totals(&mut conn, first, end, &by)
        .sql_context("reading aws_report_daily")?
        .into_iter()
        .map(|t| stats::assess(t, args.min_volume))
        .collect();
    let period = period(first, end, &zone);
    if !args.check {
        print!("{}", stats::render(format, &by, &groups, &period));
        return Ok(Exit::Done);
    }
    // Cron alert: silent when healthy, only the offending groups otherwise.
    let offending: Vec<_> = groups
        .into_iter()
        .filter(|g| g.verdict >= fail_on)
        .collect();
    if offending.is_empty() {
        return Ok(Exit::Done);
    }
    print!("{}", stats::render(format, &by, &offending, &period));
    Ok(
        if offending.iter().any(|g| g.verdict == Verdict::Critical) {
            Exit::Critical
        } else {
            Exit::Warning
        },
    )
}

pub fn run_suppressions(args: &SuppressionsArgs, env: &Environment) -> Result<Exit, Fatal> {
    let format = match args.format.as_str() {
        "csv" => Format::Csv,
        "json" => Format::Json,
        other => {
            return Err(Fatal::usage(format!(
                "--format {other:?}: want csv or json"
            )))
        }
    };
    let since = match &args.since {
        Some(s) => {
            window::parse_bound(s, &env.zone).map_err(|e| Fatal::usage(format!("--since: {e}")))?
        }
        None => crate::timestamps::parse("1000-01-01T00:00:00Z").map_err(Fatal::new)?,
    };
    let rules = Rules {
        include_ses_suppressed: args.include_ses_suppressed,
        soft_limit: args.soft_limit,
        soft_window: Duration::days(args.soft_window_days as i64),
        now: env.now,
    };
    let mut conn = open(env)?;
    let rows = suppressions(&mut conn, since, &rules)?;
    print!(
        "{}",
        if format == Format::Json {
            suppression::to_json(&rows)
        } else {
            suppression::to_csv(&rows)
        }
    );
    Ok(Exit::Done)
}

fn suppressions(
    conn: &mut Conn,
    since: time::OffsetDateTime,
    rules: &Rules,
) -> Result<Vec<suppression::Suppression>, Fatal> {
    let evidence = suppression::evidence(conn, since)
        .sql_context("reading bounces, complaints and unsubscribes")?;
    let deliveries = suppression::last_deliveries(conn, evidence.iter().map(|e| e.email.as_str()))
        .sql_context("reading deliveries")?;
    Ok(suppression::decide(&evidence, &deliveries, rules))
}

pub fn run_report(args: &ReportArgs, env: &Environment) -> Result<Exit, Fatal> {
    let (zone, first, end) = day_range(&args.range(), env, 7)?;
    let mut conn = open(env)?;
    let read = |conn: &mut Conn, by: &[GroupBy]| {
        rollup::totals(conn, first, end, by).sql_context("reading aws_report_daily")
    };
    let overall = read(&mut conn, &[])?
        .into_iter()
        .next()
        .map(|t| stats::assess(t, args.min_volume));
    let days = read(&mut conn, &[GroupBy::Day])?;
    let report_types = read(&mut conn, &[GroupBy::ReportType])?
        .into_iter()
        .map(|t| stats::assess(t, args.min_volume))
        .collect();
    let mut domains: Vec<(String, u64, u64, u64)> = read(&mut conn, &[GroupBy::Domain])?
        .into_iter()
        .map(|t| {
            (
                t.key[0].clone(),
                t.get("permanent_bounces"),
                t.get("complaints"),
                t.get("sent"),
            )
        })
        .filter(|d| d.1 + d.2 > 0)
        .collect();
    domains.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
    domains.truncate(10);
    let rules = Rules {
        include_ses_suppressed: false,
        soft_limit: 3,
        soft_window: Duration::days(30),
        now: env.now,
    };
    let since = crate::timestamps::parse("1000-01-01T00:00:00Z").map_err(Fatal::new)?;
    let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
    for s in suppressions(&mut conn, since, &rules)? {
        *by_reason.entry(s.reason.to_string()).or_default() += 1;
    }
    let report = html::Report {
        title: "Email deliverability report".into(),
        period: period(first, end, &zone),
        overall,
        days,
        report_types,
        worst_domains: domains,
        suppressions: by_reason.into_iter().collect(),
    };
    std::fs::write(&args.html, html::render(&report))
        .map_err(|e| Fatal::new(format!("cannot write {}: {e}", args.html)))?;
    println!("wrote {}", args.html);
    Ok(Exit::Done)
}

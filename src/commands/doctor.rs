//! `ses-report doctor`: what no ingest can show an operator. Documents no window selects (no
//! `Timestamp`, another type, a string not in the SNS form) are never applied and never failures;
//! a missing `Timestamp` index makes every window a collection scan; a database behind the
//! binary's schema stops every command; rollups that differ from their rows ("drift") mislead
//! every report. Each finding says what to run. Read-only: the drift check recomputes inside a
//! transaction it rolls back.

use crate::config::DoctorConfig;
use crate::domain::timestamps;
use crate::error::{Error, Exit, Result};
use crate::source::envelope::TimestampShape;
use crate::source::mongo;
use crate::store::{self, failures, migrations, retention, rollups, SqlContext};

/// One line of the report.
struct Finding {
    needs_fix: bool,
    text: String,
}

fn ok(text: impl Into<String>) -> Finding {
    Finding {
        needs_fix: false,
        text: format!("ok    {}", text.into()),
    }
}

fn fix(text: impl Into<String>) -> Finding {
    Finding {
        needs_fix: true,
        text: format!("FIX   {}", text.into()),
    }
}

fn note(text: impl Into<String>) -> Finding {
    Finding {
        needs_fix: false,
        text: format!("note  {}", text.into()),
    }
}

pub fn run(config: &DoctorConfig) -> Result<Exit> {
    let env = &config.env;
    let mut findings = Vec::new();
    findings.extend(collection_findings(config)?);

    let (mut conn, database) = store::connect(env)?;
    findings.push(transport_finding(&store::transport(env, &mut conn)?));
    match migrations::check_schema(&mut conn, &database) {
        Ok(()) => findings.push(ok(format!(
            "database {database} is at schema version {}",
            migrations::schema_version()
        ))),
        Err(e @ Error::Schema { .. }) => {
            findings.push(fix(e.to_string()));
            return report(&findings);
        }
        Err(e) => return Err(e),
    }

    findings.extend(rollup_findings(&mut conn, config)?);
    let pending = rollups::pending_days(&mut conn).sql_context("reading aws_report_dirty_days")?;
    findings.push(if pending == 0 {
        ok("no changed day waits for its rollup")
    } else {
        fix(format!(
            "{pending} changed day(s) wait for their rollup (a run failed before it): the next ingest recomputes them, or run `ses-report ingest`"
        ))
    });
    findings.extend(erasure_finding(&mut conn, config)?);
    let unresolved =
        failures::open_failure_count(&mut conn).sql_context("reading aws_report_failures")?;
    if unresolved > 0 {
        findings.push(note(format!(
            "{unresolved} record(s) could not be applied: `ses-report failures` lists them, `ses-report retry` re-applies them"
        )));
    }
    report(&findings)
}

/// Once addresses were erased, every ingest needs the key they were hashed with
/// (docs/privacy.md): whether this environment has it.
fn erasure_finding(conn: &mut mysql::Conn, config: &DoctorConfig) -> Result<Option<Finding>> {
    let key = config.env.erasure_key.as_ref();
    let (hashes, other_key) =
        store::erasure::erased_hashes(conn, key).sql_context("reading aws_report_erasures")?;
    let n = hashes.len();
    Ok(match (n, key) {
        (0, _) => None,
        (_, None) => Some(fix(format!(
            "{n} address(es) were erased and SES_REPORT_ERASURE_KEY is not set: ingest and retry refuse to start until it is the key `forget` used"
        ))),
        (_, Some(_)) if other_key => Some(fix(format!(
            "{n} address(es) were erased under another SES_REPORT_ERASURE_KEY than this one: ingest and retry refuse to start until it is the key `forget` used"
        ))),
        _ => Some(ok(format!(
            "{n} erased address(es), recognized with this SES_REPORT_ERASURE_KEY"
        ))),
    })
}

/// Whether the MySQL connection is encrypted and checked (docs/compatibility.md, "TLS").
fn transport_finding(t: &store::Transport) -> Finding {
    let mode = t.mode.name();
    match (&t.tls, t.mode) {
        (Some((version, cipher)), store::tls::SslMode::VerifyIdentity) => ok(format!(
            "the MySQL connection to {} uses TLS ({version}, {cipher}) with ssl-mode={mode}: the server's certificate and host name are checked",
            t.host
        )),
        (Some((version, cipher)), _) if !t.local => note(format!(
            "the MySQL connection to {} uses TLS ({version}, {cipher}) but ssl-mode={mode} does not check the server's {}: set ssl-mode=VERIFY_IDENTITY (and ssl-ca=PATH for a private CA) in SES_REPORT_MYSQL_URL",
            t.host,
            if t.mode == store::tls::SslMode::VerifyCa { "host name" } else { "certificate" }
        )),
        (Some((version, _)), _) => ok(format!(
            "the MySQL connection to {} is local and uses TLS ({version}) with ssl-mode={mode}",
            t.host
        )),
        (None, _) if t.local => ok(format!(
            "the MySQL connection to {} is local (ssl-mode={mode}, not encrypted)",
            t.host
        )),
        (None, _) => note(format!(
            "the MySQL connection to {} is not encrypted (ssl-mode={mode}{}): the password and the rows cross the network in clear; enable TLS on the server and set ssl-mode=VERIFY_IDENTITY in SES_REPORT_MYSQL_URL",
            t.host,
            if t.mode == store::tls::SslMode::Preferred { ", and the server offers no TLS" } else { "" }
        )),
    }
}

/// The rollups of the days asked for: computed in this zone, equal to a recomputation from the
/// rows (drift), and which days the retention horizon leaves unchecked.
fn rollup_findings(conn: &mut mysql::Conn, config: &DoctorConfig) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let days = &config.days;
    let horizon = retention::pruned_before(conn).sql_context("reading aws_report_retention")?;
    let (pruned, checked) = rollups::split_at_horizon(days.dates(), &days.zone, horizon);
    let zones = rollups::zones_between(conn, days.first, days.end)
        .sql_context("reading aws_report_daily")?;
    let others: Vec<&String> = zones.iter().filter(|z| *z != days.zone.name()).collect();
    // Rollups of another zone's days would all differ from this zone's recomputation: that is
    // no drift, and says nothing about whether they match their rows.
    let drifted = if others.is_empty() {
        rollups::drift(conn, &days.zone, &checked).sql_context("recomputing rollups to compare")?
    } else {
        Vec::new()
    };
    if !others.is_empty() {
        let names: Vec<&str> = others.iter().map(|z| z.as_str()).collect();
        findings.push(fix(format!(
            "the rollups of {} were computed in the time zone {}, not {}: check them with `ses-report doctor --from {} --to {} --tz {}`, or rebuild them in {} with `ses-report rollup --from {} --to {} --tz {}`",
            days.period(),
            names.join(", "),
            days.zone.name(),
            days.first,
            days.end,
            names[0],
            days.zone.name(),
            days.first,
            days.end,
            days.zone.name()
        )));
    } else if drifted.is_empty() {
        findings.push(ok(format!(
            "the rollups of {} ({} day(s) checked) equal a recomputation from the rows",
            days.period(),
            checked.len()
        )));
    } else {
        let names: Vec<String> = drifted.iter().map(ToString::to_string).collect();
        let last = drifted
            .last()
            .and_then(|d| d.next_day())
            .unwrap_or(days.end);
        findings.push(fix(format!(
            "drift: the stored rollups of {} differ from the rows: run `ses-report rollup --from {} --to {last} --tz {}`",
            names.join(", "),
            names[0],
            days.zone.name()
        )));
    }
    if let (false, Some(horizon)) = (pruned.is_empty(), horizon) {
        findings.push(note(format!(
            "{} day(s) before the retention horizon {} are not checked: their details are pruned",
            pruned.len(),
            timestamps::display(horizon)
        )));
    }
    Ok(findings)
}

/// The notifications collection: documents per `Timestamp` shape, and the index.
fn collection_findings(config: &DoctorConfig) -> Result<Vec<Finding>> {
    let env = &config.env;
    match mongo::check_collection(&mongo::mongo_client(env)?, env) {
        Ok(()) => {}
        Err(e @ Error::Config { .. }) => return Ok(vec![fix(e.to_string())]),
        Err(e) => return Err(e),
    }
    let namespace = format!("{}.{}", env.mongo_db, env.mongo_collection);
    let census = mongo::timestamp_census(env, config.examples)?;
    let count = |shape| census.counts.get(&shape).copied().unwrap_or(0);
    let examples = |shape| {
        census
            .examples
            .get(&shape)
            .cloned()
            .unwrap_or_default()
            .join(", ")
    };
    let mut findings = vec![ok(format!(
        "{namespace}: {} document(s), {} with a BSON date Timestamp, {} with an SNS-form string",
        census.counts.values().sum::<u64>(),
        count(TimestampShape::Date),
        count(TimestampShape::SnsString)
    ))];
    let invisible = [
        (TimestampShape::Missing, "without a Timestamp"),
        (
            TimestampShape::WrongType,
            "whose Timestamp is neither a date nor a string",
        ),
    ];
    for (shape, what) in invisible {
        if count(shape) > 0 {
            findings.push(fix(format!(
                "{} document(s) {what}: no window selects them, so they are never applied nor failed (_id: {}); give them the SNS Timestamp, or ingest them with --file",
                count(shape),
                examples(shape)
            )));
        }
    }
    if count(TimestampShape::OtherString) > 0 {
        findings.push(fix(format!(
            "{} document(s) with a Timestamp string not in the SNS form (2026-11-27T13:42:12.183Z): the window compares strings as text, so they fall in the wrong window or none (_id: {}); store Timestamp as a date or as SNS writes it",
            count(TimestampShape::OtherString),
            examples(TimestampShape::OtherString)
        )));
    }
    findings.push(if mongo::has_timestamp_index(env)? {
        ok(format!("{namespace} has an index on Timestamp"))
    } else {
        fix(format!(
            "{namespace} has no index on Timestamp: every window scans the whole collection; create one (db.{}.createIndex({{Timestamp: 1}}))",
            env.mongo_collection
        ))
    });
    Ok(findings)
}

fn report(findings: &[Finding]) -> Result<Exit> {
    for f in findings {
        println!("{}", f.text);
    }
    Ok(if findings.iter().any(|f| f.needs_fix) {
        Exit::NeedsCare
    } else {
        Exit::Done
    })
}

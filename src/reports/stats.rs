//! `stats`' output: the groups (`domain::verdict`) as a table, CSV, JSON, alert lines or
//! Prometheus gauges, with the time to first human open and click and the hours people read.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::reports::csv_text;
use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::config::Format;
use crate::domain::bounce::BounceClass;
use crate::domain::figures::{Counter, GroupBy};
use crate::domain::timing::{DeliveryTiming, Latency};
use crate::domain::verdict::{crossed, GroupStats, Spread, Verdict, VolumeBasis};
use crate::domain::zone::Zone;
use crate::ops::metrics::{self, Family};
use crate::store::classification::FirstHuman;

/// `--check`'s alert for a person: one line per offending group, naming the group, what crossed
/// which threshold, and the volume (`provider apple: complaint rate 5.26% >= 0.5% (critical), 19
/// sent`).
pub fn alert_lines(by: &[GroupBy], groups: &[GroupStats]) -> String {
    let names = key_names(by);
    let mut out = String::new();
    for g in groups {
        let label = if by.is_empty() {
            "all mail".to_string()
        } else {
            names
                .iter()
                .zip(&g.totals.key)
                .map(|(n, v)| format!("{n} {}", if v.is_empty() { "(none)" } else { v }))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "{label}: {}, {} {}\n",
            crossed(g).join("; "),
            g.volume,
            g.volume_basis.name()
        ));
    }
    out
}

const RATES: [&str; 8] = [
    "bounce_rate",
    "complaint_rate",
    "delivery_rate",
    "open_rate",
    "click_rate",
    "human_open_rate",
    "human_click_rate",
    "block_rate",
];

fn rates(g: &GroupStats) -> [Option<f64>; 8] {
    [
        g.bounce_rate,
        g.complaint_rate,
        g.delivery_rate,
        g.open_rate,
        g.click_rate,
        g.human_open_rate,
        g.human_click_rate,
        g.block_rate,
    ]
}

/// The delivery-timing columns of the CSV, and their values for a group.
const TIMING_COLUMNS: [&str; 8] = [
    "first_attempt_share",
    "send_to_delivery_median_ms",
    "send_to_delivery_p95_ms",
    "send_to_delivery_p99_ms",
    "processing_median_ms",
    "processing_p95_ms",
    "processing_p99_ms",
    "delays_by_type",
];

fn timing_cells(timing: Option<&DeliveryTiming>) -> Vec<String> {
    let Some(t) = timing else {
        return vec![String::new(); TIMING_COLUMNS.len()];
    };
    let latency = |l: Option<Latency>| -> [String; 3] {
        match l {
            Some(l) => [l.median_ms, l.p95_ms, l.p99_ms].map(|v| v.to_string()),
            None => Default::default(),
        }
    };
    let mut cells = vec![t
        .first_attempt_share()
        .map(|r| format!("{r:.6}"))
        .unwrap_or_default()];
    cells.extend(latency(t.send_to_delivery));
    cells.extend(latency(t.processing));
    // One cell: `MailboxFull=3;IPFailure=1`.
    cells.push(
        t.delays_by_type
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";"),
    );
    cells
}

fn latency_json(latency: Option<Latency>) -> Value {
    match latency {
        Some(l) => {
            json!({"count": l.count, "median_ms": l.median_ms, "p95_ms": l.p95_ms, "p99_ms": l.p99_ms})
        }
        None => Value::Null,
    }
}

/// A group's delivery timing in JSON (`null` when nothing was delivered or delayed in it).
fn timing_json(timing: Option<&DeliveryTiming>) -> Value {
    match timing {
        Some(t) => json!({
            "delivered": t.delivered,
            "first_attempt": t.first_attempt,
            "first_attempt_share": t.first_attempt_share(),
            "send_to_delivery": latency_json(t.send_to_delivery),
            "processing_time": latency_json(t.processing),
            "delays": t.delays(),
            "delays_by_type": t.delays_by_type,
        }),
        None => Value::Null,
    }
}

/// A group's bounces by class, every class named (0 included).
fn classes_json(g: &GroupStats) -> Value {
    let classes: serde_json::Map<String, Value> = BounceClass::ALL
        .iter()
        .map(|c| {
            (
                c.as_str().to_string(),
                json!(g.totals[Counter::of_class(*c)]),
            )
        })
        .collect();
    Value::Object(classes)
}

fn key_names(by: &[GroupBy]) -> Vec<String> {
    if by.is_empty() {
        vec!["group".to_string()]
    } else {
        by.iter().map(GroupBy::name).collect()
    }
}

fn spread_json(spread: Option<Spread>) -> Value {
    match spread {
        Some(s) => {
            json!({"count": s.count, "median_seconds": s.median_seconds, "p90_seconds": s.p90_seconds})
        }
        None => Value::Null,
    }
}

/// Fills in each group's time from delivery to first human open and click.
pub fn with_timing(groups: &mut [GroupStats], rows: &[FirstHuman], by: &[GroupBy], zone: &Zone) {
    let mut spans: BTreeMap<Vec<String>, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for row in rows {
        let key = row.dims.key(row.delivered_at, by, zone);
        let slot = spans.entry(key).or_default();
        let since = |at: OffsetDateTime| (at - row.delivered_at).whole_seconds().max(0);
        slot.0.extend(row.first_open.map(since));
        slot.1.extend(row.first_click.map(since));
    }
    for g in groups {
        if let Some((opens, clicks)) = spans.remove(&g.totals.key) {
            g.time_to_open = Spread::of(opens);
            g.time_to_click = Spread::of(clicks);
        }
    }
}

/// Human opens by hour of the day, on a zone's clock: when people read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenHours {
    pub zone: String,
    pub counts: [u64; 24],
}

impl OpenHours {
    pub fn of(instants: &[OffsetDateTime], zone: &Zone) -> OpenHours {
        let mut counts = [0u64; 24];
        for at in instants {
            counts[usize::from(zone.hour_of(*at)).min(23)] += 1;
        }
        OpenHours {
            zone: zone.name().to_string(),
            counts,
        }
    }
}

fn key_values(by: &[GroupBy], g: &GroupStats) -> Vec<String> {
    if by.is_empty() {
        vec!["all".to_string()]
    } else {
        g.totals.key.clone()
    }
}

/// The groups as Prometheus gauges (`ops::metrics`): each rate per group (labels: the `--by`
/// keys), the volume, and the verdict as one series per state (1 for the group's, 0 otherwise).
pub fn metric_families(by: &[GroupBy], groups: &[GroupStats]) -> Vec<Family> {
    let label_names: Vec<String> = by.iter().map(|g| metrics::label_name(&g.name())).collect();
    let labels = |g: &GroupStats| -> Vec<(String, String)> {
        label_names
            .iter()
            .cloned()
            .zip(g.totals.key.iter().cloned())
            .collect()
    };
    let mut families = Vec::new();
    for (i, name) in RATES.iter().enumerate() {
        let mut family = Family::gauge(
            &format!("ses_report_{name}"),
            &format!("{} of the period ses-report stats last covered, per group, as a fraction (from SES events).", name.replace('_', " ")),
        );
        for g in groups {
            if let Some(rate) = rates(g)[i] {
                family.add(labels(g), rate);
            }
        }
        families.push(family);
    }
    let mut volume = Family::gauge(
        "ses_report_volume",
        "Recipients the rates are measured against (sent, or without Send events deliveries + bounces + rejects).",
    );
    let mut verdict = Family::gauge(
        "ses_report_verdict",
        "The group's standing against SES's thresholds: 1 for its verdict, 0 for the others.",
    );
    for g in groups {
        volume.add(labels(g), g.volume as f64);
        for v in [
            Verdict::LowVolume,
            Verdict::Healthy,
            Verdict::Warning,
            Verdict::Critical,
        ] {
            let mut l = labels(g);
            l.push(("verdict".into(), v.name().into()));
            verdict.add(l, f64::from(u8::from(g.verdict == v)));
        }
    }
    families.push(volume);
    families.push(verdict);
    families
}

/// Renders groups as a table, CSV or JSON. `period` is printed in the table's and JSON's header.
pub fn render(
    format: Format,
    by: &[GroupBy],
    groups: &[GroupStats],
    period: &str,
    hours: &OpenHours,
) -> String {
    match format {
        Format::Csv => to_csv(by, groups),
        Format::Json => to_json(by, groups, period, hours),
        Format::Table => to_table(by, groups, period),
    }
}

/// One line per group: keys, every counter, volume, rates, verdict.
fn to_csv(by: &[GroupBy], groups: &[GroupStats]) -> String {
    let mut header: Vec<&str> = Vec::new();
    let names = key_names(by);
    header.extend(names.iter().map(String::as_str));
    header.extend(Counter::ALL.map(Counter::column));
    header.extend(["volume", "volume_basis"]);
    header.extend(RATES);
    header.push("verdict");
    header.extend(TIMING_COLUMNS);
    csv_text(
        &header,
        groups.iter().map(|g| {
            let mut cells: Vec<String> = key_values(by, g);
            cells.extend(g.totals.counts.iter().map(u64::to_string));
            cells.push(g.volume.to_string());
            cells.push(g.volume_basis.name().to_string());
            cells.extend(
                rates(g)
                    .iter()
                    .map(|r| r.map(|r| format!("{r:.6}")).unwrap_or_default()),
            );
            cells.push(g.verdict.name().to_string());
            cells.extend(timing_cells(g.delivery.as_ref()));
            cells
        }),
    )
}

/// The period, the groups with their timing, and the hours people read.
fn to_json(by: &[GroupBy], groups: &[GroupStats], period: &str, hours: &OpenHours) -> String {
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut row = serde_json::Map::new();
            for (name, value) in key_names(by).iter().zip(key_values(by, g)) {
                row.insert(name.to_string(), json!(value));
            }
            for (counter, count) in Counter::ALL.iter().zip(g.totals.counts) {
                if counter.class().is_none() {
                    row.insert(counter.column().to_string(), json!(count));
                }
            }
            row.insert("bounces_by_class".into(), classes_json(g));
            row.insert("volume".into(), json!(g.volume));
            row.insert("volume_basis".into(), json!(g.volume_basis.name()));
            for (name, rate) in RATES.iter().zip(rates(g)) {
                row.insert(name.to_string(), json!(rate));
            }
            row.insert("verdict".into(), json!(g.verdict.name()));
            row.insert(
                "time_to_first_human_open".into(),
                spread_json(g.time_to_open),
            );
            row.insert(
                "time_to_first_human_click".into(),
                spread_json(g.time_to_click),
            );
            row.insert("delivery_timing".into(), timing_json(g.delivery.as_ref()));
            Value::Object(row)
        })
        .collect();
    let doc = json!({
        "period": period,
        "note": "rates are computed from SES events and approximate AWS's own reputation figures",
        "groups": rows,
        "human_opens_by_hour": {"time_zone": hours.zone, "counts": hours.counts},
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

/// The table's header and rows, as text.
fn table_cells(by: &[GroupBy], groups: &[GroupStats]) -> Vec<Vec<String>> {
    let mut header: Vec<String> = key_names(by);
    header.extend(
        [
            "sent",
            "delivered",
            "bounced",
            "soft",
            "complaints",
            "opens",
            "clicks",
            "unsubs",
        ]
        .map(String::from),
    );
    header.extend(
        [
            "bounce%",
            "complaint%",
            "delivery%",
            "open%",
            "human-open%",
            "click%",
            "human-click%",
            "block%",
            "verdict",
        ]
        .map(String::from),
    );
    let pct = |r: Option<f64>, digits: usize| {
        r.map(|r| format!("{:.*}", digits, r * 100.0))
            .unwrap_or("-".into())
    };
    let mut rows: Vec<Vec<String>> = vec![header];
    for g in groups {
        let t = &g.totals;
        let mut row = key_values(by, g);
        for c in [
            Counter::Sent,
            Counter::Delivered,
            Counter::PermanentBounces,
            Counter::TransientBounces,
            Counter::Complaints,
            Counter::UniqueOpens,
            Counter::UniqueClicks,
            Counter::Unsubscribes,
        ] {
            row.push(t[c].to_string());
        }
        row.push(pct(g.bounce_rate, 2));
        row.push(pct(g.complaint_rate, 3));
        row.push(pct(g.delivery_rate, 1));
        row.push(pct(g.open_rate, 1));
        row.push(pct(g.human_open_rate, 1));
        row.push(pct(g.click_rate, 1));
        row.push(pct(g.human_click_rate, 1));
        row.push(pct(g.block_rate, 2));
        row.push(g.verdict.name().to_string());
        rows.push(row);
    }
    rows
}

/// For a person: the main counters and rates in aligned columns.
fn to_table(by: &[GroupBy], groups: &[GroupStats], period: &str) -> String {
    let rows = table_cells(by, groups);
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "deliverability {period} (rates approximate AWS's own figures)"
    );
    if groups
        .iter()
        .any(|g| g.volume_basis == VolumeBasis::Outcomes)
    {
        let _ = writeln!(
            out,
            "groups without Send events are measured against deliveries + bounces + rejects"
        );
    }
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < key_names(by).len() {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    if groups.is_empty() {
        let _ = writeln!(out, "(no rollups in this period: run `ses-report rollup` if data was ingested before rollups existed)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::figures::Dimensions;
    use crate::domain::verdict::{assess, example_group};

    #[test]
    fn csv_and_json_carry_the_same_values() {
        let mut g = example_group(200, 180, 12);
        g.totals.counts[Counter::UniqueOpens as usize] = 90;
        g.totals.counts[Counter::HumanUniqueOpens as usize] = 36;
        g.totals.counts[Counter::BouncesInvalidAddress as usize] = 6;
        g.totals.counts[Counter::BouncesReputation as usize] = 5;
        g.totals.counts[Counter::BouncesPolicy as usize] = 1;
        let mut tally = crate::domain::timing::TimingTally::default();
        let at = time::macros::datetime!(2026-11-27 10:00 UTC);
        for (seconds, delayed) in [(1, false), (2, false), (30, true)] {
            tally.add_delivery(&crate::domain::timing::Delivered {
                sent_at: Some(at - time::Duration::seconds(seconds)),
                delivered_at: at,
                first_delay_at: delayed.then_some(at - time::Duration::seconds(20)),
                processing_ms: Some(seconds * 1000 - 100),
            });
        }
        tally.add_delay("MailboxFull");
        let g = GroupStats {
            time_to_open: Spread::of(vec![60, 120, 3600]),
            delivery: Some(tally.finish()),
            ..assess(
                g.totals,
                &crate::domain::verdict::Thresholds::with_min_volume(100),
            )
        };
        let groups = vec![g];
        let hours = OpenHours {
            zone: "UTC".into(),
            counts: [1; 24],
        };
        let csv = render(Format::Csv, &[GroupBy::Domain], &groups, "p", &hours);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("domain,sent,delivered,"));
        assert!(lines[0].contains(
            ",unsubscribes,bounces_invalid_address,bounces_mailbox_full,bounces_mailbox_disabled,bounces_reputation,bounces_policy,"
        ));
        assert!(lines[0].ends_with(
            ",open_rate,click_rate,human_open_rate,human_click_rate,block_rate,verdict,first_attempt_share,send_to_delivery_median_ms,send_to_delivery_p95_ms,send_to_delivery_p99_ms,processing_median_ms,processing_p95_ms,processing_p99_ms,delays_by_type"
        ));
        assert!(lines[1].starts_with("example.com,200,180,"));
        assert!(
            lines[1].ends_with(
                ",0.060000,0.000000,0.900000,0.500000,0.000000,0.200000,0.000000,0.030000,warning,0.666667,2000,30000,30000,1900,29900,29900,MailboxFull=1"
            ),
            "{}",
            lines[1]
        );
        let json: Value = serde_json::from_str(&render(
            Format::Json,
            &[GroupBy::Domain],
            &groups,
            "p",
            &hours,
        ))
        .unwrap();
        assert_eq!(json["groups"][0]["bounce_rate"], 0.06);
        assert_eq!(json["groups"][0]["human_unique_opens"], 36);
        assert_eq!(json["groups"][0]["human_open_rate"], 0.2);
        assert_eq!(json["groups"][0]["verdict"], "warning");
        assert_eq!(json["groups"][0]["block_rate"], 0.03);
        assert_eq!(json["groups"][0]["bounces_by_class"]["invalid-address"], 6);
        assert_eq!(json["groups"][0]["bounces_by_class"]["reputation"], 5);
        assert_eq!(json["groups"][0]["bounces_by_class"]["unclassified"], 0);
        assert_eq!(json["groups"][0]["bounces_reputation"], Value::Null);
        assert_eq!(
            json["groups"][0]["delivery_timing"],
            json!({
                "delivered": 3, "first_attempt": 2, "first_attempt_share": 2.0 / 3.0,
                "send_to_delivery": {"count": 3, "median_ms": 2000, "p95_ms": 30000, "p99_ms": 30000},
                "processing_time": {"count": 3, "median_ms": 1900, "p95_ms": 29900, "p99_ms": 29900},
                "delays": 1, "delays_by_type": {"MailboxFull": 1},
            })
        );
        assert_eq!(
            json["groups"][0]["time_to_first_human_open"],
            json!({"count": 3, "median_seconds": 120, "p90_seconds": 3600})
        );
        assert_eq!(json["groups"][0]["time_to_first_human_click"], Value::Null);
        assert_eq!(json["human_opens_by_hour"]["counts"][23], 1);
        let table = render(Format::Table, &[GroupBy::Domain], &groups, "p", &hours);
        assert!(
            table.contains("6.00") && table.contains("warning") && table.contains("20.0"),
            "{table}"
        );
    }

    #[test]
    fn timing_groups_follow_the_keys_including_tags() {
        let delivered = time::macros::datetime!(2026-11-27 23:30 UTC);
        let row = |provider: &str, tags: Option<&str>, open_after: i64| FirstHuman {
            dims: Dimensions {
                report_type: 1,
                source: "s@x".into(),
                recipient: "a@acme.example".into(),
                mailbox_provider: provider.into(),
                configuration_set: "main".into(),
                sending_ip: "198.51.100.7".into(),
                tags: tags.map(str::to_string),
            },
            delivered_at: delivered,
            first_open: Some(delivered + time::Duration::seconds(open_after)),
            first_click: None,
        };
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let r = row("google", Some(r#"{"campaign":["fall"]}"#), 60);
        assert_eq!(
            r.dims.key(
                r.delivered_at,
                &[
                    GroupBy::Day,
                    GroupBy::Provider,
                    GroupBy::Tag("campaign".into())
                ],
                &tokyo
            ),
            vec!["2026-11-28", "google", "fall"]
        );
        assert_eq!(
            r.dims.key(
                r.delivered_at,
                &[GroupBy::Domain, GroupBy::Tag("none".into())],
                &tokyo
            ),
            vec!["acme.example", ""]
        );
        let mut groups = vec![example_group(200, 180, 0), example_group(200, 180, 0)];
        groups[0].totals.key = vec!["google".into()];
        groups[1].totals.key = vec!["microsoft".into()];
        let rows = vec![
            row("google", None, 60),
            row("google", None, 600),
            row("yahoo", None, 5),
        ];
        with_timing(&mut groups, &rows, &[GroupBy::Provider], &tokyo);
        assert_eq!(
            groups[0].time_to_open.map(|s| (s.count, s.median_seconds)),
            Some((2, 60))
        );
        assert_eq!(groups[1].time_to_open, None);
    }
}

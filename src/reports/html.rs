//! `ses-report report --html`: one self-contained HTML file (inline CSS and SVG, no scripts,
//! nothing fetched) for the people who read deliverability: headline figures, daily volumes,
//! rate trends against SES's thresholds, why mail bounced (classes and block rate per provider,
//! the most frequent replies), delivery timing, the worst recipient domains, one row per
//! report_type, and the suppression list by reason. Rendering is pure: `Report` in, text out.

use std::fmt::Write as _;

use crate::domain::bounce::{BounceClass, TopReplies};
use crate::domain::figures::{Counter, Totals};
use crate::domain::timing::{DeliveryTiming, Latency};
use crate::domain::verdict::{verdict, GroupStats, Spread, Verdict};
use crate::reports::stats::OpenHours;

pub struct Report {
    pub title: String,
    pub period: String,
    pub overall: Option<GroupStats>,
    /// One per day, in order (key: `YYYY-MM-DD`).
    pub days: Vec<Totals>,
    pub report_types: Vec<GroupStats>,
    /// (domain, permanent bounces, complaints, sent), worst first.
    pub worst_domains: Vec<(String, u64, u64, u64)>,
    /// (reason, addresses)
    pub suppressions: Vec<(String, u64)>,
    /// One per mailbox provider, with timing.
    pub providers: Vec<GroupStats>,
    /// (event type, `automated` reason or `None` for human, rows)
    pub engagement: Vec<(String, Option<String>, u64)>,
    pub open_hours: OpenHours,
    /// Days of `days` (their keys) that no completed ingest run covers.
    pub days_without_run: Vec<String>,
    /// What `report_type` numbers mean (`SES_REPORT_REPORT_TYPE_NAMES`).
    pub report_type_names: std::collections::BTreeMap<String, String>,
    pub configuration_sets: Vec<GroupStats>,
    pub sending_ips: Vec<GroupStats>,
    /// The most frequent reply patterns of each bounce class.
    pub top_replies: TopReplies,
    /// The groups whose rates cross a threshold, in words, low-volume ones included and marked.
    pub drivers: Vec<String>,
    /// When and by which version the page was made.
    pub generated: String,
}

/// A duration in seconds, as people read it.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} d", s as f64 / 86_400.0),
    }
}

fn spread(s: Option<Spread>) -> String {
    s.map(|s| {
        format!(
            "{} / {}",
            duration(s.median_seconds),
            duration(s.p90_seconds)
        )
    })
    .unwrap_or_else(|| "–".into())
}

/// A bar chart of 24 hourly counts, as inline SVG.
fn hour_chart(title: &str, hours: &OpenHours) -> String {
    let (w, h, left, top, bottom) = (760.0, 220.0, 48.0, 28.0, 32.0);
    let plot_w = w - left - 16.0;
    let plot_h = h - top - bottom;
    let max = hours.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = plot_w / 24.0;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{t}\">\
         <text class=\"chart-title\" x=\"{left}\" y=\"18\">{t}</text>\
         <text class=\"axis\" x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{max}</text>",
        t = escape(title),
        lx = left - 6.0,
        ty = top + 4.0,
        max = max as u64,
    );
    for (hour, count) in hours.counts.iter().enumerate() {
        let bar_h = *count as f64 / max * plot_h;
        let x = left + hour as f64 * slot + 2.0;
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bar_h:.1}\" fill=\"#2563eb\"><title>{hour:02}:00 {count}</title></rect>",
            y = top + plot_h - bar_h,
            bw = slot - 4.0,
        );
        if hour % 3 == 0 {
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{cx:.1}\" y=\"{ly}\" text-anchor=\"middle\">{hour:02}</text>",
                cx = x + (slot - 4.0) / 2.0,
                ly = h - 12.0,
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(rate: Option<f64>, digits: usize) -> String {
    rate.map(|r| format!("{:.*}%", digits, r * 100.0))
        .unwrap_or_else(|| "–".into())
}

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    values: Vec<f64>,
}

/// A chart's geometry: the SVG box, the plot area inside it, the value scale.
struct Plot {
    w: f64,
    h: f64,
    left: f64,
    top: f64,
    plot_w: f64,
    plot_h: f64,
    max_value: f64,
    /// Points on the x axis.
    n: usize,
    as_percent: bool,
}

impl Plot {
    fn new(n: usize, max_value: f64, as_percent: bool) -> Plot {
        let (w, h, left, right, top, bottom) = (760.0, 260.0, 64.0, 150.0, 28.0, 36.0);
        Plot {
            w,
            h,
            left,
            top,
            plot_w: w - left - right,
            plot_h: h - top - bottom,
            max_value,
            n: n.max(1),
            as_percent,
        }
    }

    fn x(&self, i: usize) -> f64 {
        self.left
            + if self.n == 1 {
                self.plot_w / 2.0
            } else {
                self.plot_w * i as f64 / (self.n - 1) as f64
            }
    }

    fn y(&self, v: f64) -> f64 {
        self.top + self.plot_h - self.plot_h * (v / self.max_value)
    }

    fn fmt(&self, v: f64) -> String {
        if self.as_percent {
            format!("{:.2}%", v * 100.0)
        } else {
            format!("{v:.0}")
        }
    }

    /// The x of the legend column, right of the plot.
    fn legend_x(&self) -> f64 {
        self.left + self.plot_w + 8.0
    }
}

/// A line chart as inline SVG, with optional horizontal threshold lines.
fn line_chart(
    title: &str,
    labels: &[String],
    series: &[Series<'_>],
    thresholds: &[(&str, f64, &str)],
    as_percent: bool,
) -> String {
    let max_value = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .chain(thresholds.iter().map(|t| t.1 * 1.15))
        .fold(0.0_f64, f64::max)
        .max(if as_percent { 0.001 } else { 1.0 });
    let plot = Plot::new(labels.len(), max_value, as_percent);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg">"#,
        w = plot.w,
        h = plot.h,
        t = escape(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="18" class="chart-title">{}</text>"#,
        escape(title),
        left = plot.left
    );
    axes(&mut svg, &plot, labels);
    for (label, value, color) in thresholds {
        let _ = write!(
            svg,
            r#"<line x1="{left}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="{color}" stroke-dasharray="6 4"/><text x="{lx}" y="{ly:.1}" class="legend" fill="{color}">{label}</text>"#,
            left = plot.left,
            x2 = plot.left + plot.plot_w,
            yy = plot.y(*value),
            lx = plot.legend_x(),
            ly = plot.y(*value) + 4.0,
            label = escape(label)
        );
    }
    for (k, s) in series.iter().enumerate() {
        lines(&mut svg, &plot, labels, k, s);
    }
    svg.push_str("</svg>");
    svg
}

/// The value grid with its labels, and the x labels (at most about ten).
fn axes(svg: &mut String, plot: &Plot, labels: &[String]) {
    for step in 0..=4 {
        let v = plot.max_value * step as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e7eb"/><text x="{tx}" y="{ty:.1}" class="axis" text-anchor="end">{label}</text>"##,
            left = plot.left,
            x2 = plot.left + plot.plot_w,
            yy = plot.y(v),
            tx = plot.left - 6.0,
            ty = plot.y(v) + 4.0,
            label = plot.fmt(v)
        );
    }
    let every = (plot.n / 10).max(1);
    for (i, label) in labels.iter().enumerate() {
        if i % every == 0 || i == plot.n - 1 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
                plot.x(i),
                plot.h - 12.0,
                escape(label)
            );
        }
    }
}

/// One series: its line, a point with a tooltip per day, and its legend entry (the `k`th).
fn lines(svg: &mut String, plot: &Plot, labels: &[String], k: usize, s: &Series<'_>) {
    let points: Vec<String> = s
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", plot.x(i), plot.y(*v)))
        .collect();
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{}" stroke-width="2.5" points="{}"/>"#,
        s.color,
        points.join(" ")
    );
    for (i, v) in s.values.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{} {}: {}</title></circle>"#,
            plot.x(i),
            plot.y(*v),
            s.color,
            escape(s.name),
            escape(&labels[i]),
            plot.fmt(*v)
        );
    }
    let _ = write!(
        svg,
        r#"<rect x="{lx}" y="{ly}" width="12" height="12" fill="{c}"/><text x="{tx}" y="{ty}" class="legend">{name}</text>"#,
        lx = plot.legend_x(),
        ly = plot.top + 4.0 + 20.0 * k as f64,
        c = s.color,
        tx = plot.left + plot.plot_w + 26.0,
        ty = plot.top + 14.0 + 20.0 * k as f64,
        name = escape(s.name)
    );
}

/// The share of an event type's rows that are machines', as a percentage.
fn machine_share(engagement: &[(String, Option<String>, u64)], event_type: &str) -> String {
    let of_type = || engagement.iter().filter(|(t, _, _)| t == event_type);
    let all: u64 = of_type().map(|(_, _, n)| n).sum();
    let machine: u64 = of_type()
        .filter(|(_, r, _)| r.is_some())
        .map(|(_, _, n)| n)
        .sum();
    pct((all > 0).then(|| machine as f64 / all as f64), 1)
}

/// Human against machine engagement: each reason's opens and clicks, and when people open.
fn engagement_section(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Human and machine engagement</h2><p class=\"note\">Every open and click is kept; those \
         below that are not human (Apple Mail Privacy Protection prefetches, security scanners, \
         opt-out links) are left out of the human rates. The rules and their sources are in docs/engagement.md.</p>",
    );
    let mut reasons: Vec<Option<&str>> = report
        .engagement
        .iter()
        .map(|(_, r, _)| r.as_deref())
        .collect();
    reasons.sort();
    reasons.dedup();
    let rows_of = |event_type: &str, reason: Option<&str>| -> u64 {
        report
            .engagement
            .iter()
            .filter(|(t, r, _)| t == event_type && r.as_deref() == reason)
            .map(|(_, _, n)| n)
            .sum()
    };
    out.push_str(&list_table(
        &["classified as", "opens", "clicks"],
        reasons.iter().map(|reason| {
            format!(
                "<td>{}</td><td>{}</td><td>{}</td>",
                escape(reason.unwrap_or("human")),
                rows_of("Open", *reason),
                rows_of("Click", *reason)
            )
        }),
        "no opens or clicks",
    ));
    out.push_str(&hour_chart(
        &format!("Human opens by hour of day ({})", report.open_hours.zone),
        &report.open_hours,
    ));
    out
}

/// One column of a table of groups: its header and its cell (already escaped or numeric).
type Column = (&'static str, fn(&GroupStats) -> String);

const SENT: Column = ("sent", |g| g.totals[Counter::Sent].to_string());
const DELIVERED: Column = ("delivered", |g| g.totals[Counter::Delivered].to_string());
const BOUNCE_RATE: Column = ("bounce rate", |g| pct(g.bounce_rate, 2));
const COMPLAINT_RATE: Column = ("complaint rate", |g| pct(g.complaint_rate, 3));
const OPEN_RATE: Column = ("open rate", |g| pct(g.open_rate, 1));
const HUMAN_OPEN_RATE: Column = ("human open rate", |g| pct(g.human_open_rate, 1));
const CLICK_RATE: Column = ("click rate", |g| pct(g.click_rate, 1));
const HUMAN_CLICK_RATE: Column = ("human click rate", |g| pct(g.human_click_rate, 1));
const UNSUBSCRIBES: Column = ("unsubscribes", |g| {
    g.totals[Counter::Unsubscribes].to_string()
});
const FIRST_HUMAN_OPEN: Column = ("first human open (median / p90)", |g| {
    spread(g.time_to_open)
});
const FIRST_HUMAN_CLICK: Column = ("first human click (median / p90)", |g| {
    spread(g.time_to_click)
});

const BLOCK_RATE: Column = ("block rate", |g| pct(g.block_rate, 2));

/// The bounces of one class, a column per class in `BounceClass::ALL` order.
const CLASS_COLUMNS: [Column; 9] = [
    ("invalid address", |g| {
        class_cell(g, BounceClass::InvalidAddress)
    }),
    ("mailbox full", |g| class_cell(g, BounceClass::MailboxFull)),
    ("mailbox disabled", |g| {
        class_cell(g, BounceClass::MailboxDisabled)
    }),
    ("reputation", |g| class_cell(g, BounceClass::Reputation)),
    ("policy", |g| class_cell(g, BounceClass::Policy)),
    ("content", |g| class_cell(g, BounceClass::Content)),
    ("rate limit", |g| class_cell(g, BounceClass::RateLimit)),
    ("technical", |g| class_cell(g, BounceClass::Technical)),
    ("unclassified", |g| class_cell(g, BounceClass::Unclassified)),
];

fn class_cell(g: &GroupStats, class: BounceClass) -> String {
    g.totals[Counter::of_class(class)].to_string()
}

/// A latency as `median / p95 / p99`.
fn latency(l: Option<Latency>) -> String {
    let ms = |v: i64| {
        if v < 10_000 {
            format!("{:.1} s", v as f64 / 1000.0)
        } else {
            duration(v / 1000)
        }
    };
    l.map(|l| format!("{} / {} / {}", ms(l.median_ms), ms(l.p95_ms), ms(l.p99_ms)))
        .unwrap_or_else(|| "–".into())
}

const TIMING_COLUMNS: [Column; 5] = [
    ("delivered", |g| {
        g.delivery
            .as_ref()
            .map(|t| t.delivered.to_string())
            .unwrap_or_else(|| "0".into())
    }),
    ("at first attempt", |g| {
        pct(
            g.delivery
                .as_ref()
                .and_then(DeliveryTiming::first_attempt_share),
            1,
        )
    }),
    ("send to delivery (median / p95 / p99)", |g| {
        latency(g.delivery.as_ref().and_then(|t| t.send_to_delivery))
    }),
    ("SES processing time (median / p95 / p99)", |g| {
        latency(g.delivery.as_ref().and_then(|t| t.processing))
    }),
    ("delays by type", |g| {
        let Some(t) = &g.delivery else {
            return String::new();
        };
        let cells: Vec<String> = t
            .delays_by_type
            .iter()
            .map(|(k, v)| format!("{} {v}", escape(k)))
            .collect();
        cells.join(", ")
    }),
];

/// Why mail did not arrive: bounce classes and block rate per provider, the most frequent
/// replies of each class, delivery timing per provider.
fn why_mail_did_not_arrive(report: &Report) -> String {
    let mut body = String::from("<h2>Why mail bounced, by mailbox provider</h2>");
    let mut columns = vec![SENT];
    columns.extend(CLASS_COLUMNS);
    columns.push(BLOCK_RATE);
    body.push_str(&group_table("provider", &report.providers, &columns));
    body.push_str(
        "<p class=\"note\">Block rate: reputation and policy bounces over the volume; \
         the receiving servers refused the sender, not the address.</p>",
    );
    body.push_str("<h2>Most frequent replies per class</h2>");
    body.push_str(&list_table(
        &[
            "class",
            "reply (addresses, IPs and ids taken out)",
            "bounces",
        ],
        report.top_replies.iter().flat_map(|(class, replies)| {
            replies.iter().map(move |(reply, n)| {
                format!(
                    "<td>{class}</td><td class=\"reply\">{}</td><td>{n}</td>",
                    escape(reply)
                )
            })
        }),
        "no bounces",
    ));
    body.push_str("<h2>Delivery timing by mailbox provider</h2>");
    body.push_str(&group_table("provider", &report.providers, &TIMING_COLUMNS));
    body
}

/// A table with a row per group: its key, the columns, and its verdict.
fn group_table(key_header: &str, groups: &[GroupStats], columns: &[Column]) -> String {
    let mut out = format!("<table><tr><th>{}</th>", escape(key_header));
    for (header, _) in columns {
        let _ = write!(out, "<th>{header}</th>");
    }
    out.push_str("<th>verdict</th></tr>");
    for g in groups {
        let _ = write!(
            out,
            "<tr><td>{}</td>",
            escape(g.totals.key.first().map(String::as_str).unwrap_or(""))
        );
        for (_, cell) in columns {
            let _ = write!(out, "<td>{}</td>", cell(g));
        }
        let _ = write!(
            out,
            "<td class=\"{}\">{}</td></tr>",
            verdict_class(g.verdict),
            g.verdict.name()
        );
    }
    if groups.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\">none</td></tr>",
            columns.len() + 2
        );
    }
    out.push_str("</table>");
    out
}

/// Rates, verdicts and timing per mailbox provider.
fn provider_table(providers: &[GroupStats]) -> String {
    format!(
        "<h2>By mailbox provider</h2>{}",
        group_table(
            "provider",
            providers,
            &[
                SENT,
                DELIVERED,
                BOUNCE_RATE,
                COMPLAINT_RATE,
                BLOCK_RATE,
                OPEN_RATE,
                HUMAN_OPEN_RATE,
                HUMAN_CLICK_RATE,
                FIRST_HUMAN_OPEN,
                FIRST_HUMAN_CLICK,
            ],
        )
    )
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Critical => "critical",
        Verdict::Warning => "warning",
        Verdict::Healthy => "healthy",
        Verdict::LowVolume => "low",
    }
}

pub fn render(report: &Report) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"period\">{}</p>",
        escape(&report.title),
        escape(&report.period)
    );
    for section in [
        tiles,
        drivers,
        daily_charts,
        engagement_section,
        |r: &Report| provider_table(&r.providers),
        why_mail_did_not_arrive,
        worst_domains,
        group_tables,
        suppression_counts,
    ] {
        body.push_str(&section(report));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{css}</style></head><body>{body}\
         <footer>Generated by {generated}. Rates are computed from SES events and approximate AWS's own figures.</footer></body></html>\n",
        title = escape(&report.title),
        generated = escape(&report.generated),
        css = CSS,
    )
}

/// The period's headline figures, each rate coloured by its verdict.
fn tiles(report: &Report) -> String {
    let mut body = String::new();
    match &report.overall {
        None => body.push_str("<p class=\"empty\">No rollups in this period.</p>"),
        Some(o) => {
            let t = &o.totals;
            let tiles = [
                ("Sent", t[Counter::Sent].to_string(), ""),
                ("Delivered", t[Counter::Delivered].to_string(), ""),
                ("Delivery rate", pct(o.delivery_rate, 1), ""),
                (
                    "Bounce rate",
                    pct(o.bounce_rate, 2),
                    verdict_class(verdict(
                        t[Counter::Sent],
                        t[Counter::Delivered],
                        t[Counter::PermanentBounces],
                        0,
                        0,
                    )),
                ),
                (
                    "Complaint rate",
                    pct(o.complaint_rate, 3),
                    verdict_class(verdict(
                        t[Counter::Sent],
                        t[Counter::Delivered],
                        0,
                        t[Counter::Complaints],
                        0,
                    )),
                ),
                ("Unique open rate", pct(o.open_rate, 1), ""),
                ("Human open rate", pct(o.human_open_rate, 1), ""),
                ("Unique click rate", pct(o.click_rate, 1), ""),
                ("Human click rate", pct(o.human_click_rate, 1), ""),
                (
                    "Machine opens",
                    machine_share(&report.engagement, "Open"),
                    "",
                ),
                (
                    "First human open (median / p90)",
                    spread(o.time_to_open),
                    "",
                ),
                (
                    "Verdict",
                    o.verdict.name().to_string(),
                    verdict_class(o.verdict),
                ),
            ];
            body.push_str("<section class=\"tiles\">");
            for (label, value, class) in tiles {
                let _ = write!(body, "<div class=\"tile {class}\"><div class=\"label\">{label}</div><div class=\"value\">{}</div></div>", escape(&value));
            }
            body.push_str("</section>");
        }
    }
    body
}

/// The groups that cross a threshold.
fn drivers(report: &Report) -> String {
    let mut body = String::new();
    if !report.drivers.is_empty() {
        body.push_str("<h2>What drives the verdict</h2><ul class=\"drivers\">");
        for line in &report.drivers {
            let _ = write!(body, "<li>{}</li>", escape(line));
        }
        body.push_str("</ul><p class=\"note\">Groups under the minimum volume get no verdict of their own, but their rates count in the whole: they are listed, marked low volume.</p>");
    }
    body
}

/// Volume and reputation rates per day; a day no completed run covers is starred, so that a
/// failed ingest does not pass for a quiet day.
fn daily_charts(report: &Report) -> String {
    if report.days.is_empty() {
        return String::new();
    }
    let labels: Vec<String> = report
        .days
        .iter()
        .map(|d| {
            let day = d.key.first().cloned().unwrap_or_default();
            if report.days_without_run.contains(&day) {
                format!("{day}*")
            } else {
                day
            }
        })
        .collect();
    let mut body = volume_chart(report, &labels);
    body.push_str("<h2>Reputation rates</h2><p class=\"note\">Computed from SES events: approximations of AWS's own figures.</p>");
    body.push_str(&line_chart(
        "Bounce rate (permanent bounces / sent)",
        &labels,
        &[Series {
            name: "bounce rate",
            color: "#d97706",
            values: daily_rate(report, Counter::PermanentBounces, Counter::Sent),
        }],
        &[
            ("5% review", 0.05, "#ca8a04"),
            ("10% pause", 0.10, "#dc2626"),
        ],
        true,
    ));
    body.push_str(&line_chart(
        "Complaint rate (complaints / delivered)",
        &labels,
        &[Series {
            name: "complaint rate",
            color: "#dc2626",
            values: daily_rate(report, Counter::Complaints, Counter::Delivered),
        }],
        &[
            ("0.1% review", 0.001, "#ca8a04"),
            ("0.5% pause", 0.005, "#dc2626"),
        ],
        true,
    ));
    body
}

/// Recipients sent, delivered, bounced and complained per day, and which days no run covers.
fn volume_chart(report: &Report, labels: &[String]) -> String {
    let mut body = String::new();
    let count = |counter: Counter| {
        report
            .days
            .iter()
            .map(|d| d[counter] as f64)
            .collect::<Vec<_>>()
    };
    let bounced: Vec<f64> = report
        .days
        .iter()
        .map(|d| {
            (d[Counter::PermanentBounces]
                + d[Counter::TransientBounces]
                + d[Counter::UndeterminedBounces]) as f64
        })
        .collect();
    body.push_str("<h2>Daily volume</h2>");
    body.push_str(&line_chart(
        "Recipients per day",
        labels,
        &[
            Series {
                name: "sent",
                color: "#2563eb",
                values: count(Counter::Sent),
            },
            Series {
                name: "delivered",
                color: "#16a34a",
                values: count(Counter::Delivered),
            },
            Series {
                name: "bounced",
                color: "#d97706",
                values: bounced,
            },
            Series {
                name: "complained",
                color: "#dc2626",
                values: count(Counter::Complaints),
            },
        ],
        &[],
        false,
    ));
    if !report.days_without_run.is_empty() {
        let _ = write!(
            body,
            "<p class=\"note no-run\">* No completed ingest covers {}: its figures may be missing, not quiet (see <code>ses-report doctor</code>).</p>",
            escape(&report.days_without_run.join(", "))
        );
    }
    body
}

/// Each day's `num / den` (0 on a day without `den`).
fn daily_rate(report: &Report, num: Counter, den: Counter) -> Vec<f64> {
    report
        .days
        .iter()
        .map(|d| {
            if d[den] == 0 {
                0.0
            } else {
                d[num] as f64 / d[den] as f64
            }
        })
        .collect()
}

/// The recipient domains with the most permanent bounces and complaints.
fn worst_domains(report: &Report) -> String {
    let mut body = String::new();
    body.push_str("<h2>Recipient domains with the most bounces and complaints</h2>");
    body.push_str(&list_table(
        &["domain", "permanent bounces", "complaints", "sent"],
        report
            .worst_domains
            .iter()
            .map(|(domain, bounces, complaints, sent)| {
                format!(
                    "<td>{}</td><td>{bounces}</td><td>{complaints}</td><td>{sent}</td>",
                    escape(domain)
                )
            }),
        "none",
    ));
    body
}

/// The figures by report type (with their names), configuration set and sending IP.
fn group_tables(report: &Report) -> String {
    let mut body = String::new();
    body.push_str("<h2>By report type</h2>");
    let named: Vec<GroupStats> = report
        .report_types
        .iter()
        .map(|g| {
            let mut g = g.clone();
            if let Some(key) = g.totals.key.first_mut() {
                if let Some(name) = report.report_type_names.get(key.as_str()) {
                    *key = format!("{key} {name}");
                }
            }
            g
        })
        .collect();
    body.push_str(&group_table(
        "report_type",
        &named,
        &[
            SENT,
            DELIVERED,
            BOUNCE_RATE,
            COMPLAINT_RATE,
            OPEN_RATE,
            HUMAN_OPEN_RATE,
            CLICK_RATE,
            HUMAN_CLICK_RATE,
            UNSUBSCRIBES,
        ],
    ));
    for (title, key, groups) in [
        (
            "By configuration set",
            "configuration set",
            &report.configuration_sets,
        ),
        ("By sending IP", "sending IP", &report.sending_ips),
    ] {
        let _ = write!(body, "<h2>{title}</h2>");
        body.push_str(&group_table(
            key,
            groups,
            &[
                SENT,
                DELIVERED,
                BOUNCE_RATE,
                COMPLAINT_RATE,
                HUMAN_OPEN_RATE,
            ],
        ));
    }
    body
}

/// A table headed by `headers` with a row per item of `rows` (its `<td>` cells, escaped), or one
/// row saying `empty` when there is none.
fn list_table(headers: &[&str], rows: impl IntoIterator<Item = String>, empty: &str) -> String {
    let mut out = String::from("<table><tr>");
    for header in headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr>");
    let mut any = false;
    for row in rows {
        any = true;
        let _ = write!(out, "<tr>{row}</tr>");
    }
    if !any {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\">{}</td></tr>",
            headers.len(),
            escape(empty)
        );
    }
    out.push_str("</table>");
    out
}

/// Addresses suppressed, per reason.
fn suppression_counts(report: &Report) -> String {
    let mut body = String::new();
    body.push_str("<h2>Suppression list</h2>");
    body.push_str(&list_table(
        &["reason", "addresses"],
        report
            .suppressions
            .iter()
            .map(|(reason, n)| format!("<td>{}</td><td>{n}</td>", escape(reason))),
        "none",
    ));
    body
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:980px;color:#111827;padding:0 16px}\
h1{margin:0 0 4px}h2{margin-top:32px;font-size:18px}.period,.note,footer{color:#6b7280}footer{margin-top:32px;font-size:12px}\
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin-top:16px}.tile{border:1px solid #e5e7eb;border-radius:8px;padding:12px}\
.tile .label{font-size:12px;color:#6b7280}.tile .value{font-size:24px;font-weight:600}.tile.warning{background:#fef9c3}.tile.critical{background:#fee2e2}.tile.healthy{background:#dcfce7}\
table{border-collapse:collapse;width:100%;font-size:14px}th,td{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:right}th:first-child,td:first-child{text-align:left}\
td.critical{color:#b91c1c;font-weight:600}td.warning{color:#a16207;font-weight:600}td.healthy{color:#15803d}\
td.reply{text-align:left;font-family:ui-monospace,monospace;font-size:12px;word-break:break-word}.chart{width:100%;height:auto;margin:8px 0}.chart-title{font-size:14px;font-weight:600}.axis{font-size:11px;fill:#6b7280}.legend{font-size:12px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_self_contained_page_with_escaped_text() {
        let mut counts = [0u64; Counter::ALL.len()];
        counts[0] = 1000;
        counts[1] = 950;
        counts[5] = 60;
        let day = Totals {
            key: vec!["2026-11-27".into()],
            counts,
        };
        let report = Report {
            title: "Deliverability <test>".into(),
            period: "2026-11-27".into(),
            overall: Some(crate::domain::verdict::assess(
                Totals {
                    key: vec![],
                    counts,
                },
                &crate::domain::verdict::Thresholds::with_min_volume(100),
            )),
            days: vec![day],
            report_types: vec![crate::domain::verdict::assess(
                Totals {
                    key: vec!["2".into()],
                    counts,
                },
                &crate::domain::verdict::Thresholds::with_min_volume(100),
            )],
            worst_domains: vec![("evil<script>.com".into(), 60, 0, 1000)],
            suppressions: vec![("permanent-bounce".into(), 60)],
            providers: vec![crate::domain::verdict::assess(
                Totals {
                    key: vec!["google".into()],
                    counts,
                },
                &crate::domain::verdict::Thresholds::with_min_volume(100),
            )],
            engagement: vec![
                ("Open".into(), None, 30),
                ("Open".into(), Some("apple-mpp".into()), 70),
                ("Click".into(), Some("scanner-burst".into()), 5),
            ],
            open_hours: OpenHours {
                zone: "UTC".into(),
                counts: [3; 24],
            },
            days_without_run: vec!["2026-11-27".into()],
            report_type_names: [("2".to_string(), "newsletter".to_string())].into(),
            configuration_sets: vec![crate::domain::verdict::assess(
                Totals {
                    key: vec!["marketing".into()],
                    counts,
                },
                &crate::domain::verdict::Thresholds::with_min_volume(100),
            )],
            sending_ips: vec![],
            drivers: vec!["provider apple: complaint rate 5.26% >= 0.5% (critical) (19 sent, low volume (under 100))".into()],
            top_replies: vec![(
                BounceClass::Reputation,
                vec![("554 5.7.1 Client host [<ip>] blocked".into(), 3)],
            )],
            generated: "ses-report 0.1.0 at 2026-11-28T07:00:00Z".into(),
        };
        let html = render(&report);
        assert!(html.starts_with("<!DOCTYPE html>"));
        for text in [
            "2026-11-27*",
            "No completed ingest covers 2026-11-27",
            "<td>2 newsletter</td>",
            "By configuration set",
            "<td>marketing</td>",
            "By sending IP",
            "What drives the verdict",
            "provider apple: complaint rate 5.26% &gt;= 0.5% (critical)",
            "Generated by ses-report 0.1.0 at 2026-11-28T07:00:00Z",
            "Why mail bounced, by mailbox provider",
            "<td>reputation</td><td class=\"reply\">554 5.7.1 Client host [&lt;ip&gt;] blocked</td><td>3</td>",
            "Delivery timing by mailbox provider",
        ] {
            assert!(html.contains(text), "missing {text:?}");
        }
        assert!(html.contains("Deliverability &lt;test&gt;"));
        assert!(html.contains("evil&lt;script&gt;.com"));
        assert!(!html.contains("<script"));
        // Self-contained: nothing to fetch (the SVG namespace is a name, not a fetch).
        let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for fetch in ["http://", "https://", "src=", "href=", "url(", "@import"] {
            assert!(
                !without_namespace.contains(fetch),
                "the page would fetch: {fetch}"
            );
        }
        assert!(html.contains("6.00%") && html.contains("warning"));
        // Machine opens: 70 of 100 open rows.
        assert!(html
            .contains("<div class=\"label\">Machine opens</div><div class=\"value\">70.0%</div>"));
        assert!(html.contains("<tr><td>apple-mpp</td><td>70</td><td>0</td></tr>"));
        assert!(html.contains("<tr><td>google</td>"));
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 24);
        assert_eq!(html.matches("<svg").count(), 4);
    }
}

//! SES's reputation verdicts: a group's volume, rates and standing against SES's thresholds.
//!
//! Rates follow SES's definitions (bounce rate = permanent bounces / sent, complaint rate =
//! complaints / delivered; without Send events the volume is deliveries + bounces + rejects,
//! and the output says so) but are computed from events, so they approximate AWS's own figures,
//! which AWS says cannot be recomputed exactly. Thresholds are compared in integer arithmetic, so
//! exactly 5% is a warning.
//!
//! A group's block rate (bounces of class reputation or policy, `domain::bounce`, over its
//! volume) has thresholds of its own, which the user sets (`Thresholds`; the defaults and their
//! reasons: docs/stats.md, "Block rate"): a provider that refuses the sender shows there first.

use crate::domain::figures::{Counter, Totals};
use crate::domain::timing::{nearest_rank, DeliveryTiming};

/// A group's standing against SES's thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Fewer sends than `--min-volume`: too few for a rate to mean anything.
    LowVolume,
    Healthy,
    /// Bounce rate >= 5% or complaint rate >= 0.1%: SES may put the account under review.
    Warning,
    /// Bounce rate >= 10% or complaint rate >= 0.5%: SES may pause sending.
    Critical,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::LowVolume => "low-volume",
            Verdict::Healthy => "healthy",
            Verdict::Warning => "warning",
            Verdict::Critical => "critical",
        }
    }
}

/// What a group's bounce and delivery rates, and its `--min-volume`, are measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeBasis {
    /// Recipients sent to (Send events): SES's own denominator.
    Sent,
    /// Without Send events (classic feedback notifications publish only Delivery, Bounce and
    /// Complaint): the recipients with an outcome, deliveries + bounces + rejects. A recipient
    /// with both a soft bounce and a later delivery counts twice, so rates read slightly low.
    Outcomes,
}

impl VolumeBasis {
    pub fn name(self) -> &'static str {
        match self {
            VolumeBasis::Sent => "sent",
            VolumeBasis::Outcomes => "delivered+bounced+rejected",
        }
    }
}

/// A group's volume: what it sent, or when it has no Send events at all, its outcomes.
pub fn volume(t: &Totals) -> (u64, VolumeBasis) {
    if t[Counter::Sent] > 0 {
        return (t[Counter::Sent], VolumeBasis::Sent);
    }
    let outcomes = t[Counter::Delivered]
        + t[Counter::PermanentBounces]
        + t[Counter::TransientBounces]
        + t[Counter::UndeterminedBounces]
        + t[Counter::Rejected];
    (outcomes, VolumeBasis::Outcomes)
}

/// What makes a group's verdict: the volume below which it gets none, and the block-rate
/// thresholds, in basis points (hundredths of a percent) so that they compare in integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub min_volume: u64,
    pub block_warning_bp: u64,
    pub block_critical_bp: u64,
}

impl Thresholds {
    /// Block rate 2% warns, 5% is critical (docs/stats.md, "Block rate", gives the sources).
    pub const BLOCK_WARNING_BP: u64 = 200;
    pub const BLOCK_CRITICAL_BP: u64 = 500;

    #[cfg(test)]
    pub fn with_min_volume(min_volume: u64) -> Thresholds {
        Thresholds {
            min_volume,
            block_warning_bp: Thresholds::BLOCK_WARNING_BP,
            block_critical_bp: Thresholds::BLOCK_CRITICAL_BP,
        }
    }

    /// The verdict of a block rate of `blocks` over `volume` alone (volume at least the minimum).
    pub fn block_verdict(&self, blocks: u64, volume: u64) -> Verdict {
        if volume < self.min_volume.max(1) {
            return Verdict::LowVolume;
        }
        let at_least = |bp: u64| blocks * 10_000 >= volume * bp;
        if at_least(self.block_critical_bp) {
            Verdict::Critical
        } else if at_least(self.block_warning_bp) {
            Verdict::Warning
        } else {
            Verdict::Healthy
        }
    }
}

/// Reads a percentage given on the command line (`2`, `2%`, `0.5`) as basis points.
pub fn parse_percent_bp(text: &str) -> Option<u64> {
    let number = text.trim().trim_end_matches('%').trim();
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && (0.0..=100.0).contains(&value)).then(|| (value * 100.0).round() as u64)
}

/// The bounces a group's block rate counts: the receiving servers refused the sender (its IP or
/// domain's reputation, or its authentication and policy), not the address.
pub fn blocks(t: &Totals) -> u64 {
    t[Counter::BouncesReputation] + t[Counter::BouncesPolicy]
}

/// The verdict for a volume (`sent`), `delivered`, permanent `bounces` and `complaints`.
pub fn verdict(
    sent: u64,
    delivered: u64,
    bounces: u64,
    complaints: u64,
    min_volume: u64,
) -> Verdict {
    if sent < min_volume.max(1) {
        return Verdict::LowVolume;
    }
    let bounce_at_least = |percent_times_10: u64| bounces * 1000 >= sent * percent_times_10;
    let complaint_at_least = |per_mille_times_10: u64| {
        delivered > 0 && complaints * 10_000 >= delivered * per_mille_times_10
    };
    if bounce_at_least(100) || complaint_at_least(50) {
        Verdict::Critical
    } else if bounce_at_least(50) || complaint_at_least(10) {
        Verdict::Warning
    } else {
        Verdict::Healthy
    }
}

/// A percentage without float noise: at most two decimals, trailing zeros dropped (`5.26%`,
/// `0.5%`, `10%`).
pub fn percent(fraction: f64) -> String {
    let text = format!("{:.2}", fraction * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// Which of SES's thresholds a group crosses, most severe first, in words: `complaint rate
/// 5.26% >= 0.5% (critical)`. The thresholds are `verdict`'s.
pub fn crossed(g: &GroupStats) -> Vec<String> {
    let mut out = Vec::new();
    let bp = |n: u64| n as f64 / 10_000.0;
    let rules = [
        ("bounce rate", g.bounce_rate, 0.10, 0.05),
        ("complaint rate", g.complaint_rate, 0.005, 0.001),
        (
            "block rate",
            g.block_rate,
            bp(g.thresholds.block_critical_bp),
            bp(g.thresholds.block_warning_bp),
        ),
    ];
    for (name, rate, critical, warning) in rules {
        let Some(rate) = rate else { continue };
        // The verdict's integer arithmetic, so that a rate at a threshold is named as crossing it.
        let at_least = |threshold: f64| rate + 1e-12 >= threshold;
        if at_least(critical) {
            out.push(format!(
                "{name} {} >= {} (critical)",
                percent(rate),
                percent(critical)
            ));
        } else if at_least(warning) {
            out.push(format!(
                "{name} {} >= {} (warning)",
                percent(rate),
                percent(warning)
            ));
        }
    }
    out
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// One group's counts, rates and verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStats {
    pub totals: Totals,
    /// The denominator of the bounce and delivery rates and of `--min-volume`.
    pub volume: u64,
    pub volume_basis: VolumeBasis,
    pub bounce_rate: Option<f64>,
    pub complaint_rate: Option<f64>,
    pub delivery_rate: Option<f64>,
    pub open_rate: Option<f64>,
    pub click_rate: Option<f64>,
    /// Recipients a person opened for (`domain::engagement`), per delivered.
    pub human_open_rate: Option<f64>,
    pub human_click_rate: Option<f64>,
    /// Bounces of class reputation or policy over the volume (`blocks`).
    pub block_rate: Option<f64>,
    /// The worst of SES's verdict and the block rate's.
    pub verdict: Verdict,
    /// What the verdict was measured against.
    pub thresholds: Thresholds,
    /// Delivery to first human open and click; filled in by `with_timing`.
    pub time_to_open: Option<Spread>,
    pub time_to_click: Option<Spread>,
    /// Send to delivery, first attempts, delays by type; filled in by
    /// `commands::period::assess_groups` from the period's rows.
    pub delivery: Option<DeliveryTiming>,
}

pub fn assess(totals: Totals, thresholds: &Thresholds) -> GroupStats {
    let (volume, volume_basis) = volume(&totals);
    let delivered = totals[Counter::Delivered];
    let bounces = totals[Counter::PermanentBounces];
    let complaints = totals[Counter::Complaints];
    let min_volume = thresholds.min_volume;
    let ses = verdict(volume, delivered, bounces, complaints, min_volume);
    let blocked = blocks(&totals);
    GroupStats {
        block_rate: ratio(blocked, volume),
        thresholds: *thresholds,
        bounce_rate: ratio(bounces, volume),
        complaint_rate: ratio(complaints, delivered),
        delivery_rate: ratio(delivered, volume),
        open_rate: ratio(totals[Counter::UniqueOpens], delivered),
        click_rate: ratio(totals[Counter::UniqueClicks], delivered),
        human_open_rate: ratio(totals[Counter::HumanUniqueOpens], delivered),
        human_click_rate: ratio(totals[Counter::HumanUniqueClicks], delivered),
        time_to_open: None,
        time_to_click: None,
        delivery: None,
        verdict: ses.max(thresholds.block_verdict(blocked, volume)),
        volume,
        volume_basis,
        totals,
    }
}

/// The median and 90th percentile of a set of durations, in seconds (nearest rank).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    pub count: usize,
    pub median_seconds: i64,
    pub p90_seconds: i64,
}

impl Spread {
    pub fn of(mut seconds: Vec<i64>) -> Option<Spread> {
        if seconds.is_empty() {
            return None;
        }
        seconds.sort_unstable();
        let rank = |q: usize| nearest_rank(&seconds, q);
        Some(Spread {
            count: seconds.len(),
            median_seconds: rank(50),
            p90_seconds: rank(90),
        })
    }
}

/// A group of example.com with these counts, for tests.
#[cfg(test)]
pub(crate) fn example_group(sent: u64, delivered: u64, bounces: u64) -> GroupStats {
    let mut counts = [0u64; Counter::ALL.len()];
    counts[Counter::Sent as usize] = sent;
    counts[Counter::Delivered as usize] = delivered;
    counts[Counter::PermanentBounces as usize] = bounces;
    assess(
        Totals {
            key: vec!["example.com".into()],
            counts,
        },
        &Thresholds::with_min_volume(100),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_have_no_float_noise() {
        assert_eq!(percent(0.052631578947), "5.26%");
        assert_eq!(percent(0.005), "0.5%");
        assert_eq!(percent(0.1), "10%");
        assert_eq!(percent(0.0), "0%");
    }

    #[test]
    fn bounce_thresholds_are_inclusive() {
        assert_eq!(verdict(1000, 1000, 49, 0, 100), Verdict::Healthy);
        assert_eq!(verdict(1000, 1000, 50, 0, 100), Verdict::Warning);
        assert_eq!(verdict(1000, 1000, 99, 0, 100), Verdict::Warning);
        assert_eq!(verdict(1000, 1000, 100, 0, 100), Verdict::Critical);
    }

    #[test]
    fn complaint_thresholds_are_per_delivered() {
        assert_eq!(verdict(10_000, 10_000, 0, 9, 100), Verdict::Healthy);
        assert_eq!(verdict(10_000, 10_000, 0, 10, 100), Verdict::Warning);
        assert_eq!(verdict(10_000, 10_000, 0, 49, 100), Verdict::Warning);
        assert_eq!(verdict(10_000, 10_000, 0, 50, 100), Verdict::Critical);
        // Same complaints, fewer delivered: a higher rate.
        assert_eq!(verdict(10_000, 2_000, 0, 10, 100), Verdict::Critical);
    }

    #[test]
    fn small_groups_get_no_verdict() {
        assert_eq!(verdict(99, 99, 50, 50, 100), Verdict::LowVolume);
        assert_eq!(verdict(100, 100, 50, 0, 100), Verdict::Critical);
        assert_eq!(verdict(0, 0, 0, 0, 0), Verdict::LowVolume);
    }

    #[test]
    fn rates_use_ses_definitions() {
        let g = example_group(200, 180, 12);
        assert_eq!(g.bounce_rate, Some(0.06));
        assert_eq!(g.delivery_rate, Some(0.9));
        assert_eq!(g.verdict, Verdict::Warning);
        assert_eq!(example_group(0, 0, 0).bounce_rate, None);
    }

    #[test]
    fn the_volume_is_sent_or_without_sends_the_outcomes() {
        let totals = |pairs: &[(Counter, u64)]| {
            let mut t = Totals {
                key: vec![],
                counts: [0; Counter::ALL.len()],
            };
            for (c, n) in pairs {
                t.counts[*c as usize] = *n;
            }
            t
        };
        let with_sends = totals(&[(Counter::Sent, 100), (Counter::Delivered, 90)]);
        assert_eq!(volume(&with_sends), (100, VolumeBasis::Sent));
        let classic = totals(&[
            (Counter::Delivered, 90),
            (Counter::PermanentBounces, 6),
            (Counter::TransientBounces, 2),
            (Counter::UndeterminedBounces, 1),
            (Counter::Rejected, 1),
            (Counter::SuppressedBounces, 50),
        ]);
        assert_eq!(volume(&classic), (100, VolumeBasis::Outcomes));
        let g = assess(classic, &Thresholds::with_min_volume(100));
        assert_eq!(g.verdict, Verdict::Warning);
        assert_eq!(g.bounce_rate, Some(0.06));
    }

    #[test]
    fn block_rates_have_thresholds_of_their_own() {
        let t = Thresholds::with_min_volume(100);
        assert_eq!(t.block_verdict(19, 1000), Verdict::Healthy);
        assert_eq!(t.block_verdict(20, 1000), Verdict::Warning);
        assert_eq!(t.block_verdict(49, 1000), Verdict::Warning);
        assert_eq!(t.block_verdict(50, 1000), Verdict::Critical);
        assert_eq!(t.block_verdict(50, 99), Verdict::LowVolume);
        let mut g = example_group(1000, 950, 0);
        g.totals.counts[Counter::BouncesReputation as usize] = 15;
        g.totals.counts[Counter::BouncesPolicy as usize] = 10;
        g.totals.counts[Counter::BouncesInvalidAddress as usize] = 40;
        let g = assess(g.totals, &t);
        assert_eq!(g.block_rate, Some(0.025));
        assert_eq!(g.verdict, Verdict::Warning);
        assert_eq!(crossed(&g), vec!["block rate 2.5% >= 2% (warning)"]);
        let strict = Thresholds {
            block_warning_bp: 50,
            block_critical_bp: 100,
            ..t
        };
        let g = assess(g.totals, &strict);
        assert_eq!(g.verdict, Verdict::Critical);
        assert_eq!(crossed(&g), vec!["block rate 2.5% >= 1% (critical)"]);
    }

    #[test]
    fn percentages_read_as_basis_points() {
        assert_eq!(parse_percent_bp("2"), Some(200));
        assert_eq!(parse_percent_bp("2%"), Some(200));
        assert_eq!(parse_percent_bp(" 0.5 "), Some(50));
        assert_eq!(parse_percent_bp("0.01"), Some(1));
        assert_eq!(parse_percent_bp("101"), None);
        assert_eq!(parse_percent_bp("-1"), None);
        assert_eq!(parse_percent_bp("two"), None);
    }

    #[test]
    fn spreads_are_nearest_rank() {
        assert_eq!(Spread::of(vec![]), None);
        assert_eq!(
            Spread::of(vec![5]),
            Some(Spread {
                count: 1,
                median_seconds: 5,
                p90_seconds: 5
            })
        );
        let ten: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(
            Spread::of(ten),
            Some(Spread {
                count: 10,
                median_seconds: 5,
                p90_seconds: 9
            })
        );
    }
}

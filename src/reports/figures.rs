//! The figures the reading commands work with: a group's summed rollup counters (`Totals`,
//! indexed by the `Counter` enum, never by name) and the ways to group them (`GroupBy`).

use std::ops::Index;

/// The counters of one `aws_report_daily` row (or of a sum of rows), in table column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    Sent,
    Delivered,
    Rejected,
    RenderingFailures,
    DeliveryDelays,
    /// Permanent bounces, without those SES already suppresses (OnAccountSuppressionList).
    PermanentBounces,
    /// Permanent bounces with sub-type OnAccountSuppressionList: SES did not even try.
    SuppressedBounces,
    TransientBounces,
    UndeterminedBounces,
    /// Complaints, without those SES already suppressed (OnAccountSuppressionList).
    Complaints,
    /// Complaints with sub-type OnAccountSuppressionList: AWS leaves them out of its rates.
    SuppressedComplaints,
    UniqueOpens,
    TotalOpens,
    UniqueClicks,
    TotalClicks,
    Unsubscribes,
}

impl Counter {
    pub const ALL: [Counter; 16] = [
        Counter::Sent,
        Counter::Delivered,
        Counter::Rejected,
        Counter::RenderingFailures,
        Counter::DeliveryDelays,
        Counter::PermanentBounces,
        Counter::SuppressedBounces,
        Counter::TransientBounces,
        Counter::UndeterminedBounces,
        Counter::Complaints,
        Counter::SuppressedComplaints,
        Counter::UniqueOpens,
        Counter::TotalOpens,
        Counter::UniqueClicks,
        Counter::TotalClicks,
        Counter::Unsubscribes,
    ];

    /// The `aws_report_daily` column, which is also the counter's name in CSV and JSON output.
    pub fn column(self) -> &'static str {
        match self {
            Counter::Sent => "sent",
            Counter::Delivered => "delivered",
            Counter::Rejected => "rejected",
            Counter::RenderingFailures => "rendering_failures",
            Counter::DeliveryDelays => "delivery_delays",
            Counter::PermanentBounces => "permanent_bounces",
            Counter::SuppressedBounces => "suppressed_bounces",
            Counter::TransientBounces => "transient_bounces",
            Counter::UndeterminedBounces => "undetermined_bounces",
            Counter::Complaints => "complaints",
            Counter::SuppressedComplaints => "suppressed_complaints",
            Counter::UniqueOpens => "unique_opens",
            Counter::TotalOpens => "total_opens",
            Counter::UniqueClicks => "unique_clicks",
            Counter::TotalClicks => "total_clicks",
            Counter::Unsubscribes => "unsubscribes",
        }
    }
}

/// A way to group rollup rows for `stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    ReportType,
    Source,
    Domain,
}

impl GroupBy {
    /// The `--by` values.
    pub const OPTIONS: [(&'static str, GroupBy); 4] = [
        ("day", GroupBy::Day),
        ("report-type", GroupBy::ReportType),
        ("source", GroupBy::Source),
        ("domain", GroupBy::Domain),
    ];

    /// The key's name in output headers and JSON.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::ReportType => "report_type",
            GroupBy::Source => "source",
            GroupBy::Domain => "domain",
        }
    }
}

/// One group of summed rollups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// The group's key values, in `--by` order.
    pub key: Vec<String>,
    /// Sums, in `Counter::ALL` order.
    pub counts: [u64; Counter::ALL.len()],
}

impl Index<Counter> for Totals {
    type Output = u64;

    fn index(&self, counter: Counter) -> &u64 {
        &self.counts[counter as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_index_in_column_order() {
        let mut counts = [0u64; 16];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = i as u64 * 10;
        }
        let t = Totals {
            key: vec![],
            counts,
        };
        for (i, counter) in Counter::ALL.iter().enumerate() {
            assert_eq!(*counter as usize, i);
            assert_eq!(t[*counter], i as u64 * 10);
        }
        assert_eq!(t[Counter::Complaints], 90);
    }
}

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
    /// Recipients with an open classified human (`domain::engagement`).
    HumanUniqueOpens,
    UniqueClicks,
    TotalClicks,
    /// Recipients with a click classified human.
    HumanUniqueClicks,
    Unsubscribes,
}

impl Counter {
    pub const ALL: [Counter; 18] = [
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
        Counter::HumanUniqueOpens,
        Counter::UniqueClicks,
        Counter::TotalClicks,
        Counter::HumanUniqueClicks,
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
            Counter::HumanUniqueOpens => "human_unique_opens",
            Counter::HumanUniqueClicks => "human_unique_clicks",
            Counter::Unsubscribes => "unsubscribes",
        }
    }
}

/// A way to group rollup rows for `stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    ReportType,
    Source,
    Domain,
    /// `domain::provider`'s id.
    Provider,
    /// `ses:configuration-set`.
    ConfigurationSet,
    /// `ses:outgoing-ip`.
    SendingIp,
    /// The first value of a custom `mail.tags` entry: computed from the summary and detail
    /// rows, not from the rollups (which keep only the three SES tags above).
    Tag(String),
}

impl GroupBy {
    /// The `--by` values (besides `tag:NAME`).
    pub const OPTIONS: [(&'static str, GroupBy); 7] = [
        ("day", GroupBy::Day),
        ("report-type", GroupBy::ReportType),
        ("source", GroupBy::Source),
        ("domain", GroupBy::Domain),
        ("provider", GroupBy::Provider),
        ("configuration-set", GroupBy::ConfigurationSet),
        ("sending-ip", GroupBy::SendingIp),
    ];

    /// Reads one `--by` value.
    pub fn parse(text: &str) -> Option<GroupBy> {
        if let Some(name) = text.strip_prefix("tag:") {
            return (!name.is_empty()).then(|| GroupBy::Tag(name.to_string()));
        }
        GroupBy::OPTIONS
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, g)| g.clone())
    }

    /// The key's name in output headers and JSON.
    pub fn name(&self) -> String {
        match self {
            GroupBy::Day => "day".into(),
            GroupBy::ReportType => "report_type".into(),
            GroupBy::Source => "source".into(),
            GroupBy::Domain => "domain".into(),
            GroupBy::Provider => "mailbox_provider".into(),
            GroupBy::ConfigurationSet => "configuration_set".into(),
            GroupBy::SendingIp => "sending_ip".into(),
            GroupBy::Tag(name) => format!("tag:{name}"),
        }
    }

    /// Whether the rollups hold this key (else the figures come from the rows).
    pub fn in_rollups(&self) -> bool {
        !matches!(self, GroupBy::Tag(_))
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
        let mut counts = [0u64; Counter::ALL.len()];
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

    #[test]
    fn group_keys_parse_with_custom_tags() {
        assert_eq!(GroupBy::parse("provider"), Some(GroupBy::Provider));
        assert_eq!(GroupBy::parse("sending-ip"), Some(GroupBy::SendingIp));
        assert_eq!(
            GroupBy::parse("tag:campaign"),
            Some(GroupBy::Tag("campaign".into()))
        );
        assert_eq!(GroupBy::parse("tag:"), None);
        assert_eq!(GroupBy::parse("isp"), None);
        assert_eq!(GroupBy::Tag("campaign".into()).name(), "tag:campaign");
        assert!(!GroupBy::Tag("x".into()).in_rollups());
    }
}

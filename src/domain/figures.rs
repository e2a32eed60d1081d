//! The figures the reading commands work with: a group's summed rollup counters (`Totals`,
//! indexed by the `Counter` enum, never by name) and the ways to group them (`GroupBy`).

use std::ops::Index;

use time::OffsetDateTime;

use crate::domain::bounce::BounceClass;
use crate::domain::zone::Zone;

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
    /// Recipients with a bounce of each class (`domain::bounce`), not counting the bounces SES
    /// suppressed itself: in `BounceClass::ALL` order.
    BouncesInvalidAddress,
    BouncesMailboxFull,
    BouncesMailboxDisabled,
    BouncesReputation,
    BouncesPolicy,
    BouncesContent,
    BouncesRateLimit,
    BouncesTechnical,
    BouncesUnclassified,
}

impl Counter {
    pub const ALL: [Counter; 27] = [
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
        Counter::BouncesInvalidAddress,
        Counter::BouncesMailboxFull,
        Counter::BouncesMailboxDisabled,
        Counter::BouncesReputation,
        Counter::BouncesPolicy,
        Counter::BouncesContent,
        Counter::BouncesRateLimit,
        Counter::BouncesTechnical,
        Counter::BouncesUnclassified,
    ];

    /// The counter of recipients with a bounce of `class`.
    pub fn of_class(class: BounceClass) -> Counter {
        match class {
            BounceClass::InvalidAddress => Counter::BouncesInvalidAddress,
            BounceClass::MailboxFull => Counter::BouncesMailboxFull,
            BounceClass::MailboxDisabled => Counter::BouncesMailboxDisabled,
            BounceClass::Reputation => Counter::BouncesReputation,
            BounceClass::Policy => Counter::BouncesPolicy,
            BounceClass::Content => Counter::BouncesContent,
            BounceClass::RateLimit => Counter::BouncesRateLimit,
            BounceClass::Technical => Counter::BouncesTechnical,
            BounceClass::Unclassified => Counter::BouncesUnclassified,
        }
    }

    /// The bounce class a class counter counts.
    pub fn class(self) -> Option<BounceClass> {
        BounceClass::ALL
            .into_iter()
            .find(|c| Counter::of_class(*c) == self)
    }

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
            Counter::BouncesInvalidAddress => "bounces_invalid_address",
            Counter::BouncesMailboxFull => "bounces_mailbox_full",
            Counter::BouncesMailboxDisabled => "bounces_mailbox_disabled",
            Counter::BouncesReputation => "bounces_reputation",
            Counter::BouncesPolicy => "bounces_policy",
            Counter::BouncesContent => "bounces_content",
            Counter::BouncesRateLimit => "bounces_rate_limit",
            Counter::BouncesTechnical => "bounces_technical",
            Counter::BouncesUnclassified => "bounces_unclassified",
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

/// A summary row's values that `--by` groups on (what the rollups group by, and the tags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dimensions {
    pub report_type: i32,
    pub source: String,
    pub recipient: String,
    pub mailbox_provider: String,
    pub configuration_set: String,
    pub sending_ip: String,
    /// `aws_reports.tags`, the JSON of `mail.tags`.
    pub tags: Option<String>,
}

impl Dimensions {
    /// The group key under `by` of a row whose figure happened at `at` (its day, in `zone`).
    pub fn key(&self, at: OffsetDateTime, by: &[GroupBy], zone: &Zone) -> Vec<String> {
        by.iter()
            .map(|g| match g {
                GroupBy::Day => zone.date_of(at).to_string(),
                GroupBy::ReportType => self.report_type.to_string(),
                GroupBy::Source => self.source.clone(),
                GroupBy::Domain => self
                    .recipient
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default(),
                GroupBy::Provider => self.mailbox_provider.clone(),
                GroupBy::ConfigurationSet => self.configuration_set.clone(),
                GroupBy::SendingIp => self.sending_ip.clone(),
                GroupBy::Tag(name) => self
                    .tags
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                    .and_then(|t| t.get(name)?.get(0)?.as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect()
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
    fn each_bounce_class_has_its_counter_and_column() {
        for class in BounceClass::ALL {
            let counter = Counter::of_class(class);
            assert_eq!(counter.class(), Some(class));
            assert_eq!(
                counter.column(),
                format!("bounces_{}", class.as_str().replace('-', "_"))
            );
        }
        assert_eq!(Counter::Sent.class(), None);
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

//! How fast mail arrives: per group, the time from send to delivery, SES's own
//! `processingTimeMillis`, the share delivered at the first attempt (no DeliveryDelay before the
//! delivery), and the delays by SES's `delayType`. Transactional senders have delivery-time
//! targets, and a rise in delays (above all `IPFailure`, `SpamDetected`, `TransientCommunication
//! Failure` at one provider) comes before that provider's blocks.

use std::collections::BTreeMap;

use time::OffsetDateTime;

/// The value at rank `percent` of `sorted` (nearest rank: the smallest value with at least
/// `percent`% of the values at or below it). `sorted` must not be empty.
pub fn nearest_rank(sorted: &[i64], percent: usize) -> i64 {
    sorted[(sorted.len() * percent)
        .div_ceil(100)
        .clamp(1, sorted.len())
        - 1]
}

/// The median, 95th and 99th percentiles of a set of durations in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub count: usize,
    pub median_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
}

impl Latency {
    pub fn of(mut millis: Vec<i64>) -> Option<Latency> {
        if millis.is_empty() {
            return None;
        }
        millis.sort_unstable();
        Some(Latency {
            count: millis.len(),
            median_ms: nearest_rank(&millis, 50),
            p95_ms: nearest_rank(&millis, 95),
            p99_ms: nearest_rank(&millis, 99),
        })
    }
}

/// What one delivered recipient's summary row says about its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The Send event's time (event publishing only: classic notifications have no Send).
    pub sent_at: Option<OffsetDateTime>,
    /// The first delivery.
    pub delivered_at: OffsetDateTime,
    /// The first DeliveryDelay, if any.
    pub first_delay_at: Option<OffsetDateTime>,
    /// SES's `processingTimeMillis` of the first delivery.
    pub processing_ms: Option<i64>,
}

impl Delivered {
    /// Delivered without a DeliveryDelay before it.
    pub fn at_first_attempt(&self) -> bool {
        self.first_delay_at
            .is_none_or(|delay| delay > self.delivered_at)
    }
}

/// One group's delivery timing, gathered recipient by recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimingTally {
    send_to_delivery_ms: Vec<i64>,
    processing_ms: Vec<i64>,
    delivered: u64,
    first_attempt: u64,
    delays_by_type: BTreeMap<String, u64>,
}

impl TimingTally {
    pub fn add_delivery(&mut self, d: &Delivered) {
        self.delivered += 1;
        self.first_attempt += u64::from(d.at_first_attempt());
        if let Some(sent) = d.sent_at {
            let ms = (d.delivered_at - sent).whole_milliseconds();
            self.send_to_delivery_ms
                .push(i64::try_from(ms.max(0)).unwrap_or(i64::MAX));
        }
        if let Some(ms) = d.processing_ms.filter(|ms| *ms >= 0) {
            self.processing_ms.push(ms);
        }
    }

    /// A recipient delayed with this `delayType` (empty when SES gave none).
    pub fn add_delay(&mut self, delay_type: &str) {
        let name = if delay_type.is_empty() {
            "(none)"
        } else {
            delay_type
        };
        *self.delays_by_type.entry(name.to_string()).or_default() += 1;
    }

    pub fn finish(self) -> DeliveryTiming {
        DeliveryTiming {
            delivered: self.delivered,
            first_attempt: self.first_attempt,
            send_to_delivery: Latency::of(self.send_to_delivery_ms),
            processing: Latency::of(self.processing_ms),
            delays_by_type: self.delays_by_type,
        }
    }
}

/// A group's delivery timing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryTiming {
    /// Recipients delivered in the period.
    pub delivered: u64,
    /// Of them, delivered without a DeliveryDelay before.
    pub first_attempt: u64,
    /// From the Send event to the first delivery.
    pub send_to_delivery: Option<Latency>,
    /// SES's `processingTimeMillis`: from SES accepting the message to the receiving server
    /// accepting it.
    pub processing: Option<Latency>,
    /// Recipients delayed in the period, by SES's `delayType`.
    pub delays_by_type: BTreeMap<String, u64>,
}

impl DeliveryTiming {
    /// The share of deliveries made at the first attempt.
    pub fn first_attempt_share(&self) -> Option<f64> {
        (self.delivered > 0).then(|| self.first_attempt as f64 / self.delivered as f64)
    }

    /// The delays of all types.
    pub fn delays(&self) -> u64 {
        self.delays_by_type.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    #[test]
    fn latencies_are_nearest_rank() {
        assert_eq!(Latency::of(vec![]), None);
        let hundred: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(
            Latency::of(hundred),
            Some(Latency {
                count: 100,
                median_ms: 50,
                p95_ms: 95,
                p99_ms: 99
            })
        );
        assert_eq!(
            Latency::of(vec![7]).map(|l| (l.median_ms, l.p99_ms)),
            Some((7, 7))
        );
        // Three values: the 95th and 99th percentiles are the largest.
        assert_eq!(
            Latency::of(vec![3000, 1000, 2000]).map(|l| (l.median_ms, l.p95_ms)),
            Some((2000, 3000))
        );
    }

    #[test]
    fn first_attempt_means_no_delay_before_the_delivery() {
        let at = datetime!(2026-11-27 10:00 UTC);
        let delivered = |delay: Option<i64>| Delivered {
            sent_at: Some(at - Duration::seconds(2)),
            delivered_at: at,
            first_delay_at: delay.map(|s| at + Duration::seconds(s)),
            processing_ms: Some(1900),
        };
        assert!(delivered(None).at_first_attempt());
        assert!(!delivered(Some(-600)).at_first_attempt());
        assert!(!delivered(Some(0)).at_first_attempt());
        assert!(delivered(Some(5)).at_first_attempt());

        let mut tally = TimingTally::default();
        tally.add_delivery(&delivered(None));
        tally.add_delivery(&delivered(Some(-600)));
        tally.add_delivery(&Delivered {
            sent_at: None,
            processing_ms: None,
            ..delivered(None)
        });
        tally.add_delay("MailboxFull");
        tally.add_delay("MailboxFull");
        tally.add_delay("");
        let t = tally.finish();
        assert_eq!((t.delivered, t.first_attempt), (3, 2));
        assert_eq!(t.first_attempt_share(), Some(2.0 / 3.0));
        assert_eq!(
            t.send_to_delivery.map(|l| (l.count, l.median_ms)),
            Some((2, 2000))
        );
        assert_eq!(t.processing.map(|l| l.count), Some(2));
        assert_eq!(t.delays_by_type["MailboxFull"], 2);
        assert_eq!(t.delays_by_type["(none)"], 1);
        assert_eq!(t.delays(), 3);
        assert_eq!(DeliveryTiming::default().first_attempt_share(), None);
    }
}

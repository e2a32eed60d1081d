//! `ingest --partition K/N`: which notifications one of N workers applies.
//!
//! A notification belongs to partition `CRC32(key) mod N + 1`, where the key is the SES mail's
//! `messageId` (so every event of one mail, and both routes of one bounce or complaint, fall in
//! the same partition, and no two partitions ever write the same summary row), or the SNS
//! notification id for a record without one. CRC-32 is the IEEE polynomial that MySQL's and
//! MariaDB's `CRC32()` compute, so the split can be checked, or reproduced, in SQL:
//! `SELECT COUNT(*) FROM aws_reports WHERE CRC32(message_id) % 2 + 1 = 1`. It is stable across
//! versions, machines and runs; it is no defence against keys chosen to collide, and needs
//! none (SES picks message ids).

use std::fmt;

/// One of N partitions (`index` from 1 to `count`), or the whole stream (1/1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Partition {
    index: u32,
    count: u32,
}

/// The most partitions a run may name: far beyond what one database takes in parallel.
pub const MAX_PARTITIONS: u32 = 1024;

impl Partition {
    pub const WHOLE: Partition = Partition { index: 1, count: 1 };

    /// `K/N`, 1 <= K <= N <= MAX_PARTITIONS.
    pub fn parse(text: &str) -> Result<Partition, String> {
        let want = || {
            format!(
                "--partition {text:?}: want K/N, with 1 <= K <= N <= {MAX_PARTITIONS} (e.g. 1/4)"
            )
        };
        let (k, n) = text.trim().split_once('/').ok_or_else(want)?;
        let index: u32 = k.trim().parse().map_err(|_| want())?;
        let count: u32 = n.trim().parse().map_err(|_| want())?;
        if index == 0 || count == 0 || index > count || count > MAX_PARTITIONS {
            return Err(want());
        }
        Ok(Partition { index, count })
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether this run reports figures of the whole database (the unresolved failures): the
    /// whole stream's run, or partition 1 of N, so that summing the workers' metrics files
    /// counts them once.
    pub fn reports_database_figures(self) -> bool {
        self.index == 1
    }

    /// The partition of `count` that `key` belongs to (1-based).
    pub fn index_of(key: &str, count: u32) -> u32 {
        crc32fast::hash(key.as_bytes()) % count + 1
    }

    /// Whether this partition applies the notification keyed `key`.
    pub fn holds(self, key: &str) -> bool {
        self.is_whole() || Partition::index_of(key, self.count) == self.index
    }

    /// `KofN`: the partition in its lock's name and its metrics file's name.
    pub fn tag(self) -> String {
        format!("{}of{}", self.index, self.count)
    }

    /// How `aws_report_runs.partition_label` records it: empty for the whole stream.
    pub fn label(self) -> String {
        if self.is_whole() {
            String::new()
        } else {
            self.to_string()
        }
    }

    /// The partition a run's label names (empty: the whole stream; unreadable: none).
    pub fn from_label(label: &str) -> Option<Partition> {
        if label.is_empty() {
            Some(Partition::WHOLE)
        } else {
            Partition::parse(label).ok()
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where the catch-up window of `partition` may start: the latest end that every run covering it
/// reached. A whole-stream run covers every partition; runs of another split cover it only when
/// all partitions of that split have reached the end (the smallest of their ends). `ends` are
/// (partition, latest completed end) pairs, one per partition that has completed a run.
pub fn covered_until<T: Copy + Ord>(partition: Partition, ends: &[(Partition, T)]) -> Option<T> {
    let mut best: Option<T> = None;
    let mut counts: Vec<u32> = ends.iter().map(|(p, _)| p.count).collect();
    counts.sort_unstable();
    counts.dedup();
    for count in counts {
        let of_split: Vec<(Partition, T)> = ends
            .iter()
            .copied()
            .filter(|(p, _)| p.count == count)
            .collect();
        let end = if count == partition.count || count == 1 {
            // Its own split (or the whole stream): its own partition's end.
            let own = if count == 1 {
                Partition::WHOLE
            } else {
                partition
            };
            of_split.iter().find(|(p, _)| *p == own).map(|(_, e)| *e)
        } else if of_split.len() == count as usize {
            of_split.iter().map(|(_, e)| *e).min()
        } else {
            None
        };
        best = best.max(end);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        let p = Partition::parse("2/3").unwrap();
        assert_eq!(
            (p.to_string(), p.tag()),
            ("2/3".to_string(), "2of3".to_string())
        );
        assert_eq!(Partition::parse(" 1 / 1 ").unwrap(), Partition::WHOLE);
        for bad in [
            "0/2", "3/2", "1/0", "1", "a/b", "1/2/3", "", "-1/2", "1/1025",
        ] {
            let e = Partition::parse(bad).unwrap_err();
            assert!(e.contains("want K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_hash_is_mysqls_crc32() {
        // The check value of CRC-32/ISO-HDLC, and what `SELECT CRC32('123456789')` returns.
        assert_eq!(crc32fast::hash(b"123456789"), 3_421_780_262);
        // 3421780262 is even: partition 1 of 2; mod 3 it is 2: partition 3 of 3.
        assert_eq!(Partition::index_of("123456789", 2), 1);
        assert_eq!(Partition::index_of("123456789", 3), 3);
    }

    #[test]
    fn every_key_falls_in_exactly_one_partition() {
        for n in 1..=7 {
            for i in 0..200 {
                let key = format!("0100018a-{i:04}-message");
                let holders = (1..=n)
                    .filter(|k| Partition::parse(&format!("{k}/{n}")).unwrap().holds(&key))
                    .count();
                assert_eq!(holders, 1, "{key} in {n} partitions");
            }
        }
    }

    #[test]
    fn partitions_split_evenly_enough() {
        let mut sizes = [0u32; 4];
        for i in 0..4000 {
            sizes[(Partition::index_of(&format!("id-{i}"), 4) - 1) as usize] += 1;
        }
        assert!(sizes.iter().all(|s| (850..=1150).contains(s)), "{sizes:?}");
    }

    #[test]
    fn labels_round_trip() {
        assert_eq!(Partition::WHOLE.label(), "");
        assert_eq!(Partition::from_label(""), Some(Partition::WHOLE));
        assert_eq!(Partition::from_label("0/0"), None);
        let p = Partition::parse("3/4").unwrap();
        assert_eq!(Partition::from_label(&p.label()), Some(p));
        assert_eq!(p.tag(), "3of4");
    }

    #[test]
    fn catch_up_starts_where_every_run_covering_the_partition_reached() {
        let p = |t: &str| Partition::parse(t).unwrap();
        // Nothing ran.
        assert_eq!(covered_until::<u32>(p("1/2"), &[]), None);
        // A whole run covers every partition.
        assert_eq!(covered_until(p("1/2"), &[(Partition::WHOLE, 10)]), Some(10));
        // Its own partition went further.
        assert_eq!(
            covered_until(p("1/2"), &[(Partition::WHOLE, 10), (p("1/2"), 20)]),
            Some(20)
        );
        // The other partition's runs do not cover it.
        assert_eq!(
            covered_until(p("1/2"), &[(Partition::WHOLE, 10), (p("2/2"), 30)]),
            Some(10)
        );
        // A whole run is covered by a complete split, up to its slowest partition.
        let split = [(p("1/2"), 20), (p("2/2"), 15)];
        assert_eq!(covered_until(Partition::WHOLE, &split), Some(15));
        assert_eq!(covered_until(Partition::WHOLE, &split[..1]), None);
        // Changing N: 1/3 is covered by the complete 2-split, not by a lone 1/2.
        assert_eq!(covered_until(p("1/3"), &split), Some(15));
        assert_eq!(covered_until(p("1/3"), &split[..1]), None);
    }
}

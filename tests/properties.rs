//! Property: however notifications arrive (duplicated, reordered, mixed with poison) and however
//! the day is cut into windows and batches, the tables end up as one clean run leaves them.

use proptest::prelude::*;
use serde_json::Value;

use crate::util::TestEnv;

fn day(seed: u64) -> Vec<Value> {
    let plan = ses_fixtures::Plan {
        notifications: 150,
        day: time::macros::date!(2026 - 11 - 27),
        seed,
        users: 20,
        string_timestamps_percent: 30.0,
        malformed: 3,
    };
    let mut out = Vec::new();
    ses_fixtures::generate(&plan, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 0, ..ProptestConfig::default() })]

    #[test]
    fn any_order_split_and_batching_gives_the_clean_tables(
        seed in 1u64..1000,
        shuffle in any::<u64>(),
        extra_copies in proptest::collection::vec(0usize..150, 0..20),
        cuts in proptest::collection::vec(1u32..86_399, 0..4),
        batch_sizes in proptest::collection::vec(1usize..60, 5),
    ) {
        let docs = day(seed);
        let clean = TestEnv::new("prop_clean");
        clean.insert(&docs);
        clean.ingest(&["--date", "2026-11-27"]);

        // The messy run: extra SNS retries, a random order, random windows in random order.
        let mut messy_docs = docs.clone();
        for i in extra_copies {
            messy_docs.push(docs[i % docs.len()].clone());
        }
        let mut rng = ses_fixtures::Rng::new(shuffle);
        for i in (1..messy_docs.len()).rev() {
            messy_docs.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let messy = TestEnv::new("prop_messy");
        messy.insert(&messy_docs);
        let mut bounds: Vec<u32> = cuts;
        bounds.extend([0, 86_400]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut windows: Vec<(String, String)> = bounds
            .windows(2)
            .map(|w| {
                let at = |s: u32| format!("2026-11-27T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60);
                (at(w[0]), if w[1] == 86_400 { "2026-11-28T00:00:00Z".to_string() } else { at(w[1]) })
            })
            .collect();
        windows.reverse();
        for (i, (from, to)) in windows.iter().enumerate() {
            let batch = batch_sizes[i % batch_sizes.len()].to_string();
            let run = messy.ingest(&["--from", from, "--to", to, "--batch-size", &batch]);
            prop_assert!(matches!(run.code(), 0 | 3), "{}", run);
        }
        prop_assert_eq!(messy.snapshot(), clean.snapshot());
        let rollups = "SELECT day, report_type, source_email, recipient_domain, sent, delivered, permanent_bounces, transient_bounces, complaints, unique_opens, total_opens, unique_clicks, total_clicks, unsubscribes FROM aws_report_daily ORDER BY 1, 2, 3, 4";
        prop_assert_eq!(messy.rows(rollups), clean.rows(rollups));
        prop_assert_eq!(messy.count("aws_report_failures"), clean.count("aws_report_failures"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, max_shrink_iters: 0, ..ProptestConfig::default() })]

    /// Any number of partitions, run in any order (some twice, as a rerun after a failure
    /// would), with any batch sizes, leave the tables, rollups and failures of one whole run.
    #[test]
    fn any_partitions_in_any_order_give_the_tables_of_one_run(
        seed in 1u64..1000,
        count in 1u32..=4,
        order in any::<u64>(),
        reruns in proptest::collection::vec(0u32..4, 0..3),
        batch_sizes in proptest::collection::vec(1usize..60, 4),
    ) {
        let docs = day(seed);
        let clean = TestEnv::new("prop_part_clean");
        clean.insert(&docs);
        let whole = clean.ingest(&["--date", "2026-11-27"]);

        let parts = TestEnv::new("prop_parts");
        parts.insert(&docs);
        let mut runs: Vec<u32> = (1..=count).collect();
        runs.extend(reruns.iter().map(|r| r % count + 1));
        let mut rng = ses_fixtures::Rng::new(order);
        for i in (1..runs.len()).rev() {
            runs.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let (mut applied, mut failed) = (0, 0);
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in runs.iter().enumerate() {
            let partition = format!("{k}/{count}");
            let batch = batch_sizes[i % batch_sizes.len()].to_string();
            let run = parts.ingest(&["--date", "2026-11-27", "--partition", &partition, "--batch-size", &batch]);
            prop_assert!(matches!(run.code(), 0 | 3), "{}", run);
            // A partition's first run applies its share; a rerun finds duplicates only.
            if seen.insert(*k) {
                applied += run.count("applied");
                failed += run.count("failed");
            } else {
                prop_assert_eq!(run.count("applied"), 0, "{}", run);
            }
        }
        prop_assert_eq!(parts.snapshot(), clean.snapshot());
        // No failure a whole run would not have. (Applied counts may differ by the batches: a
        // bounce that arrives by both routes in two batches is applied, then replaced.)
        prop_assert_eq!(failed, whole.count("failed"));
        prop_assert!(applied >= whole.count("applied"));
        let failures = "SELECT IF(notification_id LIKE 'mongo:%', 'mongo:*', notification_id) FROM aws_report_failures ORDER BY 1";
        prop_assert_eq!(parts.rows(failures), clean.rows(failures));
    }
}

/// A history of `days` days from 2026-11-23: a third of the mail leaves in the five minutes
/// before a midnight of the zone `utc_offset_hours` from UTC, complaints come up to two days
/// late, some bounces come by both routes (event publishing with the outgoing IP, and classic).
fn history(seed: u64, days: u32, utc_offset_hours: i64) -> Vec<Value> {
    let plan = ses_fixtures::Plan {
        notifications: 320,
        day: time::macros::date!(2026 - 11 - 23),
        seed,
        users: 25,
        string_timestamps_percent: 30.0,
        malformed: 2,
    };
    let shape = ses_fixtures::History {
        days,
        late_percent: 33.0,
        utc_offset_hours,
        late_complaint_percent: 40.0,
    };
    let mut out = Vec::new();
    ses_fixtures::generate_history(&plan, &shape, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What a user reads of a period: every table (`snapshot`) and `stats` by day and each rollup
/// dimension.
fn reports_of(env: &TestEnv, from: &str, to: &str) -> (crate::util::Snapshot, Vec<String>) {
    let mut stats = Vec::new();
    for by in [
        "provider",
        "sending-ip",
        "configuration-set",
        "domain",
        "report-type",
    ] {
        let run = env.run(&[
            "stats", "--from", from, "--to", to, "--by", "day", "--by", by, "--format", "csv",
        ]);
        assert_eq!(run.code(), 0, "{run}");
        stats.push(run.stdout());
    }
    (env.snapshot(), stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, max_shrink_iters: 0, ..ProptestConfig::default() })]

    /// Cron's life: one `--date` per run, in order, in the configured zone, with any batch sizes,
    /// gives the tables and `stats` of one run over the whole period, and a later `rollup` over
    /// the range changes nothing. (Late deliveries bring the outgoing IP and the provider to mail
    /// counted on the day before; second routes and late complaints cross days.)
    #[test]
    fn one_day_per_run_gives_the_tables_and_stats_of_one_run(
        seed in 1u64..10_000,
        days in 2u32..5,
        batch_sizes in proptest::collection::vec(1usize..80, 8),
        zone in 0usize..3,
    ) {
        // Zones whose days start at, before and after UTC's (no daylight saving change nearby).
        let (zone, offset) = [("UTC", 0), ("America/New_York", -5), ("Asia/Tokyo", 9)][zone];
        let docs = history(seed, days, offset);
        let zone = ("SES_REPORT_TZ".to_string(), zone.to_string());
        let first = time::macros::date!(2026 - 11 - 22);
        let end = first + time::Duration::days(i64::from(days) + 4);
        let (from, to) = (first.to_string(), end.to_string());

        let mut whole = TestEnv::new("prop_days_whole");
        whole.vars.push(zone.clone());
        whole.insert(&docs);
        let run = whole.ingest(&["--from", &from, "--to", &to]);
        prop_assert!(matches!(run.code(), 0 | 3), "{}", run);

        let mut daily = TestEnv::new("prop_days_daily");
        daily.vars.push(zone);
        daily.insert(&docs);
        let mut day = first;
        let mut i = 0;
        while day < end {
            let batch = batch_sizes[i % batch_sizes.len()].to_string();
            let run = daily.ingest(&["--date", &day.to_string(), "--batch-size", &batch]);
            prop_assert!(matches!(run.code(), 0 | 3), "{}", run);
            day = day.next_day().unwrap();
            i += 1;
        }
        let expected = reports_of(&whole, &from, &to);
        let by_day = reports_of(&daily, &from, &to);
        prop_assert_eq!(&by_day.0, &expected.0);
        prop_assert_eq!(&by_day.1, &expected.1);
        let run = daily.run(&["rollup", "--from", &from, "--to", &to]);
        prop_assert_eq!(run.code(), 0, "{}", run);
        prop_assert_eq!(reports_of(&daily, &from, &to), expected);
    }
}

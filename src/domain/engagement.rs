//! Which opens and clicks are people and which are machines.
//!
//! Every Open and Click row is kept; this decides its `automated` reason (`None`: a human, or
//! undecidable). The decision for one recipient of one message is a function of the *set* of
//! that recipient's opens, clicks and delivery time, never of the order they arrived in: the
//! store recomputes it for every summary row a batch touches, so a burst is a burst whichever
//! click arrives first, and a delivery arriving after its opens still reclassifies them.
//!
//! The rules and their evidence (docs/engagement.md cites each):
//! - `unsubscribe-link`: a click on an opt-out link is not engagement (useSend
//!   `unsubscribe-engagement-exempt.ts`: the word "unsubscribe" in the link's path or query);
//!   here also a `linkTags` name or value saying so.
//! - `scanner-agent`: an open or click from an agent that is no mail client or browser: HTTP
//!   libraries and crawlers (craft-campaign#546 "Python Requests"; mail-tracker#255's bot,
//!   crawl, spider, curl, wget, headless patterns; odoo#78806's link-preview bots).
//! - `apple-mpp`: an open whose agent is exactly `Mozilla/5.0`, what Apple Mail Privacy
//!   Protection's prefetch sends (ua-parser/uap-core#509, mail-tracker#255).
//! - `pre-delivery`: an open or click timestamped before the recipient's delivery: no person
//!   can open mail that has not arrived.
//! - `scanner-burst`: clicks on two or more distinct links within a second of each other
//!   (craft-campaign#546: 96% of click clusters were several links within about a second;
//!   mautic#9798: scanners click about one link a second).
//! - `on-delivery`: a click within 10 s of delivery (mautic#9798's 10 s window; resend-node#901
//!   shows a scanner click 12 s after delivery, so this catches only the fastest) or an open
//!   within 2 s of it (mautic#16263: 2 s after sending as the default bot threshold).
//!
//! Google's and Yahoo's image proxies (`GoogleImageProxy`, `YahooMailProxy`) fetch when a person
//! opens the mail: those are human opens, and nothing here matches them.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

/// Why an open or click does not count as human engagement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Automated {
    UnsubscribeLink,
    ScannerAgent,
    AppleMpp,
    PreDelivery,
    ScannerBurst,
    OnDelivery,
}

impl Automated {
    pub const ALL: [Automated; 6] = [
        Automated::UnsubscribeLink,
        Automated::ScannerAgent,
        Automated::AppleMpp,
        Automated::PreDelivery,
        Automated::ScannerBurst,
        Automated::OnDelivery,
    ];

    /// The value of `aws_report_details.automated`.
    pub fn name(self) -> &'static str {
        match self {
            Automated::UnsubscribeLink => "unsubscribe-link",
            Automated::ScannerAgent => "scanner-agent",
            Automated::AppleMpp => "apple-mpp",
            Automated::PreDelivery => "pre-delivery",
            Automated::ScannerBurst => "scanner-burst",
            Automated::OnDelivery => "on-delivery",
        }
    }

    pub fn from_name(name: &str) -> Option<Automated> {
        Automated::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Opens and clicks within this of each other, on distinct links, are a scanner's burst.
pub const BURST_GAP: Duration = Duration::seconds(1);
/// A click this soon after delivery is a scanner's.
pub const CLICK_AFTER_DELIVERY: Duration = Duration::seconds(10);
/// An open this soon after delivery is a prefetch.
pub const OPEN_AFTER_DELIVERY: Duration = Duration::seconds(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    Open,
    Click,
}

/// One open or click, as its detail row holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engagement {
    pub interaction: Interaction,
    pub at: OffsetDateTime,
    pub user_agent: Option<String>,
    /// Clicks only.
    pub link: Option<String>,
    /// Clicks only: the `linkTags` object as JSON text.
    pub link_tags: Option<String>,
}

/// Substrings (lower case) of agents that are HTTP libraries, crawlers or headless browsers.
const SCANNER_AGENTS: [&str; 16] = [
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headless",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww-perl",
    "apache-httpclient",
    "node-fetch",
    "facebookexternalhit",
];

/// Phone models whose names hold a scanner pattern, taken out of an agent before it is matched:
/// Cubot's Android phones (`CUBOT_NOTE_S`, `CUBOT_P20`) were taken for bots by substring
/// matchers (oalders/http-browserdetect#136, omrilotan/isbot#29).
const DEVICES_NAMED_LIKE_SCANNERS: [&str; 1] = ["cubot"];

/// What an agent alone says: a scanner, Apple's prefetch, or nothing.
pub fn by_agent(interaction: Interaction, user_agent: Option<&str>) -> Option<Automated> {
    let agent = user_agent?.trim();
    if agent.is_empty() {
        return None;
    }
    let mut lower = agent.to_ascii_lowercase();
    for device in DEVICES_NAMED_LIKE_SCANNERS {
        lower = lower.replace(device, "");
    }
    if SCANNER_AGENTS.iter().any(|s| lower.contains(s)) {
        return Some(Automated::ScannerAgent);
    }
    (interaction == Interaction::Open && agent == "Mozilla/5.0").then_some(Automated::AppleMpp)
}

/// Whether a click's link or its tags say it opts out.
pub fn is_unsubscribe_link(link: Option<&str>, link_tags: Option<&str>) -> bool {
    let says_unsubscribe = |text: &str| {
        let lower = text.to_ascii_lowercase();
        lower.contains("unsubscribe") || lower.contains("opt-out") || lower.contains("optout")
    };
    let in_link = link.is_some_and(|link| {
        // The path and query, not the host: `unsubscribe.example.com/…` landing pages aside,
        // a host name says nothing about the link (useSend reads path and query only).
        let rest = link.split_once("://").map(|(_, rest)| rest).unwrap_or(link);
        // The query may follow the host directly (`https://news.example?action=unsubscribe`).
        let path_and_query = rest.find(['/', '?', '#']).map(|i| &rest[i..]).unwrap_or("");
        says_unsubscribe(path_and_query)
    });
    in_link || link_tags.is_some_and(says_unsubscribe)
}

/// The reason of each engagement (same order), given the recipient's delivery time.
pub fn classify(
    events: &[Engagement],
    delivered_at: Option<OffsetDateTime>,
) -> Vec<Option<Automated>> {
    let bursts = burst_members(events);
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e.interaction == Interaction::Click
                && is_unsubscribe_link(e.link.as_deref(), e.link_tags.as_deref())
            {
                return Some(Automated::UnsubscribeLink);
            }
            if let Some(reason) = by_agent(e.interaction, e.user_agent.as_deref()) {
                return Some(reason);
            }
            if delivered_at.is_some_and(|d| e.at < d) {
                return Some(Automated::PreDelivery);
            }
            if bursts.contains(&i) {
                return Some(Automated::ScannerBurst);
            }
            let soon = match e.interaction {
                Interaction::Click => CLICK_AFTER_DELIVERY,
                Interaction::Open => OPEN_AFTER_DELIVERY,
            };
            if delivered_at.is_some_and(|d| e.at - d < soon) {
                return Some(Automated::OnDelivery);
            }
            None
        })
        .collect()
}

/// The clicks that belong to a burst: chains of clicks each within `BURST_GAP` of the next,
/// touching two or more distinct links. Depends only on the set of clicks.
fn burst_members(events: &[Engagement]) -> BTreeSet<usize> {
    let mut clicks: Vec<(OffsetDateTime, &str, usize)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.interaction == Interaction::Click)
        .map(|(i, e)| (e.at, e.link.as_deref().unwrap_or(""), i))
        .collect();
    clicks.sort();
    let mut members = BTreeSet::new();
    let mut start = 0;
    for end in 1..=clicks.len() {
        let chain_ends = end == clicks.len() || clicks[end].0 - clicks[end - 1].0 > BURST_GAP;
        if !chain_ends {
            continue;
        }
        let chain = &clicks[start..end];
        let links: BTreeSet<&str> = chain.iter().map(|c| c.1).collect();
        if links.len() >= 2 {
            members.extend(chain.iter().map(|c| c.2));
        }
        start = end;
    }
    members
}

/// Whether one of a recipient's opens and clicks is stored (with its class) or new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// About to be inserted; the summary upsert counted it human.
    New,
    Stored(Option<Automated>),
}

impl Standing {
    /// The class the summary row's counts reflect now.
    fn counted_as(self) -> Option<Automated> {
        match self {
            Standing::New => None,
            Standing::Stored(class) => class,
        }
    }
}

/// What a recipient's summary row holds that classification reads.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowState {
    pub delivered_at: Option<OffsetDateTime>,
    pub first_open: Option<OffsetDateTime>,
    pub first_click: Option<OffsetDateTime>,
    /// Its opens and clicks ever applied (new ones included). More than the events given means
    /// `prune` deleted some.
    pub engagements: u64,
}

/// The classification of one recipient's opens and clicks, and what it changes on its row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reclassified {
    /// Each event's class, in the order given.
    pub classes: Vec<Option<Automated>>,
    /// How the human counts move.
    pub human_opens: i64,
    pub human_clicks: i64,
    /// The row's first human open and click times, as they must now be.
    pub first_open: Option<OffsetDateTime>,
    pub first_click: Option<OffsetDateTime>,
}

impl Reclassified {
    /// Whether the summary row must be updated.
    pub fn changes(&self, row: &RowState) -> bool {
        self.human_opens != 0
            || self.human_clicks != 0
            || self.first_open != row.first_open
            || self.first_click != row.first_click
    }
}

/// Classifies a recipient's opens and clicks, stored and new, as one set (`classify`), and says
/// how its human counts and first times move. When some were pruned (`row.engagements` more
/// than the events), the evidence that classified the stored ones is partly gone, so they keep
/// their classes (a click whose burst partner was pruned is still a scanner's) and only new
/// ones are classified, against what remains. A stored first time before the retention horizon
/// `pruned_before` came from a pruned row: it stands.
pub fn reclassify(
    events: &[(Engagement, Standing)],
    row: &RowState,
    pruned_before: Option<OffsetDateTime>,
) -> Reclassified {
    let set: Vec<Engagement> = events.iter().map(|(e, _)| e.clone()).collect();
    let mut classes = classify(&set, row.delivered_at);
    if (events.len() as u64) < row.engagements {
        for ((_, standing), class) in events.iter().zip(classes.iter_mut()) {
            if let Standing::Stored(stored) = standing {
                *class = *stored;
            }
        }
    }
    let mut out = Reclassified::default();
    for ((event, standing), class) in events.iter().zip(&classes) {
        if *class != standing.counted_as() {
            let moved = i64::from(class.is_none()) - i64::from(standing.counted_as().is_none());
            match event.interaction {
                Interaction::Open => out.human_opens += moved,
                Interaction::Click => out.human_clicks += moved,
            }
        }
        if class.is_none() {
            let first = match event.interaction {
                Interaction::Open => &mut out.first_open,
                Interaction::Click => &mut out.first_click,
            };
            *first = Some(first.map_or(event.at, |f| f.min(event.at)));
        }
    }
    let kept = |stored: Option<OffsetDateTime>, fresh: Option<OffsetDateTime>| match (
        stored.filter(|s| pruned_before.is_some_and(|h| *s < h)),
        fresh,
    ) {
        (Some(s), Some(f)) => Some(s.min(f)),
        (s, f) => s.or(f),
    };
    out.first_open = kept(row.first_open, out.first_open);
    out.first_click = kept(row.first_click, out.first_click);
    out.classes = classes;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
    const GMAIL_PROXY: &str =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    const YAHOO_PROXY: &str =
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html";
    const OUTLOOK_DESKTOP: &str = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)";
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    fn open(at: OffsetDateTime, agent: &str) -> Engagement {
        Engagement {
            interaction: Interaction::Open,
            at,
            user_agent: Some(agent.into()),
            link: None,
            link_tags: None,
        }
    }

    fn click(at: OffsetDateTime, link: &str) -> Engagement {
        Engagement {
            interaction: Interaction::Click,
            at,
            user_agent: Some(CHROME.into()),
            link: Some(link.into()),
            link_tags: None,
        }
    }

    #[test]
    fn agents_of_people_and_of_their_providers_proxies_are_human() {
        for agent in [IPHONE, GMAIL_PROXY, YAHOO_PROXY, OUTLOOK_DESKTOP, CHROME] {
            assert_eq!(by_agent(Interaction::Open, Some(agent)), None, "{agent}");
            assert_eq!(by_agent(Interaction::Click, Some(agent)), None, "{agent}");
        }
        assert_eq!(by_agent(Interaction::Open, None), None);
        assert_eq!(by_agent(Interaction::Open, Some("  ")), None);
        // Cubot's phones hold "bot" in their model names; a bot beside one is still a bot.
        let cubot = "Mozilla/5.0 (Linux; Android 8.0.0; CUBOT_P20) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.110 Mobile Safari/537.36";
        assert_eq!(by_agent(Interaction::Click, Some(cubot)), None);
        assert_eq!(
            by_agent(Interaction::Click, Some("CUBOT_NOTE_S Googlebot/2.1")),
            Some(Automated::ScannerAgent)
        );
    }

    #[test]
    fn a_bare_mozilla_agent_is_apple_mpp_for_opens_only() {
        assert_eq!(
            by_agent(Interaction::Open, Some("Mozilla/5.0")),
            Some(Automated::AppleMpp)
        );
        assert_eq!(by_agent(Interaction::Click, Some("Mozilla/5.0")), None);
        assert_eq!(
            by_agent(Interaction::Open, Some("Mozilla/5.0 (Macintosh)")),
            None
        );
    }

    #[test]
    fn http_libraries_and_crawlers_are_scanners() {
        for agent in [
            "python-requests/2.31.0",
            "Python-urllib/3.11",
            "curl/8.5.0",
            "Wget/1.21.4",
            "Go-http-client/1.1",
            "Java/17.0.2",
            "okhttp/4.12.0",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
            "facebookexternalhit/1.1",
        ] {
            assert_eq!(
                by_agent(Interaction::Click, Some(agent)),
                Some(Automated::ScannerAgent),
                "{agent}"
            );
        }
    }

    #[test]
    fn unsubscribe_links_are_found_in_path_query_or_tags_not_host() {
        assert!(is_unsubscribe_link(
            Some("https://x.example/unsubscribe?u=1"),
            None
        ));
        assert!(is_unsubscribe_link(
            Some("https://x.example/p?action=Unsubscribe"),
            None
        ));
        assert!(is_unsubscribe_link(
            Some("https://x.example/email/opt-out"),
            None
        ));
        assert!(is_unsubscribe_link(
            Some("https://x.example/l/abc"),
            Some(r#"{"purpose":["unsubscribe"]}"#)
        ));
        assert!(!is_unsubscribe_link(
            Some("https://unsubscribe.example/offer"),
            None
        ));
        // A query straight after the host is still the query.
        assert!(is_unsubscribe_link(
            Some("https://news.shop.example?action=unsubscribe"),
            None
        ));
        assert!(is_unsubscribe_link(
            Some("https://news.shop.example#unsubscribe"),
            None
        ));
        assert!(!is_unsubscribe_link(
            Some("https://unsubscribe.shop.example?ref=mail"),
            None
        ));
        assert!(!is_unsubscribe_link(
            Some("https://x.example/offer"),
            Some(r#"{"campaign":["fall"]}"#)
        ));
        assert!(!is_unsubscribe_link(None, None));
    }

    #[test]
    fn distinct_links_within_a_second_are_a_burst_in_any_order() {
        let t = datetime!(2026-11-27 10:00:00 UTC);
        let d = Some(t - Duration::hours(1));
        let events = vec![
            click(t, "https://x.example/a"),
            click(t + Duration::milliseconds(400), "https://x.example/b"),
            click(t + Duration::milliseconds(1300), "https://x.example/c"),
            // The same link twice within a second is a person double-clicking.
            click(t + Duration::minutes(5), "https://x.example/a"),
            click(
                t + Duration::minutes(5) + Duration::milliseconds(300),
                "https://x.example/a",
            ),
            // Two links three seconds apart: a person reading.
            click(t + Duration::minutes(9), "https://x.example/a"),
            click(
                t + Duration::minutes(9) + Duration::seconds(3),
                "https://x.example/b",
            ),
        ];
        let burst = Some(Automated::ScannerBurst);
        let expected = vec![burst, burst, burst, None, None, None, None];
        assert_eq!(classify(&events, d), expected);
        let mut reversed = events.clone();
        reversed.reverse();
        let mut expected_reversed = expected.clone();
        expected_reversed.reverse();
        assert_eq!(classify(&reversed, d), expected_reversed);
    }

    #[test]
    fn timing_against_delivery() {
        let delivered = datetime!(2026-11-27 10:00:00 UTC);
        let events = vec![
            open(delivered - Duration::seconds(5), IPHONE),
            open(delivered + Duration::seconds(1), IPHONE),
            open(delivered + Duration::seconds(2), IPHONE),
            click(delivered + Duration::seconds(9), "https://x.example/a"),
            click(delivered + Duration::seconds(10), "https://x.example/a"),
        ];
        assert_eq!(
            classify(&events, Some(delivered)),
            vec![
                Some(Automated::PreDelivery),
                Some(Automated::OnDelivery),
                None,
                Some(Automated::OnDelivery),
                None
            ]
        );
        // Without a delivery (not yet arrived, or classic notifications without one), timing
        // says nothing.
        assert_eq!(classify(&events, None), vec![None; 5]);
    }

    #[test]
    fn the_stronger_reason_wins() {
        let delivered = datetime!(2026-11-27 10:00:00 UTC);
        let mut unsubscribe = click(
            delivered - Duration::seconds(1),
            "https://x.example/unsubscribe",
        );
        unsubscribe.user_agent = Some("python-requests/2.31".into());
        let mpp_early = open(delivered - Duration::seconds(1), "Mozilla/5.0");
        assert_eq!(
            classify(&[unsubscribe, mpp_early], Some(delivered)),
            vec![Some(Automated::UnsubscribeLink), Some(Automated::AppleMpp)]
        );
    }

    #[test]
    fn names_round_trip() {
        for a in Automated::ALL {
            assert_eq!(Automated::from_name(a.name()), Some(a));
        }
        assert_eq!(Automated::from_name("human"), None);
    }

    #[test]
    fn reclassifying_moves_the_counts_by_what_changed() {
        let delivered = datetime!(2026-11-27 10:00 UTC);
        let row = RowState {
            delivered_at: Some(delivered),
            first_open: Some(delivered + Duration::hours(1)),
            first_click: None,
            engagements: 2,
        };
        let person = CHROME;
        let events = vec![
            // Stored as human, still human.
            (
                open(delivered + Duration::hours(1), person),
                Standing::Stored(None),
            ),
            // New, and human: counted human by the upsert already, so nothing moves.
            (open(delivered + Duration::hours(2), person), Standing::New),
        ];
        let r = reclassify(&events, &row, None);
        assert_eq!(r.classes, vec![None, None]);
        assert_eq!((r.human_opens, r.human_clicks), (0, 0));
        assert_eq!(r.first_open, Some(delivered + Duration::hours(1)));
        assert!(!r.changes(&row));
        // A stored class that the set no longer supports moves the count back.
        let events = vec![(
            open(delivered + Duration::hours(1), person),
            Standing::Stored(Some(Automated::ScannerAgent)),
        )];
        let r = reclassify(
            &events,
            &RowState {
                engagements: 1,
                first_open: None,
                ..row
            },
            None,
        );
        assert_eq!((r.classes[0], r.human_opens), (None, 1));
    }

    #[test]
    fn pruned_rows_freeze_the_stored_classes_and_first_times() {
        let delivered = datetime!(2026-11-27 10:00 UTC);
        let horizon = delivered + Duration::days(1);
        let pruned_first = delivered + Duration::hours(3);
        let row = RowState {
            delivered_at: Some(delivered),
            first_open: Some(pruned_first),
            first_click: None,
            // Three ever applied, one given: two were pruned.
            engagements: 3,
        };
        let person = CHROME;
        let events = vec![(
            open(delivered + Duration::days(2), person),
            Standing::Stored(Some(Automated::ScannerAgent)),
        )];
        let r = reclassify(&events, &row, Some(horizon));
        assert_eq!(r.classes, vec![Some(Automated::ScannerAgent)]);
        assert_eq!(r.human_opens, 0);
        assert_eq!(r.first_open, Some(pruned_first));
    }
}

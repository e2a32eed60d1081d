//! Why a bounce (or a delay) happened, from the receiving server's reply: the class that says
//! whether the address is dead, full, disabled, or fine and the mail refused for something about
//! the sender (reputation, policy, content, rate) or the network (docs/suppressions.md,
//! "Bounce classes", gives each rule's source).
//!
//! SES labels a bounce by the reply's class alone (5xx: `Permanent`), so "550 5.7.1 blocked
//! using Spamhaus" comes back `Permanent` like "550 5.1.1 user unknown". The class here is read,
//! in this order, from the diagnostic's words (what receiving software says differs by software,
//! and is more specific than its code), SES's `bounceSubType` where it is specific, the enhanced
//! status code (RFC 3463, the IANA registry of RFC 5248), and the basic reply code.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::event_kind::EventKind;
use crate::domain::text::normalize_address;

/// The classes, most specific first in the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BounceClass {
    /// No such user or domain, moved without forwarding, a domain that accepts no mail.
    InvalidAddress,
    MailboxFull,
    /// Suspended, inactive, locked, disabled.
    MailboxDisabled,
    /// The sending IP or domain is blocked, blocklisted, or of poor reputation.
    Reputation,
    /// Authentication (SPF, DKIM, DMARC, reverse DNS, TLS required), relaying denied, the sender
    /// rejected, a security policy.
    Policy,
    /// Spam content, a virus, a message or attachment too large, a malformed message.
    Content,
    /// Too many connections, messages or recipients; throttled.
    RateLimit,
    /// DNS, network, TLS, the remote system's errors, expired after retries.
    Technical,
    Unclassified,
}

impl BounceClass {
    pub const ALL: [BounceClass; 9] = [
        BounceClass::InvalidAddress,
        BounceClass::MailboxFull,
        BounceClass::MailboxDisabled,
        BounceClass::Reputation,
        BounceClass::Policy,
        BounceClass::Content,
        BounceClass::RateLimit,
        BounceClass::Technical,
        BounceClass::Unclassified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BounceClass::InvalidAddress => "invalid-address",
            BounceClass::MailboxFull => "mailbox-full",
            BounceClass::MailboxDisabled => "mailbox-disabled",
            BounceClass::Reputation => "reputation",
            BounceClass::Policy => "policy",
            BounceClass::Content => "content",
            BounceClass::RateLimit => "rate-limit",
            BounceClass::Technical => "technical",
            BounceClass::Unclassified => "unclassified",
        }
    }

    pub fn parse(text: &str) -> Option<BounceClass> {
        BounceClass::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for BounceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a bounced or delayed recipient's record says.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reply<'a> {
    /// SES's `bounceSubType` (bounces only).
    pub sub_type: Option<&'a str>,
    /// The recipient's `status` (an enhanced status code, e.g. `5.1.1`).
    pub status: Option<&'a str>,
    /// The recipient's `diagnosticCode` (the remote server's reply, as SES relays it).
    pub diagnostic: Option<&'a str>,
}

/// The entry of `recipient` in the event object's list of recipients (`bouncedRecipients`,
/// `delayedRecipients`), matched as the job normalizes addresses.
pub fn recipient_entry<'a>(
    info: &'a serde_json::Value,
    list: &str,
    recipient: &str,
) -> Option<&'a serde_json::Value> {
    info.get(list)?.as_array()?.iter().find(|r| {
        r.get("emailAddress")
            .and_then(|a| a.as_str())
            .map(normalize_address)
            .as_deref()
            == Some(recipient)
    })
}

/// What a detail row of a Bounce or DeliveryDelay keeps of its recipient's reply: the class,
/// and for a delay SES's `delayType` as it came. Other kinds: nothing.
pub fn of_event(
    kind: EventKind,
    info: &serde_json::Value,
    recipient: &str,
) -> (Option<BounceClass>, Option<String>) {
    fn text(v: Option<&serde_json::Value>) -> Option<&str> {
        v.and_then(|v| v.as_str())
    }
    let (list, hint) = match kind {
        EventKind::Bounce => ("bouncedRecipients", text(info.get("bounceSubType"))),
        EventKind::DeliveryDelay => ("delayedRecipients", None),
        _ => return (None, None),
    };
    let entry = recipient_entry(info, list, recipient);
    let delay_type = match kind {
        EventKind::DeliveryDelay => text(info.get("delayType")),
        _ => None,
    };
    let class = classify(Reply {
        sub_type: hint.or(delay_type),
        status: text(entry.and_then(|r| r.get("status"))),
        diagnostic: text(entry.and_then(|r| r.get("diagnosticCode"))),
    });
    (Some(class), delay_type.map(str::to_string))
}

/// The class of one bounced or delayed recipient.
pub fn classify(reply: Reply<'_>) -> BounceClass {
    let text = reply.diagnostic.unwrap_or("").to_ascii_lowercase();
    if let Some(class) = by_words(&text) {
        return class;
    }
    if let Some(class) = reply.sub_type.and_then(by_sub_type) {
        return class;
    }
    let code = enhanced_code(&text).or_else(|| reply.status.and_then(|s| enhanced_code(s.trim())));
    if let Some(class) = code.and_then(by_enhanced_code) {
        return class;
    }
    by_reply_code(&text).unwrap_or(BounceClass::Unclassified)
}

/// Phrases, by class, in the order they are checked: a phrase that names the sender's standing
/// (a blocklist) wins over one that names the mailbox, since a block message often quotes the
/// recipient. Lower case; matched anywhere in the diagnostic.
const WORDS: &[(BounceClass, &[&str])] = &[
    // A recipient's own list of refused senders (an address or domain, not an IP's standing).
    (
        BounceClass::Policy,
        &[
            "your email address has been",
            "your domain has been",
            "badmailfrom",
        ],
    ),
    (
        BounceClass::Reputation,
        &[
            "spamhaus",
            "spamcop",
            "sorbs.net",
            "barracudacentral",
            "barracuda reputation",
            "mailspike",
            "dnsbl",
            "blocklist",
            "block list",
            "blacklist",
            "black list",
            "denylist",
            "blocked using",
            "listed at",
            "listed on",
            "reputation",
            "s3150",
            "banned sending ip",
            "access denied, banned",
            "traffic not accepted from this ip",
            "unusual rate",
            "not in whitelist",
            "not in allowlist",
            "[ts01]",
            "[ts02]",
            "[ts03]",
            "[tss04]",
            "[bl21]",
            "[bl22]",
            "[bl23]",
            "user complaints",
            "access from ip address",
            "client host blocked",
            "client host rejected: blocked",
            "invalid ip for sending mail",
            "server access forbidden by your ip",
            "proofpoint.com/dnsbl",
            "ip address is blocked",
            "ip blocked",
            "helo/ehlo argument",
            "too many invalid recipients",
            "this ip has been",
            "rbl reject",
            "not accepting connections",
            "greylist",
            "connection rejected by policy",
            "sender address blocked",
        ],
    ),
    // Words that name the message itself, even where a policy word (a DKIM header) appears too.
    (
        BounceClass::Content,
        &[
            "duplicate header",
            "multiple subject headers",
            "not rfc 5322 compliant",
            "is not rfc 5322",
            "not rfc compliant",
            "message filtered",
            "blank from",
            "not allowed as a from",
            "rfcmessagenoncompliant",
            "message score",
            "mail score",
            "spam score",
            "virus",
            "malware",
        ],
    ),
    // Authentication and the sender's identity: named even where the reply also says it is
    // rate limiting ("rate limited because it is unauthenticated").
    (
        BounceClass::Policy,
        &[
            "spf",
            "dkim",
            "dmarc",
            "unauthenticated",
            "not authenticated",
            "authenticat",
            "authrequired",
            "starttls",
            "tls required",
            "tls/ssl",
            "tls connection",
            "must use tls",
            "ptr record",
            "reverse dns",
            "rdns",
            "cannot find your hostname",
            "cannot find your reverse hostname",
            "sender address rejected",
            "sender rejected",
            "domain of sender address",
            "sender domain",
            "sender verify failed",
            "not allowed to send",
            "requires encryption",
            "requires tls",
            "high-strength ciphers",
            "tls/sslv3",
            "authentification",
            "not owned by user",
            "from: domain is invalid",
            "unresolvable rfc.5321",
            "network not allowed",
            "block policy",
        ],
    ),
    (
        BounceClass::RateLimit,
        &[
            "rate limit",
            "rate-limit",
            "ratelimit",
            "rate limited",
            "too many connections",
            "too many concurrent",
            "too many messages",
            "too many recipients",
            "too many sessions",
            "connection rate",
            "try again slower",
            "receiving mail at a rate",
            "sending rate",
            "throttl",
            "temporarily deferred",
            "exceeded the rate",
            "quota exceeded for sender",
            "too quickly",
            "max message per connection",
            "excessive volume",
            "messages per session",
            "thread limit",
        ],
    ),
    (
        BounceClass::MailboxFull,
        &[
            "mailbox full",
            "mailbox is full",
            "mailbox quota",
            "over quota",
            "overquota",
            "quota exceeded",
            "exceeded storage allocation",
            "insufficient disk space",
            "user is over",
            "mailbox has exceeded",
            "inbox is full",
            "out of storage",
            "full mailbox",
        ],
    ),
    // Apple words an unknown address "inactive email address" (with 5.1.1).
    (BounceClass::InvalidAddress, &["inactive email address"]),
    (
        BounceClass::MailboxDisabled,
        &[
            "archived recipient",
            "compte du destinataire est bloque",
            "account is disabled",
            "account has been disabled",
            "mailbox disabled",
            "mailbox is disabled",
            "account disabled",
            "is disabled",
            "suspend",
            "inactive",
            "temporary locked",
            "account is locked",
            "account locked",
            "deactivated",
            "not active",
            "expired account",
            "account expired",
        ],
    ),
    (
        BounceClass::InvalidAddress,
        &[
            "user unknown",
            "unknown user",
            "no such user",
            "no such recipient",
            "no such mailbox",
            "no such address",
            "no such person",
            "no such domain",
            "unknown recipient",
            "unknown mailbox",
            "recipient unknown",
            "address unknown",
            "addressee unknown",
            "recipient not found",
            "recipientnotfound",
            "recipnotfound",
            "user not found",
            "mailbox not found",
            "mailbox does not exist",
            "mailbox unavailable",
            "mailbox is unavailable",
            "does not exist",
            "doesn't exist",
            "doesn't have a",
            "invalid recipient",
            "invalid address",
            "invalid mailbox",
            "not a valid recipient",
            "not a valid mailbox",
            "address rejected",
            "bad destination",
            "bad address",
            "unrouteable address",
            "no mailbox here",
            "no mailbox by that name",
            "not our customer",
            "host unknown",
            "domain not found",
            "domain does not exist",
            "domain is not reachable",
            "host or domain name not found",
            "has been replaced by",
            "no longer accepts mail",
            "no longer valid",
            "not listed in",
            "allowed rcpthosts",
            "accepts no mail",
            "null mx",
            "does not accept mail",
            "mailbox is not allowed",
        ],
    ),
    (
        BounceClass::Policy,
        &[
            "relay",
            "denied by policy",
            "policy reasons",
            "security polic",
            "local policy",
            "administrative prohibition",
            "client host rejected",
            "envelope blocked",
            "anti-spoofing",
            "blocked by the recipient",
            "user reject",
            "not permitted",
            "(in reply to mail from command)",
        ],
    ),
    (
        BounceClass::Content,
        &[
            "spam",
            "infected",
            "prohibited attachment",
            "illegal attachment",
            "attachment",
            "content",
            "message too large",
            "size exceeded",
            "message too big",
            "message size",
            "size limit",
            "sizelimit",
            "exceeds fixed maximum message size",
            "header size exceeds",
            "too large",
            "improperly-formatted",
            "unsolicited",
            "bulk mail",
        ],
    ),
    (
        BounceClass::Technical,
        &[
            "expired",
            "retry timeout",
            "delivery time",
            "will be retried",
            "delayed",
            "timed out",
            "timeout",
            "connection refused",
            "connection reset",
            "connection dropped",
            "no route to host",
            "network is unreachable",
            "unable to connect",
            "hop count",
            "hops",
            "too many hops",
            "routing loop",
            "mail loop",
            "loops back to myself",
            "dns",
            "name server",
            "lookup",
            "system config",
            "configuration error",
            "system full",
            "mail system full",
            "system error",
            "internal error",
            "temporary failure",
            "temporarily unavailable",
            "service unavailable",
            "try again later",
            "procmail",
            "pipe to |",
            "x-unix",
        ],
    ),
];

fn by_words(text: &str) -> Option<BounceClass> {
    if text.is_empty() {
        return None;
    }
    WORDS
        .iter()
        .find(|(_, phrases)| phrases.iter().any(|p| text.contains(p)))
        .map(|(class, _)| *class)
}

/// SES's `bounceSubType`, or a delay's `delayType`, where it names the cause (SES's "Bounce
/// types" table and its DeliveryDelay object); `General`, `Undetermined` and `Suppressed` say
/// nothing of it.
fn by_sub_type(sub_type: &str) -> Option<BounceClass> {
    match sub_type {
        "NoEmail" => Some(BounceClass::InvalidAddress),
        "MailboxFull" => Some(BounceClass::MailboxFull),
        "MessageTooLarge" | "ContentRejected" | "AttachmentRejected" | "SpamDetected" => {
            Some(BounceClass::Content)
        }
        // "blocked or throttled by the recipient's email provider"
        "IPFailure" => Some(BounceClass::Reputation),
        "InternalFailure"
        | "RecipientServerError"
        | "TransientCommunicationFailure"
        | "BYOIPHostNameLookupUnavailable"
        | "SendingDeferral" => Some(BounceClass::Technical),
        _ => None,
    }
}

/// The first enhanced status code (`class.subject.detail`, RFC 3463) in `text`.
fn enhanced_code(text: &str) -> Option<(u8, u16, u16)> {
    let bytes = text.as_bytes();
    for start in 0..bytes.len() {
        let before_ok =
            start == 0 || !bytes[start - 1].is_ascii_digit() && bytes[start - 1] != b'.';
        if !before_ok || !matches!(bytes[start], b'2' | b'4' | b'5') {
            continue;
        }
        let rest = &text[start..];
        let mut parts = rest.splitn(3, '.');
        let (Some(class), Some(subject), Some(tail)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let detail: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let valid = class.len() == 1
            && (1..=3).contains(&subject.len())
            && subject.bytes().all(|b| b.is_ascii_digit())
            && (1..=3).contains(&detail.len());
        if valid {
            return Some((
                class.parse().ok()?,
                subject.parse().ok()?,
                detail.parse().ok()?,
            ));
        }
    }
    None
}

/// RFC 3463's subjects and details, with the RFC 5248 registry's later details.
fn by_enhanced_code((_, subject, detail): (u8, u16, u16)) -> Option<BounceClass> {
    use BounceClass::*;
    Some(match (subject, detail) {
        // X.1.1 bad destination mailbox, X.1.2 bad destination system, X.1.3 bad mailbox
        // syntax, X.1.4 ambiguous, X.1.6 moved, X.1.10 null MX (RFC 7505).
        (1, 1 | 2 | 3 | 4 | 6 | 10) => InvalidAddress,
        // X.1.7, X.1.8: the sender's address or system.
        (1, 7 | 8) => Policy,
        (2, 1) => MailboxDisabled,
        (2, 2) => MailboxFull,
        (2, 3) => Content,
        (2, _) => Technical,
        (3, 4) => Content,
        (3, _) => Technical,
        // X.4.4 unable to route: the domain has no mail server.
        (4, 4) => InvalidAddress,
        (4, _) => Technical,
        (5, _) => Technical,
        (6, _) => Content,
        // X.7.13 user account disabled, X.7.14 trust relationship required (RFC 5248 registry).
        (7, 13) => MailboxDisabled,
        // X.7.28 mail flood detected.
        (7, 28) => RateLimit,
        (7, 1) | (7, 0) => return None,
        (7, _) => Policy,
        _ => return None,
    })
}

/// The basic reply code alone (RFC 5321): 552 "exceeded storage allocation"; 556 "domain does
/// not accept mail" (RFC 7504, a null MX); 421 and 45x: the service, not the address.
fn by_reply_code(text: &str) -> Option<BounceClass> {
    let code: String = text
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take(3)
        .collect();
    match code.as_str() {
        "552" => Some(BounceClass::MailboxFull),
        "556" => Some(BounceClass::InvalidAddress),
        "421" | "450" | "451" | "452" => Some(BounceClass::Technical),
        // A bare 550 or 554 says nothing of why: unclassified (the soft rules), not a guess.
        _ => None,
    }
}

/// A reply with what differs from one recipient or connection to the next taken out, so that
/// the replies of one cause count together (and no address reaches a report): addresses become
/// `<address>`, IPv4 addresses `<ip>`, queue ids and other runs of 5 or more digits (or long
/// tokens mixing letters and digits) `#`; the `smtp;` prefix and repeated spaces go; at most
/// 160 characters.
pub fn reply_pattern(diagnostic: &str) -> String {
    const MAX: usize = 160;
    let text = diagnostic.trim();
    let text = text
        .strip_prefix("smtp;")
        .or_else(|| text.strip_prefix("SMTP;"))
        .unwrap_or(text);
    let words: Vec<String> = text.split_whitespace().map(word_pattern).collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// The most frequent replies of each class: (class, [(reply pattern, bounces)]).
pub type TopReplies = Vec<(BounceClass, Vec<(String, u64)>)>;

/// The `n` most frequent reply patterns of each class (`reply_pattern`), most frequent first
/// (ties in text order), classes in `BounceClass::ALL` order; a class without bounces is left out.
#[derive(Debug, Default)]
pub struct ReplyTally {
    counts: BTreeMap<(BounceClass, String), u64>,
}

impl ReplyTally {
    pub fn add(&mut self, class: BounceClass, diagnostic: &str) {
        let pattern = match reply_pattern(diagnostic) {
            p if p.is_empty() => "(no reply relayed)".to_string(),
            p => p,
        };
        *self.counts.entry((class, pattern)).or_default() += 1;
    }

    pub fn top(self, n: usize) -> TopReplies {
        let mut by_class: BTreeMap<BounceClass, Vec<(String, u64)>> = BTreeMap::new();
        for ((class, pattern), count) in self.counts {
            by_class.entry(class).or_default().push((pattern, count));
        }
        by_class
            .into_iter()
            .map(|(class, mut patterns)| {
                patterns.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                patterns.truncate(n);
                (class, patterns)
            })
            .collect()
    }
}

/// One word of a reply, its variable part replaced (`reply_pattern`), the punctuation around
/// it kept.
fn word_pattern(word: &str) -> String {
    let is_edge = |c: char| "<>[]()\"',;:.".contains(c);
    let core = word.trim_matches(is_edge);
    if core.is_empty() {
        return word.to_string();
    }
    let start = word.find(core).unwrap_or(0);
    let (before, after) = (&word[..start], &word[start + core.len()..]);
    let digits = core.chars().filter(char::is_ascii_digit).count();
    let replacement = if core.contains('@') {
        "<address>"
    } else if core.split('.').count() == 4
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
    {
        "<ip>"
    } else if digits >= 5
        || (core.len() >= 12
            && digits >= 2
            && core.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        "#"
    } else {
        return word.to_string();
    };
    format!("{before}{replacement}{after}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_one_cause_share_a_pattern_without_addresses() {
        assert_eq!(
            reply_pattern(
                "smtp; 550 5.1.1 <jane.doe@example.com>: Recipient address rejected: User unknown"
            ),
            "550 5.1.1 <<address>>: Recipient address rejected: User unknown"
        );
        assert_eq!(
            reply_pattern("smtp; 554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org"),
            "554 5.7.1 Service unavailable; Client host [<ip>] blocked using zen.spamhaus.org"
        );
        let a = reply_pattern("550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. (S3150) [AM0PR01MB1234.eurprd01.prod.exchangelabs.com 2026-11-27T10:00:00.000Z 08DC1234567890AB]");
        let b = reply_pattern("550 5.7.1 Unfortunately, messages from [198.51.100.9] weren't sent. (S3150) [DB9PR02MB9876.eurprd02.prod.exchangelabs.com 2026-11-28T11:00:00.000Z 08DCABCDEF123456]");
        assert_eq!(a, b);
        assert!(!a.contains("198.51"), "{a}");
        assert_eq!(
            reply_pattern(
                "  421   4.7.0  Try again later, closing connection. (EHLO) 5-20020a05 - gsmtp "
            ),
            "421 4.7.0 Try again later, closing connection. (EHLO) # - gsmtp"
        );
        let mut tally = ReplyTally::default();
        for ip in ["198.51.100.7", "198.51.100.9", "203.0.113.4"] {
            tally.add(
                BounceClass::Reputation,
                &format!("554 5.7.1 Client host [{ip}] blocked using zen.spamhaus.org"),
            );
        }
        tally.add(BounceClass::Reputation, "550 5.7.1 IP listed");
        tally.add(
            BounceClass::InvalidAddress,
            "550 5.1.1 <a@x.org>: User unknown",
        );
        tally.add(
            BounceClass::InvalidAddress,
            "550 5.1.1 <b@x.org>: User unknown",
        );
        tally.add(BounceClass::Technical, "");
        assert_eq!(
            tally.top(1),
            vec![
                (
                    BounceClass::InvalidAddress,
                    vec![("550 5.1.1 <<address>>: User unknown".to_string(), 2)]
                ),
                (
                    BounceClass::Reputation,
                    vec![(
                        "554 5.7.1 Client host [<ip>] blocked using zen.spamhaus.org".to_string(),
                        3
                    )]
                ),
                (
                    BounceClass::Technical,
                    vec![("(no reply relayed)".to_string(), 1)]
                ),
            ]
        );
        let long = "x ".repeat(200);
        assert_eq!(reply_pattern(&long).chars().count(), 161);
    }

    fn class(diagnostic: &str) -> BounceClass {
        classify(Reply {
            diagnostic: Some(diagnostic),
            ..Reply::default()
        })
    }

    #[test]
    fn enhanced_codes_are_found_inside_replies() {
        assert_eq!(
            enhanced_code("550 5.1.1 <a@b.c>: user unknown"),
            Some((5, 1, 1))
        );
        assert_eq!(
            enhanced_code("smtp; 550-5.7.26 this mail"),
            Some((5, 7, 26))
        );
        assert_eq!(enhanced_code("#5.1.1 bad address"), Some((5, 1, 1)));
        assert_eq!(enhanced_code("(#5.7.1)"), Some((5, 7, 1)));
        assert_eq!(enhanced_code("192.0.2.1 said"), None);
        assert_eq!(enhanced_code("no code"), None);
    }

    #[test]
    fn the_words_win_over_a_generic_code() {
        assert_eq!(
            class("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
            BounceClass::Reputation
        );
        assert_eq!(
            class("550 5.7.1 <a@b.c>: Relay access denied"),
            BounceClass::Policy
        );
        assert_eq!(
            class("550 5.0.0 <a@b.c>... User unknown"),
            BounceClass::InvalidAddress
        );
    }

    #[test]
    fn the_code_decides_where_the_words_say_nothing() {
        assert_eq!(class("550 5.1.1 nope"), BounceClass::InvalidAddress);
        assert_eq!(class("452 4.2.2 nope"), BounceClass::MailboxFull);
        assert_eq!(class("550 5.2.1 nope"), BounceClass::MailboxDisabled);
        assert_eq!(class("550 5.7.26 nope"), BounceClass::Policy);
        let by_status = classify(Reply {
            status: Some("5.1.1"),
            diagnostic: Some("550 nope"),
            ..Reply::default()
        });
        assert_eq!(by_status, BounceClass::InvalidAddress);
        assert_eq!(class(""), BounceClass::Unclassified);
    }

    #[test]
    fn a_detail_row_keeps_its_recipients_class_and_a_delays_type() {
        let bounce = serde_json::json!({"bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": "A@X.org", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
                {"emailAddress": "b@x.org", "status": "5.7.1", "diagnosticCode": "smtp; 554 5.7.1 blocked using zen.spamhaus.org"}]});
        assert_eq!(
            of_event(EventKind::Bounce, &bounce, "a@x.org"),
            (Some(BounceClass::InvalidAddress), None)
        );
        assert_eq!(
            of_event(EventKind::Bounce, &bounce, "b@x.org"),
            (Some(BounceClass::Reputation), None)
        );
        assert_eq!(
            of_event(EventKind::Bounce, &bounce, "c@x.org"),
            (Some(BounceClass::Unclassified), None)
        );
        let delay = serde_json::json!({"delayType": "IPFailure", "delayedRecipients": [
            {"emailAddress": "d@x.org", "status": "4.4.1", "diagnosticCode": ""}]});
        assert_eq!(
            of_event(EventKind::DeliveryDelay, &delay, "d@x.org"),
            (Some(BounceClass::Reputation), Some("IPFailure".to_string()))
        );
        let mailbox_full = serde_json::json!({"delayType": "MailboxFull", "delayedRecipients": []});
        assert_eq!(
            of_event(EventKind::DeliveryDelay, &mailbox_full, "d@x.org").0,
            Some(BounceClass::MailboxFull)
        );
        assert_eq!(of_event(EventKind::Open, &delay, "d@x.org"), (None, None));
    }

    #[test]
    fn ses_sub_types_that_name_a_cause_are_used() {
        let reply = |sub_type| Reply {
            sub_type: Some(sub_type),
            ..Reply::default()
        };
        assert_eq!(classify(reply("NoEmail")), BounceClass::InvalidAddress);
        assert_eq!(classify(reply("MailboxFull")), BounceClass::MailboxFull);
        assert_eq!(classify(reply("AttachmentRejected")), BounceClass::Content);
        assert_eq!(classify(reply("General")), BounceClass::Unclassified);
    }

    /// The data lines of a corpus file, split at tabs (comments and blank lines left out).
    fn data_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split('\t').collect())
    }

    /// The corpus (`fixtures/bounces/corpus.tsv`): real replies from public sources, each with
    /// the class its source's classifier gives; every class is represented.
    #[test]
    fn the_corpus_is_classified_as_its_sources_classify_it() {
        let text = include_str!("../../fixtures/bounces/corpus.tsv");
        let mut wrong = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut total = 0;
        for fields in data_lines(text) {
            assert_eq!(
                fields.len(),
                4,
                "class, status, diagnostic, source: {fields:?}"
            );
            let expected = BounceClass::parse(fields[0]).unwrap_or_else(|| panic!("{fields:?}"));
            seen.insert(expected);
            total += 1;
            let got = classify(Reply {
                sub_type: None,
                status: Some(fields[1]).filter(|s| !s.is_empty()),
                diagnostic: Some(fields[2]),
            });
            if got != expected {
                wrong.push(format!("{expected} got {got}: {}", fields[2]));
            }
        }
        assert!(total >= 60, "{total} lines");
        assert_eq!(seen.len(), BounceClass::ALL.len(), "every class: {seen:?}");
        assert!(
            wrong.is_empty(),
            "{} of {total} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    /// Replies the rules were never tuned on (`held-out.tsv`): how they do on a new provider.
    #[test]
    fn held_out_replies_agree_at_least_three_in_four() {
        let text = include_str!("../../fixtures/bounces/held-out.tsv");
        let (mut agree, mut total) = (0, 0);
        for fields in data_lines(text) {
            total += 1;
            if class(fields[2]).as_str() == fields[0] {
                agree += 1;
            }
        }
        assert!(total >= 20);
        assert!(agree * 4 >= total * 3, "{agree} of {total}");
    }

    /// Replies of seven more receiving services (`providers.tsv`: Yahoo, Apple iCloud, GoDaddy,
    /// Mimecast, Symantec MessageLabs, Orange / La Poste, Zoho). They agreed at 84 of 133 before
    /// the rules were changed for them, 122 after; what the suppression rules need holds on all of
    /// them: every dead address is read as one, and almost nothing else is.
    #[test]
    fn provider_replies_agree_and_only_dead_addresses_read_as_dead() {
        let text = include_str!("../../fixtures/bounces/providers.tsv");
        let (mut agree, mut total) = (0, 0);
        let (mut dead, mut dead_read_dead, mut others_read_dead) = (0, 0, 0);
        for fields in data_lines(text) {
            assert_eq!(fields.len(), 3, "class, diagnostic, source: {fields:?}");
            let expected = BounceClass::parse(fields[0]).unwrap_or_else(|| panic!("{fields:?}"));
            let got = class(fields[1]);
            total += 1;
            agree += usize::from(got == expected);
            if expected == BounceClass::InvalidAddress {
                dead += 1;
                dead_read_dead += usize::from(got == expected);
            } else if got == BounceClass::InvalidAddress {
                others_read_dead += 1;
            }
        }
        assert!(total >= 130, "{total}");
        assert!(agree * 10 >= total * 9, "{agree} of {total}");
        assert_eq!(dead_read_dead, dead, "every dead address suppresses");
        assert!(
            others_read_dead * 20 <= total - dead,
            "{others_read_dead} of {} other bounces would suppress",
            total - dead
        );
    }

    /// Scores another corpus (`SES_REPORT_BOUNCE_CORPUS`: lines of expected class, diagnostic,
    /// anything else, tab-separated) and prints the disagreements: how a new set of replies is
    /// checked before its lines join `corpus.tsv`. Run with `--ignored --nocapture`.
    #[test]
    #[ignore]
    fn score_a_corpus_file() {
        let Ok(path) = std::env::var("SES_REPORT_BOUNCE_CORPUS") else {
            return;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let (mut agree, mut total) = (0, 0);
        for fields in data_lines(&text) {
            total += 1;
            let got = class(fields[1]);
            if got.as_str() == fields[0] {
                agree += 1;
            } else {
                println!("{} got {got}: {}", fields[0], fields[1]);
            }
        }
        println!("{agree} of {total} agree");
    }
}

//! The mailbox provider behind a recipient: who actually holds the mailbox, since
//! deliverability problems show up per provider (Gmail vs Microsoft), not per domain. AWS's
//! Virtual Deliverability Manager breaks its metrics down by `ISP` the same way.
//!
//! Two sources, no DNS lookups at run time:
//! - consumer domains, from the built-in table below (each provider's own domains);
//! - company domains, from the receiving server's reply in a Delivery event's `smtpResponse`:
//!   Google's SMTP replies end in `gsmtp`; Microsoft 365's name their `*.outlook.com` host
//!   (`*.prod.outlook.com`, `*.protection.outlook.com`).
//!
//! A recipient's provider is the table's answer when it has one, else the evidence's, else
//! `other`; several pieces of evidence merge order-free (the smaller id wins) so reruns and
//! any order agree.

/// Provider ids, as stored in `aws_reports.mailbox_provider` and the rollups.
pub const OTHER: &str = "other";

/// (domain, provider id): consumer domains whose mailboxes the provider hosts.
const CONSUMER_DOMAINS: &[(&str, &str)] = &[
    ("gmail.com", "google"),
    ("googlemail.com", "google"),
    ("outlook.com", "microsoft"),
    ("hotmail.com", "microsoft"),
    ("hotmail.co.uk", "microsoft"),
    ("hotmail.fr", "microsoft"),
    ("hotmail.de", "microsoft"),
    ("hotmail.it", "microsoft"),
    ("hotmail.es", "microsoft"),
    ("live.com", "microsoft"),
    ("live.co.uk", "microsoft"),
    ("live.fr", "microsoft"),
    ("msn.com", "microsoft"),
    ("outlook.fr", "microsoft"),
    ("outlook.de", "microsoft"),
    ("yahoo.com", "yahoo"),
    ("yahoo.co.uk", "yahoo"),
    ("yahoo.fr", "yahoo"),
    ("yahoo.de", "yahoo"),
    ("yahoo.co.jp", "yahoo-japan"),
    ("ymail.com", "yahoo"),
    ("rocketmail.com", "yahoo"),
    // AOL Mail has been run by Yahoo since Verizon Media merged them (2017).
    ("aol.com", "yahoo"),
    ("icloud.com", "apple"),
    ("me.com", "apple"),
    ("mac.com", "apple"),
    ("gmx.de", "gmx"),
    ("gmx.net", "gmx"),
    ("gmx.com", "gmx"),
    ("gmx.at", "gmx"),
    ("web.de", "gmx"),
    ("yandex.ru", "yandex"),
    ("yandex.com", "yandex"),
    ("ya.ru", "yandex"),
    ("mail.ru", "mailru"),
    ("bk.ru", "mailru"),
    ("inbox.ru", "mailru"),
    ("list.ru", "mailru"),
    ("qq.com", "tencent"),
    ("163.com", "netease"),
    ("126.com", "netease"),
    ("naver.com", "naver"),
    ("proton.me", "proton"),
    ("protonmail.com", "proton"),
    ("zoho.com", "zoho"),
    ("comcast.net", "comcast"),
    ("orange.fr", "orange"),
    ("wanadoo.fr", "orange"),
    ("t-online.de", "t-online"),
    ("libero.it", "libero"),
    ("seznam.cz", "seznam"),
];

/// The provider of a consumer domain, if the table knows it.
pub fn of_domain(domain: &str) -> Option<&'static str> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    CONSUMER_DOMAINS
        .iter()
        .find(|(d, _)| *d == domain)
        .map(|(_, p)| *p)
}

/// The provider a receiving server's SMTP reply names, if any.
pub fn of_smtp_response(response: &str) -> Option<&'static str> {
    let lower = response.trim().to_ascii_lowercase();
    if lower.ends_with("gsmtp") {
        return Some("google");
    }
    if lower.contains(".outlook.com") {
        return Some("microsoft");
    }
    None
}

/// The provider a Delivery's own object (JSON text) names by its `smtpResponse`, if any.
pub fn of_delivery(delivery: &str) -> Option<&'static str> {
    /// Only the reply, borrowed where it has no escapes: no document is built.
    #[derive(serde::Deserialize)]
    struct Delivery<'a> {
        #[serde(rename = "smtpResponse", borrow, default)]
        smtp_response: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_str::<Delivery>(delivery) {
        Ok(d) => d.smtp_response.as_deref().and_then(of_smtp_response),
        // Not that shape (a reply that is no string, a key given twice): read it whole.
        Err(_) => serde_json::from_str::<serde_json::Value>(delivery)
            .ok()?
            .get("smtpResponse")?
            .as_str()
            .and_then(of_smtp_response),
    }
}

/// A recipient's provider from its address and, for a Delivery, what its reply names
/// (`of_delivery`, read once per event whatever its recipients).
pub fn of_recipient(address: &str, evidence: Option<&'static str>) -> &'static str {
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    of_domain(domain).or(evidence).unwrap_or(OTHER)
}

/// The order-free merge of two answers for one recipient: a known provider beats `other`;
/// between two known ones the smaller id (the SQL upsert states the same rule).
pub fn merge(a: &'static str, b: &'static str) -> &'static str {
    match (a, b) {
        (OTHER, b) => b,
        (a, OTHER) => a,
        (a, b) => a.min(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_domains_are_looked_up_whatever_their_case() {
        assert_eq!(of_domain("gmail.com"), Some("google"));
        assert_eq!(of_domain("Hotmail.COM"), Some("microsoft"));
        assert_eq!(of_domain("aol.com"), Some("yahoo"));
        assert_eq!(of_domain("icloud.com."), Some("apple"));
        assert_eq!(of_domain("example.com"), None);
        let mut domains: Vec<_> = CONSUMER_DOMAINS.iter().map(|(d, _)| *d).collect();
        domains.sort();
        domains.dedup();
        assert_eq!(
            domains.len(),
            CONSUMER_DOMAINS.len(),
            "a domain is listed twice"
        );
    }

    #[test]
    fn company_domains_are_known_by_their_servers_replies() {
        // Google Workspace (replies as Gmail's MX hosts do).
        assert_eq!(
            of_smtp_response(
                "250 2.0.0 OK  1732701234 d9443c01a7336-21f2b0c3a1esi1234567pfb.45 - gsmtp"
            ),
            Some("google")
        );
        // Microsoft 365 (Exchange Online names its host).
        assert_eq!(
            of_smtp_response("250 2.6.0 <0100019364@email.amazonses.com> [InternalId=1234, Hostname=AM8PR04MB7890.eurprd04.prod.outlook.com] 15123 bytes in 0.190, 77.6 KB/sec Queued mail for delivery"),
            Some("microsoft")
        );
        assert_eq!(of_smtp_response("250 2.0.0 Ok: queued as 4Y3Xk"), None);
        assert_eq!(of_smtp_response(""), None);
    }

    #[test]
    fn the_table_beats_the_evidence_and_unknowns_are_other() {
        let google_reply = r#"{"smtpResponse":"250 2.0.0 OK - gsmtp"}"#;
        let google = of_delivery(google_reply);
        assert_eq!(google, Some("google"));
        assert_eq!(of_recipient("a@acme.example", google), "google");
        assert_eq!(of_recipient("a@outlook.com", google), "microsoft");
        assert_eq!(of_recipient("a@acme.example", None), OTHER);
        assert_eq!(of_delivery("not json"), None);
        assert_eq!(of_delivery(r#"{"smtpResponse":7}"#), None);
        // A key given twice: the last one, as a whole-document read takes it.
        assert_eq!(
            of_delivery(r#"{"smtpResponse":"250 ok","smtpResponse":"250 2.0.0 OK - gsmtp"}"#),
            Some("google")
        );
        assert_eq!(of_delivery(r#"{"smtpResponse":"250 2.0.0 OK"}"#), None);
    }

    #[test]
    fn merge_is_order_free() {
        let ids = [OTHER, "google", "microsoft", "yahoo"];
        for a in ids {
            assert_eq!(merge(a, a), a);
            for b in ids {
                assert_eq!(merge(a, b), merge(b, a));
                for c in ids {
                    assert_eq!(merge(merge(a, b), c), merge(a, merge(b, c)));
                }
            }
        }
        assert_eq!(merge(OTHER, "google"), "google");
    }
}

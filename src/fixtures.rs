//! Realistic SES notification days, generated deterministically, and a loader that puts them
//! into MongoDB. Used by the demo, the benchmark and the tests; not by `ses-report` itself.
//!
//! The mix follows a small real sender: every mail has a Send; most are delivered, a few bounce
//! (permanent, transient, undetermined, auto-replies), are rejected or fail to render; some are
//! delayed, opened, clicked, complained about or unsubscribed from. About 2.5 notifications per
//! mail, a tenth of the feedback in the classic dialect, SNS retries (same MessageId), bounces
//! reaching the store by two routes (same feedbackId), and non-event messages.

use std::io::{self, Write};

use serde_json::{json, Value};
use time::{Date, Duration, OffsetDateTime};

use crate::timestamps;

/// A small, well-known PRNG (SplitMix64): deterministic across platforms and releases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100 (fractions allowed).
    pub fn chance(&mut self, percent: f64) -> bool {
        (self.next_u64() % 1_000_000) as f64 / 10_000.0 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Roughly how many notifications (the generator stops at the first mail past it).
    pub notifications: usize,
    pub day: Date,
    pub seed: u64,
    pub users: usize,
    /// Percent of envelopes whose `Timestamp` is an ISO string rather than a BSON date.
    pub string_timestamps_percent: f64,
    /// How many deliberately malformed records to mix in.
    pub malformed: usize,
}

const DOMAINS: [&str; 8] = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "example.org",
    "corp.example.com",
    "icloud.com",
    "mail.example.net",
];
const SENDERS: [&str; 3] = [
    "Shop <news@shop.example>",
    "alerts@shop.example",
    "Shop Billing <billing@shop.example>",
];
const SUBJECTS: [&str; 5] = [
    "Your order has shipped",
    "Weekly picks for you",
    "Reset your password",
    "Your invoice",
    "We miss you",
];

/// The address of generated user `i` (1-based), as the sending app would write it.
pub fn user_email(i: usize) -> String {
    format!("user{i}@{}", DOMAINS[i % DOMAINS.len()])
}

/// `auth_users` for the generated users: the table the job resolves users from.
pub fn write_auth_users_sql(users: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "CREATE TABLE IF NOT EXISTS auth_users (id BIGINT UNSIGNED PRIMARY KEY, common_email VARCHAR(255) NOT NULL, KEY idx_common_email (common_email));")?;
    for chunk_start in (1..=users).step_by(1000) {
        let end = (chunk_start + 999).min(users);
        let rows: Vec<String> = (chunk_start..=end)
            .map(|i| {
                // A few accounts were saved with capitals: lookup is case-insensitive.
                let email = if i % 97 == 0 {
                    user_email(i).to_uppercase()
                } else {
                    user_email(i)
                };
                format!("({i},'{email}')")
            })
            .collect();
        writeln!(
            out,
            "INSERT INTO auth_users (id, common_email) VALUES {};",
            rows.join(",")
        )?;
    }
    Ok(())
}

struct Mail {
    message_id: String,
    at: OffsetDateTime,
    source: &'static str,
    destination: Vec<String>,
    subject: &'static str,
    user_id: Option<usize>,
    report_type: u32,
}

impl Mail {
    fn json(&self, classic: bool) -> Value {
        let mut headers = vec![
            json!({"name": "From", "value": self.source}),
            json!({"name": "To", "value": self.destination.join(", ")}),
            json!({"name": "Subject", "value": self.subject}),
            json!({"name": "report_type", "value": self.report_type.to_string()}),
        ];
        if let Some(id) = self.user_id {
            headers.push(json!({"name": "user_id", "value": id.to_string()}));
        }
        let mut mail = json!({
            "timestamp": timestamps::sns(self.at),
            "source": self.source,
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/shop.example",
            "sendingAccountId": "123456789012",
            "messageId": self.message_id,
            "destination": self.destination,
        });
        if classic {
            mail["sourceIp"] = json!("203.0.113.10");
            mail["callerIdentity"] = json!("shop-app");
        } else {
            mail["headersTruncated"] = json!(false);
            mail["headers"] = Value::Array(headers);
            mail["commonHeaders"] = json!({
                "from": [self.source], "to": self.destination, "messageId": self.message_id, "subject": self.subject
            });
            mail["tags"] = json!({"ses:configuration-set": ["main"], "campaign": ["fall"]});
        }
        mail
    }
}

/// Streams a generated day as NDJSON envelopes (Mongo extended JSON: BSON dates as
/// `{"$date": ...}`). Returns how many lines were written.
pub fn generate(plan: &Plan, out: &mut dyn Write) -> io::Result<usize> {
    let mut rng = Rng::new(plan.seed);
    let day_start = crate::window::Zone::utc()
        .start_of(plan.day)
        .map_err(io::Error::other)?;
    let day_end = day_start + Duration::days(1);
    let mut written = 0usize;
    let mut mail_number = 0u64;
    let emit = |rng: &mut Rng,
                record: Value,
                at: OffsetDateTime,
                out: &mut dyn Write,
                written: &mut usize|
     -> io::Result<()> {
        if at >= day_end {
            return Ok(());
        }
        let published = at + Duration::milliseconds(50 + rng.below(900) as i64);
        let published = published.min(day_end - Duration::milliseconds(1));
        let copies = if rng.chance(3.0) { 2 + rng.below(2) } else { 1 };
        let line = envelope(rng, &record, published, plan.string_timestamps_percent);
        for _ in 0..copies {
            writeln!(out, "{line}")?;
            *written += 1;
        }
        Ok(())
    };

    // What a topic also carries besides events: SNS's confirmation, SES's validation text and
    // the classic dialect's subscription notice. The job skips all three.
    let first = day_start + Duration::minutes(1);
    let mut confirmation = envelope_value(&mut rng, &json!({}), first, 0.0);
    confirmation["Type"] = json!("SubscriptionConfirmation");
    confirmation["Message"] = json!(
        "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:ses-events."
    );
    let mut validation = envelope_value(&mut rng, &json!({}), first, 0.0);
    validation["Message"] =
        json!("Successfully validated SNS topic for Amazon SES event publishing.");
    let succeeded = envelope_value(
        &mut rng,
        &json!({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}),
        first,
        0.0,
    );
    for doc in [confirmation, validation, succeeded] {
        writeln!(out, "{doc}")?;
        written += 1;
    }

    while written < plan.notifications {
        mail_number += 1;
        let at = day_start + Duration::milliseconds(rng.below(20 * 3_600_000) as i64);
        let recipients = if rng.chance(8.0) {
            2 + rng.below(2) as usize
        } else {
            1
        };
        let mut destination = Vec::with_capacity(recipients);
        let mut first_user = None;
        for r in 0..recipients {
            if rng.chance(6.0) {
                destination.push(format!(
                    "guest{}@{}",
                    rng.below(100_000),
                    rng.pick(&DOMAINS)
                ));
            } else {
                let user = 1 + rng.below(plan.users.max(1) as u64) as usize;
                if r == 0 {
                    first_user = Some(user);
                }
                // Some mail goes out with capitals the account does not have.
                let email = user_email(user);
                destination.push(if rng.chance(3.0) {
                    capitalize(&email)
                } else {
                    email
                });
            }
        }
        let mail = Mail {
            message_id: format!("010001{:010x}-{}-000000", mail_number, rng.uuid()),
            at,
            source: SENDERS[rng.below(SENDERS.len() as u64) as usize],
            destination,
            subject: SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize],
            user_id: first_user.filter(|_| rng.chance(50.0)),
            report_type: 1 + rng.below(4) as u32,
        };
        let publish = |kind: &str, key: &str, object: Value| json!({"eventType": kind, "mail": mail.json(false), key: object});
        emit(
            &mut rng,
            publish("Send", "send", json!({})),
            at,
            out,
            &mut written,
        )?;

        let roll = rng.below(1000);
        if roll < 10 {
            emit(
                &mut rng,
                publish("Reject", "reject", json!({"reason": "Bad content"})),
                at,
                out,
                &mut written,
            )?;
            continue;
        }
        if roll < 20 {
            let failure = json!({"templateName": "weekly_picks", "errorMessage": "Attribute 'first_name' is not present in the rendering data."});
            emit(
                &mut rng,
                publish("Rendering Failure", "failure", failure),
                at,
                out,
                &mut written,
            )?;
            continue;
        }
        let delivered_at = at + Duration::milliseconds(300 + rng.below(4000) as i64);
        if rng.chance(3.0) {
            let delay = json!({
                "timestamp": timestamps::sns(at + Duration::seconds(60)),
                "delayType": rng.pick(&["MailboxFull", "TransientCommunicationFailure", "SpamDetected", "SomethingNew"]),
                "expirationTime": timestamps::sns(at + Duration::hours(12)),
                "delayedRecipients": [{"emailAddress": mail.destination[0], "status": "4.4.1", "diagnosticCode": "smtp; 421 4.4.1 Unable to connect"}]
            });
            emit(
                &mut rng,
                publish("DeliveryDelay", "deliveryDelay", delay),
                at + Duration::seconds(60),
                out,
                &mut written,
            )?;
        }
        let classic = rng.chance(10.0);
        let feedback = |kind: &str, key: &str, object: Value, classic: bool| {
            if classic {
                json!({"notificationType": kind, "mail": mail.json(true), key: object})
            } else {
                json!({"eventType": kind, "mail": mail.json(false), key: object})
            }
        };
        if roll < 60 {
            let bounce_at = delivered_at;
            let (bounce_type, sub_type, status, code) = *rng.pick(&[
                ("Permanent", "General", Some("5.1.1"), "smtp; 550 5.1.1 user unknown"),
                ("Permanent", "NoEmail", Some("5.1.1"), "smtp; 550 5.1.1 no such mailbox"),
                ("Permanent", "Suppressed", Some("5.1.1"), "Amazon SES has suppressed sending to this address"),
                ("Permanent", "OnAccountSuppressionList", None, "Amazon SES did not send the message to this address because it is on the suppression list for your account"),
                ("Transient", "MailboxFull", Some("4.2.2"), "smtp; 452 4.2.2 mailbox full"),
                ("Transient", "General", Some("5.4.4"), "smtp; 550 5.4.4 invalid domain"),
                ("Transient", "General", None, "auto-reply: out of the office"),
                ("Undetermined", "Undetermined", None, ""),
            ]);
            let mut recipient = json!({"emailAddress": mail.destination[0], "action": "failed"});
            if let Some(status) = status {
                recipient["status"] = json!(status);
                recipient["diagnosticCode"] = json!(code);
            }
            let bounce = json!({
                "bounceType": bounce_type, "bounceSubType": sub_type, "bouncedRecipients": [recipient],
                "timestamp": timestamps::sns(bounce_at), "feedbackId": format!("0100{}-000000", rng.uuid()),
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"
            });
            let record = feedback("Bounce", "bounce", bounce, classic);
            if rng.chance(15.0) {
                // The same bounce reaching the store by a second route: new MessageId, same feedbackId.
                emit(&mut rng, record.clone(), bounce_at, out, &mut written)?;
            }
            emit(&mut rng, record, bounce_at, out, &mut written)?;
            if mail.destination.len() == 1 {
                continue;
            }
        }
        let delivered: Vec<&String> = if roll < 60 {
            mail.destination.iter().skip(1).collect()
        } else {
            mail.destination.iter().collect()
        };
        let delivery = json!({
            "timestamp": timestamps::sns(delivered_at), "processingTimeMillis": 546,
            "recipients": delivered, "smtpResponse": "250 2.0.0 OK", "reportingMTA": "a8-70.smtp-out.amazonses.com"
        });
        emit(
            &mut rng,
            feedback("Delivery", "delivery", delivery, classic),
            delivered_at,
            out,
            &mut written,
        )?;
        if rng.chance(0.6) {
            let complained_at = delivered_at + Duration::minutes(5 + rng.below(600) as i64);
            let complaint = json!({
                "complainedRecipients": [{"emailAddress": delivered[0]}], "timestamp": timestamps::sns(complained_at),
                "feedbackId": format!("0100{}-000000", rng.uuid()), "userAgent": "Yahoo!-Mail-Feedback/2.0",
                "complaintFeedbackType": "abuse", "complaintSubType": null,
                "arrivalDate": timestamps::sns(complained_at - Duration::minutes(1))
            });
            emit(
                &mut rng,
                feedback("Complaint", "complaint", complaint, classic),
                complained_at,
                out,
                &mut written,
            )?;
        }
        if rng.chance(35.0) {
            let opens = if rng.chance(30.0) { 2 } else { 1 };
            let mut opened_at = delivered_at;
            for _ in 0..opens {
                opened_at += Duration::minutes(1 + rng.below(240) as i64);
                let open = json!({"ipAddress": "192.0.2.33", "timestamp": timestamps::sns(opened_at), "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"});
                emit(
                    &mut rng,
                    publish("Open", "open", open),
                    opened_at,
                    out,
                    &mut written,
                )?;
            }
            if rng.chance(30.0) {
                let clicked_at = opened_at + Duration::seconds(20 + rng.below(300) as i64);
                let click = json!({"ipAddress": "192.0.2.33", "timestamp": timestamps::sns(clicked_at), "userAgent": "Mozilla/5.0",
                                   "link": "https://shop.example/picks?id=42", "linkTags": {"campaign": ["fall"]}});
                emit(
                    &mut rng,
                    publish("Click", "click", click),
                    clicked_at,
                    out,
                    &mut written,
                )?;
            }
            if rng.chance(4.0) {
                let unsubscribed_at = opened_at + Duration::minutes(2);
                let subscription = json!({
                    "contactList": "newsletter", "timestamp": timestamps::sns(unsubscribed_at), "source": "UnsubscribeFromHeader",
                    "newTopicPreferences": {"unsubscribeAll": true, "topicSubscriptionStatus": [{"topicName": "weekly", "subscriptionStatus": "OptOut"}]},
                    "oldTopicPreferences": {"unsubscribeAll": false, "topicSubscriptionStatus": [{"topicName": "weekly", "subscriptionStatus": "OptIn"}]}
                });
                emit(
                    &mut rng,
                    publish("Subscription", "subscription", subscription),
                    unsubscribed_at,
                    out,
                    &mut written,
                )?;
            }
        }
    }

    for i in 0..plan.malformed {
        let at = day_start + Duration::hours(21) + Duration::minutes(i as i64);
        let good_mail = json!({"timestamp": timestamps::sns(at), "messageId": format!("bad-{i}"), "source": "alerts@shop.example", "destination": ["user1@gmail.com"]});
        let mut doc = envelope_value(
            &mut rng,
            &json!({"eventType": "Send", "mail": good_mail, "send": {}}),
            at,
            0.0,
        );
        match i % 6 {
            0 => doc["Message"] = json!("{\"eventType\": \"Send\", \"mail\": {truncated"),
            1 => doc["Message"] = Value::String(json!({"eventType": "Teleport", "mail": good_mail}).to_string()),
            2 => doc["Message"] = Value::String(json!({"eventType": "Send", "mail": {"timestamp": timestamps::sns(at), "destination": ["x@y.z"]}}).to_string()),
            3 => doc["Message"] = Value::String(json!({"eventType": "Open", "mail": good_mail, "open": {"timestamp": "last tuesday"}}).to_string()),
            4 => {
                doc.as_object_mut().map(|o| o.remove("MessageId"));
            }
            _ => doc["Message"] = Value::String(json!({"eventType": "Send", "mail": {"timestamp": timestamps::sns(at), "messageId": "bad-empty", "destination": [""]}}).to_string()),
        }
        writeln!(out, "{doc}")?;
        written += 1;
    }
    Ok(written)
}

fn envelope_value(
    rng: &mut Rng,
    record: &Value,
    published: OffsetDateTime,
    string_percent: f64,
) -> Value {
    let timestamp = if rng.chance(string_percent) {
        json!(timestamps::sns(published))
    } else {
        json!({"$date": timestamps::sns(published)})
    };
    let classic = record.get("notificationType").is_some();
    let mut doc = json!({
        "Type": "Notification",
        "MessageId": rng.uuid(),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Message": record.to_string(),
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": "EXAMPLE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=example",
    });
    if !classic {
        doc["Subject"] = json!("Amazon SES Email Event Notification");
    }
    doc
}

fn envelope(
    rng: &mut Rng,
    record: &Value,
    published: OffsetDateTime,
    string_percent: f64,
) -> String {
    envelope_value(rng, record, published, string_percent).to_string()
}

fn capitalize(email: &str) -> String {
    let mut chars = email.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Converts one NDJSON line in Mongo extended JSON into a BSON document.
pub fn bson_document(line: &str) -> Result<mongodb::bson::Document, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    match mongodb::bson::Bson::try_from(value).map_err(|e| format!("not extended JSON: {e}"))? {
        mongodb::bson::Bson::Document(d) => Ok(d),
        other => Err(format!("not a document: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ses::{interpret, EventKind, Interpretation};
    use std::collections::HashSet;
    use time::macros::date;

    fn day(notifications: usize, malformed: usize) -> Vec<String> {
        let plan = Plan {
            notifications,
            day: date!(2026 - 11 - 27),
            seed: 7,
            users: 50,
            string_timestamps_percent: 20.0,
            malformed,
        };
        let mut out = Vec::new();
        generate(&plan, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(day(300, 3), day(300, 3));
    }

    #[test]
    fn a_day_has_every_event_type_both_dialects_and_duplicates() {
        let lines = day(3000, 6);
        let mut kinds = HashSet::new();
        let mut classic = 0;
        let mut ids = HashSet::new();
        let mut repeats = 0;
        let mut failures = 0;
        for line in &lines {
            let value: Value = serde_json::from_str(line).unwrap();
            if !ids.insert(value["MessageId"].to_string()) {
                repeats += 1;
            }
            match interpret(&value, "f") {
                Ok(Interpretation::Event(e)) => {
                    kinds.insert(e.kind);
                    classic += usize::from(e.dialect == crate::ses::Dialect::Classic);
                }
                Ok(Interpretation::Skip(_)) => {}
                Err(_) => failures += 1,
            }
        }
        assert_eq!(kinds.len(), EventKind::ALL.len(), "{kinds:?}");
        assert!(classic > 0);
        assert!(repeats > 0);
        assert_eq!(failures, 6);
    }

    #[test]
    fn lines_load_as_bson_with_dates() {
        let lines = day(50, 0);
        let docs: Vec<_> = lines.iter().map(|l| bson_document(l).unwrap()).collect();
        assert!(docs
            .iter()
            .any(|d| matches!(d.get("Timestamp"), Some(mongodb::bson::Bson::DateTime(_)))));
    }
}

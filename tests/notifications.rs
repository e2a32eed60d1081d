//! Builders for SNS notifications in tests: small, explicit, and shaped like SES-EVENTS.md.

use serde_json::{json, Value};

/// An SES `mail` object.
pub fn mail(message_id: &str, at: &str, destination: &[&str]) -> Value {
    json!({
        "timestamp": at,
        "source": "Shop <news@shop.example>",
        "messageId": message_id,
        "destination": destination,
        "headersTruncated": false,
        "headers": [],
        "commonHeaders": {"from": ["Shop <news@shop.example>"], "to": destination, "subject": "Hello"},
    })
}

/// The mail with these custom headers.
pub fn with_headers(mut mail: Value, headers: &[(&str, &str)]) -> Value {
    mail["headers"] = Value::Array(
        headers
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    );
    mail
}

/// An event-publishing record.
pub fn record(event_type: &str, mail: &Value, key: &str, object: Value) -> Value {
    json!({"eventType": event_type, "mail": mail, key: object})
}

/// An SNS envelope as the app stores it: Message as JSON text, Timestamp as a BSON date.
pub fn notification(sns_id: &str, published: &str, record: &Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": record.to_string(),
        "Timestamp": {"$date": published},
    })
}

/// The same with `Timestamp` stored as the SNS ISO string.
pub fn notification_string_time(sns_id: &str, published: &str, record: &Value) -> Value {
    let mut n = notification(sns_id, published, record);
    n["Timestamp"] = json!(published);
    n
}

pub fn send(sns_id: &str, mail: &Value) -> Value {
    let at = mail["timestamp"].as_str().unwrap().to_string();
    notification(sns_id, &at, &record("Send", mail, "send", json!({})))
}

pub fn delivery(sns_id: &str, mail: &Value, at: &str, recipients: &[&str]) -> Value {
    let object = json!({"timestamp": at, "recipients": recipients, "smtpResponse": "250 OK"});
    notification(sns_id, at, &record("Delivery", mail, "delivery", object))
}

pub fn open(sns_id: &str, mail: &Value, at: &str) -> Value {
    let object = json!({"timestamp": at, "ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0"});
    notification(sns_id, at, &record("Open", mail, "open", object))
}

pub fn click(sns_id: &str, mail: &Value, at: &str) -> Value {
    let object =
        json!({"timestamp": at, "ipAddress": "192.0.2.1", "link": "https://shop.example/x"});
    notification(sns_id, at, &record("Click", mail, "click", object))
}

pub fn bounce(
    sns_id: &str,
    mail: &Value,
    at: &str,
    bounce_type: &str,
    feedback_id: &str,
    recipients: &[&str],
) -> Value {
    let bounced: Vec<Value> = recipients
        .iter()
        .map(|r| json!({"emailAddress": r, "status": "5.1.1"}))
        .collect();
    let object = json!({"timestamp": at, "bounceType": bounce_type, "bounceSubType": "General",
                        "feedbackId": feedback_id, "bouncedRecipients": bounced});
    notification(sns_id, at, &record("Bounce", mail, "bounce", object))
}

/// A soft bounce (Transient, MailboxFull, 4.2.2), what the suppression ledger keeps as a
/// `soft-bounce` entry.
pub fn soft_bounce(
    sns_id: &str,
    mail: &Value,
    at: &str,
    feedback_id: &str,
    recipients: &[&str],
) -> Value {
    let mut b = bounce(sns_id, mail, at, "Transient", feedback_id, recipients);
    let mut message: Value = serde_json::from_str(b["Message"].as_str().unwrap()).unwrap();
    message["bounce"]["bounceSubType"] = json!("MailboxFull");
    for recipient in message["bounce"]["bouncedRecipients"]
        .as_array_mut()
        .unwrap()
    {
        recipient["status"] = json!("4.2.2");
    }
    b["Message"] = json!(message.to_string());
    b
}

pub fn complaint(
    sns_id: &str,
    mail: &Value,
    at: &str,
    feedback_id: &str,
    recipients: &[&str],
) -> Value {
    let complained: Vec<Value> = recipients
        .iter()
        .map(|r| json!({"emailAddress": r}))
        .collect();
    let object = json!({"timestamp": at, "feedbackId": feedback_id, "complainedRecipients": complained,
                        "complaintFeedbackType": "abuse"});
    notification(sns_id, at, &record("Complaint", mail, "complaint", object))
}

/// The same notification in the classic dialect (identity feedback notifications): the record
/// keyed by `notificationType`, without `eventType`.
pub fn classic(mut notification: Value) -> Value {
    let mut record: Value =
        serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
    let kind = record["eventType"].take();
    record.as_object_mut().unwrap().remove("eventType");
    record["notificationType"] = kind;
    notification["Message"] = json!(record.to_string());
    notification
}

/// The notification with its SES record edited in place (`Message` is JSON text).
pub fn edited(mut notification: Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut record: Value =
        serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
    edit(&mut record);
    notification["Message"] = json!(record.to_string());
    notification
}

/// The notification as SNS published it at `at` (its `Timestamp`, a BSON date).
pub fn published(mut notification: Value, at: &str) -> Value {
    notification["Timestamp"] = json!({"$date": at});
    notification
}

/// A click on `link`.
pub fn click_on(sns_id: &str, mail: &Value, at: &str, link: &str) -> Value {
    edited(click(sns_id, mail, at), |r| {
        r["click"]["link"] = json!(link)
    })
}

/// A bounce of one recipient with the receiving server's reply: SES's type and subtype, the
/// recipient's enhanced `status` and `diagnosticCode`.
pub fn bounce_replied(
    sns_id: &str,
    mail: &Value,
    at: &str,
    (bounce_type, sub_type): (&str, &str),
    recipient: &str,
    (status, diagnostic): (&str, &str),
) -> Value {
    let object = json!({"timestamp": at, "bounceType": bounce_type, "bounceSubType": sub_type,
                        "feedbackId": format!("fb-{sns_id}"), "reportingMTA": "dns; a1-2.smtp-out.amazonses.com",
                        "bouncedRecipients": [{"emailAddress": recipient, "action": "failed",
                                               "status": status, "diagnosticCode": diagnostic}]});
    notification(sns_id, at, &record("Bounce", mail, "bounce", object))
}

/// A DeliveryDelay of one recipient: SES's `delayType`, the recipient's status and reply.
pub fn delivery_delay(
    sns_id: &str,
    mail: &Value,
    at: &str,
    delay_type: &str,
    recipient: &str,
    (status, diagnostic): (&str, &str),
) -> Value {
    let object = json!({"timestamp": at, "delayType": delay_type,
                        "expirationTime": "2026-11-28T10:00:00.000Z",
                        "delayedRecipients": [{"emailAddress": recipient, "status": status,
                                               "diagnosticCode": diagnostic}]});
    notification(
        sns_id,
        at,
        &record("DeliveryDelay", mail, "deliveryDelay", object),
    )
}

/// A delivery with SES's `processingTimeMillis`.
pub fn delivery_timed(
    sns_id: &str,
    mail: &Value,
    at: &str,
    processing_ms: u64,
    recipients: &[&str],
) -> Value {
    let object = json!({"timestamp": at, "processingTimeMillis": processing_ms,
                        "recipients": recipients, "smtpResponse": "250 2.0.0 OK"});
    notification(sns_id, at, &record("Delivery", mail, "delivery", object))
}

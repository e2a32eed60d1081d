//! What a stored notification means: the SNS envelope, the SES record inside it, and the
//! `SesEvent` the rest of the program works with.
//!
//! Both SES dialects are read: event publishing (`eventType`, ten types) and classic identity
//! notifications (`notificationType`: Bounce, Complaint, Delivery). Messages that are not events
//! (subscription confirmations, the topic-validation text) are `Skip`s, not failures. Anything
//! else that cannot become an event is a `RecordError` naming the record, so the caller can keep
//! the document and carry on. No I/O here: every rule is unit-tested with plain JSON.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::domain::event_kind::{EventKind, RecipientsField};
use crate::domain::tags::MailTags;
use crate::domain::text::{json_kind, normalize_address, truncate};
use crate::domain::timestamps::{self, TimestampError};

/// Which SES mechanism published the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Configuration-set event publishing (`eventType`).
    EventPublishing,
    /// Classic per-identity feedback notifications (`notificationType`).
    Classic,
}

/// `bounce.bounceType`, ranked so that the strongest seen for a recipient wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BounceType {
    Undetermined = 1,
    Transient = 2,
    Permanent = 3,
}

impl BounceType {
    /// Unknown values fall back to `Undetermined`: SES may add types at any time.
    pub fn from_ses(name: &str) -> BounceType {
        match name {
            "Permanent" => BounceType::Permanent,
            "Transient" => BounceType::Transient,
            _ => BounceType::Undetermined,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BounceType::Permanent => "Permanent",
            BounceType::Transient => "Transient",
            BounceType::Undetermined => "Undetermined",
        }
    }
}

/// One SES event, ready to apply: the unit of accounting.
#[derive(Clone, Debug, PartialEq)]
pub struct SesEvent {
    /// SNS `MessageId`, or a stable stand-in for records without an envelope.
    pub notification_id: String,
    /// The SNS `Timestamp` (absent for bare Firehose records).
    pub published_at: Option<OffsetDateTime>,
    pub kind: EventKind,
    pub dialect: Dialect,
    /// SES `mail.messageId`, shared by every event of one email.
    pub message_id: String,
    pub source: Option<String>,
    pub subject: Option<String>,
    /// `mail.destination[0]`, normalised: the address a `user_id` header speaks for.
    pub first_destination: String,
    /// A valid `user_id` mail header.
    pub header_user_id: Option<u64>,
    pub report_type: i32,
    /// What the summary row keeps of `mail.tags`.
    pub tags: MailTags,
    pub occurred_at: OffsetDateTime,
    /// Normalised (trimmed, lower-cased), distinct, in the record's order.
    pub recipients: Vec<String>,
    pub feedback_id: Option<String>,
    pub bounce_type: Option<BounceType>,
    /// The event's own object (e.g. `bounce`) as JSON text.
    pub other_info: String,
    /// Things worth a log line that do not stop the event (ignored headers, truncations).
    pub warnings: Vec<String>,
}

impl SesEvent {
    /// The instant the window filter compares: when SNS published it, or for bare records
    /// the event's own time.
    pub fn window_time(&self) -> OffsetDateTime {
        self.published_at.unwrap_or(self.occurred_at)
    }
}

/// Why a message was read but is not an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `Type` is `SubscriptionConfirmation`, `UnsubscribeConfirmation`, ...
    NotANotification(String),
    /// "Successfully validated SNS topic for Amazon SES event publishing."
    TopicValidation,
    /// `{"notificationType": "AmazonSnsSubscriptionSucceeded"}`
    SubscriptionSucceeded,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotANotification(t) => write!(f, "SNS message of Type {t:?}, not a Notification"),
            Skip::TopicValidation => f.write_str("SES topic-validation message"),
            Skip::SubscriptionSucceeded => f.write_str("AmazonSnsSubscriptionSucceeded message"),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Interpretation {
    Event(Box<SesEvent>),
    Skip(Skip),
}

/// What is wrong with a record, by kind (for code that branches) with its detail (for people).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A required field is absent or null.
    Missing,
    /// A field has another JSON type than the one SES writes.
    WrongType,
    /// A list or an address is empty.
    Empty,
    /// An event or notification type SES does not publish (or not yet).
    Unknown,
    /// A value SES would not produce or the tables cannot hold: an unparseable or out-of-range
    /// timestamp, an over-long address, a NUL byte.
    Invalid,
}

/// Why one SES record cannot become an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub detail: String,
}

impl Fault {
    fn new(kind: FaultKind, detail: impl Into<String>) -> Fault {
        Fault {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A record that cannot be applied, with the id it is kept under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub notification_id: String,
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "notification {}: {}", self.notification_id, self.reason)
    }
}

/// Column widths of the report tables (characters); longer values are stored truncated.
pub mod widths {
    pub const MESSAGE_ID: usize = 255;
    pub const ADDRESS: usize = 320;
    pub const SUBJECT: usize = 998;
    pub const FEEDBACK_ID: usize = 255;
    pub const NOTIFICATION_ID: usize = 255;
}

/// The text SES posts once after a topic is subscribed for event publishing.
const TOPIC_VALIDATION_PREFIX: &str = "Successfully validated SNS topic";

/// A field of a stored envelope: absent (or null), present, or of the wrong type.
#[derive(Clone, Debug, PartialEq)]
pub enum Part<T> {
    Absent,
    Present(T),
    /// Present with another type; names the type it has ("a number", ...).
    WrongType(&'static str),
}

/// The SES record inside `Message`: JSON text as SNS sends it, or an already-parsed document.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageBody<'a> {
    Text(Cow<'a, str>),
    Record(Cow<'a, Value>),
}

/// The parts of an SNS envelope the job reads. Sources build it straight from their own
/// storage (a JSON line, a BSON document) without converting the rest of the document.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<'a> {
    pub message_id: Part<Cow<'a, str>>,
    pub kind: Part<Cow<'a, str>>,
    pub timestamp: Part<Result<OffsetDateTime, TimestampError>>,
    pub message: Part<MessageBody<'a>>,
}

impl<'a> Envelope<'a> {
    /// Reads the envelope fields of a JSON object (`Timestamp` may be a string or `{"$date": ...}`).
    pub fn from_json(object: &'a Map<String, Value>) -> Envelope<'a> {
        let text = |key: &str| match object.get(key) {
            None | Some(Value::Null) => Part::Absent,
            Some(Value::String(s)) => Part::Present(Cow::Borrowed(s.as_str())),
            Some(other) => Part::WrongType(json_kind(other)),
        };
        Envelope {
            message_id: text("MessageId"),
            kind: text("Type"),
            timestamp: match object.get("Timestamp") {
                None | Some(Value::Null) => Part::Absent,
                Some(value) => Part::Present(envelope_time(value)),
            },
            message: match object.get("Message") {
                None | Some(Value::Null) => Part::Absent,
                Some(Value::String(s)) => {
                    Part::Present(MessageBody::Text(Cow::Borrowed(s.as_str())))
                }
                Some(v @ Value::Object(_)) => Part::Present(MessageBody::Record(Cow::Borrowed(v))),
                Some(other) => Part::WrongType(json_kind(other)),
            },
        }
    }

    /// Whether a document with these fields is an envelope at all (else: a bare SES record).
    pub fn is_envelope(&self) -> bool {
        self.message != Part::Absent || self.kind != Part::Absent
    }

    /// The notification id, when the envelope has a usable one.
    pub fn notification_id(&self) -> Option<String> {
        match &self.message_id {
            Part::Present(id) => notification_id_of(id),
            _ => None,
        }
    }
}

/// An SNS MessageId as the tables keep it (trimmed, within its column), or `None` when blank.
pub fn notification_id_of(raw: &str) -> Option<String> {
    let id = raw.trim();
    (!id.is_empty()).then(|| truncate(id, widths::NOTIFICATION_ID).0.into_owned())
}

/// Reads one stored document: an SNS envelope, or (Firehose exports) a bare SES record, in
/// which case `fallback_id` becomes its notification id.
pub fn interpret(document: &Value, fallback_id: &str) -> Result<Interpretation, RecordError> {
    let fail = |reason: String| RecordError {
        notification_id: fallback_id.to_string(),
        reason,
    };
    let Some(object) = document.as_object() else {
        return Err(fail(format!(
            "document is {}, not an object",
            json_kind(document)
        )));
    };
    let envelope = Envelope::from_json(object);
    if envelope.is_envelope() {
        return interpret_envelope(&envelope, &|| fallback_id.to_string());
    }
    if object.contains_key("eventType")
        || object.contains_key("notificationType")
        || object.contains_key("mail")
    {
        return interpret_record(object, fallback_id, None).map_err(|f| fail(f.to_string()));
    }
    Err(fail(
        "neither an SNS envelope (no Message) nor an SES record".into(),
    ))
}

/// Reads an SNS envelope and the SES record in its `Message`. `fallback_id` names a record
/// without a usable MessageId; it is called only then (a stand-in id may cost a hash).
pub fn interpret_envelope(
    envelope: &Envelope<'_>,
    fallback_id: &dyn Fn() -> String,
) -> Result<Interpretation, RecordError> {
    let fail = |id: &str, reason: String| RecordError {
        notification_id: id.to_string(),
        reason,
    };
    // MessageId comes first so that every later error names the notification.
    let notification_id = match (envelope.notification_id(), &envelope.message_id) {
        (Some(id), _) => id,
        (None, Part::WrongType(kind)) => {
            return Err(fail(
                &fallback_id(),
                format!("envelope MessageId is {kind}, not a string"),
            ))
        }
        (None, _) => return Err(fail(&fallback_id(), "envelope has no MessageId".into())),
    };
    let id = notification_id.as_str();
    match &envelope.kind {
        Part::Absent => {}
        Part::Present(t) if t == "Notification" => {}
        Part::Present(t) => return Ok(Interpretation::Skip(Skip::NotANotification(t.to_string()))),
        Part::WrongType(kind) => {
            return Err(fail(id, format!("envelope Type is {kind}, not a string")))
        }
    }
    let published_at = match &envelope.timestamp {
        Part::Absent => return Err(fail(id, "envelope has no Timestamp".into())),
        Part::WrongType(kind) => return Err(fail(id, format!("envelope Timestamp is {kind}"))),
        Part::Present(time) => time
            .clone()
            .and_then(timestamps::check_storable)
            .map_err(|e| fail(id, format!("envelope Timestamp: {e}")))?,
    };
    let parsed;
    let record = match &envelope.message {
        Part::Present(MessageBody::Text(text)) => {
            let text = text.trim();
            if text.starts_with(TOPIC_VALIDATION_PREFIX) {
                return Ok(Interpretation::Skip(Skip::TopicValidation));
            }
            if let Some(event) = fast::interpret_text(text, id, Some(published_at)) {
                return Ok(event);
            }
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| fail(id, format!("Message is not JSON: {e}")))?;
            match parsed.as_object() {
                Some(record) => record,
                None => {
                    return Err(fail(
                        id,
                        format!("Message is JSON {}, not an SES record", json_kind(&parsed)),
                    ))
                }
            }
        }
        Part::Present(MessageBody::Record(value)) => match value.as_object() {
            Some(record) => record,
            None => {
                return Err(fail(
                    id,
                    format!("Message is {}, not an SES record", json_kind(value)),
                ))
            }
        },
        Part::Absent => return Err(fail(id, "envelope has no Message".into())),
        Part::WrongType(kind) => {
            return Err(fail(id, format!("Message is {kind}, not an SES record")))
        }
    };
    interpret_record(record, id, Some(published_at)).map_err(|f| fail(id, f.to_string()))
}

/// How the fast and the general record parsers differ on `text` (an SES record as JSON text),
/// or `None` when they agree: the fast path may step aside (the general one then answers), but
/// what it answers must be exactly the general path's event (`other_info` compared as JSON), and
/// it must step aside on anything the general path refuses. `fast_declines` reports whether it
/// stepped aside. The unit tests and the differential fuzz target (`fuzz/`) both use this.
pub fn parsers_disagree(text: &str) -> (Option<String>, bool) {
    let published = timestamps::parse("2026-11-27T13:42:12.183Z").ok();
    let fast = fast::interpret_text(text, "n-1", published);
    let general = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(record)) => interpret_record(&record, "n-1", published),
        Ok(_) | Err(_) => Err(Fault::new(FaultKind::WrongType, "not an SES record object")),
    };
    let Some(fast) = fast else {
        return (None, true);
    };
    let (Interpretation::Event(mut fast), Ok(Interpretation::Event(mut general))) = (fast, general)
    else {
        return (
            Some(format!(
                "the fast path answered where the general one did not: {text:.200}"
            )),
            false,
        );
    };
    let as_json = |s: &str| serde_json::from_str::<Value>(s).ok();
    if as_json(&fast.other_info) != as_json(&general.other_info) {
        return (Some(format!("other_info differs for {text:.200}")), false);
    }
    fast.other_info.clear();
    general.other_info.clear();
    if fast != general {
        return (
            Some(format!("{fast:?}\n!=\n{general:?}\nfor {text:.200}")),
            false,
        );
    }
    (None, false)
}

/// Accepts the SNS string form, or a BSON date in extended JSON (`{"$date": ...}`).
pub fn envelope_time(value: &Value) -> Result<OffsetDateTime, TimestampError> {
    match value {
        Value::String(text) => timestamps::parse(text),
        Value::Object(o) => match o.get("$date") {
            Some(Value::String(text)) => timestamps::parse(text),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(timestamps::from_unix_millis)
                .ok_or_else(|| TimestampError::BadDate {
                    detail: format!("date {n} is out of range"),
                }),
            Some(Value::Object(long)) => long
                .get("$numberLong")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(timestamps::from_unix_millis)
                .ok_or_else(|| TimestampError::BadDate {
                    detail: "unreadable $date".to_string(),
                }),
            _ => Err(TimestampError::BadDate {
                detail: "an object that is not a date".into(),
            }),
        },
        other => Err(TimestampError::BadDate {
            detail: format!("{} is not a date", json_kind(other)),
        }),
    }
}

fn interpret_record(
    record: &Map<String, Value>,
    notification_id: &str,
    published_at: Option<OffsetDateTime>,
) -> Result<Interpretation, Fault> {
    let (kind, dialect) = match kind_of(record)? {
        Ok(found) => found,
        Err(skip) => return Ok(Interpretation::Skip(skip)),
    };
    let mut warnings = Vec::new();
    let mail = object(record.get("mail"), "mail", "SES record has no mail object")?;
    let common = read_mail(mail, &mut warnings)?;

    let key = kind.object_key();
    let no_object = || format!("{kind} record has no {key} object");
    let event_object = match record.get(key) {
        None | Some(Value::Null) if kind.at_mail_time() => None,
        value => Some(object(value, key, &no_object())?),
    };
    let needed = || event_object.ok_or_else(|| Fault::new(FaultKind::Missing, no_object()));
    let occurred_at = if kind.at_mail_time() {
        required_time(mail.get("timestamp"), "mail.timestamp")?
    } else {
        required_time(needed()?.get("timestamp"), &format!("{key}.timestamp"))?
    };
    let recipients = match kind.recipients_field() {
        None => distinct(common.destination.clone()),
        Some(field) => recipients_of(needed()?, key, field)?,
    };
    let feedback_id = match kind {
        EventKind::Bounce | EventKind::Complaint => event_object
            .and_then(|o| {
                optional_text(
                    o.get("feedbackId"),
                    &format!("{key}.feedbackId"),
                    &mut warnings,
                )
            })
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| keep_within(s, widths::FEEDBACK_ID, "feedbackId", &mut warnings)),
        _ => None,
    };
    let bounce_type = (kind == EventKind::Bounce).then(|| {
        event_object
            .and_then(|o| o.get("bounceType"))
            .and_then(Value::as_str)
            .map(BounceType::from_ses)
            .unwrap_or(BounceType::Undetermined)
    });
    let other_info = match event_object {
        Some(o) => serde_json::to_string(o).map_err(|e| {
            Fault::new(
                FaultKind::Invalid,
                format!("{key} cannot be written back as JSON: {e}"),
            )
        })?,
        None => "{}".to_string(),
    };

    Ok(Interpretation::Event(Box::new(SesEvent {
        notification_id: notification_id.to_string(),
        published_at,
        kind,
        dialect,
        first_destination: common.destination[0].clone(),
        message_id: common.message_id,
        source: common.source,
        subject: common.subject,
        header_user_id: common.header_user_id,
        report_type: common.report_type,
        tags: common.tags,
        occurred_at,
        recipients,
        feedback_id,
        bounce_type,
        other_info,
        warnings,
    })))
}

/// What every record's `mail` object says, whatever the event.
struct MailPart {
    message_id: String,
    destination: Vec<String>,
    source: Option<String>,
    subject: Option<String>,
    header_user_id: Option<u64>,
    report_type: i32,
    tags: MailTags,
}

fn read_mail(mail: &Map<String, Value>, warnings: &mut Vec<String>) -> Result<MailPart, Fault> {
    let message_id = non_empty_text(mail.get("messageId"), "mail.messageId")?;
    let message_id = keep_within(message_id, widths::MESSAGE_ID, "mail.messageId", warnings);
    let destination = non_empty_list(mail.get("destination"), "mail.destination")?
        .iter()
        .enumerate()
        .map(|(i, v)| address_at(v, &format!("mail.destination[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let source = optional_text(mail.get("source"), "mail.source", warnings)
        .map(|s| keep_within(s.trim(), widths::ADDRESS, "mail.source", warnings));
    let subject = mail
        .get("commonHeaders")
        .and_then(Value::as_object)
        .and_then(|h| optional_text(h.get("subject"), "mail.commonHeaders.subject", warnings))
        .map(|s| keep_within(s, widths::SUBJECT, "subject", warnings));
    let headers = MailHeaders::read(mail.get("headers"));
    Ok(MailPart {
        message_id,
        destination,
        source,
        subject,
        header_user_id: headers.user_id(warnings),
        report_type: headers.report_type(warnings),
        tags: MailTags::read(mail.get("tags"), warnings),
    })
}

/// The record's event type and dialect (`eventType` for event publishing, `notificationType`
/// for classic notifications), or the skip of SNS's subscription confirmation.
fn kind_of(record: &Map<String, Value>) -> Result<Result<(EventKind, Dialect), Skip>, Fault> {
    let unknown = |field: &str, t: &str| {
        Fault::new(
            FaultKind::Unknown,
            format!("unknown {field} {:?}", shorten(t)),
        )
    };
    match (record.get("eventType"), record.get("notificationType")) {
        (Some(Value::String(t)), _) => EventKind::from_ses_name(t)
            .map(|kind| Ok((kind, Dialect::EventPublishing)))
            .ok_or_else(|| unknown("eventType", t)),
        (Some(other), _) => Err(wrong_type("eventType", other, "a string")),
        (None, Some(Value::String(t))) if t == "AmazonSnsSubscriptionSucceeded" => {
            Ok(Err(Skip::SubscriptionSucceeded))
        }
        (None, Some(Value::String(t))) => EventKind::from_classic_name(t)
            .map(|kind| Ok((kind, Dialect::Classic)))
            .ok_or_else(|| unknown("notificationType", t)),
        (None, Some(other)) => Err(wrong_type("notificationType", other, "a string")),
        (None, None) => Err(Fault::new(
            FaultKind::Missing,
            "SES record has neither eventType nor notificationType",
        )),
    }
}

/// The recipients an event object names (`bounce.bouncedRecipients[].emailAddress`, ...),
/// normalised and distinct.
fn recipients_of(
    event_object: &Map<String, Value>,
    key: &str,
    field: RecipientsField,
) -> Result<Vec<String>, Fault> {
    let array = field.array;
    let list = non_empty_list(event_object.get(array), &format!("{key}.{array}"))?;
    let mut found = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let place = format!("{key}.{array}[{i}]");
        let value = match (field.address, entry) {
            (None, _) => entry,
            (Some(k), Value::Object(r)) => r.get(k).unwrap_or(&Value::Null),
            (Some(_), other) => return Err(wrong_type(&place, other, "an object")),
        };
        found.push(address_at(value, &place)?);
    }
    Ok(distinct(found))
}

/// `{place} is a number, not a string`.
fn wrong_type(place: &str, value: &Value, wanted: &str) -> Fault {
    Fault::new(
        FaultKind::WrongType,
        format!("{place} is {}, not {wanted}", json_kind(value)),
    )
}

/// A required object; `missing` says what is missing when it is absent or null.
fn object<'a>(
    value: Option<&'a Value>,
    place: &str,
    missing: &str,
) -> Result<&'a Map<String, Value>, Fault> {
    match value {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(Fault::new(FaultKind::Missing, missing)),
        Some(other) => Err(wrong_type(place, other, "an object")),
    }
}

/// A required list with at least one entry.
fn non_empty_list<'a>(value: Option<&'a Value>, place: &str) -> Result<&'a [Value], Fault> {
    match value {
        Some(Value::Array(list)) if !list.is_empty() => Ok(list),
        Some(Value::Array(_)) => Err(Fault::new(FaultKind::Empty, format!("{place} is empty"))),
        None | Some(Value::Null) => Err(Fault::new(
            FaultKind::Missing,
            format!("{place} is missing"),
        )),
        Some(other) => Err(wrong_type(place, other, "a list")),
    }
}

/// A required string that is not blank, trimmed (a blank one counts as missing).
fn non_empty_text<'a>(value: Option<&'a Value>, place: &str) -> Result<&'a str, Fault> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.trim()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(Fault::new(
            FaultKind::Missing,
            format!("{place} is missing"),
        )),
        Some(other) => Err(wrong_type(place, other, "a string")),
    }
}

/// The custom headers ses-report reads, case-insensitively as mail headers are.
struct MailHeaders<'a> {
    user_id: Option<&'a Value>,
    report_type: Option<&'a Value>,
}

impl<'a> MailHeaders<'a> {
    fn read(headers: Option<&'a Value>) -> MailHeaders<'a> {
        let mut found = MailHeaders {
            user_id: None,
            report_type: None,
        };
        for header in headers.and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = header.get("name").and_then(Value::as_str) else {
                continue;
            };
            let value = header.get("value");
            if found.user_id.is_none() && name.eq_ignore_ascii_case("user_id") {
                found.user_id = value;
            } else if found.report_type.is_none() && name.eq_ignore_ascii_case("report_type") {
                found.report_type = value;
            }
        }
        found
    }

    fn user_id(&self, warnings: &mut Vec<String>) -> Option<u64> {
        let value = self.user_id?;
        let text = match value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                warnings.push(format!("user_id header is {}, ignored", json_kind(other)));
                return None;
            }
        };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = text.parse::<u64>() {
                return Some(id);
            }
        }
        warnings.push(format!(
            "user_id header {:?} is not a number, ignored",
            shorten(&text)
        ));
        None
    }

    fn report_type(&self, warnings: &mut Vec<String>) -> i32 {
        let Some(value) = self.report_type else {
            return 0;
        };
        let text = match value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            other => json_kind(other).to_string(),
        };
        match text.parse::<i32>() {
            Ok(n) if n >= 0 => n,
            _ => {
                warnings.push(format!(
                    "report_type header {:?} is not a whole number >= 0, using 0",
                    shorten(&text)
                ));
                0
            }
        }
    }
}

fn required_time(value: Option<&Value>, place: &str) -> Result<OffsetDateTime, Fault> {
    match value {
        Some(Value::String(text)) => timestamps::parse(text)
            .and_then(timestamps::check_storable)
            .map_err(|e| Fault::new(FaultKind::Invalid, format!("{place}: {e}"))),
        None | Some(Value::Null) => Err(Fault::new(
            FaultKind::Missing,
            format!("{place} is missing"),
        )),
        Some(other) => Err(Fault::new(
            FaultKind::WrongType,
            format!("{place} is {}, not a timestamp", json_kind(other)),
        )),
    }
}

fn optional_text<'a>(
    value: Option<&'a Value>,
    place: &str,
    warnings: &mut Vec<String>,
) -> Option<&'a str> {
    match value {
        Some(Value::String(s)) => Some(s.as_str()),
        None | Some(Value::Null) => None,
        Some(other) => {
            warnings.push(format!("{place} is {}, ignored", json_kind(other)));
            None
        }
    }
}

/// One recipient address, normalised: the part inside `<...>` when a display name is given,
/// trimmed and lower-cased, so that the same mailbox is one row however it was written.
fn address_at(value: &Value, place: &str) -> Result<String, Fault> {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Null => {
            return Err(Fault::new(
                FaultKind::Missing,
                format!("{place} has no address"),
            ))
        }
        other => {
            return Err(Fault::new(
                FaultKind::WrongType,
                format!("{place} is {}, not an address", json_kind(other)),
            ))
        }
    };
    let address = normalize_address(text);
    if address.is_empty() {
        return Err(Fault::new(
            FaultKind::Empty,
            format!("{place} is an empty address"),
        ));
    }
    if address.contains('\0') {
        return Err(Fault::new(
            FaultKind::Invalid,
            format!("{place} contains a NUL byte"),
        ));
    }
    if let Some(limit) = rfc5321_excess(&address) {
        return Err(Fault::new(
            FaultKind::Invalid,
            format!(
                "{place} {:?} is longer than RFC 5321 allows ({limit})",
                shorten(&address)
            ),
        ));
    }
    Ok(address)
}

/// Which RFC 5321 length limit (section 4.5.3.1) a normalised address exceeds, if any: the
/// local part 64 octets, the domain 255, the whole mailbox 254 (a path is at most 256 octets,
/// angle brackets included). SES cannot deliver to such an address, and the report tables key
/// rollups by domain: one oversized domain would fail a whole day's rollup.
pub(crate) fn rfc5321_excess(address: &str) -> Option<&'static str> {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    if local.len() > 64 {
        Some("local part over 64 octets")
    } else if domain.len() > 255 {
        Some("domain over 255 octets")
    } else if address.len() > 254 {
        Some("address over 254 octets")
    } else {
        None
    }
}

fn distinct(addresses: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(addresses.len());
    addresses
        .into_iter()
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

/// Truncates to `max` characters, noting it when it happens.
fn keep_within(text: &str, max: usize, place: &str, warnings: &mut Vec<String>) -> String {
    let (kept, cut) = truncate(text, max);
    if cut {
        warnings.push(format!(
            "{place} is longer than {max} characters, stored truncated"
        ));
    }
    kept.into_owned()
}

fn shorten(text: &str) -> String {
    let (kept, cut) = truncate(text, 80);
    if cut {
        format!("{kept}...")
    } else {
        kept.into_owned()
    }
}

mod fast;

#[cfg(test)]
pub(crate) mod tests;

//! Where notifications come from: a MongoDB cursor over one window, or a newline-delimited JSON
//! file (SNS envelopes as stored in Mongo, or bare SES records as Firehose writes them to S3).
//!
//! Both yield `SourceRecord`s one at a time, so memory stays flat however large the day. A record
//! the source cannot even read (bad JSON, unreadable BSON) is still yielded, as `Unreadable`, so
//! that it is recorded as a failure rather than lost. Transport errors are fatal.

pub mod envelope;
pub mod file;
pub mod mongo;

use std::rc::Rc;

use mongodb::bson::{Bson, RawDocumentBuf};
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::ses::{self, Envelope, Interpretation, RecordError};
use crate::error::Error;
use envelope::{
    bson_envelope, hex, line_envelope, line_fields, line_id, mongo_id_of, peek_message_id,
    LineEnvelope,
};

/// One stored notification, before interpretation. It keeps the source's own bytes (a JSON
/// line, a BSON document) and reads from them only what is asked: a rerun, where nearly every
/// record is a duplicate, needs no more than the notification id.
#[derive(Debug)]
pub struct SourceRecord {
    place: Place,
    body: Body,
}

#[derive(Debug)]
enum Place {
    Mongo {
        namespace: Rc<str>,
    },
    File {
        name: Rc<str>,
        line: u64,
    },
    /// A document kept in `aws_report_failures`, retried under the id it was kept under.
    Stored {
        origin: String,
        id: String,
    },
}

#[derive(Debug)]
enum Body {
    Line(String),
    Bson(RawDocumentBuf),
    /// The source could not decode it; `text` is kept as the failure's document.
    Unreadable {
        text: String,
        reason: String,
        fallback_id: String,
    },
}

impl SourceRecord {
    /// Where it is, for messages and the failures table: `mongo ses.sesevents _id=...`, `file.ndjson line 7`.
    pub fn origin(&self) -> String {
        match &self.place {
            Place::Mongo { namespace } => format!("mongo {namespace} _id={}", self.mongo_id()),
            Place::File { name, line } => format!("{name} line {line}"),
            Place::Stored { origin, .. } => origin.clone(),
        }
    }

    /// A document kept in `aws_report_failures`, to apply again.
    pub fn stored(notification_id: &str, origin: &str, document: String) -> SourceRecord {
        SourceRecord {
            place: Place::Stored {
                origin: origin.to_string(),
                id: notification_id.to_string(),
            },
            body: Body::Line(document),
        }
    }

    /// The id a record without an SNS MessageId is known by: `mongo:<db>.<collection>:<_id>`,
    /// or for a line `sha256:` of its bytes (stable, so a bare Firehose record re-read is a duplicate).
    pub fn fallback_id(&self) -> String {
        match (&self.body, &self.place) {
            (Body::Unreadable { fallback_id, .. }, _) => fallback_id.clone(),
            (_, Place::Stored { id, .. }) => id.clone(),
            (_, Place::Mongo { namespace }) => format!("mongo:{namespace}:{}", self.mongo_id()),
            (Body::Line(line), _) => line_id(line.as_bytes()),
            (Body::Bson(raw), _) => line_id(raw.as_bytes()),
        }
    }

    fn mongo_id(&self) -> String {
        match &self.body {
            Body::Bson(raw) => mongo_id_of(raw),
            _ => "?".to_string(),
        }
    }

    /// The SNS MessageId, read cheaply, for records that are envelopes.
    pub fn notification_id(&self) -> Option<String> {
        match &self.body {
            // Only the MessageId: the rest of the envelope (a parsed Message, the Timestamp) is
            // read when the record is interpreted, which a duplicate never is.
            Body::Bson(raw) => ses::notification_id_of(raw.get_str("MessageId").ok()?),
            Body::Line(line) => ses::notification_id_of(&peek_message_id(line)?),
            Body::Unreadable { .. } => None,
        }
    }

    /// The envelope's `Timestamp`, when it can be read: where a record that is no event (a
    /// skip, a broken one) lies in time, so that a file read with a window keeps only its own.
    pub fn published_at(&self) -> Option<OffsetDateTime> {
        let envelope = match &self.body {
            Body::Line(line) => {
                let peek = serde_json::from_str::<LineEnvelope>(line).ok()?;
                line_envelope(&peek).timestamp
            }
            Body::Bson(raw) => bson_envelope(raw).timestamp,
            Body::Unreadable { .. } => return None,
        };
        match envelope {
            ses::Part::Present(Ok(at)) => Some(at),
            _ => None,
        }
    }

    /// What the record means: an event, a skip, or an error naming it.
    pub fn interpret(&self) -> Result<Interpretation, RecordError> {
        let document = match &self.body {
            Body::Unreadable {
                reason,
                fallback_id,
                ..
            } => {
                return Err(RecordError {
                    notification_id: fallback_id.clone(),
                    reason: reason.clone(),
                })
            }
            Body::Line(line) => {
                // One pass when the line is a well-formed envelope; field by field otherwise,
                // so that what is wrong is said of the field it is wrong in.
                if let Some(envelope) = line_fields(line).filter(Envelope::is_envelope) {
                    return self.interpret_envelope(&envelope);
                }
                if let Ok(peek) = serde_json::from_str::<LineEnvelope>(line) {
                    let envelope = line_envelope(&peek);
                    if envelope.is_envelope() {
                        return self.interpret_envelope(&envelope);
                    }
                }
                serde_json::from_str::<Value>(line).map_err(|e| format!("line is not JSON: {e}"))
            }
            Body::Bson(raw) => {
                let envelope = bson_envelope(raw);
                if envelope.is_envelope() {
                    return self.interpret_envelope(&envelope);
                }
                raw.to_document()
                    .map(|doc| Bson::Document(doc).into_relaxed_extjson())
                    .map_err(|e| format!("unreadable BSON: {e}"))
            }
        };
        match document {
            Ok(value) => ses::interpret(&value, &self.fallback_id()),
            Err(reason) => Err(RecordError {
                notification_id: self.fallback_id(),
                reason,
            }),
        }
    }

    fn interpret_envelope(&self, envelope: &Envelope<'_>) -> Result<Interpretation, RecordError> {
        ses::interpret_envelope(envelope, &|| self.fallback_id())
    }

    /// The whole original document as text, for the failures table (BSON as relaxed extended JSON).
    pub fn document_text(&self) -> String {
        match &self.body {
            Body::Line(line) => line.clone(),
            Body::Bson(raw) => match raw.to_document() {
                Ok(doc) => Bson::Document(doc).into_relaxed_extjson().to_string(),
                Err(_) => format!("{{\"unreadable_bson_hex\": \"{}\"}}", hex(raw.as_bytes())),
            },
            Body::Unreadable { text, .. } => text.clone(),
        }
    }
}

/// Where a source failed: a passing transport problem (retry and reopen) or the end of the run.
#[derive(Debug)]
pub enum SourceError {
    Transient(String),
    Fatal(Error),
}

impl SourceError {
    pub fn into_error(self) -> Error {
        match self {
            SourceError::Transient(detail) => Error::Mongo { detail },
            SourceError::Fatal(e) => e,
        }
    }
}

/// A stream of stored notifications.
pub trait RecordSource {
    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>>;
    fn label(&self) -> String;
    /// After a transient error: reads on from just after the last record returned.
    fn reopen(&mut self) -> Result<(), SourceError>;
    /// How many records the source holds, when it can tell cheaply (for a progress bar's ETA).
    fn total(&mut self) -> Option<u64> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Documents kept in aws_report_failures

/// The unresolved failures rows, read back for `ses-report retry`.
pub struct StoredSource {
    records: std::collections::VecDeque<SourceRecord>,
}

impl StoredSource {
    pub fn new(records: impl IntoIterator<Item = SourceRecord>) -> StoredSource {
        StoredSource {
            records: records.into_iter().collect(),
        }
    }
}

impl RecordSource for StoredSource {
    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>> {
        self.records.pop_front().map(Ok)
    }

    fn label(&self) -> String {
        "retry of aws_report_failures".to_string()
    }

    fn total(&mut self) -> Option<u64> {
        Some(self.records.len() as u64)
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::file::FileSource;
    use super::mongo::mongo_filter;
    use super::*;
    use crate::domain::ses::Part;
    use crate::domain::window::Window;
    use mongodb::bson::{doc, Bson, DateTime as BsonDateTime};
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn the_window_filter_matches_dates_and_strings() {
        let window = Window {
            from: datetime!(2026-11-27 0:00 UTC),
            to: datetime!(2026-11-28 0:00 UTC),
        };
        let filter = mongo_filter(&window);
        let branches = filter.get_array("$or").unwrap();
        assert_eq!(branches.len(), 2);
        let dates = branches[0]
            .as_document()
            .unwrap()
            .get_document("Timestamp")
            .unwrap();
        assert_eq!(
            dates.get("$gte"),
            Some(&Bson::DateTime(BsonDateTime::from_millis(
                1_795_737_600_000
            )))
        );
        assert!(matches!(dates.get("$lt"), Some(Bson::DateTime(_))));
        let strings = branches[1]
            .as_document()
            .unwrap()
            .get_document("Timestamp")
            .unwrap();
        assert_eq!(strings.get_str("$gte").unwrap(), "2026-11-27T00:00:00.000Z");
        assert_eq!(strings.get_str("$lt").unwrap(), "2026-11-28T00:00:00.000Z");
    }

    #[test]
    fn lines_are_read_one_at_a_time_with_stable_ids() {
        let dir = std::env::temp_dir().join(format!("ses-report-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.ndjson");
        std::fs::write(
            &path,
            "{\"a\":1}\n\n  {oops\n{\"a\":1}\n{\"MessageId\":\"n-1\",\"Message\":\"{}\"}",
        )
        .unwrap();
        let mut source = FileSource::open(path.to_str().unwrap()).unwrap();
        let records: Vec<SourceRecord> = std::iter::from_fn(|| source.next_record())
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(records.len(), 4);
        let error = records[1].interpret().unwrap_err();
        assert!(error.reason.contains("not JSON"), "{error}");
        assert!(records[1].origin().ends_with("line 3"));
        assert_eq!(records[0].fallback_id(), records[2].fallback_id());
        assert_eq!(records[0].fallback_id(), line_id(b"{\"a\":1}"));
        assert_eq!(records[0].notification_id(), None);
        assert_eq!(records[3].notification_id().as_deref(), Some("n-1"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// Whatever bytes a file holds, reading and interpreting them never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let mut source = FileSource::from_reader("fuzz", std::io::Cursor::new(bytes));
            while let Some(record) = source.next_record() {
                if let Ok(record) = record {
                    let _ = record.interpret();
                    let _ = record.notification_id();
                    let _ = record.fallback_id();
                    let _ = record.document_text();
                }
            }
        }

        /// A valid notification with any one field replaced by any JSON value never panics,
        /// and either yields an event or names the record in its error.
        #[test]
        fn mutated_notifications_never_panic(path in 0usize..14, value in crate::domain::ses::tests::json_value()) {
            let mut record = json!({
                "eventType": "Bounce",
                "mail": {"timestamp": "2026-11-27T10:00:00Z", "messageId": "m", "destination": ["a@x.org"],
                         "headers": [{"name": "user_id", "value": "7"}], "commonHeaders": {"subject": "s"}},
                "bounce": {"timestamp": "2026-11-27T10:00:01Z", "bounceType": "Permanent", "feedbackId": "f",
                           "bouncedRecipients": [{"emailAddress": "a@x.org"}]}
            });
            let slots = [
                "/eventType", "/mail", "/mail/timestamp", "/mail/messageId", "/mail/destination",
                "/mail/destination/0", "/mail/headers", "/mail/headers/0/value", "/mail/commonHeaders",
                "/bounce", "/bounce/timestamp", "/bounce/bounceType", "/bounce/bouncedRecipients",
                "/bounce/bouncedRecipients/0/emailAddress",
            ];
            if let Some(slot) = record.pointer_mut(slots[path]) {
                *slot = value;
            }
            let envelope = json!({"Type": "Notification", "MessageId": "n-1", "Timestamp": "2026-11-27T10:00:02Z",
                                  "Message": record.to_string()});
            let line = envelope.to_string();
            let mut source = FileSource::from_reader("fuzz", std::io::Cursor::new(line.into_bytes()));
            let parsed = source.next_record().unwrap().unwrap();
            if let Err(e) = parsed.interpret() {
                proptest::prop_assert_eq!(e.notification_id, "n-1");
                proptest::prop_assert!(!e.reason.is_empty());
            }
        }

        /// The one-pass envelope of a JSON line is the field-by-field one whenever it reads the
        /// line at all, whatever value each envelope field holds.
        #[test]
        fn one_pass_envelopes_equal_field_by_field_ones(field in 0usize..4, value in crate::domain::ses::tests::json_value()) {
            let mut envelope = json!({"Type": "Notification", "MessageId": "n-1", "Timestamp": "2026-11-27T10:00:02Z",
                                      "Message": "{\"eventType\": \"Send\"}", "Other": [1, {"a": "\\u00e9"}]});
            envelope[["Type", "MessageId", "Timestamp", "Message"][field]] = value;
            let line = envelope.to_string();
            let peek: LineEnvelope = serde_json::from_str(&line).unwrap();
            if let Some(one_pass) = line_fields(&line) {
                proptest::prop_assert_eq!(one_pass, line_envelope(&peek));
            }
        }
    }

    #[test]
    fn one_pass_envelopes_read_escaped_and_plain_messages() {
        let line = r#"{"Type": "Notification", "MessageId": "n", "Timestamp": "2026-11-27T10:00:02Z", "Message": "{\"a\": \"\u00e9\"}"}"#;
        let peek: LineEnvelope = serde_json::from_str(line).unwrap();
        let envelope = line_fields(line).unwrap();
        assert_eq!(envelope, line_envelope(&peek));
        assert_eq!(
            envelope.message,
            ses::Part::Present(ses::MessageBody::Text("{\"a\": \"é\"}".into()))
        );
        assert_eq!(envelope.message_id, ses::Part::Present("n".into()));
        // A bad escape in Message: the one-pass read declines, the field-by-field one names it.
        let bad = r#"{"Type": "Notification", "MessageId": "n", "Message": "\ud800"}"#;
        assert!(line_fields(bad).is_none());
    }

    #[test]
    fn bson_envelopes_are_read_in_place() {
        let doc = doc! {
            "_id": mongodb::bson::oid::ObjectId::parse_str("6b0a7eda1dce6a855ce98786").unwrap(),
            "Type": "Notification", "MessageId": "n-9",
            "Timestamp": BsonDateTime::from_millis(1_795_737_600_000),
            "Message": 17,
        };
        let raw = RawDocumentBuf::from_document(&doc).unwrap();
        let envelope = bson_envelope(&raw);
        assert_eq!(envelope.notification_id().as_deref(), Some("n-9"));
        assert_eq!(
            envelope.timestamp,
            Part::Present(Ok(datetime!(2026-11-27 0:00 UTC)))
        );
        assert_eq!(envelope.message, Part::WrongType("a number"));
        let record = SourceRecord {
            place: Place::Mongo {
                namespace: "ses.events".into(),
            },
            body: Body::Bson(raw),
        };
        assert_eq!(
            record.fallback_id(),
            "mongo:ses.events:6b0a7eda1dce6a855ce98786"
        );
        let error = record.interpret().unwrap_err();
        assert_eq!(error.notification_id, "n-9");
        assert!(error.reason.contains("Message is a number"), "{error}");
        assert!(record.document_text().contains("\"$date\""));
    }

    #[test]
    fn timestamp_shapes_say_which_window_can_select_a_document() {
        use super::envelope::{is_sns_form, TimestampShape};
        use mongodb::bson::RawBsonRef;
        assert!(is_sns_form("2026-11-27T13:42:12.183Z"));
        for other in [
            "2026-11-27T13:42:12Z",
            "2026-11-27T13:42:12.183+00:00",
            "2026-11-27 13:42:12.183Z",
            "",
        ] {
            assert!(!is_sns_form(other), "{other}");
        }
        let date = mongodb::bson::DateTime::from_millis(0);
        assert_eq!(
            TimestampShape::of(Some(RawBsonRef::DateTime(date))),
            TimestampShape::Date
        );
        assert_eq!(
            TimestampShape::of(Some(RawBsonRef::String("2026-11-27T13:42:12.183Z"))),
            TimestampShape::SnsString
        );
        assert_eq!(
            TimestampShape::of(Some(RawBsonRef::String("Fri, 27 Nov 2026"))),
            TimestampShape::OtherString
        );
        assert_eq!(TimestampShape::of(None), TimestampShape::Missing);
        assert_eq!(
            TimestampShape::of(Some(RawBsonRef::Null)),
            TimestampShape::Missing
        );
        assert_eq!(
            TimestampShape::of(Some(RawBsonRef::Int64(5))),
            TimestampShape::WrongType
        );
        assert!(!TimestampShape::OtherString.is_selectable());
    }
}

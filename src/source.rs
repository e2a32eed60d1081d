//! Where notifications come from: a MongoDB cursor over one window, or a newline-delimited JSON
//! file (SNS envelopes as stored in Mongo, or bare SES records as Firehose writes them to S3).
//!
//! Both yield `SourceRecord`s one at a time, so memory stays flat however large the day. A record
//! the source cannot even read (bad JSON, unreadable BSON) is still yielded, as `Unreadable`, so
//! that it is recorded as a failure rather than lost. Transport errors are fatal.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use std::borrow::Cow;
use std::rc::Rc;

use mongodb::bson::{
    doc, Bson, DateTime as BsonDateTime, Document, RawBsonRef, RawDocument, RawDocumentBuf,
};
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Cursor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Environment;
use crate::error::Fatal;
use crate::redact;
use crate::ses::{self, Envelope, Interpretation, MessageBody, Part, RecordError};
use crate::timestamps;
use crate::window::Window;

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

/// The envelope fields of a JSON line, found without building the rest of the document.
#[derive(Deserialize)]
struct LineEnvelope<'a> {
    #[serde(rename = "MessageId", borrow, default)]
    message_id: Option<&'a RawValue>,
    #[serde(rename = "Type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(rename = "Timestamp", borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "Message", borrow, default)]
    message: Option<&'a RawValue>,
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

/// The `MessageId` of a JSON line, read without scanning past it: SNS writes it before the long
/// `Message`, so a rerun's duplicate check does not read most of each line. (serde_json would
/// reject a map left half-read, so the visitor hands the id out and stops with an error.)
fn peek_message_id(line: &str) -> Option<String> {
    use serde::de::{Deserializer as _, Error as _, IgnoredAny, MapAccess, Visitor};
    use std::cell::RefCell;

    struct Find<'c>(&'c RefCell<Option<String>>);
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an SNS envelope")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Cow<str>>()? {
                if key == "MessageId" {
                    let id: Cow<str> = map.next_value()?;
                    *self.0.borrow_mut() = Some(id.into_owned());
                    return Err(A::Error::custom("found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let found = RefCell::new(None);
    let _ = serde_json::Deserializer::from_str(line).deserialize_map(Find(&found));
    found.into_inner()
}

fn line_envelope<'a>(peek: &LineEnvelope<'a>) -> Envelope<'a> {
    fn part<'a, T>(raw: Option<&'a RawValue>, read: impl Fn(&'a str, Value) -> Part<T>) -> Part<T> {
        match raw {
            None => Part::Absent,
            Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Null) => Part::Absent,
                Ok(value) => read(raw.get(), value),
                Err(_) => Part::WrongType("unreadable JSON"),
            },
        }
    }
    let text = |_: &str, value: Value| match value {
        Value::String(s) => Part::Present(Cow::Owned(s)),
        other => Part::WrongType(ses::json_kind(&other)),
    };
    Envelope {
        message_id: part(peek.message_id, text),
        kind: part(peek.kind, text),
        timestamp: part(peek.timestamp, |_, value| {
            Part::Present(ses::envelope_time(&value))
        }),
        message: part(peek.message, |_, value| match value {
            Value::String(s) => Part::Present(MessageBody::Text(Cow::Owned(s))),
            v @ Value::Object(_) => Part::Present(MessageBody::Record(Cow::Owned(v))),
            other => Part::WrongType(ses::json_kind(&other)),
        }),
    }
}

/// The envelope fields of a BSON document, read in place.
fn bson_envelope(raw: &RawDocument) -> Envelope<'_> {
    let text = |key: &str| match raw.get(key) {
        Ok(None) | Ok(Some(RawBsonRef::Null)) | Ok(Some(RawBsonRef::Undefined)) => Part::Absent,
        Ok(Some(RawBsonRef::String(s))) => Part::Present(Cow::Borrowed(s)),
        Ok(Some(other)) => Part::WrongType(bson_kind(other)),
        Err(_) => Part::WrongType("unreadable BSON"),
    };
    let timestamp = match raw.get("Timestamp") {
        Ok(None) | Ok(Some(RawBsonRef::Null)) => Part::Absent,
        Ok(Some(RawBsonRef::DateTime(date))) => Part::Present(
            timestamps::from_unix_millis(date.timestamp_millis())
                .ok_or_else(|| format!("date {date} is out of range")),
        ),
        Ok(Some(RawBsonRef::String(s))) => Part::Present(timestamps::parse(s)),
        Ok(Some(other)) => Part::WrongType(bson_kind(other)),
        Err(_) => Part::WrongType("unreadable BSON"),
    };
    let message = match raw.get("Message") {
        Ok(None) | Ok(Some(RawBsonRef::Null)) => Part::Absent,
        Ok(Some(RawBsonRef::String(s))) => Part::Present(MessageBody::Text(Cow::Borrowed(s))),
        Ok(Some(RawBsonRef::Document(doc))) => match doc.to_owned().to_document() {
            Ok(d) => Part::Present(MessageBody::Record(Cow::Owned(
                Bson::Document(d).into_relaxed_extjson(),
            ))),
            Err(_) => Part::WrongType("unreadable BSON"),
        },
        Ok(Some(other)) => Part::WrongType(bson_kind(other)),
        Err(_) => Part::WrongType("unreadable BSON"),
    };
    Envelope {
        message_id: text("MessageId"),
        kind: text("Type"),
        timestamp,
        message,
    }
}

fn bson_kind(value: RawBsonRef<'_>) -> &'static str {
    match value {
        RawBsonRef::Double(_)
        | RawBsonRef::Int32(_)
        | RawBsonRef::Int64(_)
        | RawBsonRef::Decimal128(_) => "a number",
        RawBsonRef::String(_) | RawBsonRef::Symbol(_) => "a string",
        RawBsonRef::Array(_) => "a list",
        RawBsonRef::Document(_) => "an object",
        RawBsonRef::Boolean(_) => "a boolean",
        RawBsonRef::Null | RawBsonRef::Undefined => "null",
        RawBsonRef::Binary(_) => "binary data",
        RawBsonRef::DateTime(_) => "a date",
        RawBsonRef::ObjectId(_) => "an ObjectId",
        _ => "an unexpected BSON type",
    }
}

fn mongo_id_of(raw: &RawDocument) -> String {
    raw.get("_id")
        .ok()
        .flatten()
        .map(|id| match id.as_object_id() {
            Some(oid) => oid.to_hex(),
            None => Bson::try_from(id.to_raw_bson())
                .map(|b| b.into_relaxed_extjson().to_string())
                .unwrap_or_else(|_| "?".to_string()),
        })
        .unwrap_or_else(|| "?".to_string())
}

// ---------------------------------------------------------------------------------------------
// MongoDB

/// The filter for notifications whose SNS `Timestamp` is in `window`. Stored timestamps are BSON
/// dates or SNS ISO strings; MongoDB's comparison operators only match values of the same type
/// (type bracketing), so the filter is the `$or` of a date range and a string range. The string
/// range is correct for the SNS form only (UTC, milliseconds, `Z`), which is what SNS writes.
pub fn mongo_filter(window: &Window) -> Document {
    let date = |at| BsonDateTime::from_millis(timestamps::to_unix_millis(at));
    doc! {
        "$or": [
            { "Timestamp": { "$gte": date(window.from), "$lt": date(window.to) } },
            { "Timestamp": { "$gte": timestamps::sns(window.from), "$lt": timestamps::sns(window.to) } },
        ]
    }
}

/// Connects and pings, so that a dead server fails the run within the connect timeout.
pub fn mongo_client(env: &Environment) -> Result<Client, Fatal> {
    let where_ = redact::url(&env.mongo_url);
    let fail = |doing: &str, e: mongodb::error::Error| {
        Fatal::new(format!(
            "{doing} MongoDB at {where_}: {} (is the server up? check SES_REPORT_MONGO_URL)",
            redact::scrub(&e.to_string())
        ))
    };
    let mut options = ClientOptions::parse(&env.mongo_url)
        .run()
        .map_err(|e| fail("SES_REPORT_MONGO_URL is not usable for", e))?;
    options.server_selection_timeout = Some(env.connect_timeout);
    options.connect_timeout = Some(env.connect_timeout);
    options
        .app_name
        .get_or_insert_with(|| "ses-report".to_string());
    let client =
        Client::with_options(options).map_err(|e| fail("cannot set up a client for", e))?;
    client
        .database(&env.mongo_db)
        .run_command(doc! { "ping": 1 })
        .run()
        .map_err(|e| fail("cannot reach", e))?;
    Ok(client)
}

/// Where a source failed: a passing transport problem (retry and reopen) or the end of the run.
#[derive(Debug)]
pub enum SourceError {
    Transient(String),
    Fatal(Fatal),
}

impl SourceError {
    pub fn into_fatal(self) -> Fatal {
        match self {
            SourceError::Transient(message) => Fatal::new(message),
            SourceError::Fatal(f) => f,
        }
    }
}

/// A stream of stored notifications.
pub trait RecordSource {
    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>>;
    fn label(&self) -> String;
    /// After a transient error: reads on from just after the last record returned.
    fn reopen(&mut self) -> Result<(), SourceError>;
}

/// A streaming read of one window of the notifications collection, in `_id` order so that a
/// read cut short can resume after the last document it returned.
pub struct MongoSource {
    env: Environment,
    window: Window,
    batch_size: u32,
    cursor: Cursor<RawDocumentBuf>,
    namespace: Rc<str>,
    last_id: Option<Bson>,
}

impl MongoSource {
    pub fn open(env: &Environment, window: &Window, batch_size: u32) -> Result<MongoSource, Fatal> {
        let namespace: Rc<str> = format!("{}.{}", env.mongo_db, env.mongo_collection).into();
        let cursor = open_cursor(env, window, batch_size, None).map_err(SourceError::into_fatal)?;
        Ok(MongoSource {
            env: env.clone(),
            window: *window,
            batch_size,
            cursor,
            namespace,
            last_id: None,
        })
    }
}

/// The window filter, and after a cut `_id > last`; sorted by `_id` (disk use allowed, for big days).
fn open_cursor(
    env: &Environment,
    window: &Window,
    batch_size: u32,
    after: Option<&Bson>,
) -> Result<Cursor<RawDocumentBuf>, SourceError> {
    let client = mongo_client(env).map_err(SourceError::Fatal)?;
    let namespace = format!("{}.{}", env.mongo_db, env.mongo_collection);
    let filter = match after {
        None => mongo_filter(window),
        Some(id) => doc! { "$and": [mongo_filter(window), { "_id": { "$gt": id.clone() } }] },
    };
    client
        .database(&env.mongo_db)
        .collection::<RawDocumentBuf>(&env.mongo_collection)
        .find(filter)
        .sort(doc! { "_id": 1 })
        .allow_disk_use(true)
        .batch_size(batch_size)
        .run()
        .map_err(|e| {
            SourceError::Transient(format!(
                "cannot query {namespace}: {}",
                redact::scrub(&e.to_string())
            ))
        })
}

impl RecordSource for MongoSource {
    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>> {
        Some(match self.cursor.next()? {
            Ok(raw) => {
                if let Ok(Some(id)) = raw.get("_id") {
                    self.last_id = Bson::try_from(id.to_raw_bson()).ok();
                }
                Ok(SourceRecord {
                    place: Place::Mongo {
                        namespace: self.namespace.clone(),
                    },
                    body: Body::Bson(raw),
                })
            }
            Err(e) => Err(SourceError::Transient(format!(
                "lost the MongoDB cursor on {}: {}",
                self.namespace,
                redact::scrub(&e.to_string())
            ))),
        })
    }

    fn label(&self) -> String {
        format!("mongo {}", self.namespace)
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        self.cursor = open_cursor(
            &self.env,
            &self.window,
            self.batch_size,
            self.last_id.as_ref(),
        )?;
        Ok(())
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

    fn reopen(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Newline-delimited JSON files

/// The longest line read; longer ones are kept (truncated) as failures, never loaded whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

pub struct FileSource {
    reader: Box<dyn BufRead>,
    name: Rc<str>,
    line_number: u64,
    buffer: Vec<u8>,
}

impl FileSource {
    /// Reads lines from any reader (tests, and callers with their own stream).
    pub fn from_reader(name: &str, reader: impl Read + 'static) -> FileSource {
        FileSource {
            reader: Box::new(BufReader::new(reader)),
            name: name.into(),
            line_number: 0,
            buffer: Vec::new(),
        }
    }

    /// Opens `path` (`-` for stdin); a name ending in `.gz` is decompressed.
    pub fn open(path: &str) -> Result<FileSource, Fatal> {
        let raw: Box<dyn Read> = if path == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(
                File::open(path)
                    .map_err(|e| Fatal::new(format!("cannot open --file {path}: {e}")))?,
            )
        };
        let reader: Box<dyn BufRead> = if path.ends_with(".gz") {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                flate2::read::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(BufReader::with_capacity(256 * 1024, raw))
        };
        let name: Rc<str> = if path == "-" {
            "stdin".into()
        } else {
            path.into()
        };
        Ok(FileSource {
            reader,
            name,
            line_number: 0,
            buffer: Vec::new(),
        })
    }

    /// Reads one line into the buffer, at most `MAX_LINE_BYTES` of it; returns whether the
    /// line was longer (the rest is skipped), or None at the end.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buffer.clear();
        let mut too_long = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(if self.buffer.is_empty() && !too_long {
                    None
                } else {
                    Some(too_long)
                });
            }
            let (chunk, found_end) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buffer.len());
            if chunk.len() > room {
                too_long = true;
            }
            self.buffer
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            let used = found_end.unwrap_or(available.len());
            self.reader.consume(used);
            if found_end.is_some() {
                return Ok(Some(too_long));
            }
        }
    }
}

impl RecordSource for FileSource {
    fn label(&self) -> String {
        format!("file {}", self.name)
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        Err(SourceError::Fatal(Fatal::new(format!(
            "cannot resume reading {}",
            self.name
        ))))
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>> {
        loop {
            let too_long = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(too_long)) => too_long,
                Err(e) => {
                    return Some(Err(SourceError::Fatal(Fatal::new(format!(
                        "cannot read {} after line {}: {e}",
                        self.name, self.line_number
                    )))))
                }
            };
            self.line_number += 1;
            let line = trim_ascii(&self.buffer);
            if line.is_empty() {
                continue;
            }
            let place = Place::File {
                name: self.name.clone(),
                line: self.line_number,
            };
            let body = match (too_long, std::str::from_utf8(line)) {
                (false, Ok(text)) => Body::Line(text.to_string()),
                (true, _) => Body::Unreadable {
                    text: String::from_utf8_lossy(&line[..line.len().min(64 * 1024)]).into_owned(),
                    reason: format!("line is longer than {MAX_LINE_BYTES} bytes"),
                    fallback_id: line_id(line),
                },
                (false, Err(e)) => Body::Unreadable {
                    text: String::from_utf8_lossy(line).into_owned(),
                    reason: format!("line is not UTF-8: {e}"),
                    fallback_id: line_id(line),
                },
            };
            return Some(Ok(SourceRecord { place, body }));
        }
    }
}

/// The stable id of a line without an SNS envelope: the SHA-256 of its bytes.
pub fn line_id(line: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(line)))
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
        fn mutated_notifications_never_panic(path in 0usize..14, value in crate::ses::tests::json_value()) {
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
}

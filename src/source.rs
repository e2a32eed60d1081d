//! Where notifications come from: a MongoDB cursor over one window, or a newline-delimited JSON
//! file (SNS envelopes as stored in Mongo, or bare SES records as Firehose writes them to S3).
//!
//! Both yield `SourceRecord`s one at a time, so memory stays flat however large the day. A record
//! the source cannot even read (bad JSON, unreadable BSON) is still yielded, as `Unreadable`, so
//! that it is recorded as a failure rather than lost. Transport errors are fatal.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document, RawDocumentBuf};
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Cursor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Environment;
use crate::error::Fatal;
use crate::redact;
use crate::timestamps;
use crate::window::Window;

/// One stored notification, before interpretation.
#[derive(Debug)]
pub struct SourceRecord {
    /// Where it is, for messages and the failures table: `mongo ses.sesevents _id=...`, `file.ndjson line 7`.
    pub origin: String,
    /// The id a record without an SNS MessageId is known by.
    pub fallback_id: String,
    pub content: Content,
}

#[derive(Debug)]
pub enum Content {
    Json(Value),
    /// The source could not decode it; `text` is kept as the failure's document.
    Unreadable {
        text: String,
        reason: String,
    },
}

impl SourceRecord {
    /// The whole original document as text, for the failures table.
    pub fn document_text(&self) -> String {
        match &self.content {
            Content::Json(v) => v.to_string(),
            Content::Unreadable { text, .. } => text.clone(),
        }
    }
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

/// A streaming read of one window of the notifications collection.
pub struct MongoSource {
    cursor: Cursor<RawDocumentBuf>,
    namespace: String,
}

impl MongoSource {
    pub fn open(env: &Environment, window: &Window, batch_size: u32) -> Result<MongoSource, Fatal> {
        let client = mongo_client(env)?;
        let namespace = format!("{}.{}", env.mongo_db, env.mongo_collection);
        let cursor = client
            .database(&env.mongo_db)
            .collection::<RawDocumentBuf>(&env.mongo_collection)
            .find(mongo_filter(window))
            .batch_size(batch_size)
            .run()
            .map_err(|e| {
                Fatal::new(format!(
                    "cannot query {namespace}: {}",
                    redact::scrub(&e.to_string())
                ))
            })?;
        Ok(MongoSource { cursor, namespace })
    }

    pub fn label(&self) -> String {
        format!("mongo {}", self.namespace)
    }
}

impl Iterator for MongoSource {
    type Item = Result<SourceRecord, Fatal>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = match self.cursor.next()? {
            Ok(raw) => raw,
            Err(e) => {
                return Some(Err(Fatal::new(format!(
                    "lost the MongoDB cursor on {}: {}",
                    self.namespace,
                    redact::scrub(&e.to_string())
                ))))
            }
        };
        Some(Ok(mongo_record(&raw, &self.namespace)))
    }
}

/// Turns a raw BSON document into JSON. Dates become `{"$date": ...}` (relaxed extended JSON),
/// which `ses::interpret` reads as dates.
fn mongo_record(raw: &RawDocumentBuf, namespace: &str) -> SourceRecord {
    let id = raw
        .get("_id")
        .ok()
        .flatten()
        .map(|id| match id.as_object_id() {
            Some(oid) => oid.to_hex(),
            None => Bson::try_from(id.to_raw_bson())
                .map(|b| b.into_relaxed_extjson().to_string())
                .unwrap_or_else(|_| "?".to_string()),
        })
        .unwrap_or_else(|| "?".to_string());
    let origin = format!("mongo {namespace} _id={id}");
    let fallback_id = format!("mongo:{namespace}:{id}");
    let content = match raw.to_document() {
        Ok(document) => Content::Json(Bson::Document(document).into_relaxed_extjson()),
        Err(e) => Content::Unreadable {
            text: format!("{{\"unreadable_bson_hex\": \"{}\"}}", hex(raw.as_bytes())),
            reason: format!("unreadable BSON: {e}"),
        },
    };
    SourceRecord {
        origin,
        fallback_id,
        content,
    }
}

// ---------------------------------------------------------------------------------------------
// Newline-delimited JSON files

/// The longest line read; longer ones are kept (truncated) as failures, never loaded whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

pub struct FileSource {
    reader: Box<dyn BufRead>,
    name: String,
    line_number: u64,
    buffer: Vec<u8>,
}

impl FileSource {
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
        let name = if path == "-" {
            "stdin".to_string()
        } else {
            path.to_string()
        };
        Ok(FileSource {
            reader,
            name,
            line_number: 0,
            buffer: Vec::new(),
        })
    }

    pub fn label(&self) -> String {
        format!("file {}", self.name)
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

impl Iterator for FileSource {
    type Item = Result<SourceRecord, Fatal>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let too_long = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(too_long)) => too_long,
                Err(e) => {
                    return Some(Err(Fatal::new(format!(
                        "cannot read {} after line {}: {e}",
                        self.name, self.line_number
                    ))))
                }
            };
            self.line_number += 1;
            let line = trim_ascii(&self.buffer);
            if line.is_empty() {
                continue;
            }
            let origin = format!("{} line {}", self.name, self.line_number);
            let fallback_id = line_id(line);
            let content = if too_long {
                Content::Unreadable {
                    text: String::from_utf8_lossy(&line[..line.len().min(64 * 1024)]).into_owned(),
                    reason: format!("line is longer than {MAX_LINE_BYTES} bytes"),
                }
            } else {
                match serde_json::from_slice::<Value>(line) {
                    Ok(value) => Content::Json(value),
                    Err(e) => Content::Unreadable {
                        text: String::from_utf8_lossy(line).into_owned(),
                        reason: format!("line is not JSON: {e}"),
                    },
                }
            };
            return Some(Ok(SourceRecord {
                origin,
                fallback_id,
                content,
            }));
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
        std::fs::write(&path, "{\"a\":1}\n\n  {oops\n{\"a\":1}").unwrap();
        let records: Vec<SourceRecord> = FileSource::open(path.to_str().unwrap())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records.len(), 3);
        assert!(matches!(records[0].content, Content::Json(_)));
        assert!(
            matches!(&records[1].content, Content::Unreadable { reason, .. } if reason.contains("not JSON"))
        );
        assert!(records[1].origin.ends_with("line 3"));
        assert_eq!(records[0].fallback_id, records[2].fallback_id);
        assert_eq!(records[0].fallback_id, line_id(b"{\"a\":1}"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Fuzzes the whole reading path of a stored notification: an NDJSON line (an SNS envelope, a
//! bare SES record, or garbage) through the source, the envelope, the fast and general SES
//! record parsers. Any panic is a bug: the job must turn every input into an event, a skip or a
//! record error. Run: `cargo fuzz run parse_notification --sanitizer none`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ses_report::fuzzing::{interpret, FileSource, RecordSource};

fuzz_target!(|data: &[u8]| {
    let mut source = FileSource::from_reader("fuzz", std::io::Cursor::new(data.to_vec()));
    while let Some(Ok(record)) = source.next_record() {
        let _ = record.interpret();
        let _ = record.notification_id();
        let _ = record.document_text();
    }
    // The same bytes as the JSON text of an SNS Message.
    if let Ok(text) = std::str::from_utf8(data) {
        let envelope = serde_json::json!({"Type": "Notification", "MessageId": "n", "Timestamp": "2026-11-27T10:00:00Z", "Message": text});
        let _ = interpret(&envelope, "fallback");
    }
});

//! Newline-delimited JSON files (`--file`): SNS envelopes as stored in Mongo, or bare SES records
//! as Firehose writes them to S3; `.gz` decompressed, `-` for standard input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use super::envelope::{line_id, trim_ascii};
use super::{Body, Place, RecordSource, SourceError, SourceRecord};
use crate::error::{Error, Result};

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
    pub fn open(path: &str) -> Result<FileSource> {
        let raw: Box<dyn Read> = if path == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(
                File::open(path).map_err(|e| Error::io(format!("cannot open --file {path}"), e))?,
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
            let (chunk, found_end) = match memchr::memchr(b'\n', available) {
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
        Err(SourceError::Fatal(Error::io(
            format!("cannot resume reading {}", self.name),
            std::io::Error::other("a file is read once, front to back"),
        )))
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, SourceError>> {
        loop {
            let too_long = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(too_long)) => too_long,
                Err(e) => {
                    return Some(Err(SourceError::Fatal(Error::io(
                        format!("cannot read {} after line {}", self.name, self.line_number),
                        e,
                    ))))
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

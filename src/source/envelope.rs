//! Decoding the envelope fields out of a source's own bytes (a JSON line, a BSON document) without
//! building the rest of the document, and the stable ids of records that lack one. Pure: no I/O.

use std::borrow::Cow;

use mongodb::bson::{Bson, RawBsonRef, RawDocument};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::ses::{self, Envelope, MessageBody, Part};
use crate::domain::text;
use crate::domain::timestamps::{self, TimestampError};

/// The envelope fields of a JSON line, found without building the rest of the document.
#[derive(Deserialize)]
pub(super) struct LineEnvelope<'a> {
    #[serde(rename = "MessageId", borrow, default)]
    pub(super) message_id: Option<&'a RawValue>,
    #[serde(rename = "Type", borrow, default)]
    pub(super) kind: Option<&'a RawValue>,
    #[serde(rename = "Timestamp", borrow, default)]
    pub(super) timestamp: Option<&'a RawValue>,
    #[serde(rename = "Message", borrow, default)]
    pub(super) message: Option<&'a RawValue>,
}

/// The `MessageId` of a JSON line, read without scanning past it: SNS writes it before the long
/// `Message`, so a rerun's duplicate check does not read most of each line. (serde_json would
/// reject a map left half-read, so the visitor hands the id out and stops with an error.)
pub(super) fn peek_message_id(line: &str) -> Option<String> {
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

pub(super) fn line_envelope<'a>(peek: &LineEnvelope<'a>) -> Envelope<'a> {
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
        other => Part::WrongType(text::json_kind(&other)),
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
            other => Part::WrongType(text::json_kind(&other)),
        }),
    }
}

/// One envelope field of a JSON line, read in the same pass as the line (`line_fields`): a
/// string (borrowed when it has no escapes), an object (a `Message` given as a document), or the
/// name of another type. JSON null is `None` around it.
pub(super) enum LinePart<'a> {
    Text(Cow<'a, str>),
    Object(Value),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for LinePart<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = LinePart<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an SNS envelope field")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LinePart::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LinePart::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(LinePart::Text(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LinePart::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LinePart::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LinePart::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LinePart::Other("a number"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LinePart::Other("a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(LinePart::Object(value))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// The envelope fields of a JSON line in one pass over it: `Message`, the long field, is
/// unescaped as it is read rather than captured raw and parsed again (`line_envelope`).
#[derive(Deserialize)]
pub(super) struct LineFields<'a> {
    #[serde(rename = "MessageId", borrow, default)]
    message_id: Option<LinePart<'a>>,
    #[serde(rename = "Type", borrow, default)]
    kind: Option<LinePart<'a>>,
    #[serde(rename = "Timestamp", borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "Message", borrow, default)]
    message: Option<LinePart<'a>>,
}

/// A JSON line's envelope in one pass, or `None` when the line does not parse that way (then
/// `line_envelope` reads it field by field and says what is wrong with which).
pub(super) fn line_fields(line: &str) -> Option<Envelope<'_>> {
    fn text(part: Option<LinePart<'_>>) -> Part<Cow<'_, str>> {
        match part {
            None => Part::Absent,
            Some(LinePart::Text(s)) => Part::Present(s),
            Some(LinePart::Object(_)) => Part::WrongType("an object"),
            Some(LinePart::Other(kind)) => Part::WrongType(kind),
        }
    }
    let fields: LineFields = serde_json::from_str(line).ok()?;
    let timestamp = match fields
        .timestamp
        .map(|raw| serde_json::from_str::<Value>(raw.get()))
    {
        None | Some(Ok(Value::Null)) => Part::Absent,
        Some(Ok(value)) => Part::Present(ses::envelope_time(&value)),
        Some(Err(_)) => Part::WrongType("unreadable JSON"),
    };
    let message = match fields.message {
        None => Part::Absent,
        Some(LinePart::Text(s)) => Part::Present(MessageBody::Text(s)),
        Some(LinePart::Object(v)) => Part::Present(MessageBody::Record(Cow::Owned(v))),
        Some(LinePart::Other(kind)) => Part::WrongType(kind),
    };
    Some(Envelope {
        message_id: text(fields.message_id),
        kind: text(fields.kind),
        timestamp,
        message,
    })
}

/// The envelope fields of a BSON document, read in place.
pub(super) fn bson_envelope(raw: &RawDocument) -> Envelope<'_> {
    let text = |key: &str| match raw.get(key) {
        Ok(None) | Ok(Some(RawBsonRef::Null)) | Ok(Some(RawBsonRef::Undefined)) => Part::Absent,
        Ok(Some(RawBsonRef::String(s))) => Part::Present(Cow::Borrowed(s)),
        Ok(Some(other)) => Part::WrongType(bson_kind(other)),
        Err(_) => Part::WrongType("unreadable BSON"),
    };
    let timestamp = match raw.get("Timestamp") {
        Ok(None) | Ok(Some(RawBsonRef::Null)) => Part::Absent,
        Ok(Some(RawBsonRef::DateTime(date))) => Part::Present(
            timestamps::from_unix_millis(date.timestamp_millis()).ok_or_else(|| {
                TimestampError::BadDate {
                    detail: format!("date {date} is out of range"),
                }
            }),
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

pub(super) fn bson_kind(value: RawBsonRef<'_>) -> &'static str {
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

pub(super) fn mongo_id_of(raw: &RawDocument) -> String {
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

/// How a stored `Timestamp` meets the window filter (a date range or'd with an SNS-string
/// range, since MongoDB compares only values of one type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimestampShape {
    /// A BSON date: selected by the date range.
    Date,
    /// A string in the SNS form (`2026-11-27T13:42:12.183Z`): selected by the string range.
    SnsString,
    /// Another string (another ISO form, an offset, no milliseconds): compared as text it falls
    /// in the wrong window, or none.
    OtherString,
    /// No `Timestamp`, or null: no window selects it.
    Missing,
    /// A number, an object...: no window selects it.
    WrongType,
}

impl TimestampShape {
    pub fn of(value: Option<RawBsonRef<'_>>) -> TimestampShape {
        match value {
            None | Some(RawBsonRef::Null) => TimestampShape::Missing,
            Some(RawBsonRef::DateTime(_)) => TimestampShape::Date,
            Some(RawBsonRef::String(s)) if is_sns_form(s) => TimestampShape::SnsString,
            Some(RawBsonRef::String(_)) => TimestampShape::OtherString,
            Some(_) => TimestampShape::WrongType,
        }
    }

    /// Whether some window selects it where it belongs.
    pub fn is_selectable(self) -> bool {
        matches!(self, TimestampShape::Date | TimestampShape::SnsString)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the only string form that sorts as time.
pub fn is_sns_form(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The stable id of a line without an SNS envelope: the SHA-256 of its bytes.
pub fn line_id(line: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(line)))
}

pub(super) fn trim_ascii(bytes: &[u8]) -> &[u8] {
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

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

//! The fast path for the common case: an SES record in JSON text that is well formed.
//!
//! It deserializes into borrowing structs (no `serde_json::Value` tree, no allocation for strings
//! without escapes) and keeps each event's own object as its raw text. It only ever produces the
//! result the general path (`interpret_record` over a `Value`) would: on anything unusual (a type
//! it does not expect, a semantic error, a warning to give) it returns `None` and the caller takes
//! the general path, which owns every error message and warning. `tests::fast_and_general_agree`
//! holds the two to the same answers.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    distinct, keep_within, widths, BounceType, Dialect, Interpretation, MailHeaders, MailPart,
    SesEvent,
};
use crate::domain::event_kind::{EventKind, RecipientsField};
use crate::domain::tags::{MailTags, TagLists};
use crate::domain::text::normalize_address;
use crate::domain::timestamps;

/// A JSON object's members, each kept as raw text: the fields the table names are parsed on
/// demand, so the event keys and recipient fields come from `EventKind`'s table, not from a copy.
/// A few members each, so a vector (no hashing); keys with escapes or twice the same key make the
/// parse fail, and this path step aside (the general path keeps the last of duplicates).
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'a> Members<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(8);
                while let Some(key) = map.next_key::<&'de str>()? {
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom("duplicate key"));
                    }
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The SES record: its dialect keys and `mail` parsed as it is read (`mail` is the largest part
/// of a record: parsing it from raw text afterwards would read it twice), the rest kept raw.
struct RecordIn<'a> {
    event_type: Option<&'a RawValue>,
    notification_type: Option<&'a RawValue>,
    mail: Option<Obj<MailIn<'a>>>,
    rest: Members<'a>,
}

impl<'de> Deserialize<'de> for RecordIn<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RecordIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an SES record")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RecordIn<'de>, A::Error> {
                let duplicate = || serde::de::Error::custom("duplicate key");
                let (mut event_type, mut notification_type, mut mail) = (None, None, None);
                let mut seen_mail = false;
                let mut rest = Vec::with_capacity(4);
                while let Some(key) = map.next_key::<&'de str>()? {
                    match key {
                        "eventType" if event_type.is_some() => return Err(duplicate()),
                        "eventType" => event_type = Some(map.next_value::<&'de RawValue>()?),
                        "notificationType" if notification_type.is_some() => {
                            return Err(duplicate())
                        }
                        "notificationType" => {
                            notification_type = Some(map.next_value::<&'de RawValue>()?)
                        }
                        "mail" if seen_mail => return Err(duplicate()),
                        "mail" => {
                            seen_mail = true;
                            mail = map.next_value::<Option<Obj<MailIn<'de>>>>()?;
                        }
                        _ if rest.iter().any(|(k, _)| *k == key) => return Err(duplicate()),
                        _ => rest.push((key, map.next_value::<&'de RawValue>()?)),
                    }
                }
                Ok(RecordIn {
                    event_type,
                    notification_type,
                    mail,
                    rest: Members(rest),
                })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The member `key` as `T`: `Ok(None)` when absent or null, `Err` when of another type.
fn member<'a, T: Deserialize<'a>>(members: &Members<'a>, key: &str) -> Result<Option<T>, ()> {
    match members.get(key) {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Option<T>>(raw.get()).map_err(|_| ()),
    }
}

#[derive(Deserialize)]
struct MailIn<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "messageId", borrow, default)]
    message_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    destination: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    headers: Option<Vec<Obj<HeaderIn<'a>>>>,
    #[serde(rename = "commonHeaders", borrow, default)]
    common_headers: Option<Obj<CommonHeadersIn<'a>>>,
    #[serde(borrow, default)]
    tags: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct HeaderIn<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present_even_if_null")]
    value: Option<&'a RawValue>,
}

/// A struct that must be a JSON object: serde's derive would also take an array, field by
/// field, which the general path rightly refuses.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only a map is offered to `T`, in the same pass over the text: no raw capture and
        // second parse (which read `mail` twice and each header three times).
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

impl<T> std::ops::Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Keeps a JSON `null` as a present raw value (a plain `Option` would make it `None`), so that
/// "null" and "absent" stay as distinct as they are to the general path.
fn present_even_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct CommonHeadersIn<'a> {
    #[serde(borrow, default)]
    subject: Option<Cow<'a, str>>,
}

/// The record's event, or `None` to take the general path.
pub(super) fn interpret_text(
    text: &str,
    notification_id: &str,
    published_at: Option<OffsetDateTime>,
) -> Option<Interpretation> {
    // serde_json's typed parse skips what it does not keep without the checks its `Value`
    // parse makes; the general path parses a `Value`, so this path first looks for what that
    // would refuse anywhere in the text.
    if !within_serde_value_limits(text) {
        return None;
    }
    let record: RecordIn = serde_json::from_str(text).ok()?;
    let (kind, dialect) = kind_of(&record)?;
    let mut warnings = Vec::new();
    let common = read_mail(record.mail.as_ref()?, &mut warnings)?;
    let mail = record.mail.as_ref()?;

    let raw_object = record.rest.get(kind.object_key());
    if raw_object.is_none() && !kind.at_mail_time() {
        return None;
    }
    let object: Option<Members> = match raw_object {
        Some(raw) if raw.get().trim_start().starts_with('{') => {
            Some(serde_json::from_str(raw.get()).ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    let time_text: Option<Cow<str>> = if kind.at_mail_time() {
        mail.timestamp.clone()
    } else {
        member(object.as_ref()?, "timestamp").ok()?
    };
    let occurred_at = timestamps::parse(&time_text?)
        .and_then(timestamps::check_storable)
        .ok()?;

    let recipients = match kind.recipients_field() {
        Some(field) => recipients_of(object.as_ref()?, field)?,
        None => distinct(common.destination.clone()),
    };
    let (feedback_id, bounce_type) = feedback_of(kind, object.as_ref(), &mut warnings)?;
    if !warnings.is_empty() {
        // The general path words every warning; let it.
        return None;
    }
    let other_info = match raw_object {
        Some(raw) => minify(raw.get()),
        None => "{}".to_string(),
    };
    Some(Interpretation::Event(Box::new(SesEvent {
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

/// The event type and dialect, or `None` (an unknown or null type: the general path words it).
fn kind_of(record: &RecordIn<'_>) -> Option<(EventKind, Dialect)> {
    // `"eventType": null` is not absent: the general path refuses it, so this path declines.
    let event_type: Option<Cow<str>> = match record.event_type {
        Some(raw) => Some(serde_json::from_str(raw.get()).ok()?),
        None => None,
    };
    let notification_type: Option<Cow<str>> = match record.notification_type {
        Some(raw) => serde_json::from_str(raw.get()).ok()?,
        None => None,
    };
    match (&event_type, &notification_type) {
        (Some(t), _) => Some((EventKind::from_ses_name(t)?, Dialect::EventPublishing)),
        (None, Some(t)) => Some((EventKind::from_classic_name(t)?, Dialect::Classic)),
        (None, None) => None,
    }
}

/// What the `mail` object says, as `ses::read_mail` reads it, or `None` for the general path.
fn read_mail(mail: &MailIn<'_>, warnings: &mut Vec<String>) -> Option<MailPart> {
    let message_id = mail
        .message_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())?;
    let message_id = keep_within(message_id, widths::MESSAGE_ID, "mail.messageId", warnings);
    let destination = mail.destination.as_ref().filter(|d| !d.is_empty())?;
    let destination: Vec<String> = destination
        .iter()
        .map(|a| address(a))
        .collect::<Option<_>>()?;
    let source = mail
        .source
        .as_deref()
        .map(|s| keep_within(s.trim(), widths::ADDRESS, "mail.source", warnings));
    let subject = mail
        .common_headers
        .as_ref()
        .and_then(|h| h.subject.as_deref())
        .map(|s| keep_within(s, widths::SUBJECT, "subject", warnings));
    let (user_id, report_type) = custom_headers(mail.headers.as_deref())?;
    let headers = MailHeaders {
        user_id: user_id.as_ref(),
        report_type: report_type.as_ref(),
    };
    let header_user_id = headers.user_id(warnings);
    let report_type = headers.report_type(warnings);
    // Tags as SES writes them (lists of strings) are read as such; anything else as a document.
    let tags = match mail.tags {
        Some(raw) => match serde_json::from_str::<TagLists>(raw.get()) {
            Ok(lists) => MailTags::from_lists(&lists, warnings),
            Err(_) => {
                let value: Value = serde_json::from_str(raw.get()).ok()?;
                MailTags::read(Some(&value), warnings)
            }
        },
        None => MailTags::read(None, warnings),
    };
    Some(MailPart {
        message_id,
        destination,
        source,
        subject,
        header_user_id,
        report_type,
        tags,
    })
}

/// A bounce's or complaint's feedback id, and a bounce's type, as the general path reads them.
fn feedback_of(
    kind: EventKind,
    object: Option<&Members<'_>>,
    warnings: &mut Vec<String>,
) -> Option<(Option<String>, Option<BounceType>)> {
    let text = |key: &str| -> Option<Option<Cow<str>>> {
        match object {
            Some(o) => member(o, key).ok(),
            None => Some(None),
        }
    };
    let feedback_id = match kind {
        EventKind::Bounce | EventKind::Complaint => text("feedbackId")?
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| keep_within(s, widths::FEEDBACK_ID, "feedbackId", warnings)),
        _ => None,
    };
    let bounce_type = match kind {
        EventKind::Bounce => Some(
            text("bounceType")?
                .as_deref()
                .map(BounceType::from_ses)
                .unwrap_or(BounceType::Undetermined),
        ),
        _ => None,
    };
    Some((feedback_id, bounce_type))
}

/// The recipients an event object lists, normalised and distinct, or `None`.
fn recipients_of(object: &Members<'_>, field: RecipientsField) -> Option<Vec<String>> {
    let listed: Vec<String> = match field.address {
        None => member::<Vec<Cow<str>>>(object, field.array)
            .ok()??
            .iter()
            .map(|a| address(a))
            .collect::<Option<_>>()?,
        Some(key) => member::<Vec<Members>>(object, field.array)
            .ok()??
            .iter()
            .map(|r| address(&member::<Cow<str>>(r, key).ok()??))
            .collect::<Option<_>>()?,
    };
    if listed.is_empty() {
        return None;
    }
    Some(distinct(listed))
}

/// The `user_id` and `report_type` header values, as the general path reads them.
fn custom_headers(headers: Option<&[Obj<HeaderIn<'_>>]>) -> Option<(Option<Value>, Option<Value>)> {
    let mut user_id = None;
    let mut report_type = None;
    for header in headers.unwrap_or_default() {
        let Some(name) = header.name.as_deref() else {
            continue;
        };
        let slot = if name.eq_ignore_ascii_case("user_id") {
            &mut user_id
        } else if name.eq_ignore_ascii_case("report_type") {
            &mut report_type
        } else {
            continue;
        };
        if slot.is_none() {
            if let Some(raw) = header.value {
                *slot = Some(serde_json::from_str::<Value>(raw.get()).ok()?);
            }
        }
    }
    Some((user_id, report_type))
}

/// A recipient address as the general path's `address_at` would accept it, or `None`.
fn address(text: &str) -> Option<String> {
    let address = normalize_address(text);
    if address.is_empty() || address.contains('\0') || super::rfc5321_excess(&address).is_some() {
        return None;
    }
    Some(address)
}

/// How deep serde_json's `Value` parse nests arrays and objects before it refuses the text.
const MAX_DEPTH: usize = 127;

/// Whether serde_json would parse `text` into a `Value`, as far as what its typed parse does not
/// check goes: nesting up to `MAX_DEPTH`, `\u` escapes that are not lone surrogates, numbers
/// within f64's range. Anything else malformed the typed parse refuses by itself.
fn within_serde_value_limits(text: &str) -> bool {
    let b = text.as_bytes();
    let hex4 = |at: usize| -> Option<u32> {
        let digits = b.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                // Nearly every byte of a record is inside a string: jump to the next quote or
                // backslash rather than look at each byte.
                loop {
                    let Some(at) = memchr::memchr2(b'"', b'\\', b.get(i..).unwrap_or_default())
                    else {
                        // An unterminated string: the typed parse refuses it by itself.
                        return true;
                    };
                    i += at;
                    if b[i] == b'"' {
                        break;
                    }
                    if b.get(i + 1) != Some(&b'u') {
                        i += 2;
                    } else {
                        let Some(code) = hex4(i + 2) else {
                            return false;
                        };
                        match code {
                            0xD800..=0xDBFF => {
                                let paired = b.get(i + 6..i + 8) == Some(b"\\u".as_slice())
                                    && hex4(i + 8)
                                        .is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                                if !paired {
                                    return false;
                                }
                                i += 12;
                            }
                            0xDC00..=0xDFFF => return false,
                            _ => i += 6,
                        }
                    }
                }
                i += 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                if text[start..i].parse::<f64>().is_ok_and(|n| !n.is_finite()) {
                    return false;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// JSON text without the whitespace between tokens (strings untouched). Strings are copied a
/// span at a time, found with memchr: the text is almost all strings.
fn minify(json: &str) -> String {
    let b = json.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', b.get(i..).unwrap_or_default()) {
                        None => {
                            i = b.len();
                            break;
                        }
                        Some(at) if b[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at + 1;
                            break;
                        }
                    }
                }
                out.extend_from_slice(&b[start..i.min(b.len())]);
            }
            c if c.is_ascii_whitespace() => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Whole characters are copied (anything not ASCII lies inside a string of valid JSON).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_strings() {
        assert_eq!(
            minify("{ \"a b\" : [ 1 , \"x \\\" y\" ] }"),
            "{\"a b\":[1,\"x \\\" y\"]}"
        );
        assert_eq!(minify("\"ends in \\"), "\"ends in \\");
        assert_eq!(
            minify("[\"é \\\\\", \"\\u00e9\"]"),
            "[\"é \\\\\",\"\\u00e9\"]"
        );
    }

    proptest::proptest! {
        /// Any value, pretty-printed, minifies to its compact text.
        #[test]
        fn minify_gives_the_compact_text(value in crate::domain::ses::tests::json_value()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            proptest::prop_assert_eq!(minify(&pretty), serde_json::to_string(&value).unwrap());
        }
    }

    #[test]
    fn truncated_text_never_panics_the_scan() {
        for text in [
            r#""abc"#,
            r#""abc\"#,
            r#""\u12"#,
            r#""\ud800\u"#,
            r#"["x\"] \"#,
            r#"\"#,
        ] {
            let _ = within_serde_value_limits(text);
        }
    }

    #[test]
    fn the_limits_are_serde_jsons() {
        for text in [
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800x\"",
            "1e400",
            "[-1e400]",
            &"9".repeat(400),
            &format!("{}{}", "[".repeat(128), "]".repeat(128)),
            "[1, \"\\ud83d\\u0041\"]",
        ] {
            let serde = serde_json::from_str::<Value>(text).is_ok();
            assert!(!serde, "serde accepts {text:.30}");
            assert!(!within_serde_value_limits(text), "{text:.30}");
        }
        for text in [
            "\"\\ud83d\\ude00 ok\"",
            "1e308",
            "[\"\\\\u12\"]",
            &format!("{}{}", "[".repeat(127), "]".repeat(127)),
            "{\"a\": [1.5e-3, -2, \"\\u00e9\"]}",
        ] {
            assert!(serde_json::from_str::<Value>(text).is_ok(), "{text:.30}");
            assert!(within_serde_value_limits(text), "{text:.30}");
        }
    }
}

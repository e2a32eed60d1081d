//! `mail.tags`: the message tags every SES event record carries, among them SES's own
//! `ses:configuration-set` and `ses:outgoing-ip` (the dedicated or shared IP the mail left from,
//! which AWS's docs point to for finding the IP that causes bounces), and the sender's own.

use std::collections::BTreeMap;

use serde_json::Value;

/// The longest configuration set name SES accepts.
pub const CONFIGURATION_SET_WIDTH: usize = 64;
/// The longest IP address text (IPv6 with an IPv4 tail).
pub const IP_WIDTH: usize = 45;
/// Tags beyond this much JSON are not kept on the summary row (SES allows 50 tags of 256
/// characters per name and value, well under it).
pub const TAGS_JSON_WIDTH: usize = 16 * 1024;

/// What the summary row keeps of `mail.tags`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailTags {
    /// All tags as JSON, keys sorted, so that the same tags are the same text.
    pub json: Option<String>,
    pub configuration_set: Option<String>,
    pub sending_ip: Option<String>,
}

impl MailTags {
    /// Reads `mail.tags` (absent, null or not an object: no tags; that is no fault, since the
    /// tags are commentary on the mail, not what it is).
    pub fn read(tags: Option<&Value>, warnings: &mut Vec<String>) -> MailTags {
        let Some(Value::Object(map)) = tags else {
            if let Some(other) = tags.filter(|t| !t.is_null()) {
                warnings.push(format!(
                    "mail.tags is {}, not an object: ignored",
                    crate::domain::text::json_kind(other)
                ));
            }
            return MailTags::default();
        };
        let sorted: BTreeMap<&String, &Value> = map.iter().collect();
        MailTags::kept(
            |name| match map.get(name)? {
                Value::Array(values) => values.first()?.as_str(),
                Value::String(s) => Some(s.as_str()),
                _ => None,
            },
            serde_json::to_string(&sorted).ok(),
            warnings,
        )
    }

    /// What `read` makes of tags that are all lists of strings, from those lists (sorted by
    /// name, as `read` sorts them).
    pub fn from_lists(lists: &TagLists<'_>, warnings: &mut Vec<String>) -> MailTags {
        MailTags::kept(
            |name| lists.get(name)?.first().map(|v| v.as_ref()),
            serde_json::to_string(lists).ok(),
            warnings,
        )
    }

    /// What the summary row keeps: the configuration set and sending IP (`first` value of a
    /// tag, trimmed, when it fits its column) and the tags' sorted JSON when it fits its own.
    fn kept<'t>(
        first: impl Fn(&str) -> Option<&'t str>,
        json: Option<String>,
        warnings: &mut Vec<String>,
    ) -> MailTags {
        let mut fitting = |name: &str, width: usize| {
            let value = first(name)?.trim();
            if value.is_empty() {
                return None;
            }
            if value.len() > width {
                warnings.push(format!(
                    "mail.tags {name:?} is longer than {width} characters: not kept"
                ));
                return None;
            }
            Some(value.to_string())
        };
        let configuration_set = fitting("ses:configuration-set", CONFIGURATION_SET_WIDTH);
        let sending_ip = fitting("ses:outgoing-ip", IP_WIDTH);
        let json = json.filter(|text| {
            let fits = text.len() <= TAGS_JSON_WIDTH;
            if !fits {
                warnings.push(format!(
                    "mail.tags is {} bytes of JSON, over {TAGS_JSON_WIDTH}: not kept",
                    text.len()
                ));
            }
            fits
        });
        MailTags {
            json: json.filter(|j| j != "{}"),
            configuration_set,
            sending_ip,
        }
    }
}

/// Tags as SES writes them, names to lists of strings, read without building a document.
pub type TagLists<'a> = BTreeMap<std::borrow::Cow<'a, str>, Vec<std::borrow::Cow<'a, str>>>;

/// The order-free merge of two values of one summary column: the greater wins (`None` loses).
/// The SQL upsert states the same rule.
pub fn merge_greatest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The order-free merge of two tag sets: the one with more JSON wins, then the greater text
/// (events after sending carry `ses:outgoing-ip`, which a Send event may not).
pub fn merge_tags(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if (b.len(), &b) > (a.len(), &a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ses_tags_and_custom_ones_are_read_and_sorted() {
        let tags = json!({
            "ses:source-ip": ["192.0.2.10"],
            "ses:configuration-set": ["marketing"],
            "ses:outgoing-ip": ["198.51.100.7"],
            "campaign": ["fall"]
        });
        let mut warnings = vec![];
        let t = MailTags::read(Some(&tags), &mut warnings);
        assert_eq!(t.configuration_set.as_deref(), Some("marketing"));
        assert_eq!(t.sending_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(
            t.json.as_deref(),
            Some(
                r#"{"campaign":["fall"],"ses:configuration-set":["marketing"],"ses:outgoing-ip":["198.51.100.7"],"ses:source-ip":["192.0.2.10"]}"#
            )
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn odd_tags_are_ignored_with_a_warning_not_a_fault() {
        let mut warnings = vec![];
        assert_eq!(MailTags::read(None, &mut warnings), MailTags::default());
        assert_eq!(
            MailTags::read(Some(&Value::Null), &mut warnings),
            MailTags::default()
        );
        assert!(warnings.is_empty());
        assert_eq!(
            MailTags::read(Some(&json!([1])), &mut warnings),
            MailTags::default()
        );
        assert_eq!(warnings.len(), 1);
        let long = "x".repeat(65);
        let t = MailTags::read(
            Some(&json!({"ses:configuration-set": [long], "ses:outgoing-ip": []})),
            &mut warnings,
        );
        assert_eq!(t.configuration_set, None);
        assert_eq!(t.sending_ip, None);
        assert_eq!(warnings.len(), 2);
        assert_eq!(MailTags::read(Some(&json!({})), &mut warnings).json, None);
    }

    #[test]
    fn merges_are_order_free() {
        let values = [
            None,
            Some("a".to_string()),
            Some("b".into()),
            Some("ab".into()),
        ];
        for x in &values {
            for y in &values {
                assert_eq!(
                    merge_greatest(x.clone(), y.clone()),
                    merge_greatest(y.clone(), x.clone())
                );
                assert_eq!(
                    merge_tags(x.clone(), y.clone()),
                    merge_tags(y.clone(), x.clone())
                );
                for z in &values {
                    assert_eq!(
                        merge_tags(merge_tags(x.clone(), y.clone()), z.clone()),
                        merge_tags(x.clone(), merge_tags(y.clone(), z.clone()))
                    );
                }
            }
        }
        assert_eq!(
            merge_tags(Some("b".into()), Some("ab".into())).as_deref(),
            Some("ab")
        );
    }

    #[test]
    fn lists_of_strings_read_as_the_document_reads_them() {
        let cases = [
            json!({}),
            json!({"campaign": ["fall"], "ses:configuration-set": [" marketing "], "a\"b": ["x\ny", "é"]}),
            json!({"ses:outgoing-ip": [], "ses:configuration-set": [""]}),
            json!({"ses:configuration-set": ["x".repeat(65)], "z": ["1"], "b": ["2", "3"]}),
        ];
        for tags in cases {
            let lists: TagLists = serde_json::from_value(tags.clone()).unwrap();
            let (mut from_lists, mut from_value) = (vec![], vec![]);
            assert_eq!(
                MailTags::from_lists(&lists, &mut from_lists),
                MailTags::read(Some(&tags), &mut from_value),
                "{tags}"
            );
            assert_eq!(from_lists, from_value);
        }
    }
}

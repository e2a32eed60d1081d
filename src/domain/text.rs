//! Text helpers the domain shares: an address as the job compares it, a bounded string, the
//! name of a JSON value's type for error messages.

use std::borrow::Cow;

use serde_json::Value;

/// Trims, lower-cases and unwraps `Name <addr>`.
pub fn normalize_address(text: &str) -> String {
    let text = text.trim();
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    inner.trim().to_lowercase()
}

/// The first `max` characters of `text`, and whether anything was cut.
pub fn truncate(text: &str, max: usize) -> (Cow<'_, str>, bool) {
    // No more bytes than `max` means no more characters: most texts end here, uncounted.
    if text.len() <= max {
        return (Cow::Borrowed(text), false);
    }
    match text.char_indices().nth(max) {
        Some((byte, _)) => (Cow::Borrowed(&text[..byte]), true),
        None => (Cow::Borrowed(text), false),
    }
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_without_display_names_or_case() {
        assert_eq!(
            normalize_address("  \"Jane Doe\" <Jane@Example.COM> "),
            "jane@example.com"
        );
        assert_eq!(normalize_address("X@Y.z"), "x@y.z");
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("héllo", 2), (Cow::Borrowed("hé"), true));
        assert_eq!(truncate("hé", 2), (Cow::Borrowed("hé"), false));
        // 6 bytes, 5 characters: the byte count alone does not decide.
        assert_eq!(truncate("héllo", 5), (Cow::Borrowed("héllo"), false));
        assert_eq!(truncate("héllo", 4), (Cow::Borrowed("héll"), true));
        assert_eq!(truncate("", 0), (Cow::Borrowed(""), false));
        assert_eq!(truncate("a", 0), (Cow::Borrowed(""), true));
        assert_eq!(json_kind(&Value::Null), "null");
        assert_eq!(json_kind(&serde_json::json!([1])), "a list");
    }
}

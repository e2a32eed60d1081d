//! Erasure on request (docs/privacy.md): an erased address is known afterwards only by its keyed
//! hash, HMAC-SHA-256 under the operator's secret (`SES_REPORT_ERASURE_KEY`), never by a bare
//! hash anyone could confirm a guess against. Its rows keep everything that is counted, under a
//! pseudonym made from that hash that keeps the address's domain (the rollups group by it), so
//! that no figure changes; the suppression ledger keeps its kinds under the pseudonym and the
//! hash, so that it is never mailed again.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::text::normalize_address;

/// The secret of the keyed hashes. Never printed: `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct ErasureKey(Vec<u8>);

impl ErasureKey {
    /// The shortest key accepted: 16 bytes (128 bits), the least RFC 2104 allows for HMAC-SHA-256
    /// to keep its strength ("less than L bytes is strongly discouraged", L = 32).
    pub const MIN_BYTES: usize = 16;

    pub fn new(secret: &str) -> Result<ErasureKey, String> {
        if secret.len() < ErasureKey::MIN_BYTES {
            return Err(format!(
                "SES_REPORT_ERASURE_KEY has {} bytes; use at least {} (32 random bytes, e.g. `openssl rand -hex 32`)",
                secret.len(),
                ErasureKey::MIN_BYTES
            ));
        }
        Ok(ErasureKey(secret.as_bytes().to_vec()))
    }
}

impl fmt::Debug for ErasureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErasureKey({} bytes)", self.0.len())
    }
}

/// HMAC-SHA-256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keyed hash of an address as the job compares addresses (trimmed, `<...>` taken out,
/// lower case), in lower-case hex: what the ledger and the erasure audit keep, and what the
/// sending app computes to check an address itself.
pub fn address_hash(key: &ErasureKey, address: &str) -> String {
    hex(&hmac_sha256(&key.0, normalize_address(address).as_bytes()))
}

/// A check value of the key (16 hex digits of its HMAC of a fixed text): stored with each
/// erasure, so that a run under another key is refused rather than blind to the erasures.
pub fn key_check(key: &ErasureKey) -> String {
    hex(&hmac_sha256(&key.0, b"ses-report erasure key check"))[..16].to_string()
}

/// The pseudonym an erased address's rows carry: `erased.` and the first 24 hex digits of its
/// keyed hash, at the address's own domain (`erased.3f9c…@example.com`).
pub fn pseudonym(hash: &str, address: &str) -> String {
    let normalized = normalize_address(address);
    let domain = normalized.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    format!("erased.{}@{domain}", &hash[..24.min(hash.len())])
}

/// Whether `address` is already a pseudonym.
pub fn is_pseudonym(address: &str) -> bool {
    address.starts_with("erased.") && address.contains('@')
}

/// The erased addresses, by keyed hash: which addresses of a record are erased, and what their
/// rows say instead.
#[derive(Debug, Clone)]
pub struct Erased {
    key: ErasureKey,
    hashes: HashSet<String>,
}

impl Erased {
    pub fn new(key: ErasureKey, hashes: impl IntoIterator<Item = String>) -> Erased {
        Erased {
            key,
            hashes: hashes.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The pseudonym of `address` if it is erased.
    pub fn replacement(&self, address: &str) -> Option<String> {
        if self.hashes.is_empty() || !address.contains('@') {
            return None;
        }
        let hash = address_hash(&self.key, address);
        self.hashes
            .contains(&hash)
            .then(|| pseudonym(&hash, address))
    }
}

/// Keeps an erased address out of an event: its recipients lose the erased ones, and the
/// event's own object and first destination name them by pseudonym. True when no recipient is
/// left (the record is kept out whole).
pub fn keep_out(event: &mut crate::domain::ses::SesEvent, erased: &Erased) -> bool {
    if erased.is_empty() {
        return false;
    }
    let replace = |a: &str| erased.replacement(a);
    event.recipients.retain(|r| replace(r).is_none());
    if event.recipients.is_empty() {
        return true;
    }
    if let Some(p) = replace(&event.first_destination) {
        event.first_destination = p;
    }
    if let Some(info) = scrub_json_text(&event.other_info, &replace) {
        event.other_info = info;
    }
    false
}

/// Characters an address's local part and domain are made of, around its `@`.
fn local_char(c: char) -> bool {
    c.is_alphanumeric() || "._%+-'!#$&*/=?^`{|}~".contains(c)
}

fn domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '.' || c == '-'
}

/// `text` with every address in it that `replace` names replaced (in whatever case it was
/// written), or `None` when nothing changed.
pub fn scrub_text(text: &str, replace: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if !text.contains('@') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| local_char(*c))
            .last()
            .map(|(i, _)| i)
            .unwrap_or(at);
        let after = &rest[at + 1..];
        let len = after
            .char_indices()
            .take_while(|(_, c)| domain_char(*c))
            .last()
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        // A trailing dot ends the sentence, not the domain.
        let domain = after[..len].trim_end_matches('.');
        let end = at + 1 + domain.len();
        match (start < at && !domain.is_empty())
            .then(|| replace(&rest[start..end]))
            .flatten()
        {
            Some(pseudonym) => {
                out.push_str(&rest[..start]);
                out.push_str(&pseudonym);
                changed = true;
            }
            None => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Replaces, in every string of a JSON value, the addresses `replace` names; whether any was.
pub fn scrub_json(value: &mut Value, replace: &dyn Fn(&str) -> Option<String>) -> bool {
    match value {
        Value::String(s) => match scrub_text(s, replace) {
            Some(new) => {
                *s = new;
                true
            }
            None => false,
        },
        // Every value is visited: no short circuit.
        Value::Array(items) => {
            let mut changed = false;
            for v in items {
                changed |= scrub_json(v, replace);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for v in map.values_mut() {
                changed |= scrub_json(v, replace);
            }
            changed
        }
        _ => false,
    }
}

/// JSON text with the addresses `replace` names replaced, the SNS `Message` text inside it
/// included (it is JSON in a string); `None` when nothing changed or the text is not JSON, in
/// which case `scrub_text` does it.
pub fn scrub_json_text(text: &str, replace: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if !text.contains('@') {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            let changed = scrub_json(&mut value, replace);
            changed.then(|| value.to_string())
        }
        Err(_) => scrub_text(text, replace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231's test cases 1, 2 and 6 (a key longer than the block).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(unhex("0b0b"), vec![0x0b, 0x0b]);
    }

    #[test]
    fn the_hash_is_keyed_and_of_the_normalized_address() {
        let key = ErasureKey::new("0123456789abcdef0123").unwrap();
        let other = ErasureKey::new("another key of 20 by").unwrap();
        let h = address_hash(&key, "Jane.Doe@Example.com");
        assert_eq!(h, address_hash(&key, " <jane.doe@example.com> "));
        assert_ne!(h, address_hash(&other, "jane.doe@example.com"));
        assert_eq!(h.len(), 64);
        // Not a bare hash: SHA-256 of the address is something else.
        assert_ne!(h, hex(&Sha256::digest(b"jane.doe@example.com")));
        assert_eq!(
            pseudonym(&h, "Jane.Doe@Example.com"),
            format!("erased.{}@example.com", &h[..24])
        );
        assert!(ErasureKey::new("short").is_err());
        assert_eq!(format!("{key:?}"), "ErasureKey(20 bytes)");
    }

    #[test]
    fn erased_addresses_are_replaced_wherever_they_are_written() {
        let key = ErasureKey::new("0123456789abcdef0123").unwrap();
        let erased = Erased::new(key.clone(), [address_hash(&key, "jane@example.com")]);
        let p = erased.replacement("JANE@example.com").unwrap();
        assert!(p.starts_with("erased.") && p.ends_with("@example.com"));
        assert_eq!(erased.replacement("john@example.com"), None);
        let replace = |a: &str| erased.replacement(a);
        assert_eq!(
            scrub_text(
                "smtp; 550 5.1.1 <Jane@Example.com>: user unknown. Mail jane@example.com.",
                &replace
            ),
            Some(format!("smtp; 550 5.1.1 <{p}>: user unknown. Mail {p}."))
        );
        assert_eq!(scrub_text("john@example.com said no", &replace), None);
        assert_eq!(scrub_text("no address @ all", &replace), None);
        let mut record = serde_json::json!({
            "mail": {"destination": ["Jane Doe <jane@example.com>", "john@example.com"],
                     "headers": [{"name": "To", "value": "jane@example.com, john@example.com"}]},
            "bounce": {"bouncedRecipients": [{"emailAddress": "jane@example.com"}]},
        });
        assert!(scrub_json(&mut record, &replace));
        let text = record.to_string();
        assert!(!text.to_lowercase().contains("jane@"), "{text}");
        assert!(text.contains("john@example.com"));
        // JSON in a string (SNS's Message) is scrubbed as a string: the address is found in it.
        let document =
            serde_json::json!({"Message": "{\"mail\":{\"destination\":[\"jane@example.com\"]}}"})
                .to_string();
        let scrubbed = scrub_json_text(&document, &replace).unwrap();
        assert!(!scrubbed.contains("jane@") && scrubbed.contains(&p));
        assert_eq!(
            scrub_json_text("not json jane@example.com", &replace),
            Some(format!("not json {p}"))
        );
    }
}

//! Keeps passwords out of every message the program prints.
//!
//! Connection URLs carry passwords. Each URL read from the environment registers its password
//! here, and the logger and the fatal-error printer pass all text through `scrub`, so a driver
//! error that quotes the URL still prints `***` in its place.

use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remembers the password of `url` (raw and percent-decoded) so that `scrub` hides it.
pub fn register_url(url: &str) {
    if let Some(password) = password_of(url) {
        let mut secrets = registry().lock().unwrap_or_else(|p| p.into_inner());
        for form in [password.to_string(), percent_decode(password)] {
            if !form.is_empty() && !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so that a password containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Remembers the path and query of `url` as a secret (a ping URL's token is its path), so that
/// `scrub` shows only the scheme and host.
pub fn register_url_path(url: &str) {
    let Some(scheme_end) = url.find("://") else {
        return;
    };
    let rest = &url[scheme_end + 3..];
    if let Some(slash) = rest.find('/') {
        let path = rest[slash..].trim_end_matches('/');
        if path.len() > 1 {
            let mut secrets = registry().lock().unwrap_or_else(|p| p.into_inner());
            // As given, decoded, and encoded the way an HTTP client writes it in its errors
            // (`/tökén` as `/t%C3%B6k%C3%A9n`).
            for form in [path.to_string(), percent_decode(path), percent_encode(path)] {
                if !secrets.contains(&form) {
                    secrets.push(form);
                }
            }
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// `text` with every registered password, and any `user:password@` in a URL, replaced by `***`.
pub fn scrub(text: &str) -> String {
    let mut out = redact_urls(text);
    let secrets = registry().lock().unwrap_or_else(|p| p.into_inner());
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// The URL with its password replaced by `***`, for messages that name a server.
pub fn url(url: &str) -> String {
    redact_urls(url)
}

/// The password part of `scheme://user:password@host...`, if any.
fn password_of(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let userinfo = &rest[..rest[..authority_end].rfind('@')?];
    let colon = userinfo.find(':')?;
    Some(&userinfo[colon + 1..])
}

fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// `text` with the bytes a URL's path and query may not hold as they are (controls, space,
/// `"<>`{}` and every non-ASCII byte) percent-encoded, as the `url` crate (and so ureq) writes them.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte <= b' ' || byte >= 0x7f || b"\"<>`{}".contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(byte as char);
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            url("mysql://app:s3cret@db:3306/x"),
            "mysql://app:***@db:3306/x"
        );
        assert_eq!(
            url("mongodb://u:p%40ss@h1,h2/?tls=true"),
            "mongodb://u:***@h1,h2/?tls=true"
        );
        assert_eq!(url("mysql://root@127.0.0.1/x"), "mysql://root@127.0.0.1/x");
        assert_eq!(
            scrub("error connecting to mysql://a:b@c/d: refused"),
            "error connecting to mysql://a:***@c/d: refused"
        );
    }

    #[test]
    fn registered_passwords_vanish_anywhere() {
        register_url("mysql://app:Pa%24%24word-7781@db/x");
        assert_eq!(
            scrub("Access denied, password Pa$$word-7781 rejected"),
            "Access denied, password *** rejected"
        );
        assert_eq!(scrub("raw Pa%24%24word-7781"), "raw ***");
    }

    #[test]
    fn a_ping_path_vanishes_raw_decoded_and_encoded() {
        register_url_path("https://ping.example/tökén-42 x");
        for form in ["/tökén-42 x", "/t%C3%B6k%C3%A9n-42%20x"] {
            assert_eq!(
                scrub(&format!("GET https://ping.example{form} failed")),
                "GET https://ping.example*** failed"
            );
        }
    }

    #[test]
    fn finds_the_password_part() {
        assert_eq!(password_of("mysql://u:p@h/d"), Some("p"));
        assert_eq!(password_of("mysql://u@h/d"), None);
        assert_eq!(password_of("mysql://h/d?x=a@b"), None);
    }
}

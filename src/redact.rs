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

/// What to tell an operator whose connection URL does not parse: generated passwords often hold
/// the characters a URL reserves.
pub const PERCENT_ENCODE: &str = "if the user name or password holds any of / # ? @ : % or a space, percent-encode it (/ as %2F, # as %23, ? as %3F, @ as %40, : as %3A, % as %25, space as %20)";

/// Secrets shorter than this are hidden by the URL's structure only: replaced wherever they
/// occur, a two-letter password would garble every word that holds those letters.
const SHORTEST_FREE_SECRET: usize = 4;

fn remember(forms: impl IntoIterator<Item = String>) {
    let mut secrets = registry().lock().unwrap_or_else(|p| p.into_inner());
    for form in forms {
        if form.len() >= SHORTEST_FREE_SECRET && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so that a password containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Remembers the password of `url` (as written, percent-decoded and percent-encoded) so that
/// `scrub` hides it wherever a driver quotes it.
pub fn register_url(url: &str) {
    if let Some(span) = password_span(url) {
        let password = &url[span];
        remember([
            password.to_string(),
            percent_decode(password),
            percent_encode_userinfo(&percent_decode(password)),
        ]);
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

/// Remembers a whole secret (the erasure key) so that `scrub` hides it wherever it appears.
pub fn register_secret(secret: &str) {
    remember([secret.to_string()]);
}

/// `text` with the password of every URL in it (by the URL's structure), and every registered
/// secret, replaced by `***`.
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
    match password_span(url) {
        Some(span) => format!("{}***{}", &url[..span.start], &url[span.end..]),
        None => url.to_string(),
    }
}

/// Where the password of `scheme://user:password@host...` lies in it, by the URL's structure:
/// everything between the first `:` after `://` and the last `@`, when the `url` crate finds a
/// password there or cannot parse the URL at all (a password with an unencoded `/`, `#`, `?`,
/// `@` or space makes it unparseable, or parse as something else). Never by looking for the
/// password's text.
fn password_span(url: &str) -> Option<std::ops::Range<usize>> {
    let authority = url.find("://")? + 3;
    if let Ok(parsed) = url::Url::parse(url) {
        // No password by the parse: none (an `@` in the path or query is no userinfo).
        parsed.password()?;
    }
    // From the first `:` of the userinfo to the LAST `@`: `mysql://u:p@ss/w#rd@h/d` parses as
    // password `p`, host `ss`, yet the user meant `p@ss/w#rd`. Masking up to the last `@` may
    // hide a query's `@` too, never a password's end.
    let rest = &url[authority..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(authority + colon + 1..authority + at)
}

/// Every URL in free text loses its password: a URL runs from its scheme to the next white
/// space or quote, and `password_span` finds the password in it.
fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` just before `://`.
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let end = rest[pos..]
            .find(|c: char| c.is_whitespace() || "\"'`<>".contains(c))
            .map_or(rest.len(), |i| pos + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `text` percent-encoded as a URL's userinfo must be (what a driver may print back).
fn percent_encode_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
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

    fn password_of(url: &str) -> Option<&str> {
        password_span(url).map(|span| &url[span])
    }

    #[test]
    fn finds_the_password_part() {
        assert_eq!(password_of("mysql://u:p@h/d"), Some("p"));
        assert_eq!(password_of("mysql://u@h/d"), None);
        assert_eq!(password_of("mysql://h/d?x=a@b"), None);
        // An `@` in the query is masked with the password, rather than risk showing its end.
        assert_eq!(password_of("mysql://u:p@h/d?x=a@b"), Some("p@h/d?x=a"));
        assert_eq!(
            password_of("mysql://u:ab/cdSecretXYZ@h:3306/d"),
            Some("ab/cdSecretXYZ")
        );
        assert_eq!(password_of("mysql://u:p@ss/w#rd@h/d"), Some("p@ss/w#rd"));
        assert_eq!(
            password_of("mongodb://u:p%40ss@h1:27017,h2:27017/?replicaSet=r"),
            Some("p%40ss")
        );
    }

    /// Passwords made of URL-special characters, written raw (an unparseable URL) or
    /// percent-encoded: no four characters of any of them survive, and the words around them
    /// are left alone.
    #[test]
    fn passwords_of_url_special_characters_never_show_four_characters() {
        for password in [
            "ab/cdSecretXYZ",
            "p@ss/w#rd",
            "Zx/#?@:Qv9%",
            "k:e:y@@h0st?",
            "a b/c?d#e@f:g",
        ] {
            let encoded = percent_encode_userinfo(password);
            for written in [password.to_string(), encoded.clone()] {
                let url = format!("mysql://ux_user:{written}@127.0.0.1:3306/ux_app");
                register_url(&url);
                let message = format!(
                    "{url} is not a valid MySQL URL; failed to lookup address, is the server up? ({url})"
                );
                for shown in [super::url(&url), scrub(&message)] {
                    for form in [password, encoded.as_str()] {
                        let chars: Vec<char> = form.chars().collect();
                        for window in chars.windows(4) {
                            let piece: String = window.iter().collect();
                            // Four characters that are also the URL's other parts prove nothing.
                            if "mysql://ux_user:@127.0.0.1:3306/ux_app".contains(&piece) {
                                continue;
                            }
                            assert!(
                                !shown.contains(&piece),
                                "{piece:?} of {password:?} in {shown}"
                            );
                        }
                    }
                    assert!(
                        shown.contains("ux_user:***@127.0.0.1:3306/ux_app"),
                        "{shown}"
                    );
                }
                let message = scrub(&message);
                assert!(
                    message.contains("failed to lookup address, is the server up?"),
                    "{message}"
                );
            }
        }
    }
}

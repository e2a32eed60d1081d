//! TLS to MySQL, configured in `SES_REPORT_MYSQL_URL` with the option names MySQL's own clients
//! use (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`; docs/compatibility.md, "TLS"). The mysql
//! crate's rustls support does the handshake; this file maps the modes onto it, takes our
//! options out of the URL before the crate reads it, and says what to fix when a handshake fails.

use std::path::PathBuf;

use mysql::{ClientIdentity, OptsBuilder, SslOpts};

/// How much TLS the connection insists on (MySQL's `--ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it (certificate not checked), plain TCP otherwise.
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS with a certificate signed by a trusted CA, for any host name.
    VerifyCa,
    /// TLS with a trusted certificate that names the host connected to.
    VerifyIdentity,
}

impl SslMode {
    pub const NAMES: &'static str = "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY";

    fn parse(text: &str) -> Option<SslMode> {
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => Some(SslMode::Disabled),
            "PREFERRED" => Some(SslMode::Preferred),
            "REQUIRED" => Some(SslMode::Required),
            "VERIFY_CA" => Some(SslMode::VerifyCa),
            "VERIFY_IDENTITY" => Some(SslMode::VerifyIdentity),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    /// Whether a connection without TLS is refused.
    pub fn requires_tls(self) -> bool {
        !matches!(self, SslMode::Disabled | SslMode::Preferred)
    }
}

/// The TLS options of a MySQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    /// PEM bundle of the CAs to trust (besides the bundled Mozilla roots).
    pub ca: Option<PathBuf>,
    /// Client certificate chain and key (PEM), for servers that ask for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            mode: SslMode::Preferred,
            ca: None,
            identity: None,
        }
    }
}

/// Our option names, with the underscore spelling MySQL's option files also accept.
fn option_of(key: &str) -> Option<&'static str> {
    match key.to_ascii_lowercase().replace('_', "-").as_str() {
        "ssl-mode" => Some("ssl-mode"),
        "ssl-ca" => Some("ssl-ca"),
        "ssl-cert" => Some("ssl-cert"),
        "ssl-key" => Some("ssl-key"),
        _ => None,
    }
}

/// Splits a MySQL URL into the URL the mysql crate reads (our options taken out, every other
/// character as written) and its TLS options. Without `ssl-mode`, the mode is `PREFERRED`, as
/// in MySQL's clients, unless `ssl-ca` is given: a CA to trust asks for verification, so
/// `VERIFY_IDENTITY`. The error says what is wrong, for `SES_REPORT_MYSQL_URL`.
pub fn split_url(url: &str) -> Result<(String, Tls), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Tls::default()));
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut kept = Vec::new();
    let (mut mode, mut ca, mut cert, mut key) = (None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(option) = option_of(name) else {
            kept.push(pair);
            continue;
        };
        let value = decode(value);
        if value.is_empty() {
            return Err(format!(
                "{option} is empty: give it a value or leave it out"
            ));
        }
        match option {
            "ssl-mode" => {
                mode = Some(SslMode::parse(&value).ok_or_else(|| {
                    format!("ssl-mode={value} is not a mode: use {}", SslMode::NAMES)
                })?)
            }
            "ssl-ca" => ca = Some(PathBuf::from(value)),
            "ssl-cert" => cert = Some(PathBuf::from(value)),
            _ => key = Some(PathBuf::from(value)),
        }
    }
    let identity = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("ssl-cert and ssl-key go together: give both or neither".into()),
    };
    let mode = mode.unwrap_or(if ca.is_some() {
        SslMode::VerifyIdentity
    } else {
        SslMode::Preferred
    });
    if mode == SslMode::Disabled && (ca.is_some() || identity.is_some()) {
        return Err(
            "ssl-mode=DISABLED with ssl-ca, ssl-cert or ssl-key: drop those, or choose a mode that uses TLS"
                .into(),
        );
    }
    let mut rest = base.to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        rest.push('#');
        rest.push_str(f);
    }
    Ok((rest, Tls { mode, ca, identity }))
}

/// A query value with its percent-escapes and `+` decoded (a path may hold either).
fn decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    url::form_urlencoded::parse(format!("v={}", spaced.replace(' ', "%20")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or(spaced)
}

impl Tls {
    /// The crate's options for this mode; `None` for a plain connection.
    pub fn ssl_opts(&self) -> Option<SslOpts> {
        let verify_chain = matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyIdentity);
        let opts = match self.mode {
            SslMode::Disabled => return None,
            _ => SslOpts::default()
                .with_danger_accept_invalid_certs(!verify_chain)
                .with_danger_skip_domain_validation(self.mode != SslMode::VerifyIdentity),
        };
        let opts = match &self.ca {
            Some(ca) => opts.with_root_cert_path(Some(ca.clone())),
            None => opts,
        };
        Some(match &self.identity {
            Some((cert, key)) => {
                opts.with_client_identity(Some(ClientIdentity::new(cert.clone(), key.clone())))
            }
            None => opts,
        })
    }

    /// The files the options name, by option.
    pub fn files(&self) -> Vec<(&'static str, &std::path::Path)> {
        let mut files = Vec::new();
        if let Some(ca) = &self.ca {
            files.push(("ssl-ca", ca.as_path()));
        }
        if let Some((cert, key)) = &self.identity {
            files.push(("ssl-cert", cert.as_path()));
            files.push(("ssl-key", key.as_path()));
        }
        files
    }

    /// `builder` set up for this mode. A mode that requires TLS never moves to the server's
    /// Unix socket (the crate does that for a loopback host by default, and a socket carries no
    /// TLS).
    pub fn apply(&self, builder: OptsBuilder) -> OptsBuilder {
        let builder = builder.ssl_opts(self.ssl_opts());
        if self.mode.requires_tls() {
            builder.prefer_socket(false)
        } else {
            builder
        }
    }

    /// A connection under `PREFERRED` to a server without TLS is made again in plain TCP.
    pub fn falls_back(&self, e: &mysql::Error) -> bool {
        self.mode == SslMode::Preferred
            && matches!(
                e,
                mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)
            )
    }

    /// What to fix when a connection under these options failed, if TLS is the likely cause.
    pub fn hint(&self, e: &mysql::Error) -> Option<String> {
        let var = "SES_REPORT_MYSQL_URL";
        let text = crate::error::mysql_plain(e);
        if matches!(
            e,
            mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)
        ) {
            return Some(format!(
                "the server offers no TLS but ssl-mode={} requires it: enable TLS on the server, or set ssl-mode=PREFERRED in {var} if plain TCP is acceptable on this network",
                self.mode.name()
            ));
        }
        let tls_only = format!(
            "set ssl-mode=VERIFY_IDENTITY in {var} (and ssl-ca=PATH to the server's CA bundle if a private CA signed its certificate)"
        );
        // MySQL refuses plain TCP under require_secure_transport with ER_SECURE_TRANSPORT_REQUIRED
        // 3159; MariaDB with 1045 "Access denied", as for a wrong password.
        if matches!(e, mysql::Error::MySqlError(s) if s.code == 3159) {
            return Some(format!(
                "the server accepts TLS connections only: {tls_only}"
            ));
        }
        if self.mode == SslMode::Disabled
            && matches!(e, mysql::Error::MySqlError(s) if s.code == 1045)
        {
            return Some(format!(
                "check the user name and password in {var} (percent-encode special characters); or the server accepts TLS connections only (MariaDB refuses plain ones with this same error): {tls_only} instead of ssl-mode=DISABLED"
            ));
        }
        if self.mode != SslMode::Disabled
            && self.identity.is_none()
            && matches!(e, mysql::Error::MySqlError(s) if s.code == 1045)
        {
            return Some(format!(
                "check the user name and password in {var} (percent-encode special characters); if the account requires a client certificate (REQUIRE X509), set ssl-cert=PATH and ssl-key=PATH"
            ));
        }
        // rustls's words for a refused certificate (its CertificateError, Display or Debug).
        let said = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if said(&["UnsupportedCertVersion"]) {
            return Some(format!(
                "the server's certificate is X.509 version 1 (what `openssl x509 -req` makes without -extfile, as in MySQL's own recipe), which rustls cannot verify: reissue it as version 3 with a subjectAltName (docs/compatibility.md, \"TLS to MySQL\"), or set ssl-mode=REQUIRED in {var} to encrypt without checking"
            ));
        }
        if said(&["not valid for any names"]) {
            return Some(format!(
                "the server's certificate names no host in a subjectAltName (rustls, like browsers, ignores the subject's CN): reissue it with subjectAltName=DNS:<host>, or set ssl-mode=VERIFY_CA in {var} to check the CA only"
            ));
        }
        if said(&["UnknownIssuer", "BadSignature", "unknown issuer"]) {
            return Some(format!(
                "the server's certificate is not signed by a CA this job trusts: set ssl-ca=PATH in {var} to the PEM bundle of the CA that signed it (the provider publishes it), or ssl-mode=REQUIRED to encrypt without checking"
            ));
        }
        if said(&["NotValidForName", "not valid for name"]) {
            return Some(format!(
                "the server's certificate does not name the host in {var}: connect by a name the certificate holds, or set ssl-mode=VERIFY_CA to check the CA only"
            ));
        }
        if said(&[
            "Expired",
            "certificate expired",
            "NotValidYet",
            "not valid yet",
        ]) {
            return Some(
                "the server's certificate is outside its validity dates: renew it, or check this machine's clock"
                    .into(),
            );
        }
        if said(&["CertificateRequired", "certificate required"]) {
            return Some(format!(
                "the server asks for a client certificate: set ssl-cert=PATH and ssl-key=PATH in {var}"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_options_leave_the_url_and_the_rest_stays_as_written() {
        let (rest, tls) = split_url(
            "mysql://u:p%40ss@db.example:3306/rep?ssl-mode=verify_identity&ssl-ca=%2Fetc%2Frds.pem&tcp_nodelay=true",
        )
        .unwrap();
        assert_eq!(
            rest,
            "mysql://u:p%40ss@db.example:3306/rep?tcp_nodelay=true"
        );
        assert_eq!(tls.mode, SslMode::VerifyIdentity);
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/rds.pem")));
        assert_eq!(tls.identity, None);
        let (rest, tls) = split_url("mysql://u@h/d?ssl_mode=DISABLED").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("mysql://u@h/d", SslMode::Disabled)
        );
    }

    #[test]
    fn preferred_by_default_and_verified_once_a_ca_is_named() {
        assert_eq!(split_url("mysql://u@h/d").unwrap().1, Tls::default());
        assert_eq!(Tls::default().mode, SslMode::Preferred);
        let (_, tls) = split_url("mysql://u@h/d?ssl-ca=/ca.pem").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyIdentity);
        let (_, tls) = split_url("mysql://u@h/d?ssl-ca=/ca.pem&ssl-mode=VERIFY_CA").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyCa);
    }

    #[test]
    fn wrong_options_say_what_to_write() {
        let e = split_url("mysql://u@h/d?ssl-mode=ON").unwrap_err();
        assert!(
            e.contains("ssl-mode=ON") && e.contains("VERIFY_IDENTITY"),
            "{e}"
        );
        let e = split_url("mysql://u@h/d?ssl-cert=/c.pem").unwrap_err();
        assert!(e.contains("ssl-key"), "{e}");
        let e = split_url("mysql://u@h/d?ssl-ca=").unwrap_err();
        assert!(e.contains("ssl-ca is empty"), "{e}");
        let e = split_url("mysql://u@h/d?ssl-mode=DISABLED&ssl-ca=/ca.pem").unwrap_err();
        assert!(e.contains("DISABLED"), "{e}");
    }

    #[test]
    fn each_mode_checks_what_its_name_says() {
        let tls = |mode| Tls {
            mode,
            ..Tls::default()
        };
        assert!(tls(SslMode::Disabled).ssl_opts().is_none());
        for (mode, chain, name) in [
            (SslMode::Preferred, false, false),
            (SslMode::Required, false, false),
            (SslMode::VerifyCa, true, false),
            (SslMode::VerifyIdentity, true, true),
        ] {
            let opts = tls(mode).ssl_opts().unwrap();
            assert_eq!(opts.accept_invalid_certs(), !chain, "{mode:?}");
            assert_eq!(opts.skip_domain_validation(), !name, "{mode:?}");
        }
        assert!(SslMode::Required.requires_tls() && !SslMode::Preferred.requires_tls());
    }
}

//! Email settings: the SMTP relay, the sender, reminders, staff addresses.
//!
//! `KEYDROP_SMTP_URL` is `smtp://[user[:password]@]host[:587]` (STARTTLS
//! required), `smtps://host[:465]` (TLS from the first byte), or
//! `smtp://host:25?tls=none` (no TLS, only when said). Unset: no email; the
//! features that need it say so instead of failing.

use crate::domain::Email;
use lettre::message::Mailbox;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: plain connect, then STARTTLS, which must succeed.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
    /// `smtp://…?tls=none`: no encryption at all.
    None,
}

impl Security {
    /// As the start-up log says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::StartTls => "STARTTLS required",
            Self::Tls => "TLS",
            Self::None => "no TLS (tls=none)",
        }
    }
}

/// Where and how to hand mail to the relay. `Debug` never shows the password.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// Extra trusted root certificate (PEM) for a relay with a private CA
    /// (`KEYDROP_SMTP_CA_FILE`).
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Everything the mail worker and the link service need to know.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `None`: email is off.
    pub smtp: Option<Smtp>,
    pub from: Option<Mailbox>,
    /// How long before expiry an unused link is reminded (`None`: never).
    pub reminder_before: Option<Duration>,
    /// Staff told of submissions and failed checks.
    pub notify: Vec<Email>,
    /// Base of console links in staff emails (`KEYDROP_INTERNAL_URL`).
    pub console_url: Option<Url>,
    pub poll: Duration,
    /// How often links are looked at for a due reminder.
    pub reminder_scan: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Give up on a message this long after it was queued.
    pub retry_window: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp: None,
            from: None,
            reminder_before: Some(Duration::from_secs(48 * 3600)),
            notify: Vec::new(),
            console_url: None,
            poll: Duration::from_secs(2),
            reminder_scan: Duration::from_secs(60),
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(3600),
            retry_window: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl MailConfig {
    /// Whether email can be sent at all.
    pub fn enabled(&self) -> bool {
        self.smtp.is_some() && self.from.is_some()
    }
}

/// Reads the email variables through `env` (see the module docs).
/// `console_url` is `KEYDROP_INTERNAL_URL`, for links in staff notes.
pub fn from_lookup(
    env: &dyn Fn(&str) -> Option<String>,
    console_url: Option<Url>,
) -> Result<MailConfig, String> {
    let read = |var: &str| -> Result<Option<Vec<u8>>, String> {
        env(var)
            .map(|path| {
                std::fs::read(&path).map_err(|e| format!("{var}={path:?} cannot be read: {e}"))
            })
            .transpose()
    };
    let password = read("KEYDROP_SMTP_PASSWORD_FILE")?
        .map(|b| {
            String::from_utf8(b)
                .map_err(|_| "KEYDROP_SMTP_PASSWORD_FILE is not UTF-8 text".to_owned())
        })
        .transpose()?;
    let ca_pem = read("KEYDROP_SMTP_CA_FILE")?;
    if let Some(pem) = &ca_pem {
        lettre::transport::smtp::client::Certificate::from_pem(pem)
            .map_err(|e| format!("KEYDROP_SMTP_CA_FILE is not a PEM certificate: {e}"))?;
    }
    let smtp = env("KEYDROP_SMTP_URL")
        .map(|u| parse_smtp(&u, password, ca_pem))
        .transpose()?;
    let from = env("KEYDROP_MAIL_FROM")
        .map(|f| parse_from(&f))
        .transpose()?;
    if smtp.is_some() && from.is_none() {
        return Err("KEYDROP_MAIL_FROM is not set: emails need a sender, e.g. \"Acme Data <keys@acme.example>\"".into());
    }
    let reminder_before = match env("KEYDROP_REMINDER_BEFORE").as_deref().map(str::trim) {
        None => MailConfig::default().reminder_before,
        Some(v) if v.eq_ignore_ascii_case("off") => None,
        Some(v) => Some(
            crate::domain::HumanDuration::parse(v)
                .map_err(|e| format!("KEYDROP_REMINDER_BEFORE: {e} (or off)"))?
                .as_std(),
        ),
    };
    let notify = env("KEYDROP_NOTIFY_EMAIL")
        .map(|v| parse_notify(&v))
        .transpose()?
        .unwrap_or_default();
    Ok(MailConfig {
        smtp,
        from,
        reminder_before,
        notify,
        console_url,
        ..MailConfig::default()
    })
}

/// Parses `KEYDROP_SMTP_URL`; `password_file` is the contents of
/// `KEYDROP_SMTP_PASSWORD_FILE`. Messages name the variable, never the password.
pub fn parse_smtp(
    raw: &str,
    password_file: Option<String>,
    ca_pem: Option<Vec<u8>>,
) -> Result<Smtp, String> {
    const VAR: &str = "KEYDROP_SMTP_URL";
    let url = Url::parse(raw.trim()).map_err(|_| {
        format!("{VAR} is not a URL: use smtp://host:587 (STARTTLS), smtps://host:465 or smtp://host:25?tls=none")
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{VAR} has no host"))?
        .trim_matches(['[', ']'])
        .to_owned();
    let mut tls_none = false;
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("tls", "none") => tls_none = true,
            ("tls", "required" | "starttls") => {}
            _ => {
                return Err(format!(
                    "{VAR}: unknown option {k}={v}; the only option is tls=none"
                ))
            }
        }
    }
    let security = match (url.scheme(), tls_none) {
        ("smtp", false) => Security::StartTls,
        ("smtp", true) => Security::None,
        ("smtps", false) => Security::Tls,
        ("smtps", true) => return Err(format!("{VAR}: smtps:// always uses TLS; drop tls=none")),
        (other, _) => {
            return Err(format!(
                "{VAR}: the scheme must be smtp or smtps, not {other:?}"
            ))
        }
    };
    let port = url.port().unwrap_or(match security {
        Security::Tls => 465,
        _ => 587,
    });
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| format!("{VAR}: the user or password is not valid UTF-8 after %-decoding"))
    };
    let user = Some(url.username())
        .filter(|u| !u.is_empty())
        .map(decode)
        .transpose()?;
    let in_url = url.password().map(decode).transpose()?;
    let from_file = password_file.map(|p| p.trim_end_matches(['\r', '\n']).to_owned());
    if in_url.is_some() && from_file.is_some() {
        return Err(format!(
            "{VAR} has a password and KEYDROP_SMTP_PASSWORD_FILE is set too: give only one"
        ));
    }
    let password = in_url.or(from_file);
    if password.is_some() && user.is_none() {
        return Err(format!(
            "{VAR} needs a user name (smtp://user@host) when a password is given"
        ));
    }
    if ca_pem.is_some() && security == Security::None {
        return Err("KEYDROP_SMTP_CA_FILE is set but KEYDROP_SMTP_URL has tls=none".into());
    }
    Ok(Smtp {
        host,
        port,
        security,
        user,
        password: password.map(SecretString::from),
        ca_pem,
        timeout: Duration::from_secs(30),
    })
}

/// Parses `KEYDROP_MAIL_FROM` (`"Acme Data <keys@acme.example>"` or a bare address).
pub fn parse_from(raw: &str) -> Result<Mailbox, String> {
    if raw.contains(['\r', '\n']) {
        return Err("KEYDROP_MAIL_FROM must be one line".into());
    }
    raw.trim().parse::<Mailbox>().map_err(|e| {
        format!("KEYDROP_MAIL_FROM={raw:?} is not an address like \"Acme Data <keys@acme.example>\" ({e})")
    })
}

/// Parses `KEYDROP_NOTIFY_EMAIL`: one or more addresses, comma-separated.
pub fn parse_notify(raw: &str) -> Result<Vec<Email>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|a| Email::parse(a).map_err(|e| format!("KEYDROP_NOTIFY_EMAIL: {a:?}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn smtp_urls_choose_starttls_tls_or_none_explicitly() {
        let s = parse_smtp("smtp://relay.example", None, None).unwrap();
        assert_eq!((s.port, s.security), (587, Security::StartTls));
        let s = parse_smtp("smtps://relay.example", None, None).unwrap();
        assert_eq!((s.port, s.security), (465, Security::Tls));
        let s = parse_smtp("smtp://relay.example:25?tls=none", None, None).unwrap();
        assert_eq!((s.port, s.security), (25, Security::None));
        assert!(parse_smtp("http://relay.example", None, None).is_err());
        assert!(parse_smtp("smtp://relay.example?tls=maybe", None, None).is_err());
    }

    #[test]
    fn the_password_comes_from_the_url_or_the_file_and_never_shows_in_debug() {
        let s = parse_smtp("smtp://u%40x:p%2Fw@relay.example", None, None).unwrap();
        assert_eq!(s.user.as_deref(), Some("u@x"));
        assert_eq!(s.password.as_ref().unwrap().expose_secret(), "p/w");
        assert!(!format!("{s:?}").contains("p/w"));
        let s = parse_smtp("smtp://u@relay.example", Some("filepw\n".into()), None).unwrap();
        assert_eq!(s.password.as_ref().unwrap().expose_secret(), "filepw");
        let e = parse_smtp("smtp://u:pw@relay.example", Some("x".into()), None).unwrap_err();
        assert!(e.contains("KEYDROP_SMTP_PASSWORD_FILE") && !e.contains("pw@"));
        assert!(parse_smtp("smtp://relay.example", Some("x".into()), None).is_err());
    }

    #[test]
    fn sender_and_staff_addresses_are_checked() {
        assert_eq!(
            parse_from("Acme Data <keys@acme.example>")
                .unwrap()
                .email
                .to_string(),
            "keys@acme.example"
        );
        assert!(parse_from("keys@acme.example\r\nBcc: x@y.example").is_err());
        assert!(parse_from("not an address").is_err());
        assert_eq!(parse_notify("a@x.example, b@x.example").unwrap().len(), 2);
        assert!(parse_notify("a@x.example, nope")
            .unwrap_err()
            .contains("nope"));
    }
}

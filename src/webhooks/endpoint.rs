//! Webhook endpoints and Standard Webhooks signing.
//!
//! `KEYDROP_WEBHOOK_URL` lists one or more URLs, comma-separated.
//! `KEYDROP_WEBHOOK_SECRET` is one `whsec_<base64>` secret for all of them, or
//! one per URL in the same order. `KEYDROP_WEBHOOK_FORMAT` is `standard`
//! (default) or `slack`, once for all or once per URL. A Slack incoming webhook
//! gets `{"text": …}` and needs no secret (its URL is the secret).
//!
//! Because a URL can be a credential, the outbox never stores it: a delivery
//! names its endpoint by [`Endpoint::stored_id`], an HMAC of the URL under a
//! key derived from the active KEK (`h1:<hex>`). The worker recognises ids
//! made under any KEK in the ring (so a rotation loses no pending delivery)
//! and the unkeyed `sha256:<hex>` the migration left for rows written before.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::hmac;
use std::time::Duration;
use url::Url;

/// How a body is shaped for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The JSON payload, signed per the Standard Webhooks spec.
    Standard,
    /// A Slack incoming-webhook message: `{"text": "…"}`.
    Slack,
}

/// One receiver. `Debug` shows only the URL's origin: URLs such as Slack's carry a secret.
#[derive(Clone)]
pub struct Endpoint {
    pub url: Url,
    pub format: Format,
    key: Option<hmac::Key>,
    /// What the outbox stores for this endpoint: the id under the active KEK
    /// first, then under the ring's other KEKs, then the legacy unkeyed form.
    ids: Vec<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("origin", &self.origin())
            .field("format", &self.format)
            .field("signed", &self.key.is_some())
            .finish()
    }
}

impl Endpoint {
    /// How `webhook_deliveries.endpoint` names this endpoint (never the URL).
    pub fn stored_id(&self) -> String {
        self.ids
            .first()
            .cloned()
            .unwrap_or_else(|| legacy_id(&self.url))
    }

    /// Every stored id that names this endpoint (under any KEK of the ring,
    /// and the legacy form): deliveries under any of them are this endpoint's.
    pub fn stored_ids(&self) -> Vec<String> {
        let mut all = self.ids.clone();
        all.push(legacy_id(&self.url));
        all
    }

    /// Whether a stored id names this endpoint.
    pub fn is(&self, stored: &str) -> bool {
        self.ids.iter().any(|id| id == stored) || legacy_id(&self.url) == stored
    }

    /// `scheme://host:port`: safe to log.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The `webhook-signature` value: `v1,<base64 HMAC-SHA256 over "id.timestamp.body">`.
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        Some(format!("v1,{}", B64.encode(ctx.sign().as_ref())))
    }
}

/// Webhook settings. Empty `endpoints` turns delivery off.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub endpoints: Vec<Endpoint>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Delay after the first failed attempt; doubles each time up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Give up on a message this long after it was written.
    pub retry_window: Duration,
    /// How often the worker looks for due deliveries.
    pub poll: Duration,
    /// How often expired links are looked for (`link.expired`).
    pub expiry_scan: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(3600),
            retry_window: Duration::from_secs(3 * 24 * 3600),
            poll: Duration::from_secs(1),
            expiry_scan: Duration::from_secs(60),
        }
    }
}

impl WebhookConfig {
    /// Parses the raw values of `KEYDROP_WEBHOOK_URL`, `_SECRET` and `_FORMAT`.
    /// Errors name the variable and never echo a secret.
    pub fn parse(
        urls: Option<&str>,
        secrets: Option<&str>,
        formats: Option<&str>,
    ) -> Result<Self, String> {
        let list = |s: Option<&str>| -> Vec<String> {
            s.unwrap_or("")
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        };
        let urls = list(urls);
        let secrets = list(secrets);
        let formats = list(formats);
        if urls.is_empty() {
            if !secrets.is_empty() {
                return Err("KEYDROP_WEBHOOK_SECRET is set but KEYDROP_WEBHOOK_URL is not".into());
            }
            if !formats.is_empty() {
                return Err("KEYDROP_WEBHOOK_FORMAT is set but KEYDROP_WEBHOOK_URL is not".into());
            }
            return Ok(Self::default());
        }
        let pick = |v: &[String], i: usize, name: &str| -> Result<Option<String>, String> {
            match v.len() {
                0 => Ok(None),
                1 => Ok(Some(v[0].clone())),
                n if n == urls.len() => Ok(Some(v[i].clone())),
                n => Err(format!(
                    "{name} has {n} values for {} URLs: give one for all, or one per URL",
                    urls.len()
                )),
            }
        };
        let mut endpoints = Vec::with_capacity(urls.len());
        for (i, raw) in urls.iter().enumerate() {
            let url = Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    format!("KEYDROP_WEBHOOK_URL entry {} is not an http(s) URL", i + 1)
                })?;
            let format = match pick(&formats, i, "KEYDROP_WEBHOOK_FORMAT")?.as_deref() {
                None | Some("standard") => Format::Standard,
                Some("slack") => Format::Slack,
                Some(other) => {
                    return Err(format!(
                        "KEYDROP_WEBHOOK_FORMAT {other:?}: use standard or slack"
                    ))
                }
            };
            let key = match pick(&secrets, i, "KEYDROP_WEBHOOK_SECRET")? {
                Some(s) => Some(parse_secret(&s).map_err(|e| {
                    format!("KEYDROP_WEBHOOK_SECRET (for URL {}): {e}", i + 1)
                })?),
                None if format == Format::Slack => None,
                None => {
                    return Err(format!(
                        "KEYDROP_WEBHOOK_SECRET is required for KEYDROP_WEBHOOK_URL entry {} (make one with: echo whsec_$(openssl rand -base64 32))",
                        i + 1
                    ))
                }
            };
            endpoints.push(Endpoint {
                url,
                format,
                key,
                ids: Vec::new(),
            });
        }
        Ok(Self {
            endpoints,
            ..Self::default()
        })
    }

    /// The configured endpoint a stored id names.
    pub fn endpoint(&self, stored: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.is(stored))
    }

    /// Names each endpoint by keyed hashes under the ring's KEKs (active first).
    pub fn keyed(mut self, ring: &crate::crypto::Keyring) -> Self {
        for e in &mut self.endpoints {
            e.ids = std::iter::once(ring.active())
                .chain(ring.iter().filter(|k| k.id() != ring.active().id()))
                .map(|kek| keyed_id(&kek.derive_hmac_key(ENDPOINT_ID_PURPOSE), &e.url))
                .collect();
        }
        self
    }
}

/// HKDF purpose of the key that names endpoints in the outbox.
const ENDPOINT_ID_PURPOSE: &str = "keydrop webhook endpoint id v1";

fn keyed_id(key: &hmac::Key, url: &Url) -> String {
    let tag = hmac::sign(key, url.as_str().as_bytes());
    format!("h1:{}", hex(&tag.as_ref()[..16]))
}

/// The unkeyed form the migration gave rows written before ids were keyed.
fn legacy_id(url: &Url) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, url.as_str().as_bytes());
    format!("sha256:{}", hex(d.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `whsec_<base64>` (the prefix is optional), 24 to 64 bytes of key.
fn parse_secret(s: &str) -> Result<hmac::Key, String> {
    let b64 = s.strip_prefix("whsec_").unwrap_or(s);
    let bytes = zeroize::Zeroizing::new(
        B64.decode(b64)
            .map_err(|_| "not whsec_ followed by base64".to_owned())?,
    );
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!(
            "the key is {} bytes; use 24 to 64 random bytes",
            bytes.len()
        ));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example from the Standard Webhooks spec and its reference libraries.
        let c = WebhookConfig::parse(Some("https://example.com/hook"), Some(SECRET), None).unwrap();
        let sig = c.endpoints[0].signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn several_endpoints_with_one_or_many_secrets_and_formats() {
        let one = WebhookConfig::parse(
            Some("https://a.example/x, https://b.example/y"),
            Some(SECRET),
            None,
        )
        .unwrap();
        assert_eq!(one.endpoints.len(), 2);
        assert!(one.endpoints.iter().all(|e| e.key.is_some()));
        let mixed = WebhookConfig::parse(
            Some("https://a.example/x,https://hooks.slack.com/services/T/B/C"),
            Some(SECRET),
            Some("standard,slack"),
        )
        .unwrap();
        assert_eq!(mixed.endpoints[1].format, Format::Slack);
        let slack_only = WebhookConfig::parse(
            Some("https://hooks.slack.com/services/T/B/C"),
            None,
            Some("slack"),
        )
        .unwrap();
        assert!(slack_only.endpoints[0].signature("m", 1, b"").is_none());
        assert!(WebhookConfig::parse(None, None, None)
            .unwrap()
            .endpoints
            .is_empty());
    }

    #[test]
    fn bad_settings_name_the_variable_and_hide_the_secret() {
        let e = WebhookConfig::parse(Some("https://a.example"), None, None).unwrap_err();
        assert!(e.contains("KEYDROP_WEBHOOK_SECRET"), "{e}");
        let e = WebhookConfig::parse(Some("https://a.example"), Some("whsec_c2hvcnQ="), None)
            .unwrap_err();
        assert!(e.contains("bytes") && !e.contains("c2hvcnQ"), "{e}");
        let e = WebhookConfig::parse(Some("ftp://a.example"), Some(SECRET), None).unwrap_err();
        assert!(e.contains("KEYDROP_WEBHOOK_URL"), "{e}");
        let e = WebhookConfig::parse(
            Some("https://a.example,https://b.example,https://c.example"),
            Some(&format!("{SECRET},{SECRET}")),
            None,
        )
        .unwrap_err();
        assert!(e.contains("2 values for 3 URLs"), "{e}");
        let e = WebhookConfig::parse(None, Some(SECRET), None).unwrap_err();
        assert!(e.contains("KEYDROP_WEBHOOK_URL"), "{e}");
    }

    #[test]
    fn debug_shows_no_path_or_key() {
        let c = WebhookConfig::parse(
            Some("https://hooks.slack.com/services/T0/B0/SECRETPATH"),
            Some(SECRET),
            None,
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("SECRETPATH") && !d.contains("MfKQ9r8"), "{d}");
    }
}

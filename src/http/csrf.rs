//! CSRF protection for the drop form: a signed double-submit token.
//!
//! The cookie holds a random nonce (SameSite=Strict, HttpOnly). The form holds
//! HMAC(key, link id ‖ nonce), with the key derived from the active KEK so every
//! replica agrees without shared state. A forged form needs the victim's
//! cookie *and* the server key. On top, a POST whose `Origin` names another
//! site, or whose `Sec-Fetch-Site` says cross-site, is refused.
//!
//! Note: with `Referrer-Policy: no-referrer`, browsers send `Origin: null` on
//! same-origin form posts, so `null` cannot be refused by itself; the signed
//! token and `Sec-Fetch-Site` carry the check in that case.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

/// Server-side CSRF signing key.
pub struct CsrfKey {
    key: hmac::Key,
    cookie_name: &'static str,
    secure: bool,
}

impl CsrfKey {
    pub fn new(key: hmac::Key, secure: bool) -> Self {
        // `__Host-` pins the cookie to our host and path `/`, but needs Secure (https).
        let cookie_name = if secure {
            "__Host-keydrop_csrf"
        } else {
            "keydrop_csrf"
        };
        Self {
            key,
            cookie_name,
            secure,
        }
    }

    /// The browser's form cookie, when it has a well-formed one. The one
    /// place the `Cookie` header is read: a handler reads it once and passes
    /// the [`Nonce`] to every check of the request.
    pub fn cookie(&self, headers: &HeaderMap) -> Option<Nonce> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == self.cookie_name)
            .map(|(_, v)| v)
            .filter(|v| {
                v.len() == 43
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .map(|v| Nonce(v.to_owned()))
    }

    /// The token to embed in the form for this link and nonce.
    pub fn token(&self, link_id: Uuid, nonce: &Nonce) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &message(link_id, &nonce.0)).as_ref())
    }

    /// Checks a submitted token against the cookie's nonce, in constant time,
    /// and answers the nonce it verified. [`MISSING_COOKIE`] means the
    /// browser sent no cookie at all (cookies blocked, or the page open
    /// longer than the cookie lives).
    pub fn verify<'n>(
        &self,
        nonce: Option<&'n Nonce>,
        link_id: Uuid,
        submitted: Option<&str>,
    ) -> Result<&'n Nonce, &'static str> {
        let nonce = nonce.ok_or(MISSING_COOKIE)?;
        let tag = submitted
            .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
            .ok_or("missing or malformed token")?;
        hmac::verify(&self.key, &message(link_id, &nonce.0), &tag)
            .map_err(|_| "token does not match")?;
        Ok(nonce)
    }
}

/// The random value in the browser's form cookie, which the form's token and
/// submission id are bound to. Read once per request ([`CsrfKey::cookie`]);
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// A new random nonce, for a browser that has none yet (sent back in the
    /// cookie by `CsrfKey::renew`).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("system random number generator");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// SHA-256 of the nonce: what a receipt is bound to.
    pub fn browser_hash(&self) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes())
            .as_ref()
            .to_vec()
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonce([redacted])")
    }
}

/// [`CsrfKey::verify`]'s answer when the request carried no CSRF cookie.
pub const MISSING_COOKIE: &str = "missing cookie";

/// A verified submission id from the drop form: one per served form, bound to
/// the link and the browser's nonce like the CSRF token, carrying the time the
/// form was served (for the expiry grace period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionId {
    /// The id as stored (`secrets.submission_id`): random, unique per form.
    pub id: String,
    pub served_at: DateTime<Utc>,
}

impl CsrfKey {
    /// A fresh submission id for a form served now: `payload.tag`, where the
    /// payload is the serving time and 16 random bytes.
    pub fn submission_id(&self, link_id: Uuid, nonce: &Nonce, served_at: DateTime<Utc>) -> String {
        let mut payload = served_at.timestamp().to_be_bytes().to_vec();
        let mut random = [0u8; 16];
        SystemRandom::new()
            .fill(&mut random)
            .expect("system random number generator");
        payload.extend_from_slice(&random);
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let tag = hmac::sign(&self.key, &submission_message(link_id, &nonce.0, &payload));
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks a submitted id against the cookie's nonce and the link; `None`
    /// when it is absent, malformed or forged.
    pub fn verify_submission_id(
        &self,
        nonce: &Nonce,
        link_id: Uuid,
        submitted: Option<&str>,
    ) -> Option<SubmissionId> {
        let (payload, tag) = submitted?.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(
            &self.key,
            &submission_message(link_id, &nonce.0, payload),
            &tag,
        )
        .ok()?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let secs = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        Some(SubmissionId {
            id: payload.to_owned(),
            served_at: DateTime::from_timestamp(secs, 0)?,
        })
    }

    /// `Set-Cookie` renewing `nonce` for at least `max_age` (never less than a
    /// day), so the cookie outlives the link and its grace period.
    pub fn renew(&self, nonce: &Nonce, max_age: chrono::Duration) -> HeaderValue {
        let secs = max_age.num_seconds().max(86_400);
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={secs}{}",
            self.cookie_name,
            nonce.0,
            if self.secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&cookie).expect("cookie is ASCII")
    }
}

fn submission_message(link_id: Uuid, nonce: &str, payload: &str) -> Vec<u8> {
    let mut m = b"keydrop-submission-v1\0".to_vec();
    m.extend_from_slice(link_id.as_bytes());
    m.extend_from_slice(nonce.as_bytes());
    m.push(0);
    m.extend_from_slice(payload.as_bytes());
    m
}

fn message(link_id: Uuid, nonce: &str) -> Vec<u8> {
    let mut m = b"keydrop-csrf-v1\0".to_vec();
    m.extend_from_slice(link_id.as_bytes());
    m.extend_from_slice(nonce.as_bytes());
    m
}

/// Refuses requests that a browser marks as coming from another site.
pub fn check_origin(headers: &HeaderMap, our_origin: &str) -> Result<(), &'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("invalid");
        if origin != "null" && origin != our_origin {
            return Err("cross-origin request");
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err("cross-site request");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CsrfKey {
        CsrfKey::new(hmac::Key::new(hmac::HMAC_SHA256, &[b; 32]), false)
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; keydrop_csrf={value}")).unwrap(),
        );
        h
    }

    /// The nonce as the browser sends it back.
    fn cookie_of(k: &CsrfKey, nonce: &Nonce) -> Option<Nonce> {
        k.cookie(&with_cookie(&nonce.0))
    }

    #[test]
    fn a_token_verifies_only_with_its_cookie_link_and_key() {
        let k = key(1);
        let nonce = Nonce::generate();
        let set = k.renew(&nonce, chrono::Duration::hours(1));
        assert!(set.to_str().unwrap().contains("SameSite=Strict"));
        let link = Uuid::new_v4();
        let token = k.token(link, &nonce);
        let sent = cookie_of(&k, &nonce);
        assert_eq!(sent.as_ref(), Some(&nonce));
        assert!(k.verify(sent.as_ref(), link, Some(&token)).is_ok());
        assert!(k
            .verify(sent.as_ref(), Uuid::new_v4(), Some(&token))
            .is_err());
        assert!(key(2).verify(sent.as_ref(), link, Some(&token)).is_err());
        assert_eq!(k.verify(None, link, Some(&token)), Err(MISSING_COOKIE));
        assert!(k.verify(sent.as_ref(), link, None).is_err());
        let other = Nonce::generate();
        assert!(k.verify(Some(&other), link, Some(&token)).is_err());
    }

    #[test]
    fn only_a_well_formed_cookie_of_our_name_is_read_and_debug_hides_it() {
        let k = key(1);
        assert!(k.cookie(&HeaderMap::new()).is_none());
        assert!(k.cookie(&with_cookie("short")).is_none());
        assert!(k.cookie(&with_cookie(&"!".repeat(43))).is_none());
        let nonce = Nonce::generate();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("keydrop_csrfx={}", nonce.0)).unwrap(),
        );
        assert!(k.cookie(&h).is_none(), "another cookie's name");
        assert!(!format!("{nonce:?}").contains(&nonce.0));
    }

    #[test]
    fn a_submission_id_verifies_only_with_its_cookie_and_link_and_carries_its_time() {
        let k = key(1);
        let nonce = Nonce::generate();
        let link = Uuid::new_v4();
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let sid = k.submission_id(link, &nonce, at);
        let ok = k.verify_submission_id(&nonce, link, Some(&sid)).unwrap();
        assert_eq!(ok.served_at, at);
        assert!(sid.starts_with(&ok.id));
        assert_ne!(k.submission_id(link, &nonce, at), sid, "random per form");
        assert!(k
            .verify_submission_id(&nonce, Uuid::new_v4(), Some(&sid))
            .is_none());
        assert!(k
            .verify_submission_id(&Nonce::generate(), link, Some(&sid))
            .is_none());
        // A changed time (to stretch the grace period) breaks the tag.
        let forged = format!("{}{}", &sid[..1], &sid[2..]);
        assert!(k
            .verify_submission_id(&nonce, link, Some(&forged))
            .is_none());
        assert!(k.verify_submission_id(&nonce, link, None).is_none());
    }

    #[test]
    fn nonces_are_random_and_the_browser_hash_is_stable() {
        let (a, b) = (Nonce::generate(), Nonce::generate());
        assert_ne!(a, b);
        assert_eq!(a.browser_hash(), a.clone().browser_hash());
        assert_ne!(a.browser_hash(), b.browser_hash());
    }

    #[test]
    fn foreign_origins_and_cross_site_fetches_are_refused() {
        let ours = "https://drop.example.com";
        let mut h = HeaderMap::new();
        assert!(check_origin(&h, ours).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://drop.example.com"),
        );
        assert!(check_origin(&h, ours).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_origin(&h, ours).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check_origin(&h, ours).is_err());
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_origin(&h, ours).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_origin(&h, ours).is_ok());
    }
}

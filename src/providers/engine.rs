//! The probe engine every provider's check runs on: one deadline for the
//! whole check, requests that retry after a rate limit when the provider's
//! `Retry-After` (seconds or an HTTP date) fits before that deadline, no
//! redirects followed off the origin, bodies read up to a cap, probes run
//! concurrently, and one way to turn probe verdicts into a [`CheckResult`].
//!
//! Provider modules decide what each answer *means* (a [`Verdict`]); this
//! module only moves bytes and words the summary, so the mapping of statuses
//! to meanings stays beside the provider's documentation it cites.

use super::{CheckResult, CheckStatus, FieldName, Permission, Upstream, Upstreams};
use chrono::Utc;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use url::Url;

/// Bodies beyond this are cut: every probe asks for one record, and token
/// answers are small, so anything larger is not an answer we need whole.
pub const MAX_BODY: usize = 64 * 1024;

/// How many times one request is sent at most (first try plus retries).
const MAX_ATTEMPTS: usize = 4;

/// Which answers mean "slow down and try again".
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    statuses: &'static [u16],
}

impl Retry {
    /// `429 Too Many Requests` (RFC 6585), what almost every API sends.
    pub const RATE_LIMITED: Retry = Retry { statuses: &[429] };
    /// BambooHR documents throttling as `503 Service Unavailable` and its
    /// current reference pages as `429`; both are retried.
    pub const RATE_LIMITED_OR_503: Retry = Retry {
        statuses: &[429, 503],
    };
    /// Nothing is retried (token endpoints whose 503 means something else).
    pub const NEVER: Retry = Retry { statuses: &[] };
}

/// One provider answer, body capped at [`MAX_BODY`].
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Redacted: a token endpoint's body carries an access token, and headers
/// may echo credentials; only the status and the body's size are shown.
impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Answer {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A provider's own words from a header, cut and cleaned to be safe to
    /// show a person (printable, one line, at most 200 characters).
    pub fn header_text(&self, name: &str) -> Option<String> {
        let v = self.header(name)?.trim();
        (!v.is_empty()).then(|| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
    }

    /// Whether the answer says the caller's IP address is not allowed.
    /// Providers word this in the body; none gives it a status of its own.
    pub fn ip_refusal(&self) -> bool {
        if !matches!(self.status, 401 | 403) {
            return false;
        }
        let text = String::from_utf8_lossy(&self.body).to_lowercase();
        [
            "ip address",
            "ip_not_allowed",
            "ip not allowed",
            "allowlist",
            "whitelist",
        ]
        .iter()
        .any(|w| text.contains(w))
    }

    /// The `access_token` of a successful OAuth token answer (RFC 6749 §5.1);
    /// `Err` (unverified, naming `provider`) when the body has none. Other
    /// members (`expires_in`, `expires_at`, `scope`) differ between providers
    /// and are not needed: a check uses the token at once.
    pub fn access_token(&self, provider: &str) -> Result<zeroize::Zeroizing<String>, CheckResult> {
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: zeroize::Zeroizing<String>,
        }
        match serde_json::from_slice::<Token>(&self.body) {
            Ok(t) if !t.access_token.is_empty() => Ok(t.access_token),
            _ => Err(unverified(format!(
                "{provider} answered the token request in an unexpected format"
            ))),
        }
    }

    /// The RFC 6749 §5.2 `error` code of an OAuth error answer.
    pub fn oauth_error(&self) -> Option<String> {
        self.json()?
            .get("error")?
            .as_str()
            .map(|s| s.chars().take(64).collect())
    }
}

/// What one probe found out about the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credential may do this.
    Granted,
    /// The credential works but lacks this permission.
    Missing,
    /// The provider rejected the credential itself.
    Rejected {
        field: Option<FieldName>,
        detail: String,
    },
    /// Refused because of an IP allowlist on the provider's side.
    IpBlocked,
    /// The answer does not decide (outage, timeout, an undocumented status).
    Unknown(String),
}

/// What a provider check can use: the submitted fields, the configured
/// upstreams, one HTTP client and the check's deadline.
pub struct Ctx<'a> {
    pub(super) client: &'a Client,
    pub(super) upstreams: &'a Upstreams,
    pub(super) deadline: Instant,
    pub(super) egress_ips: &'a [String],
    pub(super) fields: &'a BTreeMap<&'a str, &'a str>,
}

impl<'a> Ctx<'a> {
    /// A submitted field's value, empty when it was left blank.
    pub fn field(&self, name: FieldName) -> &'a str {
        self.fields.get(name.0).copied().unwrap_or("")
    }

    /// An optional field's value, `None` when blank.
    pub fn optional(&self, name: FieldName) -> Option<&'a str> {
        self.fields.get(name.0).copied().filter(|v| !v.is_empty())
    }

    /// The base URL configured for `upstream`; `None` means the provider's
    /// production host is derived from the customer's own input.
    pub fn base(&self, upstream: &Upstream) -> Option<&'a Url> {
        self.upstreams.get(upstream)
    }

    /// `base` (or `fallback` for a customer-derived host) joined with `path`.
    pub fn url(&self, upstream: &Upstream, path: &str) -> String {
        let base = match self.base(upstream) {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => upstream
                .default
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned(),
        };
        format!("{base}{path}")
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.client.get(url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.client.post(url)
    }

    /// Sends `req`; answers with what came back, or why nothing usable did.
    /// Retries an answer `retry` names when the wait it asks for fits before
    /// the deadline; a redirect is an error, never followed off the origin.
    pub async fn send(&self, req: RequestBuilder, retry: Retry) -> Result<Answer, String> {
        for _ in 0..MAX_ATTEMPTS {
            let attempt = req.try_clone().ok_or("request cannot be retried")?;
            let resp = attempt.send().await.map_err(describe_error)?;
            let status = resp.status().as_u16();
            if retry.statuses.contains(&status) {
                let wait = retry_after(resp.headers(), SystemTime::now())
                    .unwrap_or(Duration::from_secs(1));
                if Instant::now() + wait >= self.deadline {
                    return Err(format!(
                        "rate limited; asked to wait {}",
                        seconds(wait.as_secs())
                    ));
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if resp.status().is_redirection() {
                return Err(format!("redirected elsewhere (HTTP {status})"));
            }
            let headers = resp.headers().clone();
            let body = read_capped(resp).await;
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        Err("rate limited repeatedly".into())
    }

    /// Runs `probe` for every permission at once and pairs each with its verdict.
    pub async fn each<F, Fut>(
        &self,
        permissions: &'static [Permission],
        probe: F,
    ) -> Vec<(&'static Permission, Verdict)>
    where
        F: Fn(&'static Permission) -> Fut,
        Fut: std::future::Future<Output = Verdict>,
    {
        let verdicts = futures_util::future::join_all(permissions.iter().map(&probe)).await;
        permissions.iter().zip(verdicts).collect()
    }

    /// Turns the probes' verdicts into the check's result: a rejection wins,
    /// then an IP refusal, then missing permissions, then anything undecided.
    pub fn summarize(
        &self,
        name: &str,
        probes: Vec<(&'static Permission, Verdict)>,
    ) -> CheckResult {
        if let Some((field, detail)) = probes.iter().find_map(|(_, v)| match v {
            Verdict::Rejected { field, detail } => Some((*field, detail.clone())),
            _ => None,
        }) {
            return invalid(field, detail);
        }
        if probes.iter().any(|(_, v)| *v == Verdict::IpBlocked) {
            return self.ip_blocked(name);
        }
        let missing: Vec<String> = probes
            .iter()
            .filter(|(_, v)| *v == Verdict::Missing)
            .map(|(p, _)| p.label.to_owned())
            .collect();
        let failed: Vec<String> = probes
            .iter()
            .filter_map(|(p, v)| match v {
                Verdict::Unknown(why) => Some(format!("{}: {why}", p.label)),
                _ => None,
            })
            .collect();
        match (missing.is_empty(), failed.is_empty()) {
            (true, true) => verified(format!(
                "{name} accepted the credential for every needed permission"
            )),
            (false, _) => {
                let mut detail = format!(
                    "{name} accepted the credential but it lacks {} permission{}",
                    missing.len(),
                    if missing.len() == 1 { "" } else { "s" }
                );
                if !failed.is_empty() {
                    detail.push_str(&format!("; could not check {}", failed.join(", ")));
                }
                CheckResult {
                    status: CheckStatus::MissingPermissions,
                    missing,
                    checked_at: Some(Utc::now()),
                    detail,
                    field: None,
                }
            }
            (true, false) => unverified(format!(
                "{name} could not be checked completely ({})",
                failed.join(", ")
            )),
        }
    }

    /// The credential is restricted to certain addresses; say which are ours.
    pub fn ip_blocked(&self, name: &str) -> CheckResult {
        let from = if self.egress_ips.is_empty() {
            "our servers".to_owned()
        } else {
            self.egress_ips.join(", ")
        };
        unverified(format!("{name} refused the check because the credential is restricted to certain IP addresses; allow {from}"))
    }
}

/// Every permission granted.
pub fn verified(detail: impl Into<String>) -> CheckResult {
    CheckResult {
        status: CheckStatus::Verified,
        missing: Vec::new(),
        checked_at: Some(Utc::now()),
        detail: detail.into(),
        field: None,
    }
}

/// The provider rejected the credential; `field` is where the admin should look.
pub fn invalid(field: Option<FieldName>, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        status: CheckStatus::Invalid,
        missing: Vec::new(),
        checked_at: Some(Utc::now()),
        detail: detail.into(),
        field,
    }
}

/// The check could not decide.
pub fn unverified(detail: impl Into<String>) -> CheckResult {
    CheckResult::unverified(detail)
}

/// An answer no documented rule covers: say what came back, decide nothing.
pub fn undocumented(a: &Answer) -> Verdict {
    Verdict::Unknown(format!("HTTP {}", a.status))
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), as a
/// wait from `now`. A date in the past means "now".
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    body
}

/// A network error in words, without the URL (it may carry a company domain).
fn describe_error(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "redirected to another host".into()
    } else {
        "network error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("retry-after", v.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 29 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(
            retry_after(&with_retry_after("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&with_retry_after("Sun, 29 Nov 2026 12:00:02 GMT"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&with_retry_after("Sun, 29 Nov 2026 11:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn ip_refusals_are_recognised_only_on_refusals() {
        let a = |status, body: &str| Answer {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        assert!(a(403, "Request not allowed from this IP address").ip_refusal());
        assert!(!a(200, "your IP address is 1.2.3.4").ip_refusal());
        assert!(!a(403, "{}").ip_refusal());
        assert_eq!(
            a(401, r#"{"error":"invalid_client"}"#)
                .oauth_error()
                .as_deref(),
            Some("invalid_client")
        );
    }
}

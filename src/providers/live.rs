//! Live credential checks: ask the provider whether a credential works and has
//! every permission the integration needs, before the admin leaves the page.
//!
//! Probes run in parallel (a check costs about one round-trip), within one
//! total deadline, honouring `429 Retry-After` when it fits the deadline, and
//! never following redirects to another host. Credentials and upstream tokens
//! only ever travel in reqwest's sensitive auth headers; nothing here logs
//! them, and error texts never quote them.

use super::{Check, CheckResult, CheckStatus, Provider};
use chrono::Utc;
use reqwest::{redirect, Client, RequestBuilder, StatusCode};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;
use zeroize::Zeroizing;

/// Base URLs of the provider APIs (configurable for tests and air-gapped installs).
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub greenhouse_auth: Url,
    pub greenhouse_harvest: Url,
    pub lever: Url,
    pub ashby: Url,
    pub bamboohr: Url,
}

impl Default for Upstreams {
    fn default() -> Self {
        let u = |s: &str| Url::parse(s).expect("static URL");
        Self {
            greenhouse_auth: u("https://auth.greenhouse.io"),
            greenhouse_harvest: u("https://harvest.greenhouse.io"),
            lever: u("https://api.lever.co"),
            ashby: u("https://api.ashbyhq.com"),
            bamboohr: u("https://api.bamboohr.com"),
        }
    }
}

impl Upstreams {
    /// Every upstream with the environment variable that overrides it. Tests
    /// use this list to point all of them at loopback, so a provider added
    /// here is covered by the hermetic-test guard without further work.
    pub fn all(&self) -> Vec<(&'static str, &Url)> {
        vec![
            ("KEYDROP_GREENHOUSE_AUTH_URL", &self.greenhouse_auth),
            ("KEYDROP_GREENHOUSE_HARVEST_URL", &self.greenhouse_harvest),
            ("KEYDROP_LEVER_BASE_URL", &self.lever),
            ("KEYDROP_ASHBY_BASE_URL", &self.ashby),
            ("KEYDROP_BAMBOOHR_BASE_URL", &self.bamboohr),
        ]
    }

    /// The defaults, each overridden by its environment variable when set.
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut up = Self::default();
        for (key, slot) in [
            ("KEYDROP_GREENHOUSE_AUTH_URL", &mut up.greenhouse_auth),
            ("KEYDROP_GREENHOUSE_HARVEST_URL", &mut up.greenhouse_harvest),
            ("KEYDROP_LEVER_BASE_URL", &mut up.lever),
            ("KEYDROP_ASHBY_BASE_URL", &mut up.ashby),
            ("KEYDROP_BAMBOOHR_BASE_URL", &mut up.bamboohr),
        ] {
            if let Some(v) = env(key) {
                let url =
                    Url::parse(&v).map_err(|_| anyhow::anyhow!("{key}={v:?} is not a URL"))?;
                if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
                    anyhow::bail!("{key}={v:?} must be an http:// or https:// URL");
                }
                *slot = url;
            }
        }
        Ok(up)
    }
}

/// Runs checks; cheap to share.
#[derive(Debug, Clone)]
pub struct Checker {
    client: Client,
    upstreams: Arc<Upstreams>,
    timeout: Duration,
    egress_ips: Arc<Vec<String>>,
}

/// What one probe learned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Ok,
    /// The credential lacks this permission.
    Denied,
    /// The credential itself was rejected.
    Unauthorized,
    /// Refused because of an IP allowlist.
    IpBlocked,
    NotFound,
    /// Anything else: upstream error, network, rate limit past the deadline.
    Other(String),
}

const MAX_BODY: usize = 8 * 1024;

impl Checker {
    pub fn new(
        upstreams: Upstreams,
        timeout: Duration,
        egress_ips: Vec<String>,
    ) -> anyhow::Result<Self> {
        // Follow a redirect only to the same scheme, host and port.
        let policy = redirect::Policy::custom(|attempt| {
            let same = attempt.previous().last().is_some_and(|prev| {
                prev.scheme() == attempt.url().scheme()
                    && prev.host_str() == attempt.url().host_str()
                    && prev.port_or_known_default() == attempt.url().port_or_known_default()
            });
            if same && attempt.previous().len() < 3 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let client = Client::builder()
            .redirect(policy)
            // The whole check's deadline governs; this only backs it up.
            .timeout(timeout + Duration::from_secs(1))
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!(
                "keydrop/",
                env!("CARGO_PKG_VERSION"),
                " (credential check)"
            ))
            .build()?;
        Ok(Self {
            client,
            upstreams: Arc::new(upstreams),
            timeout,
            egress_ips: Arc::new(egress_ips),
        })
    }

    /// Addresses the checks come from, as configured by the operator.
    pub fn egress_ips(&self) -> &[String] {
        &self.egress_ips
    }

    /// Checks `fields` (the submitted credential) against `provider`.
    pub async fn check(&self, provider: &Provider, fields: &BTreeMap<&str, &str>) -> CheckResult {
        if provider.check == Check::None {
            return CheckResult {
                status: CheckStatus::Unverified,
                missing: Vec::new(),
                checked_at: None,
                detail: "No automatic check exists for this kind of secret.".into(),
            };
        }
        let deadline = Instant::now() + self.timeout;
        let run = self.run(provider, fields, deadline);
        let result = match tokio::time::timeout_at(deadline, run).await {
            Ok(result) => result,
            Err(_) => unverified(format!(
                "{} did not answer within {} seconds",
                short_name(provider),
                self.timeout.as_secs_f32()
            )),
        };
        crate::metrics::check_result(provider.id, result.status);
        result
    }

    async fn run(
        &self,
        provider: &Provider,
        fields: &BTreeMap<&str, &str>,
        deadline: Instant,
    ) -> CheckResult {
        let field = |name: &str| {
            Arc::new(Zeroizing::new(
                fields.get(name).copied().unwrap_or("").to_owned(),
            ))
        };
        let up = &self.upstreams;
        let probes = match provider.check {
            Check::None => unreachable!("handled by check()"),
            Check::GreenhouseV3 => {
                let token = match self.greenhouse_token(fields, deadline).await {
                    Ok(t) => Arc::new(t),
                    Err(early) => return early,
                };
                let base = join(&up.greenhouse_harvest, "v3");
                self.probe_all(provider.permissions, deadline, move |c, perm| {
                    c.get(format!("{base}/{perm}?per_page=1"))
                        .bearer_auth(token.as_str())
                })
                .await
            }
            Check::GreenhouseV1 => {
                let key = field("api_key");
                let base = join(&up.greenhouse_harvest, "v1");
                self.probe_all(provider.permissions, deadline, move |c, perm| {
                    c.get(format!("{base}/{perm}?per_page=1&skip_count=true"))
                        .basic_auth(key.as_str(), Some(""))
                })
                .await
            }
            Check::Lever => {
                let key = field("api_key");
                let base = join(&up.lever, "v1");
                self.probe_all(provider.permissions, deadline, move |c, perm| {
                    c.get(format!("{base}/{perm}?limit=1"))
                        .basic_auth(key.as_str(), Some(""))
                })
                .await
            }
            Check::Ashby => {
                let key = field("api_key");
                let base = up.ashby.as_str().trim_end_matches('/').to_owned();
                let info = self
                    .send(
                        self.client
                            .post(format!("{base}/apiKey.info"))
                            .basic_auth(key.as_str(), Some(""))
                            .json(&serde_json::json!({})),
                        deadline,
                    )
                    .await;
                match info {
                    Probe::Ok => {}
                    Probe::Unauthorized | Probe::Denied => return self.invalid(provider),
                    other => return self.summarize(provider, vec![("apiKey.info", other)]),
                }
                self.probe_all(provider.permissions, deadline, move |c, perm| {
                    c.post(format!("{base}/{perm}"))
                        .basic_auth(key.as_str(), Some(""))
                        .json(&serde_json::json!({"limit": 1}))
                })
                .await
                .into_iter()
                // After apiKey.info accepted the key, a 401 on an endpoint means a missing permission.
                .map(|(p, r)| {
                    (
                        p,
                        if r == Probe::Unauthorized {
                            Probe::Denied
                        } else {
                            r
                        },
                    )
                })
                .collect()
            }
            Check::BambooHr => {
                let key = field("api_key");
                let domain = fields.get("company_domain").copied().unwrap_or("");
                let url = format!(
                    "{}/api/gateway.php/{domain}/v1/employees/directory",
                    up.bamboohr.as_str().trim_end_matches('/')
                );
                let req = self
                    .client
                    .get(url)
                    .header("accept", "application/json")
                    .basic_auth(key.as_str(), Some("x"));
                match self.send(req, deadline).await {
                    Probe::NotFound => {
                        let mut r = self.invalid(provider);
                        r.detail = format!("BambooHR does not know the company domain \"{domain}\". Use the part before .bamboohr.com in your BambooHR address.");
                        return r;
                    }
                    p => vec![("employees/directory", p)],
                }
            }
        };
        self.summarize(provider, probes)
    }

    /// Client-credentials grant; `Err` carries the final result when it fails.
    async fn greenhouse_token(
        &self,
        fields: &BTreeMap<&str, &str>,
        deadline: Instant,
    ) -> Result<Zeroizing<String>, CheckResult> {
        let id = fields.get("client_id").copied().unwrap_or("");
        let secret = fields.get("client_secret").copied().unwrap_or("");
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(sub) = fields.get("user_id") {
            form.push(("sub", sub));
        }
        let url = join(&self.upstreams.greenhouse_auth, "token");
        let provider = super::find("greenhouse").expect("greenhouse is in the catalog");
        let resp = self
            .send_raw(
                self.client
                    .post(url)
                    .basic_auth(id, Some(secret))
                    .form(&form),
                deadline,
            )
            .await;
        let (status, body) = match resp {
            Ok(r) => r,
            Err(why) => {
                return Err(unverified(format!(
                    "Greenhouse could not be reached ({why})"
                )))
            }
        };
        match classify(status, &body) {
            Probe::Ok => {}
            Probe::Unauthorized => return Err(self.invalid(provider)),
            Probe::IpBlocked => {
                return Err(self.summarize(provider, vec![("token", Probe::IpBlocked)]))
            }
            _ if status == StatusCode::BAD_REQUEST => return Err(self.invalid(provider)),
            other => return Err(self.summarize(provider, vec![("token", other)])),
        }
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: Zeroizing<String>,
        }
        match serde_json::from_slice::<Token>(&body) {
            Ok(t) if !t.access_token.is_empty() => Ok(t.access_token),
            _ => Err(unverified(
                "Greenhouse answered the token request in an unexpected format",
            )),
        }
    }

    /// Runs one probe per permission, all at once.
    async fn probe_all<F>(
        &self,
        permissions: &'static [&'static str],
        deadline: Instant,
        build: F,
    ) -> Vec<(&'static str, Probe)>
    where
        F: Fn(&Client, &str) -> RequestBuilder + Send + Sync + 'static,
    {
        let build = Arc::new(build);
        let mut set = JoinSet::new();
        for (i, perm) in permissions.iter().enumerate() {
            let this = self.clone();
            let build = build.clone();
            set.spawn(async move { (i, this.send(build(&this.client, perm), deadline).await) });
        }
        let mut results = vec![Probe::Other("not run".into()); permissions.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, probe)) = joined {
                results[i] = probe;
            }
        }
        permissions.iter().copied().zip(results).collect()
    }

    async fn send(&self, req: RequestBuilder, deadline: Instant) -> Probe {
        match self.send_raw(req, deadline).await {
            Ok((status, body)) => classify(status, &body),
            Err(why) => Probe::Other(why),
        }
    }

    /// Sends, retrying after `429` when `Retry-After` fits before the deadline.
    async fn send_raw(
        &self,
        req: RequestBuilder,
        deadline: Instant,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        for _ in 0..4 {
            let attempt = req.try_clone().ok_or("request cannot be retried")?;
            let resp = attempt.send().await.map_err(describe_error)?;
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1);
                let wait = Duration::from_secs(wait);
                if Instant::now() + wait >= deadline {
                    return Err(format!("rate limited; asked to wait {}s", wait.as_secs()));
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_redirection() {
                return Err(format!("redirected elsewhere (HTTP {})", status.as_u16()));
            }
            let body = read_capped(resp).await;
            return Ok((status, body));
        }
        Err("rate limited repeatedly".into())
    }

    fn invalid(&self, provider: &Provider) -> CheckResult {
        let what = match provider.check {
            Check::GreenhouseV3 => "Greenhouse rejected this client ID and secret. Check you copied both completely; the secret is shown only once, so if you no longer have it, create a new credential.",
            Check::GreenhouseV1 => "Greenhouse rejected this API key. Check you copied all of it.",
            Check::Lever => "Lever rejected this API key. Check you copied all of it.",
            Check::Ashby => "Ashby rejected this API key. Check you copied all of it.",
            Check::BambooHr => "BambooHR rejected this API key. Check you copied all of it and that the company domain is right.",
            Check::None => "The credential was rejected.",
        };
        CheckResult {
            status: CheckStatus::Invalid,
            missing: Vec::new(),
            checked_at: Some(Utc::now()),
            detail: what.into(),
        }
    }

    fn summarize(&self, provider: &Provider, probes: Vec<(&'static str, Probe)>) -> CheckResult {
        let name = short_name(provider);
        if probes.iter().any(|(_, p)| *p == Probe::IpBlocked) {
            let from = if self.egress_ips.is_empty() {
                "our servers".to_owned()
            } else {
                self.egress_ips.join(", ")
            };
            return unverified(format!("{name} refused the check because the credential is restricted to certain IP addresses; allow {from}"));
        }
        if probes.iter().any(|(_, p)| *p == Probe::Unauthorized) {
            return self.invalid(provider);
        }
        let missing: Vec<String> = probes
            .iter()
            .filter(|(_, p)| matches!(p, Probe::Denied | Probe::NotFound))
            .map(|(n, _)| (*n).to_owned())
            .collect();
        let failed: Vec<String> = probes
            .iter()
            .filter_map(|(n, p)| match p {
                Probe::Other(why) => Some(format!("{n}: {why}")),
                _ => None,
            })
            .collect();
        let now = Some(Utc::now());
        match (missing.is_empty(), failed.is_empty()) {
            (true, true) => CheckResult {
                status: CheckStatus::Verified,
                missing,
                checked_at: now,
                detail: format!("{name} accepted the credential for every needed permission"),
            },
            (false, _) => {
                let mut detail = format!(
                    "{name} accepted the credential but it lacks {} permission(s)",
                    missing.len()
                );
                if !failed.is_empty() {
                    detail.push_str(&format!("; could not check {}", failed.join(", ")));
                }
                CheckResult {
                    status: CheckStatus::MissingPermissions,
                    missing,
                    checked_at: now,
                    detail,
                }
            }
            (true, false) => unverified(format!(
                "{name} could not be checked completely ({})",
                failed.join(", ")
            )),
        }
    }
}

fn unverified(detail: impl Into<String>) -> CheckResult {
    CheckResult::unverified(detail)
}

fn short_name(p: &Provider) -> &'static str {
    match p.check {
        Check::GreenhouseV3 | Check::GreenhouseV1 => "Greenhouse",
        Check::Lever => "Lever",
        Check::Ashby => "Ashby",
        Check::BambooHr => "BambooHR",
        Check::None => "The provider",
    }
}

fn join(base: &Url, path: &str) -> String {
    format!("{}/{path}", base.as_str().trim_end_matches('/'))
}

/// Maps an upstream answer to what it means for the credential.
fn classify(status: StatusCode, body: &[u8]) -> Probe {
    let text = String::from_utf8_lossy(body).to_lowercase();
    let ip_refusal = [
        "ip address",
        "ip_not_allowed",
        "ip not allowed",
        "allowlist",
        "whitelist",
    ]
    .iter()
    .any(|w| text.contains(w));
    let ashby_denied = text.contains("\"success\":false") || text.contains("\"success\": false");
    match status.as_u16() {
        200..=299 if ashby_denied && text.contains("permission") => Probe::Denied,
        200..=299 if ashby_denied => Probe::Other("the provider reported an error".into()),
        200..=299 => Probe::Ok,
        401 if ip_refusal => Probe::IpBlocked,
        401 => Probe::Unauthorized,
        403 if ip_refusal => Probe::IpBlocked,
        403 => Probe::Denied,
        404 => Probe::NotFound,
        _ if text.contains("does not have permission") => Probe::Denied,
        code => Probe::Other(format!("HTTP {code}")),
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

    #[test]
    fn upstream_answers_are_classified() {
        assert_eq!(classify(StatusCode::OK, b"[]"), Probe::Ok);
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, br#"{"error":"invalid_client"}"#),
            Probe::Unauthorized
        );
        assert_eq!(classify(StatusCode::FORBIDDEN, b"{}"), Probe::Denied);
        assert_eq!(
            classify(
                StatusCode::FORBIDDEN,
                b"Request not allowed from this IP address"
            ),
            Probe::IpBlocked
        );
        assert_eq!(
            classify(
                StatusCode::INTERNAL_SERVER_ERROR,
                b"This API Key does not have permission for this endpoint"
            ),
            Probe::Denied
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, b""),
            Probe::Other("HTTP 502".into())
        );
        assert_eq!(
            classify(
                StatusCode::OK,
                br#"{"success":false,"errors":["missing_endpoint_permission"]}"#
            ),
            Probe::Denied
        );
    }
}

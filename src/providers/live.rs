//! Live credential checks: ask the provider whether a credential works and has
//! every permission the integration needs, before the admin leaves the page.
//!
//! [`Checker`] holds the one HTTP client (same-origin redirects only, a
//! user agent naming us) and the configured [`Upstreams`]; each provider's
//! module does the asking through [`super::engine`]. Credentials and
//! upstream tokens only travel in reqwest's auth headers or request bodies;
//! nothing here logs them, and error texts never quote them.

use super::engine::{self, Ctx};
use super::{CheckResult, CheckStatus, Provider, Upstream, PROVIDERS};
use crate::metrics::Metrics;
use reqwest::{redirect, Client};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Base URLs of the provider APIs: each provider's production default unless
/// `KEYDROP_<PROVIDER>_BASE_URL` (and friends) override it, for tests, proxies
/// and air-gapped installs.
#[derive(Debug, Clone)]
pub struct Upstreams {
    urls: BTreeMap<&'static str, Url>,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self::from_lookup(&|_| None).expect("the built-in defaults are URLs")
    }
}

impl Upstreams {
    /// Every upstream of every provider, once, in catalog order.
    fn declared() -> Vec<&'static Upstream> {
        let mut seen = Vec::<&'static Upstream>::new();
        for u in PROVIDERS.iter().flat_map(|p| p.upstreams.iter().copied()) {
            if !seen.iter().any(|s| s.env == u.env) {
                seen.push(u);
            }
        }
        seen
    }

    /// Every upstream variable with the URL in force: `None` where the
    /// provider's production host comes from the customer's input (it is
    /// then a real provider host, never loopback). Tests use this list to
    /// point all of them at loopback, so a new provider is covered at once.
    pub fn all(&self) -> Vec<(&'static str, Option<&Url>)> {
        Self::declared()
            .into_iter()
            .map(|u| (u.env, self.urls.get(u.env)))
            .collect()
    }

    /// The URL in force for `upstream` (`None`: derived from the customer's input).
    pub fn get(&self, upstream: &Upstream) -> Option<&Url> {
        self.urls.get(upstream.env)
    }

    /// The defaults, each overridden by its environment variable when set.
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut urls = BTreeMap::new();
        for u in Self::declared() {
            let (value, from_env) = match (env(u.env), u.default) {
                (Some(v), _) => (v, true),
                (None, Some(d)) => (d.to_owned(), false),
                (None, None) => continue,
            };
            let key = u.env;
            let url =
                Url::parse(&value).map_err(|_| anyhow::anyhow!("{key}={value:?} is not a URL"))?;
            if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
                anyhow::bail!("{key}={value:?} must be an http:// or https:// URL");
            }
            if from_env && (url.query().is_some() || url.fragment().is_some()) {
                anyhow::bail!("{key}={value:?} must not have a query or fragment");
            }
            urls.insert(u.env, url);
        }
        Ok(Self { urls })
    }
}

/// Runs checks; cheap to share.
#[derive(Debug, Clone)]
pub struct Checker {
    client: Client,
    upstreams: Arc<Upstreams>,
    timeout: Duration,
    egress_ips: Arc<Vec<String>>,
    /// Where each outcome is counted (the application's registry).
    metrics: Metrics,
}

impl Checker {
    pub fn new(
        upstreams: Upstreams,
        timeout: Duration,
        egress_ips: Vec<String>,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        // Follow a redirect only to the same scheme, host and port: a
        // provider moving a path is fine, being sent elsewhere with the
        // credential is not.
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
            metrics,
        })
    }

    /// Addresses the checks come from, as configured by the operator.
    pub fn egress_ips(&self) -> &[String] {
        &self.egress_ips
    }

    /// Checks `fields` (the submitted credential) against `provider`.
    pub async fn check(&self, provider: &Provider, fields: &BTreeMap<&str, &str>) -> CheckResult {
        let Some(check) = provider.check else {
            return CheckResult {
                status: CheckStatus::Unverified,
                missing: Vec::new(),
                checked_at: None,
                detail: "No automatic check exists for this kind of secret.".into(),
                field: None,
            };
        };
        let deadline = Instant::now() + self.timeout;
        let ctx = Ctx {
            client: &self.client,
            upstreams: &self.upstreams,
            deadline,
            egress_ips: &self.egress_ips,
            fields,
        };
        let result = match tokio::time::timeout_at(deadline, check(&ctx)).await {
            Ok(result) => result,
            Err(_) => {
                let t = self.timeout.as_secs_f32();
                let unit = if t == 1.0 { "second" } else { "seconds" };
                engine::unverified(format!(
                    "{} did not answer within {t} {unit}",
                    provider.short_name
                ))
            }
        };
        self.metrics
            .check_outcome(provider.id, result.status.as_str());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_upstream_has_a_variable_and_customer_hosts_have_no_default() {
        let up = Upstreams::default();
        let all = up.all();
        let names: Vec<_> = all.iter().map(|(k, _)| *k).collect();
        for k in [
            "KEYDROP_GREENHOUSE_AUTH_URL",
            "KEYDROP_GREENHOUSE_HARVEST_URL",
            "KEYDROP_LEVER_BASE_URL",
            "KEYDROP_LEVER_EU_BASE_URL",
            "KEYDROP_ASHBY_BASE_URL",
            "KEYDROP_BAMBOOHR_BASE_URL",
            "KEYDROP_WORKDAY_BASE_URL",
            "KEYDROP_HIBOB_BASE_URL",
            "KEYDROP_PERSONIO_BASE_URL",
            "KEYDROP_WORKABLE_BASE_URL",
            "KEYDROP_SMARTRECRUITERS_BASE_URL",
            "KEYDROP_RIPPLING_BASE_URL",
        ] {
            assert!(names.contains(&k), "{k}");
        }
        assert_eq!(names.len(), 12);
        for (k, url) in all {
            let customer = matches!(
                k,
                "KEYDROP_BAMBOOHR_BASE_URL"
                    | "KEYDROP_WORKDAY_BASE_URL"
                    | "KEYDROP_WORKABLE_BASE_URL"
            );
            assert_eq!(url.is_none(), customer, "{k}");
        }
        let set = Upstreams::from_lookup(&|k| {
            (k == "KEYDROP_BAMBOOHR_BASE_URL").then(|| "http://127.0.0.1:9".to_owned())
        })
        .unwrap();
        assert!(set
            .all()
            .iter()
            .any(|(k, u)| *k == "KEYDROP_BAMBOOHR_BASE_URL" && u.is_some()));
        assert!(Upstreams::from_lookup(&|k| {
            (k == "KEYDROP_HIBOB_BASE_URL").then(|| "http://127.0.0.1:9/?x=1".to_owned())
        })
        .is_err());
    }
}

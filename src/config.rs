//! Configuration: the one place that reads the environment.

mod oidc;

pub use oidc::{parse_roles, OidcConfig};

use crate::crypto::{Keyring, KeyringError};
use crate::domain::HumanDuration;
use crate::providers::live::Upstreams;
use anyhow::{bail, Context as _};
use secrecy::SecretString;
use std::net::SocketAddr;
use url::Url;

/// Everything `keydrop` reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub public_addr: SocketAddr,
    pub internal_addr: SocketAddr,
    /// Base URL of drop links, without a trailing slash.
    pub public_url: Url,
    pub log_filter: String,
    pub log_json: bool,
    /// Requests per minute per client IP on drop pages; `None` when off.
    pub rate_limit: Option<RateLimit>,
    /// Default lifetime of new drop links.
    pub link_ttl: HumanDuration,
    /// How long after a link expires a form served before then is still
    /// accepted (`KEYDROP_LINK_GRACE`, default 1h; `0s` for none).
    pub link_grace: chrono::Duration,
    /// Outgoing webhooks (`KEYDROP_WEBHOOK_URL`, `_SECRET`, `_FORMAT`).
    pub webhooks: crate::webhooks::WebhookConfig,
    /// Shred a secret this long after it was marked ingested (`None`: never).
    pub shred_after_ingested: Option<std::time::Duration>,
    /// Shred a never-revealed secret this long after it arrived (`None`: never).
    pub shred_unclaimed_after: Option<std::time::Duration>,
    /// How often `serve` applies the retention policy (`None`: only `keydrop purge`).
    pub purge_interval: Option<std::time::Duration>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: std::time::Duration,
    /// Provider API base URLs for live checks.
    pub upstreams: Upstreams,
    /// The KMS wrapping data keys (`KEYDROP_KMS`); `None`: the local ring.
    pub kms: Option<crate::kms::KmsConfig>,
    /// Total time a live check may take.
    pub check_timeout: std::time::Duration,
    /// Addresses the server calls providers from, shown to admins who restrict by IP.
    pub egress_ips: Vec<String>,
    /// Reverse proxies whose client-address header is believed.
    pub proxies: crate::domain::ProxyConfig,
    /// Failed token lookups allowed per client IP before `429`.
    pub auth_failure_limit: Option<RateLimit>,
    /// Stay ready (`keks.status: degraded`) while rows are wrapped by a KEK
    /// that is not in the ring (`KEYDROP_ALLOW_MISSING_KEKS`); by default that
    /// replica is not ready.
    pub allow_missing_keks: bool,
    /// Host names the internal listener answers to (`KEYDROP_INTERNAL_HOSTS`).
    pub internal_hosts: crate::domain::InternalHosts,
    /// Bearer token `/metrics` requires, when set (`KEYDROP_METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// Open connections one client address may hold per listener (`None`: no cap).
    pub max_connections_per_client: Option<usize>,
    /// The staff console's single sign-on (`None`: no console).
    pub oidc: Option<OidcConfig>,
    /// Email: SMTP relay, sender, reminders, staff addresses (`crate::mail`).
    pub mail: crate::mail::MailConfig,
    /// The operator's brand on every page and email (`KEYDROP_BRAND_*`).
    pub brand: std::sync::Arc<crate::domain::brand::Brand>,
}

pub use crate::domain::RateLimit;

/// Open connections per listener; beyond this, accepting waits (the ceiling
/// of `KEYDROP_MAX_CONNECTIONS_PER_CLIENT`).
pub const MAX_CONNECTIONS: usize = 2048;
/// Open connections one client address may hold, by default.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, the one place it is read: unset and empty mean
/// the same.
fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

const DEFAULT_INTERNAL_ADDR: &str = "127.0.0.1:8081";

fn parse_addr(env: Env<'_>, key: &str, default: &str) -> anyhow::Result<SocketAddr> {
    let v = env(key).unwrap_or_else(|| default.to_owned());
    v.parse()
        .with_context(|| format!("{key}={v:?} is not an address like 127.0.0.1:8080"))
}

/// `KEYDROP_INTERNAL_ADDR` alone, for `keydrop healthcheck` (which must work
/// without a database or keys).
pub fn internal_addr() -> anyhow::Result<SocketAddr> {
    parse_addr(&process_env, "KEYDROP_INTERNAL_ADDR", DEFAULT_INTERNAL_ADDR)
}

/// Whether `KEYDROP_PUBLIC_URL` is set (else drop links use the public address).
pub fn public_url_is_set() -> bool {
    process_env("KEYDROP_PUBLIC_URL").is_some()
}

/// The login name of whoever runs a `keydrop` command (`$USER`), for the
/// audit trail when neither `--actor` nor `KEYDROP_ACTOR` names one.
pub fn operator_name() -> Option<String> {
    process_env("USER")
}

/// `KEYDROP_ACTOR`: who runs a `keydrop` command, as the audit trail records
/// it (`cli:NAME`), when `--actor` is not given (e.g. in a container, where
/// `$USER` says nothing).
pub fn cli_actor() -> Option<String> {
    process_env("KEYDROP_ACTOR")
}

/// Whether `DATABASE_URL` is set (the CLI says which commands need it before
/// reading the rest of the configuration).
pub fn database_url_set() -> bool {
    process_env("DATABASE_URL").is_some()
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(&process_env)
    }

    /// Reads configuration through `env`, so tests need not touch the process.
    pub fn from_lookup(env: Env<'_>) -> anyhow::Result<Self> {
        let database_url = env("DATABASE_URL")
            .context("DATABASE_URL is not set: point it at the Postgres database, e.g. postgres://keydrop@localhost/keydrop")?;
        let addr = |key: &str, default: &str| parse_addr(env, key, default);
        let public_addr = addr("KEYDROP_PUBLIC_ADDR", "127.0.0.1:8080")?;
        let internal_addr = addr("KEYDROP_INTERNAL_ADDR", DEFAULT_INTERNAL_ADDR)?;
        let public_url = match env("KEYDROP_PUBLIC_URL") {
            Some(u) => parse_public_url(&u)?,
            None => {
                let host = if public_addr.ip().is_unspecified() {
                    "localhost".to_owned()
                } else {
                    public_addr.ip().to_string()
                };
                let host = if public_addr.is_ipv6() && host != "localhost" {
                    format!("[{host}]")
                } else {
                    host
                };
                parse_public_url(&format!("http://{host}:{}", public_addr.port()))?
            }
        };
        let log_json = match env("KEYDROP_LOG_FORMAT").as_deref() {
            None | Some("pretty") => false,
            Some("json") => true,
            Some(other) => bail!("KEYDROP_LOG_FORMAT={other:?}: use pretty or json"),
        };
        let rate_limit =
            RateLimit::parse(&env("KEYDROP_RATE_LIMIT").unwrap_or_else(|| "30/min".into()))
                .map_err(|e| anyhow::anyhow!("KEYDROP_RATE_LIMIT: {e}"))?;
        let link_ttl =
            HumanDuration::parse(&env("KEYDROP_LINK_TTL").unwrap_or_else(|| "7d".into()))
                .map_err(|e| anyhow::anyhow!("KEYDROP_LINK_TTL: {e}"))?;
        let link_grace = match env("KEYDROP_LINK_GRACE").as_deref().map(str::trim) {
            None | Some("") => chrono::Duration::hours(1),
            Some("0" | "0s" | "off") => chrono::Duration::zero(),
            Some(v) => HumanDuration::parse(v)
                .map_err(|e| anyhow::anyhow!("KEYDROP_LINK_GRACE: {e}"))?
                .as_chrono(),
        };
        let webhooks = crate::webhooks::WebhookConfig::parse(
            env("KEYDROP_WEBHOOK_URL").as_deref(),
            env("KEYDROP_WEBHOOK_SECRET").as_deref(),
            env("KEYDROP_WEBHOOK_FORMAT").as_deref(),
        )
        .map_err(anyhow::Error::msg)?;
        let shred_after_ingested = duration_or_off(env, "KEYDROP_SHRED_AFTER_INGESTED", "7d")?;
        let shred_unclaimed_after = duration_or_off(env, "KEYDROP_SHRED_UNCLAIMED_AFTER", "30d")?;
        let allow_short_retention = flag(env, "KEYDROP_ALLOW_SHORT_RETENTION")?;
        for (key, value) in [
            ("KEYDROP_SHRED_AFTER_INGESTED", shred_after_ingested),
            ("KEYDROP_SHRED_UNCLAIMED_AFTER", shred_unclaimed_after),
        ] {
            if value.is_some_and(|d| d < RETENTION_FLOOR) && !allow_short_retention {
                bail!(
                    "{key}={:?} is shorter than an hour, and retention shreds secrets for good \
                     (m is minutes: for months write e.g. 180d). Set \
                     KEYDROP_ALLOW_SHORT_RETENTION=true if you mean it",
                    env(key).unwrap_or_default()
                );
            }
        }
        let purge_interval = duration_or_off(env, "KEYDROP_PURGE_INTERVAL", "5m")?;
        let shutdown_timeout =
            HumanDuration::parse(&env("KEYDROP_SHUTDOWN_TIMEOUT").unwrap_or_else(|| "30s".into()))
                .map_err(|e| anyhow::anyhow!("KEYDROP_SHUTDOWN_TIMEOUT: {e}"))?
                .as_std();
        let upstreams = Upstreams::from_lookup(env)?;
        let check_timeout =
            HumanDuration::parse(&env("KEYDROP_CHECK_TIMEOUT").unwrap_or_else(|| "10s".into()))
                .map_err(|e| anyhow::anyhow!("KEYDROP_CHECK_TIMEOUT: {e}"))?
                .as_std();
        let mut egress_ips = Vec::new();
        for ip in env("KEYDROP_EGRESS_IPS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let ok = ip.parse::<std::net::IpAddr>().is_ok()
                || ip.split_once('/').is_some_and(|(a, n)| {
                    a.parse::<std::net::IpAddr>().is_ok() && n.parse::<u8>().is_ok_and(|n| n <= 128)
                });
            if !ok {
                bail!("KEYDROP_EGRESS_IPS: {ip:?} is not an IP address or CIDR range");
            }
            egress_ips.push(ip.to_owned());
        }
        let mut proxies = crate::domain::ProxyConfig::default();
        for net in env("KEYDROP_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let parsed = crate::domain::IpNet::parse(net).with_context(|| {
                format!("KEYDROP_TRUSTED_PROXIES: {net:?} is not an IP address or CIDR range")
            })?;
            if net.ends_with("/0") {
                // Logged, not refused: a proxy layer that rewrites every
                // address may really need it, but usually it is a mistake.
                tracing::warn!(
                    net,
                    "KEYDROP_TRUSTED_PROXIES trusts every address: any client can set its own \
                     address in the client-IP header and so evade per-IP limits; list your \
                     proxies' addresses instead"
                );
            }
            proxies.trusted.push(parsed);
        }
        if let Some(h) = env("KEYDROP_CLIENT_IP_HEADER") {
            proxies.header =
                axum::http::HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes())
                    .with_context(|| {
                        format!("KEYDROP_CLIENT_IP_HEADER={h:?} is not a header name")
                    })?;
        }
        if let Some(p) = env("KEYDROP_IPV6_PREFIX") {
            proxies.ipv6_prefix = p
                .trim()
                .trim_start_matches('/')
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=128).contains(n))
                .with_context(|| {
                    format!(
                        "KEYDROP_IPV6_PREFIX={p:?} is not a prefix length from 1 to 128, e.g. 64"
                    )
                })?;
        }
        let auth_failure_limit =
            RateLimit::parse(&env("KEYDROP_AUTH_FAILURE_LIMIT").unwrap_or_else(|| "20/min".into()))
                .map_err(|e| anyhow::anyhow!("KEYDROP_AUTH_FAILURE_LIMIT: {e}"))?;
        let allow_missing_keks = flag(env, "KEYDROP_ALLOW_MISSING_KEKS")?;
        let internal_url = env("KEYDROP_INTERNAL_URL")
            .map(|v| {
                Url::parse(&v)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .with_context(|| {
                        format!("KEYDROP_INTERNAL_URL={v:?} must be an http:// or https:// URL with a host")
                    })
            })
            .transpose()?;
        let internal_hosts = match env("KEYDROP_INTERNAL_HOSTS") {
            Some(v) => crate::domain::InternalHosts::parse(&v)
                .map_err(|e| anyhow::anyhow!("KEYDROP_INTERNAL_HOSTS: {e}"))?,
            None => crate::domain::InternalHosts::default_for(internal_addr, internal_url.as_ref()),
        };
        let metrics_token = env("KEYDROP_METRICS_TOKEN").map(SecretString::from);
        let max_connections_per_client = match env("KEYDROP_MAX_CONNECTIONS_PER_CLIENT") {
            None => Some(DEFAULT_MAX_CONNECTIONS_PER_CLIENT),
            Some(v) if v.trim().eq_ignore_ascii_case("off") => None,
            Some(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_CONNECTIONS).contains(n))
                    .with_context(|| {
                        format!(
                            "KEYDROP_MAX_CONNECTIONS_PER_CLIENT={v:?}: give a number from 1 to {}, or off",
                            MAX_CONNECTIONS
                        )
                    })?,
            ),
        };
        let oidc = OidcConfig::from_lookup(env, internal_url.as_ref())?;
        let mail = crate::mail::config::from_lookup(env, internal_url.clone())
            .map_err(anyhow::Error::msg)?;
        let brand = std::sync::Arc::new(brand_from_lookup(env).map_err(anyhow::Error::msg)?);
        Ok(Self {
            kms: crate::kms::KmsConfig::from_lookup(env)?,
            oidc,
            mail,
            brand,
            allow_missing_keks,
            internal_hosts,
            metrics_token,
            max_connections_per_client,
            proxies,
            auth_failure_limit,
            upstreams,
            check_timeout,
            egress_ips,
            database_url: SecretString::from(database_url),
            public_addr,
            internal_addr,
            public_url,
            log_filter: log_filter(env("KEYDROP_LOG").as_deref()).map_err(anyhow::Error::msg)?,
            log_json,
            rate_limit,
            link_ttl,
            link_grace,
            webhooks,
            shred_after_ingested,
            shred_unclaimed_after,
            purge_interval,
            shutdown_timeout,
        })
    }

    /// True when drop links are served over TLS (enables HSTS and Secure cookies).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The origin browsers send in `Origin` for our pages.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

/// Retention shorter than this needs `KEYDROP_ALLOW_SHORT_RETENTION=true`.
pub const RETENTION_FLOOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// `true`/`false` (also `1`/`0`, `yes`/`no`); unset is `false`.
fn flag(env: Env<'_>, key: &str) -> anyhow::Result<bool> {
    match env(key).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => bail!("{key}={other:?}: use true or false"),
    }
}

/// A duration such as `7d`, or `off` (`None`).
fn duration_or_off(
    env: Env<'_>,
    key: &str,
    default: &str,
) -> anyhow::Result<Option<std::time::Duration>> {
    let v = env(key).unwrap_or_else(|| default.to_owned());
    if v.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    HumanDuration::parse(&v)
        .map(|d| Some(d.as_std()))
        .map_err(|e| anyhow::anyhow!("{key}: {e} (or off)"))
}

fn parse_public_url(s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s.trim_end_matches('/'))
        .with_context(|| format!("KEYDROP_PUBLIC_URL={s:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("KEYDROP_PUBLIC_URL={s:?} must be an http:// or https:// URL with a host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("KEYDROP_PUBLIC_URL={s:?} must not have a query or fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the value holds a credential.
        bail!("KEYDROP_PUBLIC_URL must not contain a user name or password (it would be copied into every drop link)");
    }
    if url.path() != "/" {
        bail!(
            "KEYDROP_PUBLIC_URL={s:?} must not have a path: Keydrop serves drop links at /d/… \
             and its assets at /static/… of the host, so give only scheme, host and port \
             (e.g. https://drop.example.com)"
        );
    }
    Ok(url)
}

/// Default log filter: `info`, without Postgres NOTICE chatter from migrations.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// `KEYDROP_LOG` (checked) and whether `KEYDROP_LOG_FORMAT` is `json`, read
/// before anything else so that start-up errors are already logged as
/// configured. (An invalid format falls back to pretty here;
/// [`Config::from_env`] reports it.)
pub fn log_settings() -> (Result<String, String>, bool) {
    let get = process_env;
    let filter = log_filter(get("KEYDROP_LOG").as_deref());
    (filter, get("KEYDROP_LOG_FORMAT").as_deref() == Some("json"))
}

/// Checks a `KEYDROP_LOG` value. Besides syntax errors, a bare word that is
/// not a level (`typo`, `inf`) is refused: `tracing` would read it as "all
/// levels of the module named typo" and silently mute everything else.
pub fn log_filter(value: Option<&str>) -> Result<String, String> {
    let Some(v) = value else {
        return Ok(DEFAULT_LOG_FILTER.into());
    };
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in v.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[', ':']);
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "KEYDROP_LOG={v:?}: {directive:?} is not a level; use trace, debug, info, warn, \
                 error or off, optionally with target=level pairs (e.g. info,keydrop=debug)"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(v)
        .map(|_| v.to_owned())
        .map_err(|e| {
            format!("KEYDROP_LOG={v:?} is not a log filter ({e}); e.g. info or info,keydrop=debug")
        })
}

/// Loads the KEK ring from `KEYDROP_KEKS` or the file named by `KEYDROP_KEKS_FILE`.
pub fn load_keyring() -> anyhow::Result<Keyring> {
    load_keyring_from(&process_env)
}

pub fn load_keyring_from(env: Env<'_>) -> anyhow::Result<Keyring> {
    let (spec, source) = match (env("KEYDROP_KEKS"), env("KEYDROP_KEKS_FILE")) {
        (Some(_), Some(_)) => bail!("set only one of KEYDROP_KEKS and KEYDROP_KEKS_FILE"),
        (Some(s), None) => (zeroize::Zeroizing::new(s), "KEYDROP_KEKS".to_owned()),
        (None, Some(path)) => (
            zeroize::Zeroizing::new(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read KEYDROP_KEKS_FILE {path:?}"))?,
            ),
            format!("KEYDROP_KEKS_FILE {path:?}"),
        ),
        (None, None) => return Err(KeyringError::Empty.into()),
    };
    Keyring::parse(&spec).with_context(|| format!("invalid KEK ring in {source}"))
}

/// Reads the brand variables; a bad value is an error naming its variable.
fn brand_from_lookup(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::domain::brand::Brand, String> {
    let mut brand = crate::domain::brand::Brand::default();
    if let Some(name) = env("KEYDROP_BRAND_NAME") {
        brand.name = crate::domain::text::identifier(&name, 100)
            .map_err(|e| format!("KEYDROP_BRAND_NAME {e}"))?
            .to_owned();
    }
    if let Some(path) = env("KEYDROP_BRAND_LOGO_FILE") {
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("KEYDROP_BRAND_LOGO_FILE={path:?} cannot be read: {e}"))?;
        brand.logo = Some(
            crate::domain::brand::Logo::parse(bytes)
                .map_err(|e| format!("KEYDROP_BRAND_LOGO_FILE={path:?}: {e}"))?,
        );
    }
    if let Some(c) = env("KEYDROP_BRAND_COLOR") {
        brand.color = crate::domain::brand::parse_color(&c)
            .map_err(|e| format!("KEYDROP_BRAND_COLOR: {e}"))?;
    }
    if let Some(e) = env("KEYDROP_SUPPORT_EMAIL") {
        brand.support_email = Some(
            crate::domain::Email::parse(&e)
                .map_err(|m| format!("KEYDROP_SUPPORT_EMAIL={e:?}: {m}"))?
                .as_str()
                .to_owned(),
        );
    }
    if let Some(u) = env("KEYDROP_PRIVACY_URL") {
        let ok = url::Url::parse(u.trim())
            .ok()
            .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
        brand.privacy_url = Some(
            ok.ok_or_else(|| {
                format!("KEYDROP_PRIVACY_URL={u:?} must be an http:// or https:// URL")
            })?
            .to_string(),
        );
    }
    Ok(brand)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::drop_url;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = cfg(&[("DATABASE_URL", "postgres://x/y")]).unwrap();
        assert_eq!(c.public_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.internal_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(drop_url(&c.public_url, "t"), "http://127.0.0.1:8080/d/t");
        assert_eq!(c.rate_limit, RateLimit::parse("30/min").unwrap());
        assert!(!c.is_https());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_PUBLIC_ADDR", "nope")]).unwrap_err();
        assert!(e.to_string().contains("KEYDROP_PUBLIC_ADDR"));
        let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_PUBLIC_URL", "ftp://x")]).unwrap_err();
        assert!(e.to_string().contains("KEYDROP_PUBLIC_URL"));
        let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_RATE_LIMIT", "lots")]).unwrap_err();
        assert!(e.to_string().contains("KEYDROP_RATE_LIMIT"));
        assert!(cfg(&[]).unwrap_err().to_string().contains("DATABASE_URL"));
    }

    #[test]
    fn https_public_urls_are_recognised_and_trailing_slashes_dropped() {
        let c = cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_PUBLIC_URL", "https://drop.example.com/"),
        ])
        .unwrap();
        assert!(c.is_https());
        assert_eq!(c.public_origin(), "https://drop.example.com");
        assert_eq!(drop_url(&c.public_url, "t"), "https://drop.example.com/d/t");
    }

    #[test]
    fn provider_upstreams_check_timeout_and_egress_ips_are_read() {
        let c = cfg(&[("DATABASE_URL", "x")]).unwrap();
        let url = |c: &Config, k: &str| {
            c.upstreams
                .all()
                .into_iter()
                .find(|(name, _)| *name == k)
                .and_then(|(_, u)| u.map(|u| u.to_string()))
        };
        assert_eq!(
            url(&c, "KEYDROP_GREENHOUSE_AUTH_URL").as_deref(),
            Some("https://auth.greenhouse.io/")
        );
        assert_eq!(c.check_timeout.as_secs(), 10);
        let c = cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_LEVER_BASE_URL", "http://127.0.0.1:9999"),
            ("KEYDROP_CHECK_TIMEOUT", "3s"),
            ("KEYDROP_EGRESS_IPS", "203.0.113.7, 198.51.100.0/24"),
        ])
        .unwrap();
        assert_eq!(
            url(&c, "KEYDROP_LEVER_BASE_URL").as_deref(),
            Some("http://127.0.0.1:9999/")
        );
        assert_eq!(c.check_timeout.as_secs(), 3);
        assert_eq!(c.egress_ips, ["203.0.113.7", "198.51.100.0/24"]);
        assert!(cfg(&[("DATABASE_URL", "x"), ("KEYDROP_EGRESS_IPS", "nope")]).is_err());
        assert!(cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_ASHBY_BASE_URL", "file:///etc")
        ])
        .is_err());
    }

    #[test]
    fn retention_and_shutdown_settings_have_defaults_and_can_be_off() {
        let c = cfg(&[("DATABASE_URL", "x")]).unwrap();
        let days = |n: u64| Some(std::time::Duration::from_secs(n * 86_400));
        assert_eq!(c.shred_after_ingested, days(7));
        assert_eq!(c.shred_unclaimed_after, days(30));
        assert_eq!(c.purge_interval, Some(std::time::Duration::from_secs(300)));
        assert_eq!(c.shutdown_timeout, std::time::Duration::from_secs(30));
        let c = cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_SHRED_AFTER_INGESTED", "off"),
            ("KEYDROP_SHRED_UNCLAIMED_AFTER", "90d"),
            ("KEYDROP_PURGE_INTERVAL", "OFF"),
            ("KEYDROP_SHUTDOWN_TIMEOUT", "5s"),
        ])
        .unwrap();
        assert_eq!(c.shred_after_ingested, None);
        assert_eq!(c.shred_unclaimed_after, days(90));
        assert_eq!(c.purge_interval, None);
        assert_eq!(c.shutdown_timeout, std::time::Duration::from_secs(5));
        for key in ["KEYDROP_SHRED_AFTER_INGESTED", "KEYDROP_SHUTDOWN_TIMEOUT"] {
            let e = cfg(&[("DATABASE_URL", "x"), (key, "soon")]).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_SHUTDOWN_TIMEOUT", "off")]).unwrap_err();
        assert!(e.to_string().contains("KEYDROP_SHUTDOWN_TIMEOUT"), "{e}");
    }

    #[test]
    fn retention_below_an_hour_needs_an_explicit_override() {
        for key in [
            "KEYDROP_SHRED_AFTER_INGESTED",
            "KEYDROP_SHRED_UNCLAIMED_AFTER",
        ] {
            let e = cfg(&[("DATABASE_URL", "x"), (key, "6m")]).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(key) && msg.contains("KEYDROP_ALLOW_SHORT_RETENTION"),
                "{msg}"
            );
            assert!(cfg(&[("DATABASE_URL", "x"), (key, "1h")]).is_ok());
            let c = cfg(&[
                ("DATABASE_URL", "x"),
                (key, "1s"),
                ("KEYDROP_ALLOW_SHORT_RETENTION", "true"),
            ])
            .unwrap();
            assert!(
                c.shred_after_ingested == Some(std::time::Duration::from_secs(1))
                    || c.shred_unclaimed_after == Some(std::time::Duration::from_secs(1))
            );
        }
        let e = cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_ALLOW_SHORT_RETENTION", "sure"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("use true or false"), "{e}");
    }

    #[test]
    fn log_filters_that_would_mute_everything_are_refused() {
        assert_eq!(log_filter(None).unwrap(), DEFAULT_LOG_FILTER);
        assert!(log_filter(Some("info,keydrop=debug")).is_ok());
        assert!(log_filter(Some("WARN")).is_ok());
        assert!(log_filter(Some("keydrop::http=trace")).is_ok());
        for bad in ["typo", "[[[garbage", "info,inf"] {
            let e = log_filter(Some(bad)).unwrap_err();
            assert!(e.contains("KEYDROP_LOG"), "{bad}: {e}");
        }
    }

    #[test]
    fn public_urls_with_a_path_or_credentials_are_refused() {
        let e = cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_PUBLIC_URL", "https://x.example/keydrop"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("must not have a path"), "{e}");
        let e = cfg(&[
            ("DATABASE_URL", "x"),
            ("KEYDROP_PUBLIC_URL", "https://ops:hunter2@x.example"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("user name or password") && !e.to_string().contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn a_webhook_format_without_a_url_is_refused_like_a_secret_without_one() {
        let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_WEBHOOK_FORMAT", "slack")]).unwrap_err();
        assert!(e.to_string().contains("KEYDROP_WEBHOOK_URL is not"), "{e}");
    }

    #[test]
    fn the_shutdown_timeout_message_does_not_offer_off() {
        let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_SHUTDOWN_TIMEOUT", "abc")]).unwrap_err();
        assert!(!e.to_string().contains("or off"), "{e}");
    }

    #[test]
    fn the_failed_lookup_limit_defaults_to_20_a_minute_and_can_be_off() {
        let c = cfg(&[("DATABASE_URL", "x")]).unwrap();
        assert_eq!(c.auth_failure_limit, RateLimit::parse("20/min").unwrap());
        let c = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_AUTH_FAILURE_LIMIT", "off")]).unwrap();
        assert_eq!(c.auth_failure_limit, None);
    }

    #[test]
    fn the_ipv6_client_prefix_defaults_to_64_and_is_checked() {
        assert_eq!(
            cfg(&[("DATABASE_URL", "x")]).unwrap().proxies.ipv6_prefix,
            64
        );
        let c = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_IPV6_PREFIX", "/56")]).unwrap();
        assert_eq!(c.proxies.ipv6_prefix, 56);
        for bad in ["0", "129", "wide"] {
            let e = cfg(&[("DATABASE_URL", "x"), ("KEYDROP_IPV6_PREFIX", bad)]).unwrap_err();
            assert!(e.to_string().contains("KEYDROP_IPV6_PREFIX"), "{e}");
        }
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        assert_eq!(RateLimit::parse("5/s").unwrap().unwrap().count, 5);
        assert!(RateLimit::parse("0/min").is_err());
        assert!(RateLimit::parse("5/fortnight").is_err());
    }

    #[test]
    fn the_keyring_error_never_shows_the_key() {
        let bad = "k=QUJDREVGR0hJSktMTU5PUA=="; // 16 bytes
        let e = load_keyring_from(&|k| (k == "KEYDROP_KEKS").then(|| bad.to_owned())).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("32 bytes") && !msg.contains("QUJDREVGR0hJSktMTU5PUA"),
            "{msg}"
        );
    }
}

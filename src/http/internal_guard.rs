//! Guards of the internal listener against browsers it never meant to serve.
//!
//! The internal listener sits on a private network, but a staff member's
//! browser is on that network too: a page on `evil.example` whose name is
//! re-pointed at the internal address (DNS rebinding) could read `/metrics`
//! or `/readyz` as same-origin. Such a request still carries
//! `Host: evil.example`, so the listener answers only the names it is known
//! by (`KEYDROP_INTERNAL_HOSTS`; by default `localhost`, the listener's own
//! address and the host of `KEYDROP_INTERNAL_URL`). An IP-literal `Host` is
//! accepted when it is the listener's address, or any address when the
//! listener binds all of them (`0.0.0.0`): rebinding needs a DNS name, and a
//! browser that sends an IP literal connected to that address itself.
//!
//! `/metrics` can also require a bearer token (`KEYDROP_METRICS_TOKEN`), for
//! scrapers on a network shared with less trusted machines.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};

/// The names the internal listener answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternalHosts {
    /// `KEYDROP_INTERNAL_HOSTS=*`: no check (a proxy in front checks instead).
    Any,
    /// Lower-case host names or IP literals, without ports.
    Only(Vec<String>),
}

impl InternalHosts {
    /// The default list for a listener on `addr` and an optional public base URL
    /// of the internal listener (`KEYDROP_INTERNAL_URL`).
    pub fn default_for(addr: SocketAddr, internal_url: Option<&url::Url>) -> Self {
        let mut names = vec!["localhost".to_owned(), addr.ip().to_string()];
        if let Some(host) = internal_url.and_then(|u| u.host_str()) {
            names.push(strip_brackets(host).to_ascii_lowercase());
        }
        Self::Only(names)
    }

    /// Parses `KEYDROP_INTERNAL_HOSTS`: comma-separated names (ports ignored), or `*`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "*" {
            return Ok(Self::Any);
        }
        let mut names = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let host = host_of(entry).filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
            });
            match host {
                Some(h) => names.push(h),
                None => return Err(format!("{entry:?} is not a host name or address")),
            }
        }
        if names.is_empty() {
            return Err("list at least one host name, or * to accept any".into());
        }
        Ok(Self::Only(names))
    }

    /// Whether a request with this `Host` value is for us.
    pub fn allows(&self, host: Option<&str>, listener: IpAddr) -> bool {
        let names = match self {
            Self::Any => return true,
            Self::Only(names) => names,
        };
        let Some(host) = host.and_then(host_of) else {
            return false;
        };
        if names.contains(&host) {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => listener.is_unspecified() || ip == listener,
            Err(_) => false,
        }
    }
}

fn strip_brackets(h: &str) -> &str {
    h.trim_start_matches('[').trim_end_matches(']')
}

/// The lower-case host of a `Host` value or list entry, without port or brackets.
fn host_of(value: &str) -> Option<String> {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if value.matches(':').count() > 1 {
        value // a bare IPv6 address
    } else {
        value.split(':').next()?
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// What the guard needs to know.
#[derive(Debug, Clone)]
pub struct Guard {
    pub hosts: InternalHosts,
    pub listener: IpAddr,
    pub metrics_token: Option<SecretString>,
}

/// Middleware: 421 for a foreign `Host`, 401 for `/metrics` without its token.
pub async fn check(guard: std::sync::Arc<Guard>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !guard.hosts.allows(host, guard.listener) {
        tracing::warn!("internal listener: refused a request for a host it does not serve");
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "unknown_host",
            "This server does not answer for that host name. Use the internal address \
             (KEYDROP_INTERNAL_HOSTS lists the names it answers to).",
        );
    }
    if req.uri().path() == "/metrics" {
        if let Some(expected) = &guard.metrics_token {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            if !given.is_some_and(|t| same(t, expected.expose_secret())) {
                let mut resp = error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "/metrics needs the metrics token (Authorization: Bearer <KEYDROP_METRICS_TOKEN>)",
                );
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return resp;
            }
        }
    }
    next.run(req).await
}

/// Compares in time independent of where the values differ (through SHA-256,
/// so the lengths leak nothing either).
fn same(a: &str, b: &str) -> bool {
    use ring::digest::{digest, SHA256};
    let (a, b) = (digest(&SHA256, a.as_bytes()), digest(&SHA256, b.as_bytes()));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_answers_localhost_the_listener_and_the_internal_url_only() {
        let url = url::Url::parse("https://keydrop.corp.example:8443").unwrap();
        let h = InternalHosts::default_for("10.0.3.7:8081".parse().unwrap(), Some(&url));
        let listener = ip("10.0.3.7");
        for ok in [
            "localhost",
            "localhost:8081",
            "LOCALHOST",
            "10.0.3.7:8081",
            "keydrop.corp.example",
            "keydrop.corp.example:8443",
        ] {
            assert!(h.allows(Some(ok), listener), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8081",
            "10.0.3.8:8081",
            "",
            "localhost.evil.example",
        ] {
            assert!(!h.allows(Some(bad), listener), "{bad}");
        }
        assert!(!h.allows(None, listener));
        // A listener on every address takes any IP literal, still no foreign name.
        let any = InternalHosts::default_for("0.0.0.0:8081".parse().unwrap(), None);
        assert!(any.allows(Some("172.17.0.2:8081"), ip("0.0.0.0")));
        assert!(any.allows(Some("[::1]:8081"), ip("0.0.0.0")));
        assert!(!any.allows(Some("rebind.evil.example:8081"), ip("0.0.0.0")));
    }

    #[test]
    fn the_host_list_parses_and_star_turns_the_check_off() {
        let h = InternalHosts::parse("keydrop.internal, 10.0.0.5:8081, [fd00::1]").unwrap();
        assert_eq!(
            h,
            InternalHosts::Only(vec![
                "keydrop.internal".into(),
                "10.0.0.5".into(),
                "fd00::1".into()
            ])
        );
        assert!(h.allows(Some("[fd00::1]:8081"), ip("127.0.0.1")));
        assert_eq!(InternalHosts::parse("*").unwrap(), InternalHosts::Any);
        assert!(InternalHosts::parse(" , ").is_err());
        assert!(InternalHosts::parse("bad host/").is_err());
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}

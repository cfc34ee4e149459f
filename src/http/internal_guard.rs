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
use std::net::IpAddr;

pub use crate::domain::InternalHosts;

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
    use super::same;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}

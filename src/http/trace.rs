//! Request spans and request ids.
//!
//! Spans are named by the matched route (`/d/{token}`), never the raw URI,
//! because drop-link URIs carry their secret token.
//!
//! A client's own `x-request-id` is kept (and echoed) only when it is sane —
//! at most 64 characters of `A-Z a-z 0-9 - _ .` — so nobody can plant text in
//! our logs or responses through it; otherwise a fresh UUID replaces it.

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request};
use std::time::Duration;
use tower_http::classify::ServerErrorsFailureClass;
use tracing::Span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a client-supplied request id may be kept.
pub fn sane_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Drops an `x-request-id` that is not [`sane_request_id`] (or comes twice),
/// so a fresh one is generated.
pub fn drop_insane_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let headers = req.headers_mut();
    let mut values = headers.get_all(REQUEST_ID).iter();
    let insane = match (values.next(), values.next()) {
        (None, _) => false,
        (Some(v), None) => !sane_request_id(v.as_bytes()),
        (Some(_), Some(_)) => true,
    };
    if insane {
        headers.remove(REQUEST_ID);
    }
    req
}

/// The per-request span, named by the matched route.
pub fn make_span(listener: &'static str) -> impl Fn(&Request<Body>) -> Span + Clone {
    move |req: &Request<Body>| {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v.as_bytes()))
            .unwrap_or("-");
        // Health probes get their own span name, so an expected `503`
        // from `/readyz` is not logged at ERROR on every probe.
        if matches!(route, "/readyz" | "/healthz") {
            tracing::info_span!("probe", listener, method = %req.method(), route, request_id = %id)
        } else {
            tracing::info_span!("request", listener, method = %req.method(), route, request_id = %id)
        }
    }
}

/// Logs a server error (a probe's `503` only at debug).
pub fn on_failure(class: ServerErrorsFailureClass, latency: Duration, span: &Span) {
    if span.metadata().is_some_and(|m| m.name() == "probe") {
        tracing::debug!(classification = %class, latency_ms = latency.as_millis() as u64, "probe answered not ready");
    } else {
        tracing::error!(classification = %class, latency_ms = latency.as_millis() as u64, "response failed");
    }
}

#[cfg(test)]
mod tests {
    use super::sane_request_id;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(sane_request_id(b"3f2a-req_1.retry"));
        for bad in [
            &b""[..],
            b"a b",
            b"x\r\nSet-Cookie: y",
            b"<script>",
            &[b'a'; 65][..],
            "é".as_bytes(),
        ] {
            assert!(!sane_request_id(bad), "{bad:?}");
        }
    }
}

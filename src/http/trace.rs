//! Request spans and request ids.
//!
//! Spans are named by the matched route (`/d/{token}`), never the raw URI,
//! because drop-link URIs carry their secret token.
//!
//! A client's own `x-request-id` is kept (and echoed) only when it is sane —
//! at most 64 characters of `A-Z a-z 0-9 - _ .` — so nobody can plant text in
//! our logs or responses through it; otherwise a fresh UUID replaces it.

use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request};
use axum::Router;
use std::time::Duration;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a client-supplied request id may be kept.
pub fn sane_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Drops an `x-request-id` that is not [`sane_request_id`] (or comes twice),
/// so a fresh one is generated.
async fn drop_insane_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let headers = req.headers_mut();
    let values: Vec<_> = headers.get_all(REQUEST_ID).iter().collect();
    if values.len() > 1
        || values
            .first()
            .is_some_and(|v| !sane_request_id(v.as_bytes()))
    {
        headers.remove(REQUEST_ID);
    }
    req
}

/// Adds request ids (`x-request-id`, generated when absent or not sane) and a span per request.
pub fn layer(router: Router, listener: &'static str) -> Router {
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request<_>| {
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
        }).on_failure(|class: ServerErrorsFailureClass, latency: Duration, span: &Span| {
            if span.metadata().is_some_and(|m| m.name() == "probe") {
                tracing::debug!(classification = %class, latency_ms = latency.as_millis() as u64, "probe answered not ready");
            } else {
                tracing::error!(classification = %class, latency_ms = latency.as_millis() as u64, "response failed");
            }
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_insane_request_id))
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

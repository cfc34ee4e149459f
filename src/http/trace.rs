//! Request spans and request ids.
//!
//! Spans are named by the matched route (`/d/{token}`), never the raw URI,
//! because drop-link URIs carry their secret token.

use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request};
use axum::Router;
use std::time::Duration;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds request ids (`x-request-id`, generated when absent) and a span per request.
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
                .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
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
}

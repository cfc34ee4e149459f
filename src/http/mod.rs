//! The two HTTP surfaces: the public drop pages and the internal staff API.
//!
//! They are separate routers on separate listeners; the internal router is
//! never mounted on the public listener.

pub mod api;
mod assets;
pub mod brand;
pub mod client_ip;
pub mod console;
pub mod csrf;
pub mod error;
pub mod form;
pub mod health;
pub mod internal_guard;
pub mod pages;
mod public;
mod security;
pub mod server;
mod staff;
pub mod throttle;
mod trace;

use crate::config::Config;
use crate::crypto::{Fingerprinter, Keyring};
use crate::metrics::Metrics;
use crate::providers::live::Checker;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use sqlx::PgPool;
use std::sync::Arc;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub keyring: Arc<Keyring>,
    /// Seals and opens secrets: the ring, or the KMS when one is configured.
    pub keys: Arc<crate::kms::Keys>,
    /// The fingerprint key, unwrapped at start-up (`store::fingerprint_keys`).
    pub fingerprints: Arc<Fingerprinter>,
    pub config: Arc<Config>,
    pub csrf: Arc<csrf::CsrfKey>,
    pub checker: Checker,
    /// Failed drop-link token lookups per client.
    pub link_failures: Arc<throttle::FailureThrottle>,
    /// Failed staff-token lookups per client.
    pub staff_failures: Arc<throttle::FailureThrottle>,
    /// The readiness verdict the public listener answers with.
    pub readiness: Arc<health::ReadyCache>,
    /// This application's Prometheus registry (not a process-wide one).
    pub metrics: Metrics,
    /// The staff console, when single sign-on is configured.
    pub console: Option<Arc<console::Console>>,
}

impl AppState {
    pub fn new(db: PgPool, keyring: Keyring, fingerprints: Fingerprinter, config: Config) -> Self {
        let csrf = csrf::CsrfKey::new(
            keyring.active().derive_hmac_key("keydrop csrf v1"),
            config.is_https(),
        );
        let metrics = Metrics::new();
        let checker = Checker::new(
            config.upstreams.clone(),
            config.check_timeout,
            config.egress_ips.clone(),
            metrics.clone(),
        )
        .expect("the HTTP client for live checks can be built");
        let console = config.oidc.clone().map(|oidc| {
            let key = keyring.active().derive_hmac_key("keydrop console forms v1");
            Arc::new(
                console::Console::new(oidc, key)
                    .expect("the HTTP client for single sign-on can be built"),
            )
        });
        let limit = config.auth_failure_limit;
        let v6 = config.proxies.ipv6_prefix;
        let keyring = Arc::new(keyring);
        Self {
            keys: Arc::new(crate::kms::Keys::local(keyring.clone())),
            link_failures: Arc::new(throttle::FailureThrottle::new(limit, v6)),
            staff_failures: Arc::new(throttle::FailureThrottle::new(limit, v6)),
            readiness: Arc::default(),
            console,
            checker,
            metrics,
            db,
            keyring,
            fingerprints: Arc::new(fingerprints),
            config: Arc::new(config),
            csrf: Arc::new(csrf),
        }
    }
}

impl AppState {
    /// The same state, sealing and opening through `keys` (a KMS).
    pub fn with_keys(mut self, keys: crate::kms::Keys) -> Self {
        self.keys = Arc::new(keys);
        self
    }
}

/// Largest request body accepted on the public listener (a form with a key).
pub const PUBLIC_BODY_LIMIT: usize = 64 * 1024;
/// Largest request body accepted by the internal API.
pub const INTERNAL_BODY_LIMIT: usize = 256 * 1024;

/// Drop pages, static assets and health checks.
pub fn public_router(state: AppState) -> Router {
    let https = state.config.is_https();
    let proxies = Arc::new(state.config.proxies.clone());
    let metrics = state.metrics.clone();
    let brand = Arc::new(brand::BrandAssets::new(&state.config.brand));
    let router = Router::new()
        .merge(public::router(&state))
        .merge(health::router())
        .method_not_allowed_fallback(public::method_not_allowed)
        .fallback(public::not_found)
        .layer(DefaultBodyLimit::max(PUBLIC_BODY_LIMIT))
        .with_state(state)
        .merge(assets::router())
        .merge(brand::router(brand.clone()));
    outer_layers(
        router,
        "public",
        https,
        proxies,
        Some(brand),
        metrics.layer("public"),
        None,
    )
}

/// The staff API, health checks and metrics.
pub fn internal_router(state: AppState) -> Router {
    let proxies = Arc::new(state.config.proxies.clone());
    let guard = Arc::new(internal_guard::Guard {
        hosts: state.config.internal_hosts.clone(),
        listener: state.config.internal_addr.ip(),
        metrics_token: state.config.metrics_token.clone(),
    });
    let metrics = state.metrics.clone();
    let console = state.console.is_some();
    let mut router = Router::new();
    if console {
        router = router.merge(console::router());
    }
    let router = router
        .nest("/api/v1", api::router())
        .merge(health::internal_router())
        .merge(state.metrics.router(state.db.clone()))
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(INTERNAL_BODY_LIMIT))
        .with_state(state);
    let router = if console {
        router.merge(assets::router())
    } else {
        router
    };
    outer_layers(
        router,
        "internal",
        false,
        proxies,
        None,
        metrics.layer("internal"),
        Some(guard),
    )
}

/// A request body must arrive within this time once its headers have.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Layers shared by both listeners, outermost first: security headers,
/// request ids and spans, client address, the brand (public pages; outside
/// the panic guard so its error page is branded too), panic guard,
/// body-read deadline, the internal listener's host guard, request metrics.
///
/// One `Router::layer` with one composed stack, not one call per layer: each
/// call boxes every route once more, and axum clones a route's boxed service
/// (with every box inside it) on each request, so nine calls cost ~150
/// allocations per request (callgrind, BENCHMARKS.md). Between layers that
/// change body types, the bodies are mapped back to axum's, as `Router::layer`
/// itself does. Layers that only look at or change the request or the
/// response are plain `tower` maps, which neither clone the stack below them
/// nor box a future per request, as axum's `middleware::map_*` and `from_fn`
/// do; only the brand and the host guard, which await or answer, use `from_fn`.
#[allow(clippy::too_many_arguments)]
fn outer_layers(
    router: Router,
    listener: &'static str,
    https: bool,
    proxies: Arc<client_ip::ProxyConfig>,
    brand: Option<Arc<brand::BrandAssets>>,
    metrics: crate::metrics::TrackLayer,
    guard: Option<Arc<internal_guard::Guard>>,
) -> Router {
    use axum::response::{IntoResponse, Response};
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::TraceLayer;
    let brand = brand.map(|brand| {
        axum::middleware::from_fn(move |req, next| brand::layer(brand.clone(), req, next))
    });
    let guard = guard.map(|guard| {
        axum::middleware::from_fn(move |req, next| internal_guard::check(guard.clone(), req, next))
    });
    let stack = tower::ServiceBuilder::new()
        .map_response(move |r: Response| security::headers(https, r))
        .map_response(IntoResponse::into_response)
        .map_request(trace::drop_insane_request_id)
        .layer(SetRequestIdLayer::new(trace::REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::make_span(listener))
                .on_failure(trace::on_failure),
        )
        .map_response(IntoResponse::into_response)
        .layer(PropagateRequestIdLayer::new(trace::REQUEST_ID))
        .map_request(move |req| client_ip::resolve(&proxies, req))
        .option_layer(brand)
        .map_response(IntoResponse::into_response)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            move |_payload: Box<dyn std::any::Any + Send + 'static>| panic_response(listener),
        ))
        .map_response(IntoResponse::into_response)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_READ_TIMEOUT,
        ))
        .map_request(|r: axum::http::Request<_>| r.map(axum::body::Body::new))
        .option_layer(guard)
        .layer(metrics);
    router.layer(stack)
}

/// A handler panicked: log that it happened (never the payload, which could
/// quote data) and answer a 500 in the listener's own error language: the
/// HTML error page on the public listener, the JSON error on the internal one.
fn panic_response(listener: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Both error types log an internal error's cause.
    if listener == "public" {
        error::PageError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
    } else {
        error::ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
    }
}

//! The two HTTP surfaces: the public drop pages and the internal staff API.
//!
//! They are separate routers on separate listeners; the internal router is
//! never mounted on the public listener.

pub mod api;
mod assets;
pub mod csrf;
pub mod error;
pub mod form;
mod health;
pub mod pages;
mod public;
mod security;
pub mod server;
mod staff;
mod trace;

use crate::config::Config;
use crate::crypto::Keyring;
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
    pub config: Arc<Config>,
    pub csrf: Arc<csrf::CsrfKey>,
    pub checker: Checker,
}

impl AppState {
    pub fn new(db: PgPool, keyring: Keyring, config: Config) -> Self {
        let csrf = csrf::CsrfKey::new(
            keyring.active().derive_hmac_key("keydrop csrf v1"),
            config.is_https(),
        );
        let checker = Checker::new(config.upstreams.clone(), config.check_timeout, config.egress_ips.clone())
            .expect("the HTTP client for live checks can be built");
        Self {
            checker,
            db,
            keyring: Arc::new(keyring),
            config: Arc::new(config),
            csrf: Arc::new(csrf),
        }
    }
}

/// Largest request body accepted on the public listener (a form with a key).
pub const PUBLIC_BODY_LIMIT: usize = 64 * 1024;
/// Largest request body accepted by the internal API.
pub const INTERNAL_BODY_LIMIT: usize = 256 * 1024;

/// Drop pages, static assets and health checks.
pub fn public_router(state: AppState) -> Router {
    let https = state.config.is_https();
    let rate_limit = state.config.rate_limit;
    let router = Router::new()
        .merge(public::router(rate_limit))
        .merge(health::router())
        .fallback(public::not_found)
        .layer(DefaultBodyLimit::max(PUBLIC_BODY_LIMIT))
        .with_state(state)
        .merge(assets::router());
    let router = crate::metrics::track(router, "public");
    trace::layer(router, "public").layer(axum::middleware::map_response(move |r| {
        security::headers(https, r)
    }))
}

/// The staff API, health checks and metrics.
pub fn internal_router(state: AppState) -> Router {
    let router = Router::new()
        .nest("/api/v1", api::router())
        .merge(health::internal_router())
        .merge(crate::metrics::router())
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(INTERNAL_BODY_LIMIT))
        .with_state(state);
    let router = crate::metrics::track(router, "internal");
    trace::layer(router, "internal").layer(axum::middleware::map_response(|r| {
        security::headers(false, r)
    }))
}

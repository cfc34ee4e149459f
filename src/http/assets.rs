//! Static assets, compiled into the binary so a deployment is one file.
//!
//! A fixed table instead of a directory server: no path is ever joined onto
//! the file system, so traversal is impossible by construction.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "keydrop.css",
        "text/css; charset=utf-8",
        include_str!("../../static/keydrop.css"),
    ),
    // The drop form's optional enhancement (CSP `script-src 'self'`).
    (
        "keydrop.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/keydrop.js"),
    ),
    // The staff console's layout and its copy / show buttons.
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../static/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console.js"),
    ),
    // Linked from every page, so browsers never ask for a missing /favicon.ico
    // (a 404 there is a console error on every page).
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

pub fn router() -> Router {
    Router::new().route("/static/{*path}", get(asset))
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

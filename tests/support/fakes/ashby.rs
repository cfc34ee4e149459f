//! Ashby: RPC-style POSTs, Basic auth (key, blank password), JSON bodies,
//! `Accept: application/json; version=1`. `apiKey.info` needs API Keys: Read,
//! which our key deliberately lacks. Sources in `src/providers/ashby.rs`.

use super::{json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const ASHBY_KEY: &str = "ashby-KEY-2222";
/// A key an Admin disabled: 403 without a permission code.
pub const ASHBY_DEACTIVATED_KEY: &str = "ashby-DISABLED-2323";

const ENDPOINTS: &[&str] = &[
    "apiKey.info",
    "candidate.list",
    "application.list",
    "job.list",
    "interview.list",
    "source.list",
    "user.list",
    "offer.list",
];

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    let endpoint = r.path.trim_start_matches('/');
    if *r.method != Method::POST || !ENDPOINTS.contains(&endpoint) {
        return not_found();
    }
    if r.header("accept") != Some("application/json; version=1")
        || r.header("content-type") != Some("application/json")
        || r.json().is_none()
    {
        return json(
            400,
            j!({"success": false, "errorInfo": {"code": "invalid_request", "message": "send JSON with Accept: application/json; version=1"}}),
        );
    }
    let Some((user, _)) = r.basic() else {
        return json(
            401,
            j!({"success": false, "errorInfo": {"code": "missing_api_key", "message": "API key missing"}}),
        );
    };
    if user != ASHBY_KEY {
        return json(
            403,
            j!({"success": false, "errorInfo": {"code": "invalid_api_key", "message": "API key is invalid or deactivated"}}),
        );
    }
    if endpoint == "apiKey.info" || b.denies(endpoint) {
        return json(
            403,
            j!({"success": false, "errors": ["missing_endpoint_permission"], "errorInfo": {"code": "missing_endpoint_permission", "message": "The API key lacks a permission"}}),
        );
    }
    json(
        200,
        j!({"success": true, "results": [], "moreDataAvailable": false}),
    )
}

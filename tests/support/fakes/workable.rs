//! Workable: Bearer token, `/spi/v3/jobs` and `/spi/v3/candidates` behind the
//! overridden host. Sources in `src/providers/workable.rs`.

use super::{has_query, json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const WORKABLE_SUBDOMAIN: &str = "acme";
pub const WORKABLE_TOKEN: &str = "workable-TOKEN-6666";

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    let resource = match (r.method, r.path) {
        (&Method::GET, "/spi/v3/jobs") => "jobs",
        (&Method::GET, "/spi/v3/candidates") => "candidates",
        (&Method::GET, "/spi/v3/members") => "members",
        _ => return not_found(),
    };
    if !r.is_bearer(WORKABLE_TOKEN) {
        return json(401, j!({"error": "Not authorized"}));
    }
    let scope = if resource == "candidates" {
        "r_candidates"
    } else {
        "r_jobs"
    };
    if b.denies(scope) {
        return json(403, j!({"error": "Forbidden"}));
    }
    if !has_query(r, "limit=1") {
        return json(400, j!({"error": "expected limit=1"}));
    }
    json(200, j!({resource: [{"id": "61884e2"}]}))
}

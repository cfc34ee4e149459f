//! Rippling REST API: Bearer token; `/sso-me` and list endpoints with
//! `{"results": […], "next_link": …}`. Sources in `src/providers/rippling.rs`.

use super::{has_query, json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const RIPPLING_TOKEN: &str = "rippling-TOKEN-9999";

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    let resource = match (r.method, r.path) {
        (&Method::GET, "/sso-me") => "sso-me",
        (&Method::GET, "/companies") => "companies",
        (&Method::GET, "/workers") => "workers",
        (&Method::GET, "/users") => "users",
        _ => return not_found(),
    };
    if !r.is_bearer(RIPPLING_TOKEN) {
        return json(401, j!({"detail": "Invalid token."}));
    }
    if resource == "sso-me" {
        return json(
            200,
            j!({"id": "u1", "work_email": "admin@acme.example", "company_id": "c1"}),
        );
    }
    if b.denies(resource) {
        return json(
            403,
            j!({"detail": "You do not have permission to perform this action."}),
        );
    }
    if !has_query(r, "limit=1") {
        return json(400, j!({"detail": "expected limit=1"}));
    }
    json(200, j!({"results": [{"id": "1"}], "next_link": null}))
}

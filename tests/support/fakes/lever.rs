//! Lever, US and EU hosts: Basic auth (key, blank password), `/v1/<resource>`.
//! Each region knows only its own keys. Sources in `src/providers/lever.rs`.

use super::{has_query, json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const LEVER_KEY: &str = "lever-KEY-3333";
pub const LEVER_EU_KEY: &str = "lever-EU-KEY-3434";

const RESOURCES: &[&str] = &[
    "users",
    "opportunities",
    "postings",
    "archive_reasons",
    "stages",
    "requisitions",
    "sources",
    "tags",
];

pub fn answer_us(b: &Behaviour, r: &Req) -> Response {
    answer(b, r, LEVER_KEY)
}

pub fn answer_eu(b: &Behaviour, r: &Req) -> Response {
    answer(b, r, LEVER_EU_KEY)
}

fn answer(b: &Behaviour, r: &Req, key: &str) -> Response {
    let Some(resource) = r.path.strip_prefix("/v1/") else {
        return not_found();
    };
    if *r.method != Method::GET || !RESOURCES.contains(&resource) {
        return not_found();
    }
    if !r.is_basic(key, "") {
        return json(
            401,
            j!({"code": "Unauthorized", "message": "Invalid API key"}),
        );
    }
    if b.denies(resource) {
        return json(
            403,
            j!({"code": "Forbidden", "message": "Not authorized for this endpoint"}),
        );
    }
    if !has_query(r, "limit=1") {
        return json(
            400,
            j!({"code": "BadRequest", "message": "expected limit=1 from a probe"}),
        );
    }
    json(200, j!({"data": [{"id": "x"}], "hasNext": false}))
}

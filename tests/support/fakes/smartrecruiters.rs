//! SmartRecruiters: `X-SmartToken` header; `/jobs`, `/candidates`,
//! `/user-api/v201804/users`. Sources in `src/providers/smartrecruiters.rs`.

use super::{has_query, json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const SR_KEY: &str = "DCRA1-smartrecruiters-KEY-8888";

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    let area = match (r.method, r.path) {
        (&Method::GET, "/jobs") => "jobs",
        (&Method::GET, "/candidates") => "candidates",
        (&Method::GET, "/user-api/v201804/users") => "users",
        _ => return not_found(),
    };
    if r.header("x-smarttoken") != Some(SR_KEY) {
        return json(
            401,
            j!({"errors": [{"code": "UNAUTHORIZED", "message": "No valid API credential provided"}]}),
        );
    }
    if b.denies(area) {
        return json(
            403,
            j!({"errors": [{"code": "FORBIDDEN", "message": "The API credential doesn't have the access right to perform the request."}]}),
        );
    }
    if !has_query(r, "limit=1") {
        return json(400, j!({"errors": [{"code": "BAD_REQUEST"}]}));
    }
    json(
        200,
        j!({"limit": 1, "offset": 0, "totalFound": 1, "content": [{"id": "a1b2"}]}),
    )
}

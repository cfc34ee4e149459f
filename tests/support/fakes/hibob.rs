//! HiBob: Basic auth (service user ID, token); the field list needs no
//! permission, people search needs the permission group. Sources in
//! `src/providers/hibob.rs`.

use super::{json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const HIBOB_ID: &str = "SERVICE-USER-42";
pub const HIBOB_TOKEN: &str = "hibob-TOKEN-4242";

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    let known = matches!(
        (r.method, r.path),
        (&Method::GET, "/v1/company/people/fields") | (&Method::POST, "/v1/people/search")
    );
    if !known {
        return not_found();
    }
    if !r.is_basic(HIBOB_ID, HIBOB_TOKEN) {
        return json(
            401,
            j!({"key": "unauthorized", "error": "The request could not be authenticated. Check your service user credentials"}),
        );
    }
    if r.path == "/v1/company/people/fields" {
        return json(
            200,
            j!([{"id": "root.id", "categoryDisplayName": "Basic info", "name": "Id"}]),
        );
    }
    // Do not send `filters: []`; `fields` must be a list.
    let body = r.json().unwrap_or_default();
    if !body["fields"].is_array() || body.get("filters").is_some_and(|f| f == &j!([])) {
        return json(400, j!({"key": "bad_request", "error": "invalid fields"}));
    }
    if b.denies("people/search") {
        return json(
            403,
            j!({"key": "forbidden", "error": "The service user does not have permission to access this resource"}),
        );
    }
    json(
        200,
        j!({"employees": [{"/root/id": "3332883884017714448"}]}),
    )
}

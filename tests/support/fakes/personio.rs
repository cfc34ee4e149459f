//! Personio: v2 client-credentials token (form body), `/v2/persons`.
//! Sources in `src/providers/personio.rs`.

use super::{has_query, json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const PERSONIO_ID: &str = "papi-client-id-5";
pub const PERSONIO_SECRET: &str = "personio-SECRET-55";
const PERSONIO_BEARER: &str = "papi-bearer-555";

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    match (r.method, r.path) {
        (&Method::POST, "/v2/auth/token") => {
            let f = r.form();
            let get = |k: &str| f.get(k).map(String::as_str);
            if get("grant_type") != Some("client_credentials") {
                return json(400, j!({"error": "unsupported_grant_type"}));
            }
            if get("client_id") != Some(PERSONIO_ID)
                || get("client_secret") != Some(PERSONIO_SECRET)
            {
                return json(
                    400,
                    j!({"error": "invalid_client", "error_description": "Client authentication failed"}),
                );
            }
            json(
                200,
                j!({"access_token": PERSONIO_BEARER, "token_type": "Bearer", "expires_in": 86400}),
            )
        }
        (&Method::GET, "/v2/persons") => {
            if !r.is_bearer(PERSONIO_BEARER) {
                return json(401, j!({"errors": [{"title": "Unauthorized"}]}));
            }
            if b.denies("persons") {
                return json(
                    403,
                    j!({"personio_trace_id": "t", "errors": [{"title": "Insufficient access scope", "detail": "Client scope insufficient to access resource"}]}),
                );
            }
            if !has_query(r, "limit=1") {
                return json(400, j!({"errors": [{"title": "expected limit=1"}]}));
            }
            json(200, j!({"_data": [{"id": "1"}], "_meta": {"links": {}}}))
        }
        _ => not_found(),
    }
}

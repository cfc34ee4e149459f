//! Workday: refresh-token grant at `/ccx/oauth2/{tenant}/token` (credentials
//! in the form body), workers at `/ccx/api/v1/{tenant}/workers`. Sources in
//! `src/providers/workday.rs`.

use super::{has_query, json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const WD_HOST: &str = "wd5-services1.myworkday.com";
pub const WD_TENANT: &str = "acme";
pub const WD_CLIENT_ID: &str = "wd-client-ID-7";
pub const WD_CLIENT_SECRET: &str = "wd-client-SECRET-77";
pub const WD_REFRESH: &str = "wd-refresh-TOKEN-777";
const WD_BEARER: &str = "wd-bearer-7777";

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    if let Some(tenant) = r
        .path
        .strip_prefix("/ccx/oauth2/")
        .and_then(|t| t.strip_suffix("/token"))
    {
        if *r.method != Method::POST {
            return not_found();
        }
        if tenant != WD_TENANT {
            // "Error Message 503: Service Unavailable Invalid Tenant Name".
            return json(503, j!({"error": "Invalid Tenant Name"}));
        }
        let f = r.form();
        let get = |k: &str| f.get(k).map(String::as_str);
        if get("grant_type") != Some("refresh_token") {
            return json(400, j!({"error": "unsupported_grant_type"}));
        }
        if get("client_id") != Some(WD_CLIENT_ID) || get("client_secret") != Some(WD_CLIENT_SECRET)
        {
            return json(
                401,
                j!({"error": "invalid_client", "error_description": "Invalid Credentials"}),
            );
        }
        if get("refresh_token") != Some(WD_REFRESH) {
            return json(
                400,
                j!({"error": "invalid_grant", "error_description": "Invalid refresh token"}),
            );
        }
        return json(200, j!({"access_token": WD_BEARER, "token_type": "Bearer"}));
    }
    if r.path == format!("/ccx/api/v1/{WD_TENANT}/workers") && *r.method == Method::GET {
        if !r.is_bearer(WD_BEARER) {
            return json(401, j!({"error": "Invalid resource or operation."}));
        }
        if b.denies("workers") {
            return json(
                403,
                j!({"error": "User has insufficient permissions.", "errors": [{"error": "S22"}]}),
            );
        }
        if !has_query(r, "limit=1") {
            return json(400, j!({"error": "expected limit=1"}));
        }
        return json(
            200,
            j!({"total": 1, "data": [{"id": "0123456789abcdef0123456789abcdef", "descriptor": "Jane Doe"}]}),
        );
    }
    not_found()
}

//! Greenhouse: the OAuth token endpoint, Harvest v3 (Bearer) and Harvest v1
//! (Basic, key as username, blank password). Source notes in
//! `src/providers/greenhouse.rs` and `greenhouse_legacy.rs`.

use super::{json, not_found, Behaviour, Req};
use axum::http::Method;
use axum::response::Response;
use serde_json::json as j;

pub const GH_CLIENT_ID: &str = "gh-client-id-1";
pub const GH_CLIENT_SECRET: &str = "gh-client-SECRET-9876";
pub const GH_BEARER: &str = "gh-bearer-TOKEN-from-fake-5555";
pub const LEGACY_KEY: &str = "legacy-harvest-KEY-4444";
/// A Site Admin's user id (`sub`).
pub const GH_USER: &str = "12345";
/// A user who exists but is not a Site Admin: token issued, every list refused.
pub const GH_NON_ADMIN_USER: &str = "777";
/// The bearer issued for the non-admin user.
const GH_BEARER_NON_ADMIN: &str = "gh-bearer-non-admin-6666";

const V3: &[&str] = &[
    "candidates",
    "applications",
    "jobs",
    "offers",
    "users",
    "departments",
    "offices",
    "scorecards",
    "interviews",
    "job_posts",
    "sources",
    "rejection_reasons",
    "custom_fields",
    "eeoc",
    "close_reasons",
    "user_roles",
    "job_interview_stages",
    "openings",
];
/// v1 has `scheduled_interviews` and `job_stages`, no `interviews`.
const V1: &[&str] = &[
    "candidates",
    "applications",
    "jobs",
    "offers",
    "users",
    "departments",
    "offices",
    "scorecards",
    "scheduled_interviews",
    "job_posts",
    "sources",
    "rejection_reasons",
    "custom_fields",
    "eeoc",
    "close_reasons",
    "user_roles",
    "job_stages",
];

pub fn answer(b: &Behaviour, r: &Req) -> Response {
    if r.path == "/token" && *r.method == Method::POST {
        return token(r);
    }
    if let Some(resource) = r.path.strip_prefix("/v3/") {
        // v3 routes before it authenticates: an unknown path is 404 even without a token.
        if *r.method != Method::GET || !V3.contains(&resource) {
            return not_found();
        }
        if r.is_bearer(GH_BEARER_NON_ADMIN) {
            return json(
                403,
                j!({"message": "Forbidden", "errors": ["insufficient permissions"]}),
            );
        }
        if !r.is_bearer(GH_BEARER) {
            return json(
                401,
                j!({"message": "Unauthorized", "errors": ["Token could not be decoded. Please ensure your token is from a trusted source."]}),
            );
        }
        if b.denies(resource) {
            return json(
                403,
                j!({"message": "Forbidden", "errors": ["missing scope"]}),
            );
        }
        return json(200, j!([{"id": 1}]));
    }
    if let Some(resource) = r.path.strip_prefix("/v1/") {
        // v1 authenticates first: an unknown path without a key is 401.
        if !r.is_basic(LEGACY_KEY, "") {
            return json(401, j!({"message": "Invalid Basic Auth credentials"}));
        }
        if *r.method != Method::GET || !V1.contains(&resource) {
            return not_found();
        }
        if b.denies(resource) {
            return json(
                403,
                j!({"message": "This API Key does not have permission for this endpoint"}),
            );
        }
        return json(200, j!([{"id": 1}]));
    }
    not_found()
}

/// Measured answers of `POST https://auth.greenhouse.io/token` (W6W, cited in the provider module).
fn token(r: &Req) -> Response {
    let form = r.form();
    match form.get("grant_type").map(String::as_str) {
        None => {
            return json(
                400,
                j!({"message": "Must include `grant_type` parameter", "errorId": "err-1"}),
            )
        }
        Some("client_credentials") => {}
        Some(_) => {
            return json(
                400,
                j!({"message": "grant_type is invalid", "errorId": "err-2"}),
            )
        }
    }
    let Some((id, secret)) = r.basic() else {
        return json(401, j!({"message": "Unauthorized", "errorId": "err-3"}));
    };
    if id
        .rsplit_once('-')
        .is_none_or(|(_, n)| n.parse::<u32>().is_err())
    {
        return json(
            400,
            j!({"message": format!("client_id={id} does not contain a valid client ID suffix"), "errorId": "err-4"}),
        );
    }
    if id != GH_CLIENT_ID || secret != GH_CLIENT_SECRET {
        return json(401, j!({"error": "invalid_client"}));
    }
    let bearer = match form.get("sub").map(String::as_str) {
        None | Some(GH_USER) => GH_BEARER,
        Some(GH_NON_ADMIN_USER) => GH_BEARER_NON_ADMIN,
        // Undocumented; an OAuth error the check must not call "wrong secret".
        Some(_) => {
            return json(
                400,
                j!({"error": "invalid_grant", "error_description": "unknown user"}),
            )
        }
    };
    json(
        200,
        j!({"access_token": bearer, "token_type": "Bearer", "expires_at": "2099-01-01T00:00:00Z"}),
    )
}

//! BambooHR: `/api/gateway.php/{companyDomain}/v1/…` behind the overridden
//! host, Basic auth (key, any password), JSON only when asked, the reason in
//! `X-BambooHR-Error-Message`. Sources in `src/providers/bamboohr.rs`.

use super::{not_found, Behaviour, Req};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

pub const BAMBOO_KEY: &str = "bamboo-KEY-1111";
/// A key whose user was disabled: 403.
pub const BAMBOO_DISABLED_KEY: &str = "bamboo-DISABLED-1212";
pub const BAMBOO_DOMAIN: &str = "acme";

fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("x-bamboohr-error-message", message.to_owned())],
    )
        .into_response()
}

pub fn answer(_b: &Behaviour, r: &Req) -> Response {
    let Some(rest) = r.path.strip_prefix("/api/gateway.php/") else {
        return not_found();
    };
    let Some((domain, endpoint)) = rest.split_once("/v1/") else {
        return not_found();
    };
    if domain != BAMBOO_DOMAIN {
        return error(404, "Company not found");
    }
    let Some((key, _)) = r.basic() else {
        return error(401, "Your API key is missing");
    };
    if key == BAMBOO_DISABLED_KEY {
        return error(403, "You do not have access to this resource");
    }
    if key != BAMBOO_KEY {
        return error(401, "Invalid API key");
    }
    match (r.method, endpoint) {
        (&Method::GET, "meta/fields") if r.accepts_json() => axum::Json(serde_json::json!([
            {"id": "1", "name": "First name", "type": "text", "alias": "firstName"}
        ]))
        .into_response(),
        // XML is the default without Accept: application/json.
        (&Method::GET, "meta/fields") => (StatusCode::OK, "<fields/>").into_response(),
        // Directory sharing off: the probe must not use it.
        (&Method::GET, "employees/directory") => error(403, "Directory sharing is disabled"),
        _ => not_found(),
    }
}

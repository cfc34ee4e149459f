//! The internal staff API under `/api/v1`.

mod audit;
mod json;
mod openapi;
mod requests;
mod schema;
mod secrets;
pub mod views;

pub use openapi::document;
use openapi::ErrorResponse;

use super::error::ApiError;
use super::AppState;
use axum::response::{IntoResponse, Response};
use axum::Router;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", axum::routing::get(openapi::openapi_doc))
        .merge(requests::router())
        .merge(secrets::router())
        .merge(audit::router())
        // After every route: it applies to the routes present when called.
        .method_not_allowed_fallback(method_not_allowed)
}

/// Any unknown path on the internal listener.
pub async fn not_found() -> Response {
    ApiError::NotFound("no such endpoint").into_response()
}

/// A known path with a method it does not answer (axum adds `Allow`).
pub async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// A provider filter: a provider id from the catalog, else 400 (an unknown
/// id would silently match nothing).
fn provider_filter(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    match crate::providers::find(raw) {
        Some(p) => Ok(Some(p.id)),
        None => {
            let ids: Vec<_> = crate::providers::PROVIDERS.iter().map(|p| p.id).collect();
            Err(ApiError::bad_request(
                "invalid_filter",
                format!("unknown provider {raw:?}: use one of {}", ids.join(", ")),
            ))
        }
    }
}

/// A free-text filter: blank means none; control characters are a 400.
fn text_filter<'a>(raw: Option<&'a str>, name: &str) -> Result<Option<&'a str>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    crate::domain::text::filter(raw)
        .map(Some)
        .map_err(|e| ApiError::bad_request("invalid_filter", format!("{name} {e}")))
}

/// Parses an id from the path; a malformed id names nothing, so it is a 404.
fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(what))
}

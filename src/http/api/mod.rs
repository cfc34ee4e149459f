//! The internal staff API under `/api/v1`.

mod audit;
mod json;
mod requests;
mod secrets;

use super::error::ApiError;
use super::AppState;
use axum::response::{IntoResponse, Response};
use axum::Router;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", axum::routing::get(openapi))
        .merge(requests::router())
        .merge(secrets::router())
        .merge(audit::router())
}

/// Any unknown path on the internal listener.
pub async fn not_found() -> Response {
    ApiError::NotFound("no such endpoint").into_response()
}

/// Parses an id from the path; a malformed id names nothing, so it is a 404.
fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(what))
}

/// The API description. Hand-written (the API is small and stable); a test
/// calls every operation it lists, so it cannot name a route that is missing.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

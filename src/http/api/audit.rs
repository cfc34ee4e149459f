//! The audit trail, read-only.

use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::audit;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Deserialize)]
struct Filter {
    secret_id: Option<String>,
    request_id: Option<String>,
    limit: Option<i64>,
}

fn opt_uuid(v: Option<String>, name: &str) -> Result<Option<Uuid>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            Uuid::parse_str(&s).map_err(|_| {
                ApiError::bad_request("invalid_filter", format!("{name} must be a UUID"))
            })
        })
        .transpose()
}

async fn list(
    State(state): State<AppState>,
    staff: Staff,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    staff.require(Scope::Read)?;
    let Query(f) = filter.map_err(|e| ApiError::bad_request("invalid_filter", e.body_text()))?;
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let events = audit::list(
        &state.db,
        opt_uuid(f.secret_id, "secret_id")?,
        opt_uuid(f.request_id, "request_id")?,
        limit,
    )
    .await?;
    Ok(Json(json!({ "items": events })))
}

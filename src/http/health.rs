//! Liveness and readiness, on both listeners.

use super::AppState;
use crate::store::canary;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers within a deadline and the KEK ring matches it.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(
        Duration::from_secs(2),
        canary::status(&state.db, &state.keyring),
    )
    .await;
    let (ready, database, keks) = match check {
        Ok(Ok(status)) => {
            let keks_ok = status.is_valid();
            let keks = json!({
                "status": if !keks_ok { "mismatch" } else if status.missing.is_empty() { "ok" } else { "degraded" },
                "active": state.keyring.active().id().as_str(),
                "mismatched": status.mismatched,
                "missing": status.missing,
            });
            (keks_ok, "ok", keks)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database error");
            (false, "error", json!({ "status": "unknown" }))
        }
        Err(_) => (false, "timeout", json!({ "status": "unknown" })),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": database,
        "keks": keks,
    });
    (code, Json(body)).into_response()
}

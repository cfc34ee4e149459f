//! Liveness and readiness, on both listeners.
//!
//! `/readyz` on the internal listener also reports how many secrets each KEK
//! id still wraps (to follow a rotation); the public one does not tell the
//! internet how many secrets are stored.

use super::AppState;
use crate::store::{canary, maintenance, MIGRATOR};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Health checks for the public listener.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(|s| readyz(s, false)))
}

/// Health checks for the internal listener, with rows per KEK id.
pub fn internal_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(|s| readyz(s, true)))
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// How long the database gets to answer every readiness query together.
const DEADLINE: Duration = Duration::from_secs(2);

/// The database answers within a deadline, the KEK ring matches it, and its
/// schema has every migration this binary knows.
async fn readyz(State(state): State<AppState>, detail: bool) -> Response {
    let check = tokio::time::timeout(DEADLINE, async {
        let keks = canary::status(&state.db, &state.keyring).await?;
        let applied = maintenance::applied_migrations(&state.db).await?;
        let rows = if detail {
            Some(maintenance::rows_per_kek(&state.db).await?)
        } else {
            None
        };
        Ok::<_, sqlx::Error>((keks, applied, rows))
    })
    .await;
    let unknown = || json!({ "status": "unknown" });
    let (ready, database, keks, migrations) = match check {
        Ok(Ok((status, applied, rows))) => {
            let keks_ok = status.is_valid();
            let mut keks = json!({
                "status": if !keks_ok { "mismatch" } else if status.missing.is_empty() { "ok" } else { "degraded" },
                "active": state.keyring.active().id().as_str(),
                "mismatched": status.mismatched,
                "missing": status.missing,
            });
            if let Some(rows) = rows {
                let rows: Map<String, Value> =
                    rows.into_iter().map(|(k, n)| (k, json!(n))).collect();
                keks["rows"] = Value::Object(rows);
            }
            let migrations = migration_status(&applied);
            let current = migrations["status"] != "pending";
            (keks_ok && current, "ok", keks, migrations)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database error");
            (false, "error", unknown(), unknown())
        }
        Err(_) => (false, "timeout", unknown(), unknown()),
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
        "migrations": migrations,
    });
    (code, Json(body)).into_response()
}

/// `current`, `pending` (this binary expects migrations the database lacks:
/// not ready) or `ahead` (the database has newer ones, as during a rolling
/// upgrade: still ready, the schema only grows).
fn migration_status(applied: &[i64]) -> Value {
    let applied: BTreeSet<i64> = applied.iter().copied().collect();
    let known: BTreeSet<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    let pending: Vec<i64> = known.difference(&applied).copied().collect();
    let status = if !pending.is_empty() {
        "pending"
    } else if applied.difference(&known).next().is_some() {
        "ahead"
    } else {
        "current"
    };
    json!({ "status": status, "pending": pending })
}

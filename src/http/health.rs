//! Liveness and readiness, on both listeners.
//!
//! The internal `/readyz` runs its checks on every request and answers with
//! the detail (KEK ids, pending migrations, rows per KEK id) an operator
//! needs. The public `/readyz` is reachable by anyone: it answers from a
//! cached verdict that one background task refreshes at most once a second
//! ([`refresh`]), so a flood of health requests costs no database work and
//! cannot crowd submissions out of the connection pool, and its body says only
//! `ready` or `not_ready` — nothing about keys, schema or counts.

use super::AppState;
use crate::store::{self, canary, maintenance};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Health checks for the public listener: no database work per request.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(public_readyz))
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
/// How often the public listener's cached verdict is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A cached verdict older than this is not trusted (the refresh task is stuck
/// or gone): the public answer turns `not_ready`.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// The last readiness verdict, for the public listener.
#[derive(Debug, Default)]
pub struct ReadyCache {
    /// `(ready, when it was decided)`; `None` until the first check ran.
    last: std::sync::Mutex<Option<(bool, Instant)>>,
}

impl ReadyCache {
    fn set(&self, ready: bool) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((ready, Instant::now()));
    }

    /// Ready according to a verdict at most [`STALE_AFTER`] old.
    pub fn is_ready(&self) -> bool {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|(ready, at)| ready && at.elapsed() < STALE_AFTER)
    }
}

/// Runs the readiness checks once and caches the verdict. A check that misses
/// the deadline makes the verdict `not_ready` at once, but is not cancelled:
/// the next one starts only after it ended, so the refresh never holds more
/// than one pooled connection, however slow the database is. (Dropping a query
/// mid-flight would not free its connection either: the pool waits for the
/// server to finish before reusing it.)
pub async fn refresh_once(state: &AppState) {
    let task = {
        let state = state.clone();
        tokio::spawn(async move { probe(&state, false).await })
    };
    tokio::pin!(task);
    let outcome = match tokio::time::timeout(DEADLINE, &mut task).await {
        Ok(done) => done.ok(),
        Err(_) => {
            state.readiness.set(false);
            task.await.ok();
            return;
        }
    };
    let (ready, _) = report(state, outcome);
    state.readiness.set(ready);
}

/// Refreshes the cached verdict every [`REFRESH_EVERY`] (after the previous
/// check finished, so never more often) until `stop` changes.
pub async fn refresh(state: AppState, mut stop: tokio::sync::watch::Receiver<()>) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = refresh_once(&state) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The public answer: the cached verdict, without detail.
async fn public_readyz(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready" })),
        )
            .into_response()
    }
}

/// The internal answer: checks now, with every detail.
async fn readyz(State(state): State<AppState>, detail: bool) -> Response {
    let (ready, body) = assess(&state, detail).await;
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// What the readiness queries found: KEK status, applied migrations, and
/// (internal listener only) rows per KEK id.
type Probe = sqlx::Result<(
    canary::KeyringStatus,
    store::Schema,
    Option<Vec<(String, i64)>>,
    Option<crate::kms::KmsStatus>,
)>;

/// Runs the readiness queries (no deadline of its own).
async fn probe(state: &AppState, detail: bool) -> Probe {
    // The KMS canary runs beside the database queries, within the same deadline;
    // the background refresh reuses a recent answer (a KMS call per second per
    // replica would crowd the KMS's own audit log).
    let max_age = if detail { Duration::ZERO } else { KMS_MAX_AGE };
    let kms = state
        .keys
        .status(max_age, DEADLINE.saturating_sub(Duration::from_millis(200)));
    let (db, kms) = tokio::join!(probe_db(state, detail), kms);
    db.map(|(keks, schema, rows)| (keks, schema, rows, kms))
}

/// How old a KMS canary answer the background readiness refresh may reuse.
const KMS_MAX_AGE: Duration = Duration::from_secs(15);

async fn probe_db(
    state: &AppState,
    detail: bool,
) -> sqlx::Result<(
    canary::KeyringStatus,
    store::Schema,
    Option<Vec<(String, i64)>>,
)> {
    let keks = canary::status(&state.db, &state.keyring).await?;
    let schema = store::schema(&state.db).await?;
    let rows = if detail {
        Some(maintenance::rows_per_kek(&state.db).await?)
    } else {
        None
    };
    Ok((keks, schema, rows))
}

/// The database answers within a deadline, the KEK ring matches it and
/// opens every stored secret, and its schema has every migration this binary
/// knows (a database a newer Keydrop migrated is `ahead`: still ready, the
/// schema only grows). Returns the verdict and the detailed report (for the
/// internal listener only).
///
/// Rows wrapped by a KEK that is not in the ring make the replica not ready:
/// it would answer `500 kek_unavailable` for each of them, and an orchestrator
/// should keep it out of rotation (and the operator should hear about it)
/// rather than route reveals to it. `KEYDROP_ALLOW_MISSING_KEKS=true` accepts
/// that state as `degraded` (e.g. after deliberately retiring a key whose
/// secrets are no longer needed).
async fn assess(state: &AppState, detail: bool) -> (bool, Value) {
    let check = tokio::time::timeout(DEADLINE, probe(state, detail)).await;
    report(state, check.ok())
}

/// The verdict and report for a probe's outcome (`None`: it missed the deadline).
fn report(state: &AppState, check: Option<Probe>) -> (bool, Value) {
    let unknown = || json!({ "status": "unknown" });
    let mut kms_report = None;
    let (ready, database, keks, migrations) = match check {
        Some(Ok((status, schema, rows, kms))) => {
            let allow_missing = state.config.allow_missing_keks;
            let keks_ok = status.is_valid() && (status.missing.is_empty() || allow_missing);
            let kek_status = if !status.is_valid() {
                "mismatch"
            } else if status.missing.is_empty() {
                "ok"
            } else if allow_missing {
                "degraded"
            } else {
                "missing"
            };
            let missing: Vec<&str> = status.missing.iter().map(|(id, _)| id.as_str()).collect();
            let mut keks = json!({
                "status": kek_status,
                "active": state.keyring.active().id().as_str(),
                "mismatched": status.mismatched,
                "missing": missing,
            });
            if let Some(rows) = rows {
                let rows: Map<String, Value> =
                    rows.into_iter().map(|(k, n)| (k, json!(n))).collect();
                keks["rows"] = Value::Object(rows);
                keks["ring"] = json!(state
                    .keyring
                    .iter()
                    .map(|k| k.id().as_str())
                    .collect::<Vec<_>>());
            }
            let migrations = json!({
                "status": schema.status(),
                "pending": schema.pending,
                "ahead": schema.ahead,
            });
            // A KMS that cannot wrap and unwrap fails closed: not ready.
            let kms_ok = kms.as_ref().is_none_or(|k| k.status == "ok");
            kms_report = kms.map(|k| json!(k));
            (
                keks_ok && kms_ok && schema.pending.is_empty(),
                "ok",
                keks,
                migrations,
            )
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database error");
            (false, "error", unknown(), unknown())
        }
        None => (false, "timeout", unknown(), unknown()),
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": database,
        "keks": keks,
        "migrations": migrations,
    });
    let mut body = body;
    if let Some(kms) = kms_report {
        body["kms"] = kms;
    }
    (ready, body)
}

//! Secrets: list and read metadata, reveal, mark ingested, crypto-shred.

use super::json::{limit, ApiQuery};
use super::views::{ErrorBody, Revealed, SecretList, SecretView};
use super::{parse_id, provider_filter, text_filter, ErrorResponse};
use crate::crypto::{Context, CryptoError};
use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::kms::{KeyError, KmsError};
use crate::store::actions;
use crate::store::audit::{self, NewEvent};
use crate::store::secrets::{self, Filter, SecretMeta};
use crate::webhooks;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use uuid::Uuid;
use zeroize::Zeroizing;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list))
        .route("/secrets/{id}", get(show).delete(shred))
        .route("/secrets/{id}/reveal", post(reveal))
        .route("/secrets/{id}/ingested", post(ingested))
        .route("/secrets/{id}/check", post(check))
}

pub(super) const STATUSES: [&str; 4] = ["received", "revealed", "ingested", "shredded"];
const NOT_FOUND: &str = "no secret with that id";

/// `GET /api/v1/secrets` query; every filter is optional, they combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    #[param(schema_with = super::schema::secret_status_filter)]
    status: Option<String>,
    #[param(schema_with = super::schema::provider_filter)]
    provider: Option<String>,
    /// Exact match.
    #[param(schema_with = super::schema::filter)]
    organization: Option<String>,
    /// 1-1000, default 1000; outside that range is a 400, never clamped.
    #[param(schema_with = super::schema::limit)]
    limit: Option<String>,
}

/// Lists secrets' metadata, newest first (scope `read`).
#[utoipa::path(
    get, path = "/api/v1/secrets", tag = "secrets",
    params(ListQuery),
    responses(
        (status = 200, description = "Secrets (never their contents)", body = SecretList),
        (status = 400, response = ErrorResponse), (status = 403, response = ErrorResponse),
    ),
    security(("staffToken" = ["read"]))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    staff: Staff,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<SecretList>, ApiError> {
    staff.require(Scope::Read)?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(
            "invalid_filter",
            format!("unknown status {s:?}: use one of {}", STATUSES.join(", ")),
        ));
    }
    let filter = Filter {
        status,
        provider: provider_filter(q.provider.as_deref())?,
        organization: text_filter(q.organization.as_deref(), "organization")?,
    };
    let limit = limit(q.limit.as_deref(), 1000, 1000)?;
    let items = secrets::list(&state.db, filter, limit).await?;
    let items = items.into_iter().map(SecretView::from).collect();
    Ok(Json(SecretList { items }))
}

/// One secret's metadata with its last check result (scope `read`).
#[utoipa::path(
    get, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "Metadata", body = SecretView),
        (status = 403, response = ErrorResponse), (status = 404, response = ErrorResponse),
    ),
    security(("staffToken" = ["read"]))
)]
pub(super) async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    staff.require(Scope::Read)?;
    let id = parse_id(&id, NOT_FOUND)?;
    secrets::get(&state.db, id)
        .await?
        .map(|m| Json(m.into()))
        .ok_or(ApiError::NotFound(NOT_FOUND))
}

/// Decrypts and returns the credential (scope `reveal`). The audit event
/// commits before anything is returned: no record, no reveal. Two
/// round-trips: the row is read and opened, then one statement
/// (`store::actions::reveal`) locks it, moves it to `revealed` and writes the
/// event and the webhook message; if it was shredded in between, that
/// statement writes nothing and the answer is the 409 of a shredded secret.
/// The answer carries `Cache-Control: no-store`.
#[utoipa::path(
    post, path = "/api/v1/secrets/{id}/reveal", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "The credential, with `Cache-Control: no-store`", body = Revealed),
        (status = 403, response = ErrorResponse), (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
        (status = 500, description = "`kek_unavailable` when the secret's KEK is not configured, `internal` when it fails to decrypt", body = ErrorBody),
        (status = 503, description = "`kms_unavailable` when the KMS holding the secret's key cannot be asked (down, slow, refusing)", body = ErrorBody),
    ),
    security(("staffToken" = ["reveal"]))
)]
pub(super) async fn reveal(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    staff.require(Scope::Reveal)?;
    let id = parse_id(&id, NOT_FOUND)?;
    let sealed = secrets::sealed(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound(NOT_FOUND))?;
    let shredded = || {
        ApiError::conflict(
            "shredded",
            "this secret was shredded; its ciphertext no longer exists",
        )
    };
    let Some(envelope) = sealed.envelope else {
        return Err(shredded());
    };
    let meta = sealed.meta;
    let ctx = Context {
        secret_id: id,
        provider: &meta.provider,
    };
    let opened = match state.keys.open(ctx, &envelope).await {
        Ok(o) => o,
        Err(e) => {
            // A missing KEK, tampering, a mismatched key or an unreachable KMS:
            // record the failure, then answer (generically, unless the cause is
            // a missing KEK or the KMS: those the operator can fix).
            audit::record(
                &state.db,
                NewEvent::failure(&staff.actor, "secret.revealed", "failure")
                    .secret(id)
                    .detail(json!({ "error": e.to_string(), "kek_id": envelope.kek_id })),
            )
            .await?;
            return Err(match e {
                KeyError::Crypto(CryptoError::UnknownKek(kek)) => ApiError::KekUnavailable(kek),
                KeyError::Kms(KmsError::NotMine(kek)) => ApiError::KekUnavailable(kek),
                KeyError::Kms(e) if e.is_unavailable() => ApiError::KmsUnavailable(e.to_string()),
                e => ApiError::Internal(anyhow::anyhow!("secret {id} failed to decrypt: {e}")),
            });
        }
    };
    let plaintext = opened.plaintext;
    let fields: BTreeMap<String, Zeroizing<String>> =
        serde_json::from_slice(&plaintext).map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("secret {id} decrypted to invalid JSON"))
        })?;
    drop(plaintext);
    let message = webhooks::message(&webhooks::Event::SecretRevealed {
        secret_id: id,
        request_id: meta.request_id,
        organization: &meta.organization,
        provider: &meta.provider,
        revealed_by: &staff.name,
    });
    let mut detail = json!({ "provider": meta.provider, "kek_id": envelope.kek_id });
    if let Some(kms) = &opened.kms {
        // The KMS key and request id join this event with the KMS's own audit log.
        detail["kms"] = json!(kms);
    }
    let event = NewEvent::success(&staff.actor, "secret.revealed")
        .secret(id)
        .request(meta.request_id)
        .detail(detail);
    if !actions::reveal(&state.db, id, event, vec![message]).await? {
        return Err(shredded());
    }
    state.metrics.reveal(&meta.provider);
    tracing::info!(secret_id = %id, staff = %staff.name, "secret revealed");
    let body = Revealed {
        id,
        provider: meta.provider,
        organization: meta.organization,
        fields,
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Moves a secret along its lifecycle, answering 409 for impossible moves.
async fn transition(
    state: &AppState,
    staff: &Staff,
    id: Uuid,
    to: &'static str,
    action: &'static str,
) -> Result<SecretMeta, ApiError> {
    let mut tx = state.db.begin().await?;
    let locked = secrets::lock(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound(NOT_FOUND))?;
    let from = locked.meta.status.as_str();
    let allowed = match to {
        "ingested" => from == "revealed",
        "shredded" => from != "shredded",
        _ => false,
    };
    if !allowed {
        let message = match (from, to) {
            ("shredded", _) => "this secret was already shredded".to_owned(),
            ("received", "ingested") => "reveal the secret before marking it ingested".to_owned(),
            ("ingested", "ingested") => "this secret was already marked ingested".to_owned(),
            _ => format!("this secret is {from} and cannot become {to}"),
        };
        return Err(ApiError::conflict("invalid_transition", message));
    }
    secrets::set_status(&mut tx, id, to).await?;
    audit::record(
        &mut *tx,
        NewEvent::success(&staff.actor, action)
            .secret(id)
            .request(locked.meta.request_id)
            .detail(json!({ "from": from })),
    )
    .await?;
    if to == "shredded" {
        webhooks::enqueue(
            &mut *tx,
            &webhooks::Event::SecretShredded {
                secret_id: id,
                request_id: locked.meta.request_id,
                organization: &locked.meta.organization,
                provider: &locked.meta.provider,
                shredded_by: &staff.name,
            },
        )
        .await?;
    }
    tx.commit().await?;
    secrets::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound(NOT_FOUND))
}

/// Marks a revealed secret ingested (scope `reveal`).
#[utoipa::path(
    post, path = "/api/v1/secrets/{id}/ingested", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "Metadata", body = SecretView),
        (status = 403, response = ErrorResponse), (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("staffToken" = ["reveal"]))
)]
pub(super) async fn ingested(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    staff.require(Scope::Reveal)?;
    let id = parse_id(&id, NOT_FOUND)?;
    transition(&state, &staff, id, "ingested", "secret.ingested")
        .await
        .map(|m| Json(m.into()))
}

/// Crypto-shreds a secret: its ciphertext and wrapped key are deleted,
/// metadata stays (scope `admin`).
#[utoipa::path(
    delete, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "The tombstone", body = SecretView),
        (status = 403, response = ErrorResponse), (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("staffToken" = ["admin"]))
)]
pub(super) async fn shred(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    staff.require(Scope::Admin)?;
    let id = parse_id(&id, NOT_FOUND)?;
    transition(&state, &staff, id, "shredded", "secret.shredded")
        .await
        .map(|m| Json(m.into()))
}

/// Re-runs the provider's live check and stores the result (scope `reveal`).
#[utoipa::path(
    post, path = "/api/v1/secrets/{id}/check", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "Metadata with the new check result", body = SecretView),
        (status = 403, response = ErrorResponse), (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
        (status = 500, description = "`kek_unavailable` when the secret's KEK is not configured", body = ErrorBody),
        (status = 503, description = "`kms_unavailable` when the KMS holding the secret's key cannot be asked", body = ErrorBody),
    ),
    security(("staffToken" = ["reveal"]))
)]
pub(super) async fn check(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    use crate::service::checks::{recheck, RecheckError};
    staff.require(Scope::Reveal)?;
    let id = parse_id(&id, NOT_FOUND)?;
    match recheck(&state.db, &state.keys, &state.checker, &staff.actor, id).await {
        Ok((meta, _)) => Ok(Json(meta.into())),
        Err(RecheckError::NotFound) => Err(ApiError::NotFound(NOT_FOUND)),
        Err(RecheckError::Shredded) => Err(ApiError::conflict(
            "shredded",
            "this secret was shredded; there is nothing to check",
        )),
        Err(RecheckError::KekUnavailable(k)) => Err(ApiError::KekUnavailable(k)),
        Err(RecheckError::KmsUnavailable(e)) => Err(ApiError::KmsUnavailable(e.to_string())),
        Err(RecheckError::Crypto(e)) => Err(ApiError::Internal(anyhow::anyhow!(
            "secret {id} failed to decrypt: {e}"
        ))),
        Err(RecheckError::Db(e)) => Err(e.into()),
    }
}

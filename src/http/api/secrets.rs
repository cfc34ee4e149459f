//! Secrets: list and read metadata, reveal, mark ingested, crypto-shred.

use super::json::{limit, ApiQuery, OptionalJsonBody};
use super::views::{ErrorBody, ReasonBody, Revealed, SecretList, SecretView};
use super::{parse_id, provider_filter, text_filter, ErrorResponse};
use crate::domain::{Reason, Scope, SecretStatus};
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::service::checks::recheck;
use crate::service::secrets as service;
use crate::store::secrets::{self, Filter};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list))
        .route("/secrets/{id}", get(show).delete(shred))
        .route("/secrets/{id}/reveal", post(reveal))
        .route("/secrets/{id}/ingested", post(ingested))
        .route("/secrets/{id}/check", post(check))
}

const NOT_FOUND: &str = crate::http::error::SECRET_NOT_FOUND;

/// The secret an action names, once the token has `scope`: a malformed id
/// names nothing, so it is a 404.
fn secret_id(staff: &Staff, scope: Scope, raw: &str) -> Result<Uuid, ApiError> {
    staff.require(scope)?;
    parse_id(raw, NOT_FOUND)
}

/// The reason an optional `{"reason": …}` body gives, read as the console
/// reads one (`domain::Reason`); a bad one is a 422 naming the field.
fn reason(body: Option<ReasonBody>) -> Result<Option<Reason>, ApiError> {
    body.and_then(|b| b.reason)
        .map(|r| Reason::parse(&r).map_err(|e| ApiError::Invalid(format!("reason {e}"))))
        .transpose()
}

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
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<SecretStatus>)
        .transpose()
        .map_err(|m| ApiError::bad_request("invalid_filter", m))?;
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
    let id = secret_id(&staff, Scope::Read, &id)?;
    secrets::get(&state.db, id)
        .await?
        .map(|m| Json(m.into()))
        .ok_or(ApiError::NotFound(NOT_FOUND))
}

/// Decrypts and returns the credential (scope `reveal`). The audit event
/// (with the body's `reason`, when given) commits before anything is
/// returned: no record, no reveal. Two round-trips: the row is read and
/// opened, then one statement (`store::actions::reveal`) locks it, moves it
/// to `revealed` and writes the event and the webhook message; if it was
/// shredded in between, that statement writes nothing and the answer is the
/// 409 of a shredded secret. The answer carries `Cache-Control: no-store`.
#[utoipa::path(
    post, path = "/api/v1/secrets/{id}/reveal", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    request_body(content = Option<ReasonBody>, description = "Optional: why, recorded in the audit event (`detail.reason`). No body records no reason."),
    responses(
        (status = 200, description = "The credential, with `Cache-Control: no-store`", body = Revealed),
        (status = 400, response = ErrorResponse), (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse), (status = 409, response = ErrorResponse),
        (status = 413, response = ErrorResponse), (status = 415, response = ErrorResponse),
        (status = 422, response = ErrorResponse),
        (status = 500, description = "`kek_unavailable` when the secret's KEK is not configured, `internal` when it fails to decrypt", body = ErrorBody),
        (status = 503, description = "`kms_unavailable` when the KMS holding the secret's key cannot be asked (down, slow, refusing)", body = ErrorBody),
    ),
    security(("staffToken" = ["reveal"]))
)]
pub(super) async fn reveal(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReasonBody>,
) -> Result<Response, ApiError> {
    let id = secret_id(&staff, Scope::Reveal, &id)?;
    let why = reason(body)?;
    let revealed = service::reveal(
        &state.db,
        &state.keys,
        &staff.actor,
        id,
        why.as_ref().map(Reason::as_str),
    )
    .await?;
    state.metrics.reveal(&revealed.meta.provider);
    let body = Revealed {
        id,
        provider: revealed.meta.provider,
        organization: revealed.meta.organization,
        fields: revealed.fields,
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
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
    let id = secret_id(&staff, Scope::Reveal, &id)?;
    let meta = service::mark_ingested(&state.db, &staff.actor, id).await?;
    Ok(Json(meta.into()))
}

/// Crypto-shreds a secret: its ciphertext and wrapped key are deleted,
/// metadata stays (scope `admin`). The body's `reason`, when given, is
/// recorded in the `secret.shredded` event.
#[utoipa::path(
    delete, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = Uuid, Path, description = "The secret's id")),
    request_body(content = Option<ReasonBody>, description = "Optional: why, recorded in the audit event (`detail.reason`). No body records no reason."),
    responses(
        (status = 200, description = "The tombstone", body = SecretView),
        (status = 400, response = ErrorResponse), (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse), (status = 409, response = ErrorResponse),
        (status = 413, response = ErrorResponse), (status = 415, response = ErrorResponse),
        (status = 422, response = ErrorResponse),
    ),
    security(("staffToken" = ["admin"]))
)]
pub(super) async fn shred(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReasonBody>,
) -> Result<Json<SecretView>, ApiError> {
    let id = secret_id(&staff, Scope::Admin, &id)?;
    let why = reason(body)?;
    let meta = service::shred(
        &state.db,
        &staff.actor,
        id,
        why.as_ref().map(Reason::as_str),
    )
    .await?;
    Ok(Json(meta.into()))
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
    let id = secret_id(&staff, Scope::Reveal, &id)?;
    let (meta, _) = recheck(&state.db, &state.keys, &state.checker, &staff.actor, id).await?;
    Ok(Json(meta.into()))
}

//! Drop links: create, list, revoke.

use super::json::JsonBody;
use super::parse_id;
use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::service::links::{self, LinkInput, RawLink, RevokeError};
use crate::store::requests::{self, DropRequest};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/requests", get(list).post(create))
        .route("/requests/{id}", delete(revoke))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    organization: String,
    provider: String,
    expires_in: Option<String>,
    max_uses: Option<i64>,
    contact_email: Option<String>,
    note: Option<String>,
}

/// The API view of a link (never its token).
fn view(r: &DropRequest) -> Value {
    json!({
        "id": r.id,
        "organization": r.organization,
        "provider": r.provider,
        "status": r.state(Utc::now()),
        "contact_email": r.contact_email,
        "note": r.note,
        "created_by": r.created_by_name,
        "max_uses": r.max_uses,
        "use_count": r.use_count,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "used_at": r.used_at,
        "revoked_at": r.revoked_at,
    })
}

async fn create(
    State(state): State<AppState>,
    staff: Staff,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    staff.require(Scope::Request)?;
    let input = LinkInput::parse(
        RawLink {
            organization: &body.organization,
            provider: &body.provider,
            expires_in: body.expires_in.as_deref(),
            max_uses: body.max_uses,
            contact_email: body.contact_email.as_deref(),
            note: body.note.as_deref(),
        },
        state.config.link_ttl,
    )
    .map_err(ApiError::Invalid)?;
    let created = links::create(&state.db, &state.config.public_url, &staff.actor, &input).await?;
    let mut out = view(&created.request);
    out["url"] = json!(created.url);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list(State(state): State<AppState>, staff: Staff) -> Result<Json<Value>, ApiError> {
    if staff.require(Scope::Read).is_err() {
        staff.require(Scope::Request)?;
    }
    let items: Vec<Value> = requests::list(&state.db, 500)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    staff.require(Scope::Request)?;
    let id = parse_id(&id, "no drop link with that id")?;
    match links::revoke(&state.db, &staff.actor, id).await {
        Ok(r) => Ok(Json(view(&r))),
        Err(RevokeError::NotFound) => Err(ApiError::NotFound("no drop link with that id")),
        Err(RevokeError::AlreadyRevoked) => Err(ApiError::conflict(
            "already_revoked",
            "the link was already revoked",
        )),
        Err(RevokeError::Db(e)) => Err(e.into()),
    }
}

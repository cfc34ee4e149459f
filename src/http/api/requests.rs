//! Drop links: create, list, revoke.

use super::json::{limit, ApiQuery, JsonBody};
use super::{parse_id, provider_filter, text_filter};
use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::service::links::{self, LinkInput, RawLink, RevokeError};
use crate::store::requests::{self, DropRequest, LinkState};
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

/// `GET /api/v1/requests` query; every filter is optional, they combine with AND.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    provider: Option<String>,
    organization: Option<String>,
    limit: Option<String>,
}

/// Newest first, at most `limit` (1-1000, default 500).
async fn list(
    State(state): State<AppState>,
    staff: Staff,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    if staff.require(Scope::Read).is_err() {
        staff.require(Scope::Request)?;
    }
    let status = q
        .status
        .as_deref()
        .map(|s| {
            LinkState::parse(s).ok_or_else(|| {
                let all: Vec<_> = LinkState::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(
                    "invalid_filter",
                    format!("unknown status {s:?}: use one of {}", all.join(", ")),
                )
            })
        })
        .transpose()?;
    let filter = requests::Filter {
        state: status,
        provider: provider_filter(q.provider.as_deref())?,
        organization: text_filter(q.organization.as_deref(), "organization")?,
    };
    let limit = limit(q.limit.as_deref(), 500, 1000)?;
    let items: Vec<Value> = requests::list(&state.db, filter, limit)
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
        Err(e @ RevokeError::NotRevocable(state)) => Err(ApiError::conflict(
            match state {
                LinkState::Revoked => "already_revoked",
                LinkState::Used => "link_used",
                LinkState::Expired => "link_expired",
                LinkState::Pending => "conflict",
            },
            e.to_string(),
        )),
        Err(RevokeError::Db(e)) => Err(e.into()),
    }
}

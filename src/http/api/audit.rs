//! The audit trail, read-only: filters and cursor pagination.

use super::json::{limit, ApiQuery};
use super::views::AuditPage;
use super::{text_filter, ErrorResponse};
use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::audit;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

/// `GET /api/v1/audit` query. Every filter is optional; they combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Filter {
    #[param(schema_with = super::schema::uuid_filter)]
    secret_id: Option<String>,
    /// The drop link's id. `link_id` is accepted as another name for it (not
    /// listed here: giving both with different ids is a 400).
    #[param(schema_with = super::schema::uuid_filter)]
    request_id: Option<String>,
    #[param(ignore)]
    link_id: Option<String>,
    /// A token name, a token id, or an actor kind (`public`, `cli`, `system`, `staff`).
    #[param(schema_with = super::schema::filter)]
    actor: Option<String>,
    /// An exact action, or a prefix ending in `.*` such as `secret.*`.
    #[param(schema_with = super::schema::filter)]
    action: Option<String>,
    /// RFC 3339; inclusive.
    #[param(schema_with = super::schema::time_filter)]
    since: Option<String>,
    /// RFC 3339; exclusive.
    #[param(schema_with = super::schema::time_filter)]
    until: Option<String>,
    /// `next_cursor` from the previous page.
    #[param(schema_with = super::schema::cursor)]
    cursor: Option<String>,
    /// 1-1000, default 100; outside that range is a 400, never clamped.
    #[param(schema_with = super::schema::limit)]
    limit: Option<String>,
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

fn opt_time(v: Option<String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_filter",
                        format!("{name} must be an RFC 3339 time such as 2026-11-28T09:00:00Z"),
                    )
                })
        })
        .transpose()
}

fn opt_text(v: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    let v = v.map(|s| s.trim().to_owned());
    Ok(text_filter(v.as_deref(), name)?.map(str::to_owned))
}

/// Audit events, newest first, paged with a cursor (scope `read`).
/// `next_cursor` is set when more events may follow.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(Filter),
    responses(
        (status = 200, description = "Events", body = AuditPage),
        (status = 400, response = ErrorResponse), (status = 403, response = ErrorResponse),
    ),
    security(("staffToken" = ["read"]))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    staff: Staff,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Json<AuditPage>, ApiError> {
    staff.require(Scope::Read)?;
    let limit = limit(f.limit.as_deref(), 100, 1000)?;
    let request_id = match (
        opt_uuid(f.request_id, "request_id")?,
        opt_uuid(f.link_id, "link_id")?,
    ) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::bad_request(
                "invalid_filter",
                "request_id and link_id name the same thing; give one",
            ))
        }
        (a, b) => a.or(b),
    };
    let cursor = opt_text(f.cursor, "cursor")?
        .map(|c| {
            c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor must be a next_cursor value from an earlier page",
                )
            })
        })
        .transpose()?;
    let q = audit::Query {
        secret_id: opt_uuid(f.secret_id, "secret_id")?,
        request_id,
        actor: opt_text(f.actor, "actor")?,
        action: opt_text(f.action, "action")?,
        since: opt_time(f.since, "since")?,
        until: opt_time(f.until, "until")?,
        cursor,
        ascending: false,
    };
    let events = audit::list(&state.db, &q, limit).await?;
    let next_cursor = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        items: events,
        next_cursor,
    }))
}

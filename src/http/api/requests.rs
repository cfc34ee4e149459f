//! Drop links: create, list, revoke, send again by email.

use super::json::{limit, ApiQuery, JsonBody};
use super::views::{CreatedLink, EmailStatus, ErrorBody, LinkList, LinkView, NewLink};
use super::{parse_id, provider_filter, text_filter, ErrorResponse};
use crate::domain::Scope;
use crate::http::error::ApiError;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::service::links::{self, CreateError, LinkInput, RawLink, ResendError, RevokeError};
use crate::store::mail;
use crate::store::requests::{self, LinkState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/requests", get(list).post(create))
        .route("/requests/{id}", delete(revoke))
        .route("/requests/{id}/resend", post(resend))
}

/// Creates a drop link; the answer's `url` is the only copy of its token.
#[utoipa::path(
    post, path = "/api/v1/requests", tag = "links",
    request_body = NewLink,
    responses(
        (status = 201, description = "Created; `url` holds the only copy of the link token (none with `send_to`: the token is in the email only)", body = CreatedLink),
        (status = 400, response = ErrorResponse), (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse), (status = 413, response = ErrorResponse),
        (status = 415, response = ErrorResponse), (status = 422, response = ErrorResponse),
    ),
    security(("staffToken" = ["request"]))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    staff: Staff,
    JsonBody(body): JsonBody<NewLink>,
) -> Result<(StatusCode, Json<CreatedLink>), ApiError> {
    staff.require(Scope::Request)?;
    let input = LinkInput::parse(
        RawLink {
            organization: &body.organization,
            provider: &body.provider,
            expires_in: body.expires_in.as_deref(),
            max_uses: body.max_uses,
            contact_email: body.contact_email.as_deref(),
            note: body.note.as_deref(),
            send_to: body.send_to.as_deref(),
        },
        state.config.link_ttl,
    )
    .map_err(ApiError::Invalid)?;
    if input.send_to.is_some() && !state.config.mail.enabled() {
        return Err(ApiError::Invalid(
            "send_to: email is off on this server (KEYDROP_SMTP_URL is not set); create the link without send_to and send the URL yourself".into(),
        ));
    }
    let created = links::create(
        &state.db,
        &state.keyring,
        &state.config.public_url,
        &staff.actor,
        &input,
    )
    .await
    .map_err(|e| match e {
        CreateError::Db(e) => ApiError::from(e),
        e @ CreateError::Crypto(_) => ApiError::Internal(e.into()),
    })?;
    let mut link = LinkView::new(&created.request, Utc::now());
    if created.url.is_none() {
        link.email = Some(EmailStatus::Queued);
    }
    let out = CreatedLink {
        link,
        url: created.url,
    };
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/requests` query; every filter is optional, they combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    #[param(schema_with = super::schema::link_status_filter)]
    status: Option<String>,
    #[param(schema_with = super::schema::provider_filter)]
    provider: Option<String>,
    /// Exact match.
    #[param(schema_with = super::schema::filter)]
    organization: Option<String>,
    /// 1-1000, default 500; outside that range is a 400, never clamped.
    #[param(schema_with = super::schema::limit)]
    limit: Option<String>,
}

/// Lists drop links, newest first (scope `read` or `request`).
#[utoipa::path(
    get, path = "/api/v1/requests", tag = "links",
    params(ListQuery),
    responses(
        (status = 200, description = "Links", body = LinkList),
        (status = 400, response = ErrorResponse), (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
    ),
    security(("staffToken" = ["read"]), ("staffToken" = ["request"]))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    staff: Staff,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<LinkList>, ApiError> {
    if staff.require(Scope::Read).is_err() {
        staff.require(Scope::Request)?;
    }
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
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
    let now = Utc::now();
    let links = requests::list(&state.db, filter, limit).await?;
    let ids: Vec<_> = links.iter().map(|r| r.id).collect();
    let mails = mail::link_status(&state.db, &ids).await?;
    let items = links
        .iter()
        .map(|r| LinkView::new(r, now).with_email(mails.iter().find(|m| m.request_id == r.id)))
        .collect();
    Ok(Json(LinkList { items }))
}

/// Revokes a drop link that can still be used (scope `request`).
#[utoipa::path(
    delete, path = "/api/v1/requests/{id}", tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id")),
    responses(
        (status = 200, description = "The revoked link", body = LinkView),
        (status = 401, response = ErrorResponse), (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, description = "The link cannot be used any more, so revoking it would only rewrite its history; `code` names its real state: `already_revoked`, `link_used` or `link_expired`", body = ErrorBody),
    ),
    security(("staffToken" = ["request"]))
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<LinkView>, ApiError> {
    staff.require(Scope::Request)?;
    let id = parse_id(&id, "no drop link with that id")?;
    match links::revoke(&state.db, &staff.actor, id).await {
        Ok(r) => {
            let mails = mail::link_status(&state.db, &[r.id]).await?;
            Ok(Json(
                LinkView::new(&r, Utc::now()).with_email(mails.first()),
            ))
        }
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

/// Sends a link's email again (scope `request`), to the address its latest
/// email went to. No body: the address cannot be changed here, since the
/// first recipient would keep a working link; for another address, revoke
/// the link and create a new one with `send_to`. The token is again in the
/// email only; the answer is the link with `email: queued`.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/resend", tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id")),
    responses(
        (status = 202, description = "The email is queued again; the link, with `email: queued`", body = LinkView),
        (status = 401, response = ErrorResponse), (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, description = "Not sent again; `code` says why: `link_used`, `link_expired` or `link_revoked` (only a link that can still be used is sent), `not_emailed` (the link was never emailed, so no copy of its token is kept), `email_queued` (its email is still waiting), `email_off` (no SMTP settings on this server)", body = ErrorBody),
    ),
    security(("staffToken" = ["request"]))
)]
pub(super) async fn resend(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<LinkView>), ApiError> {
    staff.require(Scope::Request)?;
    let id = parse_id(&id, "no drop link with that id")?;
    let email_on = state.config.mail.enabled();
    match links::resend(&state.db, &staff.actor, id, email_on).await {
        Ok(r) => {
            let mails = mail::link_status(&state.db, &[r.request.id]).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(LinkView::new(&r.request, Utc::now()).with_email(mails.first())),
            ))
        }
        Err(ResendError::NotFound) => Err(ApiError::NotFound("no drop link with that id")),
        Err(ResendError::Db(e)) => Err(e.into()),
        Err(e) => Err(ApiError::conflict(resend_code(&e), e.to_string())),
    }
}

/// The `code` of a refused resend.
fn resend_code(e: &ResendError) -> &'static str {
    match e {
        ResendError::NotUsable(LinkState::Used) => "link_used",
        ResendError::NotUsable(LinkState::Expired) => "link_expired",
        ResendError::NotUsable(LinkState::Revoked) => "link_revoked",
        ResendError::NotEmailed => "not_emailed",
        ResendError::StillQueued(_) => "email_queued",
        ResendError::EmailOff => "email_off",
        _ => "conflict",
    }
}

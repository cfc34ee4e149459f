//! Drop links in the console: list with status filter and search (and the
//! state of each link's email), create (the URL shown once, or emailed to the
//! customer), revoke, send the email again. All through `service::links`,
//! like the API and the CLI.

use super::session::console;
use super::{ConsoleError, ConsoleUser};
use crate::domain::Scope;
use crate::http::pages::render;
use crate::http::AppState;
use crate::providers::{Provider, PROVIDERS};
use crate::service::links::{self, LinkInput, RawLink, ResendError, RevokeError};
use crate::store::mail::{self, LinkEmail};
use crate::store::requests::{self, DropRequest, Filter, LinkState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

pub async fn home(_user: ConsoleUser) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/links")]).into_response()
}

/// One row of the list.
pub struct LinkRow {
    pub id: String,
    pub organization: String,
    pub provider: String,
    pub contact: String,
    pub state: &'static str,
    pub uses: String,
    pub created: String,
    pub expires: String,
    pub created_by: String,
    pub revocable: bool,
    /// The link's email: `queued`, `sent`, `failed`, or empty (not emailed).
    pub email: &'static str,
    pub email_error: String,
    /// Pending, emailed, and its email no longer queued.
    pub resendable: bool,
}

#[derive(Template)]
#[template(path = "console/links.html")]
struct LinksPage<'a> {
    user: &'a ConsoleUser,
    rows: Vec<LinkRow>,
    status: String,
    q: String,
    providers: &'static [&'static Provider],
    error: Option<String>,
    form: CreateForm,
    /// SMTP is configured: offer the "email it" box.
    email_on: bool,
}

#[derive(Template)]
#[template(path = "console/link_created.html")]
struct CreatedPage<'a> {
    user: &'a ConsoleUser,
    /// Empty when the link was emailed: its token is in that email only.
    url: String,
    emailed_to: String,
    organization: String,
    provider: String,
    expires: String,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Scope::Read)?;
    page(
        &state,
        &user,
        q,
        None,
        CreateForm::default(),
        StatusCode::OK,
    )
    .await
}

async fn page(
    state: &AppState,
    user: &ConsoleUser,
    q: ListQuery,
    error: Option<String>,
    form: CreateForm,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let status_filter = q.status.unwrap_or_default();
    let filter_state = match status_filter.as_str() {
        "" | "all" => None,
        s => Some(LinkState::parse(s).ok_or_else(|| {
            ConsoleError::BadRequest(format!(
                "unknown status {s:?}: use pending, used, expired or revoked"
            ))
        })?),
    };
    let search = q.q.unwrap_or_default();
    let needle = search.trim().to_lowercase();
    let found = requests::list(
        &state.db,
        Filter {
            state: filter_state,
            ..Filter::default()
        },
        500,
    )
    .await?;
    let now = chrono::Utc::now();
    let found: Vec<_> = found
        .into_iter()
        .filter(|r| needle.is_empty() || matches(r, &needle))
        .collect();
    let ids: Vec<_> = found.iter().map(|r| r.id).collect();
    let mails = mail::link_status(&state.db, &ids).await?;
    let rows = found
        .into_iter()
        .map(|r| {
            let m = mails.iter().find(|m| m.request_id == r.id);
            row(r, m, now)
        })
        .collect();
    let html = render(&LinksPage {
        user,
        rows,
        status: status_filter,
        q: search,
        providers: PROVIDERS,
        error,
        form,
        email_on: state.config.mail.enabled(),
    });
    Ok((status, html).into_response())
}

fn matches(r: &DropRequest, needle: &str) -> bool {
    [
        Some(r.organization.as_str()),
        Some(r.provider.as_str()),
        r.contact_email.as_deref(),
        r.note.as_deref(),
        Some(r.created_by_name.as_str()),
    ]
    .into_iter()
    .flatten()
    .any(|s| s.to_lowercase().contains(needle))
        || r.id.to_string().starts_with(needle)
}

fn row(r: DropRequest, mail: Option<&LinkEmail>, now: chrono::DateTime<chrono::Utc>) -> LinkRow {
    let state = r.state(now);
    let email = match mail.map(|m| m.status.as_str()) {
        Some("sent") => "sent",
        Some("failed") => "failed",
        Some(_) => "queued",
        None => "",
    };
    LinkRow {
        email,
        email_error: mail.and_then(|m| m.error.clone()).unwrap_or_default(),
        resendable: state == LinkState::Pending && matches!(email, "sent" | "failed"),
        id: r.id.to_string(),
        organization: r.organization,
        provider: r.provider,
        contact: r.contact_email.unwrap_or_default(),
        state: state.as_str(),
        uses: format!("{} / {}", r.use_count, r.max_uses),
        created: stamp(r.created_at),
        expires: stamp(r.expires_at),
        created_by: r.created_by_name,
        revocable: state == LinkState::Pending,
    }
}

/// A time as the console shows it (UTC, to the minute).
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    pub organization: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub contact_email: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub expires_in: String,
    #[serde(default)]
    pub max_uses: String,
    /// "Email the link to the customer": empty means show the URL.
    #[serde(default)]
    pub send_to: String,
}

pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    let console = console(&state)?.clone();
    user.check_form(&console, &headers, &form.csrf_token)?;
    user.require(Scope::Request)?;
    let max_uses = match form.max_uses.trim() {
        "" => Ok(None),
        n => n
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("uses must be a whole number, not {n:?}")),
    };
    let parsed = max_uses.and_then(|max_uses| {
        LinkInput::parse(
            RawLink {
                organization: &form.organization,
                provider: &form.provider,
                expires_in: Some(form.expires_in.trim()).filter(|s| !s.is_empty()),
                max_uses,
                contact_email: Some(form.contact_email.as_str()),
                note: Some(form.note.as_str()),
                send_to: Some(form.send_to.as_str()).filter(|s| !s.trim().is_empty()),
            },
            state.config.link_ttl,
        )
        .map_err(|m| match m.strip_prefix("send_to") {
            // The API's field name, as the form labels it.
            Some(rest) => format!("Email the link to the customer{rest}"),
            None => m,
        })
    });
    let parsed = parsed.and_then(|i| {
        if i.send_to.is_some() && !state.config.mail.enabled() {
            Err("Email the link to the customer: email is off on this server (KEYDROP_SMTP_URL is not set); leave it empty and send the URL yourself".to_owned())
        } else {
            Ok(i)
        }
    });
    let input = match parsed {
        Ok(i) => i,
        Err(message) => {
            let q = ListQuery::default();
            return page(
                &state,
                &user,
                q,
                Some(message),
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let created = links::create(
        &state.db,
        &state.keyring,
        &state.config.public_url,
        &user.actor,
        &input,
    )
    .await
    .map_err(|e| ConsoleError::Internal(e.into()))?;
    Ok(render(&CreatedPage {
        user: &user,
        url: created.url.unwrap_or_default(),
        emailed_to: input.send_to.map(|e| e.to_string()).unwrap_or_default(),
        organization: created.request.organization,
        provider: created.request.provider,
        expires: stamp(created.request.expires_at),
    }))
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf_token: String,
}

/// What every action on one link checks first: the form's token, the
/// `request` scope, and the link's id.
fn link_action(
    state: &AppState,
    user: &ConsoleUser,
    headers: &HeaderMap,
    form: &TokenForm,
    id: &str,
) -> Result<uuid::Uuid, ConsoleError> {
    user.check_form(console(state)?, headers, &form.csrf_token)?;
    user.require(Scope::Request)?;
    id.parse()
        .map_err(|_| ConsoleError::NotFound("no drop link with that id"))
}

pub async fn revoke(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, ConsoleError> {
    let id = link_action(&state, &user, &headers, &form, &id)?;
    match links::revoke(&state.db, &user.actor, id).await {
        Ok(_) => Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/links")]).into_response()),
        Err(RevokeError::NotFound) => Err(ConsoleError::NotFound("no drop link with that id")),
        Err(e @ RevokeError::NotRevocable(_)) => Err(ConsoleError::Conflict(e.to_string())),
        Err(RevokeError::Db(e)) => Err(e.into()),
    }
}

/// Sends a link's email again, to the address it went to (`service::links::resend`).
pub async fn resend(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, ConsoleError> {
    let id = link_action(&state, &user, &headers, &form, &id)?;
    let email_on = state.config.mail.enabled();
    match links::resend(&state.db, &user.actor, id, email_on).await {
        Ok(_) => Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/links")]).into_response()),
        Err(ResendError::NotFound) => Err(ConsoleError::NotFound("no drop link with that id")),
        Err(ResendError::Db(e)) => Err(e.into()),
        Err(e) => Err(ConsoleError::Conflict(e.to_string())),
    }
}

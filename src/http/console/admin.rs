//! Admin pages: API tokens (create, shown once; list with last use; revoke)
//! and console sessions (list; revoke, which signs the person out at once).

use super::links::stamp;
use super::session::console;
use super::{ConsoleError, ConsoleUser};
use crate::domain::Scope;
use crate::http::pages::render;
use crate::http::AppState;
use crate::service;
use crate::service::tokens::{self, TokenError};
use crate::store::console as sessions;
use crate::store::tokens as token_store;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub state: &'static str,
    pub created: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage<'a> {
    user: &'a ConsoleUser,
    rows: Vec<TokenRow>,
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    user: &ConsoleUser,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let now = chrono::Utc::now();
    let rows = token_store::list(&state.db)
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "live"
            },
            name: t.name,
            scopes: t.scopes.join(", "),
            created: stamp(t.created_at),
            last_used: t.last_used_at.map_or("never".into(), stamp),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let html = render(&TokensPage {
        user,
        rows,
        created,
        error,
    });
    Ok((status, html).into_response())
}

pub async fn tokens(
    State(state): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Scope::Admin)?;
    tokens_page(&state, &user, None, None).await
}

#[derive(Deserialize)]
pub struct NewToken {
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires_in: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<NewToken>,
) -> Result<Response, ConsoleError> {
    user.check_form(console(&state)?, &headers, &form.csrf_token)?;
    user.require(Scope::Admin)?;
    match tokens::create(
        &state.db,
        &user.actor,
        &form.name,
        &form.scopes,
        Some(&form.expires_in),
    )
    .await
    {
        Ok((t, secret)) => {
            let shown = Some((t.name, secret.expose().to_owned()));
            tokens_page(&state, &user, shown, None).await
        }
        Err(TokenError::Db(e)) => Err(e.into()),
        Err(e) => tokens_page(&state, &user, None, Some(e.to_string())).await,
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf_token: String,
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

pub async fn revoke_token(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(console(&state)?, &headers, &form.csrf_token)?;
    user.require(Scope::Admin)?;
    let id = id
        .parse()
        .map_err(|_| ConsoleError::NotFound("no live token with that id"))?;
    match tokens::revoke(&state.db, &user.actor, id).await {
        Ok(_) => Ok(see_other("/tokens")),
        Err(TokenError::NotFound) => Err(ConsoleError::NotFound("no live token with that id")),
        Err(e) => Err(ConsoleError::Internal(e.into())),
    }
}

pub struct SessionRow {
    pub id: String,
    pub who: String,
    pub scopes: String,
    pub ip: String,
    pub created: String,
    pub last_seen: String,
    pub expires: String,
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage<'a> {
    user: &'a ConsoleUser,
    rows: Vec<SessionRow>,
}

pub async fn sessions(
    State(state): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Scope::Admin)?;
    let rows = sessions::list_live(&state.db)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id.to_string(),
            mine: s.id == user.session_id,
            who: s.email.unwrap_or(s.subject),
            scopes: s.scopes.join(", "),
            ip: s.client_ip.unwrap_or_default(),
            created: stamp(s.created_at),
            last_seen: stamp(s.last_seen_at),
            expires: stamp(s.expires_at),
        })
        .collect();
    Ok(render(&SessionsPage { user: &user, rows }))
}

pub async fn revoke_session(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(console(&state)?, &headers, &form.csrf_token)?;
    user.require(Scope::Admin)?;
    let id = id
        .parse()
        .map_err(|_| ConsoleError::NotFound("no live session with that id"))?;
    if !service::sessions::revoke(&state.db, &user.actor, id).await? {
        return Err(ConsoleError::NotFound("no live session with that id"));
    }
    Ok(see_other("/sessions"))
}

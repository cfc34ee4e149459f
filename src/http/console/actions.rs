//! The secret actions that change state: reveal (with a reason), mark
//! ingested, shred (admin, with a reason and a confirmation). Each is one
//! call to `service::secrets`, the function the API and CLI call, so the
//! audit events and webhooks are the same; the actor is the person.

use super::session::console;
use super::{ConsoleError, ConsoleUser};
use crate::domain::{Reason, Scope};
use crate::http::pages::render;
use crate::http::AppState;
use crate::service::secrets::{self, SecretError};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use uuid::Uuid;

const NOT_FOUND: &str = "no secret with that id";
/// Seconds a revealed value stays on the page.
pub const SHOWN_FOR_SECS: u32 = 60;

impl From<SecretError> for ConsoleError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::NotFound => ConsoleError::NotFound(NOT_FOUND),
            SecretError::Shredded => ConsoleError::Conflict(
                "this secret was shredded; its ciphertext no longer exists".into(),
            ),
            e @ SecretError::Transition { .. } => ConsoleError::Conflict(e.to_string()),
            SecretError::KekUnavailable(k) => ConsoleError::Conflict(format!(
                "the key that encrypted this secret (KEK {k:?}) is not configured on this server"
            )),
            SecretError::KmsUnavailable(e) => ConsoleError::KmsUnavailable(e.to_string()),
            e => ConsoleError::Internal(e.into()),
        }
    }
}

/// The secret a form acts on, once the form's token checks out and the
/// person has `scope`: every action starts here.
fn acting_on(
    state: &AppState,
    user: &ConsoleUser,
    headers: &HeaderMap,
    form: &ReasonForm,
    scope: Scope,
    id: &str,
) -> Result<Uuid, ConsoleError> {
    user.check_form(console(state)?, headers, &form.csrf_token)?;
    user.require(scope)?;
    id.parse().map_err(|_| ConsoleError::NotFound(NOT_FOUND))
}

/// A reason as the audit trail keeps it (`domain::Reason`).
fn reason(raw: &str) -> Result<Reason, ConsoleError> {
    Reason::parse(raw).map_err(|_| {
        ConsoleError::BadRequest(
            "give a reason of 3 to 500 characters on one line; it is written into the audit trail"
                .into(),
        )
    })
}

#[derive(Deserialize)]
pub struct ReasonForm {
    csrf_token: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// One revealed field, masked until shown.
pub struct FieldShown {
    pub name: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "console/reveal.html")]
struct RevealPage<'a> {
    user: &'a ConsoleUser,
    id: String,
    organization: String,
    provider: String,
    fields: Vec<FieldShown>,
    seconds: u32,
}

pub async fn reveal(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, ConsoleError> {
    let id = acting_on(&state, &user, &headers, &form, Scope::Reveal, &id)?;
    let why = reason(&form.reason)?;
    let revealed =
        secrets::reveal(&state.db, &state.keys, &user.actor, id, Some(why.as_str())).await?;
    let fields = revealed
        .fields
        .iter()
        .map(|(name, value)| FieldShown {
            name: name.clone(),
            value: value.as_str().to_owned(),
        })
        .collect();
    let mut resp = render(&RevealPage {
        user: &user,
        id: id.to_string(),
        organization: revealed.meta.organization.clone(),
        provider: revealed.meta.provider.clone(),
        fields,
        seconds: SHOWN_FOR_SECS,
    });
    // Never kept by a browser or proxy (the default is no-store too; this
    // page must not depend on that default).
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn back_to(id: Uuid) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/secrets/{id}"))],
    )
        .into_response()
}

pub async fn ingested(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, ConsoleError> {
    let id = acting_on(&state, &user, &headers, &form, Scope::Reveal, &id)?;
    secrets::mark_ingested(&state.db, &user.actor, id).await?;
    Ok(back_to(id))
}

pub async fn shred(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, ConsoleError> {
    let id = acting_on(&state, &user, &headers, &form, Scope::Admin, &id)?;
    if form.confirm != "yes" {
        return Err(ConsoleError::BadRequest(
            "tick the confirmation: shredding destroys the credential for good".into(),
        ));
    }
    let why = reason(&form.reason)?;
    secrets::shred(&state.db, &user.actor, id, Some(why.as_str())).await?;
    Ok(back_to(id))
}

//! Secrets in the console: the list with live-check badges, the detail page
//! (check result, audit timeline of the secret and its link), and the
//! actions, each through the service function the API and CLI use.

use super::links::stamp;
use super::session::console;
use super::{ConsoleError, ConsoleUser};
use crate::domain::{Scope, SecretStatus};
use crate::http::pages::render;
use crate::http::AppState;
use crate::service::checks::{recheck, RecheckError};
use crate::store::audit::{self, Query as AuditQuery};
use crate::store::secrets::{self, Filter, SecretMeta};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

const NOT_FOUND: &str = "no secret with that id";

/// A secret as a row or a detail header shows it.
pub struct SecretRow {
    pub id: String,
    pub organization: String,
    pub provider: String,
    pub submitter: String,
    pub status: String,
    pub check: &'static str,
    pub check_label: &'static str,
    pub fingerprint: String,
    pub received: String,
}

/// The live-check badge: CSS class and words.
fn badge(check: &Value) -> (&'static str, &'static str) {
    match check.get("status").and_then(Value::as_str) {
        Some("verified") => ("verified", "verified"),
        Some("missing_permissions") => ("missing_permissions", "missing permissions"),
        Some("invalid") => ("invalid", "invalid"),
        _ => ("unverified", "unverified"),
    }
}

fn row(s: &SecretMeta) -> SecretRow {
    let (check, check_label) = badge(&s.check_result);
    SecretRow {
        id: s.id.to_string(),
        organization: s.organization.clone(),
        provider: s.provider.clone(),
        submitter: format!("{} <{}>", s.submitter_name, s.submitter_email),
        status: s.status.to_string(),
        check,
        check_label,
        fingerprint: s.fingerprint.clone(),
        received: stamp(s.created_at),
    }
}

#[derive(Template)]
#[template(path = "console/secrets.html")]
struct ListPage<'a> {
    user: &'a ConsoleUser,
    rows: Vec<SecretRow>,
    status: String,
    q: String,
}

#[derive(Deserialize)]
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
    let status = q.status.unwrap_or_default();
    let filter_status = match status.as_str() {
        "" | "all" => None,
        s => Some(
            s.parse::<SecretStatus>()
                .map_err(ConsoleError::BadRequest)?,
        ),
    };
    let search = q.q.unwrap_or_default();
    let needle = search.trim().to_lowercase();
    let found = secrets::list(
        &state.db,
        Filter {
            status: filter_status,
            ..Filter::default()
        },
        500,
    )
    .await?;
    let rows = found
        .iter()
        .map(row)
        .filter(|r| {
            needle.is_empty()
                || [&r.organization, &r.provider, &r.submitter, &r.id]
                    .iter()
                    .any(|s| s.to_lowercase().contains(&needle))
        })
        .collect();
    Ok(render(&ListPage {
        user: &user,
        rows,
        status,
        q: search,
    }))
}

/// One audit event on a timeline.
pub struct TimelineEntry {
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub detail: String,
}

pub fn timeline(events: Vec<audit::Event>) -> Vec<TimelineEntry> {
    events
        .into_iter()
        .map(|e| TimelineEntry {
            at: e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            action: e.action,
            outcome: e.outcome,
            actor: match e.actor_name {
                Some(n) => format!("{n} ({})", e.actor_kind),
                None => e.actor_kind,
            },
            detail: if e.detail.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                e.detail.to_string()
            },
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/secret.html")]
struct DetailPage<'a> {
    user: &'a ConsoleUser,
    s: SecretRow,
    request_id: String,
    check_message: String,
    missing: Vec<String>,
    checked_at: String,
    /// The provider's display name ("Greenhouse Harvest API v3").
    provider_name: &'static str,
    /// What the fingerprint is, as the customer's receipt says it.
    fingerprint_hint: &'static str,
    events: Vec<TimelineEntry>,
    shredded: bool,
    can_ingest: bool,
}

async fn load(state: &AppState, id: &str) -> Result<SecretMeta, ConsoleError> {
    let id: Uuid = id.parse().map_err(|_| ConsoleError::NotFound(NOT_FOUND))?;
    secrets::get(&state.db, id)
        .await?
        .ok_or(ConsoleError::NotFound(NOT_FOUND))
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    user.require(Scope::Read)?;
    let meta = load(&state, &id).await?;
    let mut events = audit::list(
        &state.db,
        &AuditQuery {
            secret_id: Some(meta.id),
            ascending: true,
            ..AuditQuery::default()
        },
        500,
    )
    .await?;
    events.extend(
        audit::list(
            &state.db,
            &AuditQuery {
                request_id: Some(meta.request_id),
                ascending: true,
                ..AuditQuery::default()
            },
            500,
        )
        .await?
        .into_iter()
        .filter(|e| e.secret_id != Some(meta.id)),
    );
    events.sort_by_key(|e| e.id);
    let check = &meta.check_result;
    let text = |k: &str| {
        check
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Ok(render(&DetailPage {
        user: &user,
        request_id: meta.request_id.to_string(),
        check_message: text("detail"),
        missing: check
            .get("missing")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        // Shown like every other time of the console, not as stored.
        provider_name: crate::providers::find(&meta.provider)
            .map_or("unknown provider", |p| p.name),
        fingerprint_hint: match meta.fingerprint_kind.as_str() {
            "tail" => "(the last characters of the credential, as on the customer's receipt)",
            "keyed" => {
                "(a keyed fingerprint, as on the customer's receipt: nothing of the credential)"
            }
            _ => "",
        },
        checked_at: check
            .get("checked_at")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| format!("checked {}", stamp(t.to_utc())))
            .unwrap_or_default(),
        events: timeline(events),
        shredded: meta.status == SecretStatus::Shredded,
        can_ingest: meta.status == SecretStatus::Revealed,
        s: row(&meta),
    }))
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf_token: String,
}

fn back_to(id: Uuid) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/secrets/{id}"))],
    )
        .into_response()
}

/// "Check again": the provider's live check, through `service::checks`.
pub async fn check(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, ConsoleError> {
    let console = console(&state)?.clone();
    user.check_form(&console, &headers, &form.csrf_token)?;
    user.require(Scope::Reveal)?;
    let id = load(&state, &id).await?.id;
    match recheck(&state.db, &state.keys, &state.checker, &user.actor, id).await {
        Ok(_) => Ok(back_to(id)),
        Err(RecheckError::NotFound) => Err(ConsoleError::NotFound(NOT_FOUND)),
        Err(RecheckError::Shredded) => Err(ConsoleError::Conflict(
            "this secret was shredded; there is nothing to check".into(),
        )),
        // The secret actions' one mapping: a KMS outage is a 503 page.
        Err(e) => Err(e.into()),
    }
}

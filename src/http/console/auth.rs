//! Signing in and out: the authorization request, the callback, logout.
//!
//! A login is bound to the browser that started it: the `state` sent to the
//! identity provider and a separate random cookie are both stored (hashed)
//! in one row, which the callback takes (deletes) before anything else. A
//! replayed or forged `state`, a callback in another browser, a wrong nonce
//! or an invalid ID token each end at a clear page and an audit event, and
//! nothing is created.

use super::error::page;
use super::session::{self, SESSION_COOKIE};
use super::{Console, ConsoleError};
use crate::domain::{LoginSecret, SessionSecret};
use crate::http::client_ip::ClientIp;
use crate::http::pages::render;
use crate::http::AppState;
use crate::store::audit::{self, Actor, NewEvent, OidcIdentity};
use crate::store::console as store;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

const LOGIN_COOKIE: &str = "keydrop_login";
/// How long a started login may take at the identity provider.
const LOGIN_TTL_SECS: i64 = 600;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    message: &'a str,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    logged_out: Option<String>,
    /// The console page to open after signing in (see `return_path`).
    next: Option<String>,
}

/// Where the console will send a person after a sign-in: a path of this
/// console (`/secrets/…?…`), never another site (`//host`, `/\host`, a
/// scheme), never the sign-in pages themselves, at most 1 KiB and printable
/// ASCII only (a request's path and query are percent-encoded already).
/// Anything else is dropped and the person lands on the links page.
pub fn return_path(p: &str) -> Option<&str> {
    let path = p.split('?').next().unwrap_or_default();
    let ok = p.len() <= 1024
        && p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.bytes().all(|b| b.is_ascii_graphic())
        && !["/login", "/logout", "/auth/", "/static/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
        && path != "/";
    ok.then_some(p)
}

/// Starts a login (redirect to the identity provider); after logout, a page
/// that says so with a link to sign in again.
pub async fn login(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ConsoleError> {
    let console = session::console(&state)?.clone();
    if q.logged_out.is_some() {
        return Ok(render(&LoginPage {
            message: "You are signed out.",
        }));
    }
    let return_to = q.next.as_deref().and_then(return_path);
    if session::current(&state, &headers, None).await?.is_some() {
        return Ok(redirect(return_to.unwrap_or("/links"), None));
    }
    let login_state = LoginSecret::generate();
    // One binding per browser, kept while it lives: two tabs signing in at
    // once both finish.
    let browser = console
        .cookie(&headers, LOGIN_COOKIE)
        .and_then(|c| LoginSecret::parse(&c))
        .unwrap_or_else(LoginSecret::generate);
    let started = match console.oidc.start(login_state.expose()).await {
        Ok(s) => s,
        Err(e) => {
            let actor = Actor::public(Some(ip.0.to_string()));
            return refuse(&state, &actor, e.reason(), &e.to_string(), None).await;
        }
    };
    store::start_login(
        &state.db,
        &login_state.hash(),
        &browser.hash(),
        &started.nonce,
        &started.pkce_verifier,
        chrono::Utc::now() + chrono::Duration::seconds(LOGIN_TTL_SECS),
        return_to,
    )
    .await?;
    let cookie = console.set_cookie(LOGIN_COOKIE, browser.expose(), LOGIN_TTL_SECS);
    Ok(redirect(started.url.as_str(), Some(cookie)))
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The identity provider's redirect back: checks, exchanges, signs in.
pub async fn callback(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, ConsoleError> {
    let console = session::console(&state)?.clone();
    let ip = ip.0.to_string();
    let anonymous = Actor::public(Some(ip.clone()));
    let Some(login_state) = q.state.as_deref().and_then(LoginSecret::parse) else {
        return refuse(
            &state,
            &anonymous,
            "state_invalid",
            "The sign-in answer carried no valid state.",
            None,
        )
        .await;
    };
    let Some(pending) = store::take_login(&state.db, &login_state.hash()).await? else {
        return refuse(&state, &anonymous, "state_unknown",
            "This sign-in was already finished, or was never started here. Start again from the console.", None).await;
    };
    let bound = console
        .cookie(&headers, LOGIN_COOKIE)
        .and_then(|c| LoginSecret::parse(&c))
        .is_some_and(|b| b.hash().as_bytes() == pending.browser_hash.as_slice());
    if !bound {
        return refuse(
            &state,
            &anonymous,
            "state_not_bound",
            "This sign-in was started in another browser. Start again from the console.",
            None,
        )
        .await;
    }
    if pending.expires_at < chrono::Utc::now() {
        return refuse(
            &state,
            &anonymous,
            "login_expired",
            "The sign-in took too long. Start again.",
            None,
        )
        .await;
    }
    if let Some(error) = q.error.as_deref() {
        let error: String = error.chars().take(100).collect();
        return refuse(
            &state,
            &anonymous,
            "provider_error",
            &format!("The identity provider did not sign you in ({error})."),
            None,
        )
        .await;
    }
    let Some(code) = q.code.as_deref() else {
        return refuse(
            &state,
            &anonymous,
            "no_code",
            "The sign-in answer carried no code.",
            None,
        )
        .await;
    };
    let who = match console
        .oidc
        .finish(code, &pending.pkce_verifier, &pending.nonce)
        .await
    {
        Ok(who) => who,
        Err(e) => return refuse(&state, &anonymous, e.reason(), &e.to_string(), None).await,
    };
    let identity = OidcIdentity {
        session_id: None,
        issuer: who.issuer.clone(),
        subject: who.subject.clone(),
        email: who.email.clone(),
    };
    let scopes = console.config().scopes_for(&who.groups);
    if scopes.is_empty() {
        let actor = Actor::oidc(identity, Some(ip));
        let shown = who.email.as_deref().unwrap_or(&who.subject);
        let message = format!(
            "You signed in as {shown}, but none of your groups grants access to Keydrop. \
             Ask your administrator to add you to a group the console maps to a scope."
        );
        return refuse(
            &state,
            &actor,
            "no_mapped_group",
            &message,
            Some(&who.groups),
        )
        .await;
    }
    let secret = SessionSecret::generate();
    let lifetime = console.config().session_lifetime;
    let mut tx = state.db.begin().await?;
    let id = store::create(
        &mut *tx,
        &secret.hash(),
        store::NewSession {
            issuer: &who.issuer,
            subject: &who.subject,
            email: who.email.as_deref(),
            display_name: who.name.as_deref(),
            scopes: &scopes,
            client_ip: Some(&ip),
            expires_at: chrono::Utc::now()
                + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(12)),
        },
    )
    .await?;
    let actor = Actor::oidc(
        OidcIdentity {
            session_id: Some(id),
            ..identity
        },
        Some(ip),
    );
    audit::record(
        &mut *tx,
        NewEvent::success(&actor, "console.login")
            .detail(json!({ "scopes": scopes, "groups": who.groups })),
    )
    .await?;
    tx.commit().await?;
    let cookie = console.set_cookie(SESSION_COOKIE, secret.expose(), lifetime.as_secs() as i64);
    // Checked again on the way out, whatever the row holds.
    let to = pending
        .return_to
        .as_deref()
        .and_then(return_path)
        .unwrap_or("/links");
    let mut resp = redirect(to, Some(cookie));
    resp.headers_mut().append(
        header::SET_COOKIE,
        console
            .set_cookie(LOGIN_COOKIE, "", 0)
            .parse()
            .expect("cookie is ASCII"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

/// Ends the session; then the provider's end-session endpoint when it has one.
pub async fn logout(
    State(state): State<AppState>,
    user: super::ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ConsoleError> {
    let console: Arc<Console> = session::console(&state)?.clone();
    user.check_form(&console, &headers, &form.csrf_token)?;
    let mut tx = state.db.begin().await?;
    store::end(&mut *tx, user.session_id, "logout").await?;
    audit::record(&mut *tx, NewEvent::success(&user.actor, "console.logout")).await?;
    tx.commit().await?;
    let to = console
        .oidc
        .logout_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_else(|| "/login?logged_out=1".into());
    Ok(redirect(
        &to,
        Some(console.set_cookie(SESSION_COOKIE, "", 0)),
    ))
}

/// Audits a refused login and answers a page saying why.
async fn refuse(
    state: &AppState,
    actor: &Actor,
    reason: &'static str,
    message: &str,
    groups: Option<&[String]>,
) -> Result<Response, ConsoleError> {
    audit::record(
        &state.db,
        NewEvent::failure(actor, "console.login", "denied")
            .detail(json!({ "reason": reason, "groups": groups })),
    )
    .await?;
    tracing::info!(reason, "console login refused");
    let status = match reason {
        "no_mapped_group" => StatusCode::FORBIDDEN,
        "provider_unreachable" => StatusCode::BAD_GATEWAY,
        _ => StatusCode::BAD_REQUEST,
    };
    let title = if reason == "no_mapped_group" {
        "No access to Keydrop"
    } else {
        "Sign-in refused"
    };
    Ok(page(status, title, message))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    if let Some(c) = cookie {
        resp.headers_mut()
            .append(header::SET_COOKIE, c.parse().expect("cookie is ASCII"));
    }
    resp
}

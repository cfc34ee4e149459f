//! The signed-in person: the `ConsoleUser` extractor, and the form tokens
//! that protect every console form against cross-site requests.
//!
//! The session cookie holds a random `kdc_…` id; Postgres holds only its
//! hash, so a database reader cannot ride a session. A form token is
//! HMAC(console key, session row id): it is bound to the session, works on
//! every replica and dies with the session, without a second cookie.

use super::{Console, ConsoleError};
use crate::domain::{Scope, Scopes, SessionSecret};
use crate::http::client_ip::ClientIp;
use crate::http::AppState;
use crate::store::audit::{Actor, OidcIdentity};
use crate::store::console as sessions;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::hmac;
use std::sync::Arc;
use uuid::Uuid;

pub const SESSION_COOKIE: &str = "keydrop_session";

/// A person with a live console session.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub session_id: Uuid,
    pub actor: Actor,
    pub email: Option<String>,
    pub name: Option<String>,
    pub scopes: Scopes,
    /// The form token for this session's forms.
    pub csrf: String,
}

impl ConsoleUser {
    /// 403 page unless the person's groups grant `scope` (or one including it).
    pub fn require(&self, scope: Scope) -> Result<(), ConsoleError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(scope.as_str()))
        }
    }

    pub fn can(&self, scope: &str) -> bool {
        Scope::parse(scope).is_ok_and(|s| self.scopes.allows(s))
    }

    pub fn is_admin(&self) -> bool {
        self.scopes.allows(Scope::Admin)
    }

    /// Name or email, for the header.
    pub fn display(&self) -> &str {
        self.name
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or("signed in")
    }

    /// Checks a submitted form: its token and the browser's origin headers.
    pub fn check_form(
        &self,
        console: &Console,
        headers: &HeaderMap,
        token: &str,
    ) -> Result<(), ConsoleError> {
        let origin = console.config().internal_url.origin().ascii_serialization();
        crate::http::csrf::check_origin(headers, &origin).map_err(|_| ConsoleError::Csrf)?;
        let tag = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| ConsoleError::Csrf)?;
        hmac::verify(&console.csrf, &form_message(self.session_id), &tag)
            .map_err(|_| ConsoleError::Csrf)
    }
}

fn form_message(session: Uuid) -> Vec<u8> {
    let mut m = b"keydrop-console-form-v1\0".to_vec();
    m.extend_from_slice(session.as_bytes());
    m
}

pub fn form_token(console: &Console, session: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(&console.csrf, &form_message(session)).as_ref())
}

/// The console, or 404 when SSO is not configured (routes are not mounted
/// then, so this is a guard for completeness).
pub fn console(state: &AppState) -> Result<&Arc<Console>, ConsoleError> {
    state
        .console
        .as_ref()
        .ok_or(ConsoleError::NotFound("the console is not configured"))
}

/// The live session the request's cookie names, if any.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<Option<ConsoleUser>, ConsoleError> {
    let console = console(state)?;
    let Some(secret) = console
        .cookie(headers, SESSION_COOKIE)
        .and_then(|c| SessionSecret::parse(&c))
    else {
        return Ok(None);
    };
    let idle = console.config().session_idle.as_secs_f64();
    let Some(s) = sessions::authenticate(&state.db, &secret.hash(), idle).await? else {
        return Ok(None);
    };
    let who = OidcIdentity {
        session_id: Some(s.id),
        issuer: s.issuer,
        subject: s.subject,
        email: s.email.clone(),
    };
    Ok(Some(ConsoleUser {
        csrf: form_token(console, s.id),
        session_id: s.id,
        actor: Actor::oidc(who, ip),
        email: s.email,
        name: s.display_name,
        scopes: Scopes::from_stored(&s.scopes),
    }))
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ClientIp>().map(|c| c.0.to_string());
        current(state, &parts.headers, ip)
            .await?
            .ok_or_else(|| ConsoleError::Login {
                // Only a page view is worth coming back to; a form's POST is not
                // repeated after a sign-in.
                return_to: (parts.method == axum::http::Method::GET)
                    .then(|| parts.uri.path_and_query().map(|p| p.as_str()))
                    .flatten()
                    .and_then(super::auth::return_path)
                    .map(str::to_owned),
            })
    }
}

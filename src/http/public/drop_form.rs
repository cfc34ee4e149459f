//! [`DropForm`]: the transport checks of `POST /d/{token}` as an extractor.
//! A handler that takes one starts from a form that names a live link, came
//! whole (under the body limit), as `application/x-www-form-urlencoded`,
//! from our own page (`Origin` / `Sec-Fetch-Site`), with a CSRF token bound
//! to the browser's cookie; what is wrong with the form's *content* is the
//! business of `service::submission`.
//!
//! Every refusal here is audited as `secret.rejected` with its reason
//! (`too_large`, `content_type`, `malformed_form`, `origin`, `csrf`). A
//! refused origin or token never throws the typed form away: while the link
//! can still take a submission, the form comes back (403) with the
//! non-secret values kept, a fresh token and cookie, and a message asking to
//! paste the secret again. The secret itself is never echoed.
//!
//! The CSRF cookie is read once here, and its [`Nonce`] travels with the
//! form to every later check (submission id, receipt binding, the pages).

use super::{drop_page, field_view, find_link, provider_of, with_cookie};
use crate::http::client_ip::ClientIp;
use crate::http::csrf::{check_origin, Nonce, SubmissionId, MISSING_COOKIE};
use crate::http::error::PageError;
use crate::http::form::Form;
use crate::http::pages::{render, FormError};
use crate::http::AppState;
use crate::providers::Provider;
use crate::service::submission::refuse;
use crate::store::audit::Actor;
use crate::store::requests::{DropRequest, LinkState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use serde_json::json;

/// A drop form that passed the transport checks.
pub(super) struct DropForm {
    pub link: DropRequest,
    pub provider: &'static Provider,
    /// The submitting browser, as the audit trail names it (its address).
    pub actor: Actor,
    /// The parsed form; values are zeroized when it is dropped.
    pub form: Form,
    /// The browser's form cookie, verified against the form's CSRF token.
    pub nonce: Nonce,
    /// The form's signed one-time id, when it carried a valid one.
    pub submission_id: Option<SubmissionId>,
}

impl DropForm {
    /// The receipt's "check again" button (a form carrying `recheck`), not a
    /// submission.
    pub fn is_recheck(&self) -> bool {
        self.form.get("recheck").is_some()
    }
}

impl FromRequest<AppState> for DropForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Extension(ip) = Extension::<ClientIp>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(token) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state).await;
        check(state, ip, &token, &headers, body).await
    }
}

fn page(e: impl Into<PageError>) -> Response {
    e.into().into_response()
}

/// The checks in order: the link, the body's size, its content type and
/// encoding, then the origin and the CSRF token.
async fn check(
    state: &AppState,
    ip: ClientIp,
    token: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<DropForm, Response> {
    let link = find_link(state, ip, token).await.map_err(page)?;
    let provider = provider_of(&link).map_err(page)?;
    let actor = Actor::public(Some(ip.0.to_string()));
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            refuse(&state.db, &actor, &link, "too_large", json!({}))
                .await
                .map_err(page)?;
            return Err(page(PageError::TooLarge));
        }
        Err(e) => return Err(page(PageError::BadRequest(e.body_text()))),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_form = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        // Audited like every other refused submission (it may be a probe).
        let sent = content_type.map(|ct| ct.chars().take(100).collect::<String>());
        refuse(
            &state.db,
            &actor,
            &link,
            "content_type",
            json!({ "content_type": sent }),
        )
        .await
        .map_err(page)?;
        return Err(page(PageError::BadRequest(
            "The form must be sent as application/x-www-form-urlencoded.".into(),
        )));
    }
    let form = match Form::parse(&body) {
        Ok(f) => f,
        Err(e) => {
            refuse(
                &state.db,
                &actor,
                &link,
                "malformed_form",
                json!({ "why": e.to_string() }),
            )
            .await
            .map_err(page)?;
            return Err(page(PageError::BadRequest(format!(
                "The form could not be read: {e}."
            ))));
        }
    };
    let cookie = state.csrf.cookie(headers);
    let verified = match check_origin(headers, &state.config.public_origin()) {
        Err(why) => Err(("origin", why)),
        Ok(()) => state
            .csrf
            .verify(cookie.as_ref(), link.id, form.get("csrf_token"))
            .map_err(|why| ("csrf", why)),
    };
    let nonce = match verified {
        Ok(nonce) => nonce.clone(),
        Err((reason, why)) => {
            refuse(&state.db, &actor, &link, reason, json!({ "why": why }))
                .await
                .map_err(page)?;
            return Err(refused(state, &link, provider, &form, cookie, reason, why));
        }
    };
    let submission_id = state
        .csrf
        .verify_submission_id(&nonce, link.id, form.get("submission_id"));
    Ok(DropForm {
        link,
        provider,
        actor,
        form,
        nonce,
        submission_id,
    })
}

/// The answer to a refused origin (`reason` "origin") or token ("csrf"):
/// the form again while the link takes submissions, else an error page.
fn refused(
    state: &AppState,
    link: &DropRequest,
    provider: &'static Provider,
    form: &Form,
    cookie: Option<Nonce>,
    reason: &str,
    why: &str,
) -> Response {
    let pending = link.state(Utc::now()) == LinkState::Pending;
    if pending && form.get("recheck").is_none() {
        let heading = if why == MISSING_COOKIE {
            "Please allow cookies for this site"
        } else {
            "Please paste the secret again"
        };
        let message = match (reason, why) {
            ("origin", _) => "This form arrived as if sent from another website, so for your safety we did not accept it. Check the address bar shows our address, paste the secret again and send.",
            (_, MISSING_COOKIE) => "Your browser did not send back the cookie this form needs, so for your safety we did not accept it. If your browser blocks cookies, allow cookies for this site (we set one, only to protect this form; it does not track you), then paste the secret again and send.",
            _ => "This page was open for a long time (or the form was sent from another tab), so for your safety we did not accept it. Paste the secret again and send; the other values are kept.",
        };
        let nonce = cookie.unwrap_or_else(Nonce::generate);
        let mut resp = form_again(state, link, provider, &nonce, form, heading, message);
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    }
    if why == MISSING_COOKIE {
        return page(PageError::CookiesBlocked);
    }
    page(PageError::Forbidden(
        "Your form session expired or could not be confirmed, so we did not accept it.",
    ))
}

/// The drop form again, for a form that cannot be taken as it is: typed
/// non-secret values kept, secret fields empty, `message` at the top, a
/// fresh token and submission id, and the cookie (re)set. The caller sets
/// the status.
pub(super) fn form_again(
    state: &AppState,
    link: &DropRequest,
    provider: &'static Provider,
    nonce: &Nonce,
    form: &Form,
    heading: &'static str,
    message: &str,
) -> Response {
    let views = provider
        .fields
        .iter()
        .map(|f| field_view(f, form.get(f.name), None))
        .collect();
    let mut page = drop_page(state, link, provider, nonce, views);
    page.refused_heading = Some(heading);
    page.submitter_name = kept(form, "submitter_name", 200);
    page.submitter_email = kept(form, "submitter_email", 254);
    let first_secret = provider
        .fields
        .iter()
        .find(|f| f.secret)
        .map_or("submitter_name", |f| f.name);
    page.errors = vec![FormError {
        field: first_secret,
        message: message.to_owned(),
    }];
    with_cookie(state, link, nonce, render(&page))
}

/// A typed non-secret value as the form shows it back: at most `max` characters.
pub(super) fn kept(form: &Form, name: &str, max: usize) -> String {
    form.get(name).unwrap_or("").chars().take(max).collect()
}

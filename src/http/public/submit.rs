//! `POST /d/{token}`: validate, check with the provider, store, answer a receipt.

use super::receipt::check_again;
use super::{
    drop_page, field_view, find_link, gone_unless_pending, provider_of, reject, see_receipt,
    with_cookie,
};
use crate::domain::text::{self, TextError};
use crate::domain::Email;
use crate::http::client_ip::ClientIp;
use crate::http::csrf::{check_origin, MISSING_COOKIE};
use crate::http::error::PageError;
use crate::http::form::Form;
use crate::http::pages::{render, ErrorPage, FieldView, FormError};
use crate::http::AppState;
use crate::providers::{CheckStatus, Provider};
use crate::service::submission::{self, Submission, SubmitError};
use crate::store::audit::Actor;
use crate::store::requests::{DropRequest, LinkState};
use crate::store::secrets;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;

pub(super) async fn submit(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let link = find_link(&state, ip, &token).await?;
    let provider = provider_of(&link)?;
    let actor = Actor::public(Some(ip.0.to_string()));
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            reject(&state, &actor, &link, "too_large", json!({})).await?;
            let mut resp = ErrorPage {
                title: "That was too much text",
                message: "The form was larger than any credential we expect.",
                hint: "Nothing was stored. Go back and paste only the credential itself.",
            }
            .into_response();
            *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return Ok(resp);
        }
        Err(e) => return Err(PageError::BadRequest(e.body_text())),
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        // Audited like every other refused submission (it may be a probe).
        let sent = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| ct.chars().take(100).collect::<String>());
        reject(
            &state,
            &actor,
            &link,
            "content_type",
            json!({ "content_type": sent }),
        )
        .await?;
        return Err(PageError::BadRequest(
            "The form must be sent as application/x-www-form-urlencoded.".into(),
        ));
    }
    let form = match Form::parse(&body) {
        Ok(f) => f,
        Err(e) => {
            reject(
                &state,
                &actor,
                &link,
                "malformed_form",
                json!({ "why": e.to_string() }),
            )
            .await?;
            return Err(PageError::BadRequest(format!(
                "The form could not be read: {e}."
            )));
        }
    };
    // A refused origin or token never throws the typed form away: while the link
    // can still take the submission, the form comes back (403) with the
    // non-secret values kept, a fresh token and cookie, and a message asking
    // to paste the secret again. The secret itself is never echoed.
    let refused = match check_origin(&headers, &state.config.public_origin()) {
        Err(why) => Some(("origin", why)),
        Ok(()) => state
            .csrf
            .verify(&headers, link.id, form.get("csrf_token"))
            .err()
            .map(|why| ("csrf", why)),
    };
    if let Some((reason, why)) = refused {
        reject(&state, &actor, &link, reason, json!({ "why": why })).await?;
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
            return Ok(form_again(
                &state, &link, provider, &headers, &form, heading, message,
            ));
        }
        if why == MISSING_COOKIE {
            return Err(PageError::CookiesBlocked);
        }
        return Err(PageError::Forbidden(
            "Your form session expired or could not be confirmed, so we did not accept it.",
        ));
    }
    let (nonce, _) = state.csrf.nonce(&headers);
    if form.get("recheck").is_some() {
        return check_again(&state, &actor, &link, provider, &form, &nonce).await;
    }
    // A repeat of a form that was already stored (double-click, refresh, retry)
    // answers that receipt before anything else, even once the link is used up.
    let submission_id =
        state
            .csrf
            .verify_submission_id(&headers, link.id, form.get("submission_id"));
    if let Some(sid) = &submission_id {
        if let Some(first) = secrets::find_by_submission(&state.db, link.id, &sid.id).await? {
            return Ok(see_receipt(first));
        }
    }
    let browser_hash = state.csrf.browser_hash(&headers);
    // A form served before the link expired is still accepted for the grace
    // period (its serving time is signed into the submission id); after it, a
    // page that says so and keeps the typed values.
    let now = Utc::now();
    let served_in_time = submission_id
        .as_ref()
        .is_some_and(|sid| sid.served_at < link.expires_at);
    let grace = state.config.link_grace;
    let in_grace =
        link.state(now) == LinkState::Expired && served_in_time && now <= link.expires_at + grace;
    if link.state(now) == LinkState::Expired && served_in_time && !in_grace {
        let message = format!(
            "This link expired on {}, while the page was open, and the extra time we allow for a form opened before then has passed too. Nothing was stored. Ask the person who sent you the link for a new one; the values you typed are below so you can copy them.",
            link.expires_at.format("%-d %B %Y, %H:%M UTC")
        );
        let mut resp = form_again(
            &state,
            &link,
            provider,
            &headers,
            &form,
            "This link has expired",
            &message,
        );
        *resp.status_mut() = StatusCode::GONE;
        return Ok(resp);
    }
    if !in_grace {
        gone_unless_pending(link.state(now), link.use_count > 0)?;
    }

    let Validated {
        views,
        errors,
        fields,
        name,
        name_error,
        email,
    } = validate(provider, &form);
    let email_error = email.as_ref().err().cloned();
    let again = |views, errors, name_error, email_error| {
        let mut page = drop_page(&state, &link, provider, &nonce, views);
        page.submitter_name = form
            .get("submitter_name")
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        page.submitter_email = form
            .get("submitter_email")
            .unwrap_or("")
            .chars()
            .take(254)
            .collect();
        page.name_error = name_error;
        page.email_error = email_error;
        page.errors = errors;
        let mut resp = render(&page);
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        resp
    };
    let email = match email {
        Ok(email) if errors.is_empty() => email,
        _ => {
            let names: Vec<_> = errors.iter().map(|e| e.field).collect();
            reject(
                &state,
                &actor,
                &link,
                "invalid_fields",
                json!({ "fields": names }),
            )
            .await?;
            return Ok(again(views, errors, name_error, email_error));
        }
    };

    // Ask the provider before storing: a rejected credential is not kept.
    let check = state.checker.check(provider, &fields).await;
    // `link_id`, not `request_id`: that name is the HTTP request's id in the span.
    if provider.check.is_none() {
        // Debug only: "credential received" follows, and a line per request costs.
        tracing::debug!(link_id = %link.id, provider = provider.id, check = "none", "no live check for this provider");
    } else {
        tracing::info!(link_id = %link.id, provider = provider.id, status = %check.status.as_str(), "live check finished");
    }
    if check.status == CheckStatus::Invalid {
        reject(
            &state,
            &actor,
            &link,
            "invalid_credential",
            json!({ "detail": check.detail }),
        )
        .await?;
        // The check says which field it is about; the fingerprinted secret otherwise.
        let target = check.field.unwrap_or(provider.fingerprint_field).as_str();
        let views = views
            .into_iter()
            .map(|mut v| {
                if v.name == target {
                    v.error = Some(check.detail.clone());
                }
                v
            })
            .collect();
        let errors = vec![FormError {
            field: target,
            message: check.detail.clone(),
        }];
        return Ok(again(views, errors, None, None));
    }

    let sub = Submission {
        submitter_name: name,
        submitter_email: &email,
        fields,
        submission_id: submission_id.as_ref().map(|s| s.id.as_str()),
        browser_hash: browser_hash.as_deref(),
        grace: in_grace.then_some(grace),
    };
    let stored = match submission::store(
        &state.db,
        &state.keys,
        &state.fingerprints,
        &link,
        provider,
        &sub,
        &check,
        &actor,
        &state.metrics,
    )
    .await
    {
        Ok(s) => s,
        Err(SubmitError::Repeat(first)) => return Ok(see_receipt(first)),
        Err(SubmitError::LinkGone(s)) => {
            let submitted = link.use_count > 0 || s == LinkState::Used;
            return Err(gone_unless_pending(s, submitted)
                .err()
                .unwrap_or(PageError::NotFound));
        }
        Err(SubmitError::Db(e)) => return Err(e.into()),
        Err(SubmitError::Kms(e)) => {
            tracing::error!(error = %e, "KMS unavailable: submission refused, nothing stored");
            return Err(PageError::Unavailable);
        }
        Err(e @ SubmitError::Crypto(_)) => return Err(anyhow::Error::new(e).into()),
    };
    tracing::info!(secret_id = %stored.id, link_id = %link.id, provider = provider.id, "credential received");
    Ok(see_receipt(stored.id))
}

/// The drop form again after a refused origin or token (403): typed
/// non-secret values kept, secret fields empty, `message` at the top, a
/// fresh token, submission id and cookie.
#[allow(clippy::too_many_arguments)]
fn form_again(
    state: &AppState,
    link: &DropRequest,
    provider: &'static Provider,
    headers: &HeaderMap,
    form: &Form,
    heading: &'static str,
    message: &str,
) -> Response {
    let (nonce, _) = state.csrf.nonce(headers);
    let views = provider
        .fields
        .iter()
        .map(|f| field_view(f, form.get(f.name), None))
        .collect();
    let mut page = drop_page(state, link, provider, &nonce, views);
    page.refused_heading = Some(heading);
    let kept = |name: &str, max: usize| form.get(name).unwrap_or("").chars().take(max).collect();
    page.submitter_name = kept("submitter_name", 200);
    page.submitter_email = kept("submitter_email", 254);
    let first_secret = provider
        .fields
        .iter()
        .find(|f| f.secret)
        .map_or("submitter_name", |f| f.name);
    page.errors = vec![FormError {
        field: first_secret,
        message: message.to_owned(),
    }];
    let mut resp = with_cookie(state, link, &nonce, render(&page));
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp
}

/// A drop form after validation: every problem at once, with the views to
/// re-render the form. Values borrow from the (zeroizing) form.
struct Validated<'f> {
    views: Vec<FieldView>,
    errors: Vec<FormError>,
    /// Provider field → trimmed value; blank optional fields are absent.
    fields: BTreeMap<&'static str, &'f str>,
    name: &'f str,
    name_error: Option<String>,
    email: Result<Email, String>,
}

fn validate<'f>(provider: &'static Provider, form: &'f Form) -> Validated<'f> {
    let mut errors = Vec::new();
    let mut views = Vec::new();
    let mut fields = BTreeMap::new();
    for f in provider.fields {
        let error = match f.validate(form.get(f.name)) {
            Ok(Some(v)) => {
                fields.insert(f.name, v);
                None
            }
            Ok(None) => None,
            Err(message) => {
                errors.push(FormError {
                    field: f.name,
                    message: message.clone(),
                });
                Some(message)
            }
        };
        views.push(field_view(f, form.get(f.name), error));
    }
    refuse_secret_in_plain_field(provider, &fields, &mut views, &mut errors);
    let raw_name = form.get("submitter_name").unwrap_or("");
    let (name, name_error) = match text::identifier(raw_name, 200) {
        Ok(name) => (name, None),
        Err(e) => {
            let message = match e {
                TextError::Empty => "Enter your name.",
                TextError::TooLong(_) | TextError::Control => {
                    "Enter your name in at most 200 characters, on one line."
                }
                TextError::Format => {
                    "Your name contains invisible formatting characters (such as a right-to-left override). Type it again rather than pasting it."
                }
            };
            (raw_name.trim(), Some(message.to_owned()))
        }
    };
    if let Some(m) = &name_error {
        errors.push(FormError {
            field: "submitter_name",
            message: m.clone(),
        });
    }
    let email = Email::parse(form.get("submitter_email").unwrap_or("")).map_err(str::to_owned);
    if let Err(m) = &email {
        errors.push(FormError {
            field: "submitter_email",
            message: m.clone(),
        });
    }
    Validated {
        views,
        errors,
        fields,
        name,
        name_error,
        email,
    }
}

/// A non-secret field (echoed back, shown to staff in lists) that holds the
/// same value as a secret field is refused, and its value is not echoed: it is
/// the secret. The generic provider's label invites exactly this mistake.
fn refuse_secret_in_plain_field(
    provider: &'static Provider,
    fields: &BTreeMap<&'static str, &str>,
    views: &mut [FieldView],
    errors: &mut Vec<FormError>,
) {
    for plain in provider.fields.iter().filter(|f| !f.secret) {
        let Some(value) = fields.get(plain.name) else {
            continue;
        };
        let Some(secret) = provider
            .fields
            .iter()
            .find(|f| f.secret && fields.get(f.name) == Some(value))
        else {
            continue;
        };
        let message = format!(
            "The {} is the same as the {}. Describe the secret here in a few words; never put the secret itself in this field.",
            plain.label.to_lowercase(),
            secret.label.to_lowercase()
        );
        if let Some(v) = views.iter_mut().find(|v| v.name == plain.name) {
            v.value.clear();
            v.error = Some(message.clone());
        }
        errors.push(FormError {
            field: plain.name,
            message,
        });
    }
}

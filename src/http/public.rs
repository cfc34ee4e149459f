//! The drop pages: `GET /d/{token}` shows the form, `POST /d/{token}` stores the credential.

use super::client_ip::{ClientIp, ClientIpKey};
use super::csrf::check_origin;
use super::error::PageError;
use super::form::Form;
use super::pages::{render, DropPage, ErrorPage, FieldView, FormError, ReceiptPage};
use super::throttle::{retry_after_secs, OncePerWindow};
use super::AppState;
use crate::domain::{DropToken, Email};
use crate::providers::{self, Check, CheckResult, CheckStatus, Provider};
use crate::service::checks::{recheck, RecheckError};
use crate::service::submission::{self, Submission, SubmitError};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::requests::{self, DropRequest, LinkState};
use crate::store::secrets;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::{GovernorError, GovernorLayer};

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new().route("/d/{token}", get(show).post(submit));
    let Some(limit) = state.config.rate_limit else {
        return routes;
    };
    let config = GovernorConfigBuilder::default()
        .key_extractor(ClientIpKey)
        .period(limit.per / limit.count)
        .burst_size(limit.count)
        .finish()
        .expect("a positive rate limit is a valid governor config");
    // Forget idle clients now and then so the table stays small.
    let limiter = Arc::downgrade(config.limiter());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match limiter.upgrade() {
                Some(l) => l.retain_recent(),
                None => break,
            }
        }
    });
    let once = Arc::new(OncePerWindow::new(limit.per));
    let db = state.db.clone();
    routes
        .layer(GovernorLayer::new(config).error_handler(too_many_requests))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let (once, db) = (once.clone(), db.clone());
                async move {
                    let ip = req.extensions().get::<ClientIp>().copied();
                    let resp = next.run(req).await;
                    // Audit a client's first rate-limited request per window, not every one:
                    // a flood must not turn into a flood of database writes.
                    if let Some(ip) = ip.filter(|ip| {
                        resp.status() == StatusCode::TOO_MANY_REQUESTS && once.first(ip.0)
                    }) {
                        let actor = Actor::public(Some(ip.0.to_string()));
                        let event = NewEvent::failure(&actor, "rate_limited", "denied")
                            .detail(json!({ "limit": "drop_pages" }));
                        if let Err(e) = audit::record(&db, event).await {
                            tracing::warn!(error = %e, "could not audit a rate-limited request");
                        }
                    }
                    resp
                }
            },
        ))
}

fn too_many_requests(e: GovernorError) -> Response {
    let wait = match e {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 60,
    };
    tracing::warn!(retry_after = wait, "drop page rate limit hit");
    let message = format!(
        "Too many requests came from your network. Please wait {wait} seconds and try again."
    );
    let mut resp = ErrorPage {
        title: "Please slow down",
        message: &message,
        hint: "Nothing was stored.",
    }
    .into_response();
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    resp
}

/// Any other path on the public listener.
pub async fn not_found() -> Response {
    let mut resp = ErrorPage {
        title: "Page not found",
        message: "There is nothing at this address.",
        hint: "If you were sent a drop link, open it exactly as you received it.",
    }
    .into_response();
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// Finds the link for a raw token. Failed lookups spend the client's
/// failure budget; once it is spent the client gets 429 before any lookup.
async fn find_link(state: &AppState, ip: ClientIp, raw: &str) -> Result<DropRequest, PageError> {
    if let Some(wait) = state.link_failures.blocked(ip.0) {
        return Err(PageError::TooMany(retry_after_secs(wait)));
    }
    let found = match DropToken::parse(raw) {
        Some(token) => requests::find_by_token(&state.db, &token.hash()).await?,
        None => None,
    };
    if let Some(link) = found {
        return Ok(link);
    }
    if let Some(wait) = state.link_failures.failed(ip.0) {
        let actor = Actor::public(Some(ip.0.to_string()));
        audit::record(
            &state.db,
            NewEvent::failure(&actor, "rate_limited", "denied")
                .detail(json!({ "limit": "drop_token_failures" })),
        )
        .await?;
        tracing::warn!(client_ip = %ip.0, "too many unknown drop-link tokens; throttling");
        return Err(PageError::TooMany(retry_after_secs(wait)));
    }
    Err(PageError::NotFound)
}

/// Finds a link that can still take a submission, or the page explaining why not.
async fn usable_link(
    state: &AppState,
    ip: ClientIp,
    raw: &str,
) -> Result<(DropRequest, &'static Provider), PageError> {
    let link = find_link(state, ip, raw).await?;
    gone_unless_pending(link.state(Utc::now()))?;
    let provider = provider_of(&link)?;
    Ok((link, provider))
}

fn provider_of(link: &DropRequest) -> Result<&'static Provider, PageError> {
    providers::find(&link.provider).ok_or_else(|| {
        anyhow::anyhow!(
            "link {} names unknown provider {:?}",
            link.id,
            link.provider
        )
        .into()
    })
}

fn gone_unless_pending(state: LinkState) -> Result<(), PageError> {
    Err(match state {
        LinkState::Pending => return Ok(()),
        LinkState::Used => PageError::Gone {
            title: "This link has already been used",
            message:
                "A credential was already submitted through this link, so it cannot be used again.",
        },
        LinkState::Expired => PageError::Gone {
            title: "This link has expired",
            message: "Drop links work for a limited time, and this one has run out.",
        },
        LinkState::Revoked => PageError::Gone {
            title: "This link was withdrawn",
            message: "The team that sent this link has cancelled it.",
        },
    })
}

async fn show(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (link, provider) = usable_link(&state, ip, &token).await?;
    let (nonce, set_cookie) = state.csrf.nonce(&headers);
    let fields = provider
        .fields
        .iter()
        .map(|f| field_view(f, None, None))
        .collect();
    let page = drop_page(&state, &link, provider, &nonce, fields);
    let mut resp = render(&page);
    if let Some(cookie) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(resp)
}

fn field_view(
    f: &'static providers::Field,
    value: Option<&str>,
    error: Option<String>,
) -> FieldView {
    FieldView {
        name: f.name,
        label: f.label,
        help: f.help,
        secret: f.secret,
        required: f.required,
        max_len: f.max_len,
        // Secret values are never sent back to the browser.
        value: if f.secret {
            String::new()
        } else {
            value.unwrap_or_default().to_owned()
        },
        error,
    }
}

fn drop_page<'a>(
    state: &AppState,
    link: &'a DropRequest,
    provider: &'static Provider,
    nonce: &str,
    fields: Vec<FieldView>,
) -> DropPage<'a> {
    DropPage {
        provider,
        organization: &link.organization,
        expires_on: link.expires_at.format("%-d %B %Y, %H:%M UTC").to_string(),
        csrf_token: state.csrf.token(link.id, nonce),
        fields,
        submitter_name: String::new(),
        submitter_email: String::new(),
        name_error: None,
        email_error: None,
        errors: Vec::new(),
        egress_ips: state.checker.egress_ips().to_vec(),
    }
}

async fn reject(
    state: &AppState,
    actor: &Actor,
    link: &DropRequest,
    reason: &str,
    detail: serde_json::Value,
) -> Result<(), PageError> {
    let mut detail = detail;
    detail["reason"] = json!(reason);
    audit::record(
        &state.db,
        NewEvent::failure(actor, "secret.rejected", "denied")
            .request(link.id)
            .detail(detail),
    )
    .await?;
    Ok(())
}

async fn submit(
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
        return Err(PageError::BadRequest(
            "The form must be sent as application/x-www-form-urlencoded.".into(),
        ));
    }
    if let Err(why) = check_origin(&headers, &state.config.public_origin()) {
        reject(&state, &actor, &link, "origin", json!({ "why": why })).await?;
        return Err(PageError::Forbidden(
            "This form was sent from another website, so we did not accept it.",
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
    if let Err(why) = state.csrf.verify(&headers, link.id, form.get("csrf_token")) {
        reject(&state, &actor, &link, "csrf", json!({ "why": why })).await?;
        return Err(PageError::Forbidden(
            "Your form session expired or could not be confirmed, so we did not accept it.",
        ));
    }
    let (nonce, _) = state.csrf.nonce(&headers);
    if form.get("recheck").is_some() {
        return check_again(&state, &actor, &link, provider, &form, &nonce).await;
    }
    gone_unless_pending(link.state(Utc::now()))?;

    // Validate every field, collecting all problems at once.
    let mut errors = Vec::new();
    let mut views = Vec::new();
    let mut fields = BTreeMap::new();
    for f in provider.fields {
        match f.validate(form.get(f.name)) {
            Ok(v) => {
                if let Some(v) = v {
                    fields.insert(f.name, v);
                }
                views.push(field_view(f, form.get(f.name), None));
            }
            Err(msg) => {
                errors.push(FormError {
                    field: f.name,
                    message: msg.clone(),
                });
                views.push(field_view(f, form.get(f.name), Some(msg)));
            }
        }
    }
    let name = form.get("submitter_name").unwrap_or("").trim();
    let name_error = if name.is_empty() {
        Some("Enter your name.".to_owned())
    } else if name.chars().count() > 200 || name.chars().any(char::is_control) {
        Some("Enter your name in at most 200 characters, on one line.".to_owned())
    } else {
        None
    };
    if let Some(m) = &name_error {
        errors.push(FormError {
            field: "submitter_name",
            message: m.clone(),
        });
    }
    let email = Email::parse(form.get("submitter_email").unwrap_or(""));
    let email_error = email.as_ref().err().map(|m| m.to_string());
    if let Some(m) = &email_error {
        errors.push(FormError {
            field: "submitter_email",
            message: m.clone(),
        });
    }
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
    tracing::info!(request_id = %link.id, provider = provider.id, status = ?check.status, "live check finished");
    if check.status == CheckStatus::Invalid {
        reject(
            &state,
            &actor,
            &link,
            "invalid_credential",
            json!({ "detail": check.detail }),
        )
        .await?;
        let target = if check.detail.contains("company domain") {
            "company_domain"
        } else {
            provider.fingerprint_field
        };
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
    };
    let stored = match submission::store(
        &state.db,
        &state.keyring,
        &link,
        provider,
        &sub,
        &check,
        &actor,
    )
    .await
    {
        Ok(s) => s,
        Err(SubmitError::LinkGone(s)) => {
            return Err(gone_unless_pending(s).err().unwrap_or(PageError::NotFound))
        }
        Err(SubmitError::Db(e)) => return Err(e.into()),
        Err(e @ SubmitError::Crypto(_)) => return Err(anyhow::Error::new(e).into()),
    };
    tracing::info!(secret_id = %stored.id, request_id = %link.id, provider = provider.id, "credential received");
    Ok(receipt(
        &state,
        &link,
        provider,
        &stored.id,
        &stored.fingerprint,
        stored.created_at,
        &check,
        &nonce,
    ))
}

/// How long after a submission the receipt's "check again" button works.
const RECHECK_WINDOW: chrono::Duration = chrono::Duration::hours(1);
/// After this many public re-checks of one secret, the button shows the last result.
const RECHECK_LIMIT: i64 = 20;

/// The receipt's "check again" button: re-runs the live check for a secret
/// submitted through this link, shortly after submission, while staff have
/// not yet taken it over.
async fn check_again(
    state: &AppState,
    actor: &Actor,
    link: &DropRequest,
    provider: &'static Provider,
    form: &Form,
    nonce: &str,
) -> Result<Response, PageError> {
    let id = form
        .get("reference")
        .and_then(|r| uuid::Uuid::parse_str(r).ok())
        .ok_or_else(|| {
            PageError::BadRequest("The form did not say which submission to check.".into())
        })?;
    let meta = secrets::get(&state.db, id)
        .await?
        .filter(|m| m.request_id == link.id)
        .ok_or(PageError::NotFound)?;
    if link.revoked_at.is_some() {
        gone_unless_pending(LinkState::Revoked)?;
    }
    if Utc::now() - meta.created_at > RECHECK_WINDOW || meta.status != "received" {
        return Err(PageError::Gone {
            title: "This check can no longer be repeated here",
            message: "Our team has taken over this credential and will check it again themselves.",
        });
    }
    let last: Option<CheckResult> = serde_json::from_value(meta.check_result.clone()).ok();
    let exhausted = secrets::public_recheck_count(&state.db, id).await? >= RECHECK_LIMIT;
    let check = match last {
        Some(last) if exhausted => last,
        _ => match recheck(&state.db, &state.keyring, &state.checker, actor, id).await {
            Ok((_, result)) => result,
            Err(RecheckError::Db(e)) => return Err(e.into()),
            Err(e) => return Err(anyhow::Error::new(e).into()),
        },
    };
    Ok(receipt(
        state,
        link,
        provider,
        &id,
        &meta.fingerprint,
        meta.created_at,
        &check,
        nonce,
    ))
}

#[allow(clippy::too_many_arguments)]
fn receipt(
    state: &AppState,
    link: &DropRequest,
    provider: &'static Provider,
    id: &uuid::Uuid,
    fingerprint: &str,
    created_at: chrono::DateTime<Utc>,
    check: &CheckResult,
    nonce: &str,
) -> Response {
    let (check_class, check_title, check_message) = describe(provider, check);
    let can_recheck = provider.check != Check::None
        && matches!(
            check.status,
            CheckStatus::MissingPermissions | CheckStatus::Unverified
        );
    render(&ReceiptPage {
        reference: id.to_string(),
        provider_name: provider.name,
        organization: &link.organization,
        fingerprint,
        received_at: created_at.format("%-d %B %Y, %H:%M UTC").to_string(),
        check_class,
        check_title,
        check_message,
        missing: check.missing.clone(),
        fix_steps: if check.status == CheckStatus::MissingPermissions {
            provider.fix_steps
        } else {
            &[]
        },
        egress_ips: state.checker.egress_ips().to_vec(),
        recheck_csrf: can_recheck.then(|| state.csrf.token(link.id, nonce)),
    })
}

/// How the receipt words a check result.
fn describe(provider: &Provider, check: &CheckResult) -> (&'static str, &'static str, String) {
    match check.status {
        CheckStatus::Verified => ("verified", "Verified", "We tested the credential and it has every permission we need.".into()),
        CheckStatus::MissingPermissions => (
            "missing",
            "Some permissions are missing",
            "The credential works, but it lacks the permissions listed below. Add them to the same credential; you do not need to submit it again.".into(),
        ),
        CheckStatus::Invalid => ("invalid", "The credential was rejected", check.detail.clone()),
        CheckStatus::Unverified if provider.check == Check::None => (
            "unverified",
            "Received",
            "This kind of secret cannot be tested automatically. Our team will check it and contact you if anything is wrong.".into(),
        ),
        CheckStatus::Unverified => (
            "unverified",
            "Received, not yet verified",
            format!(
                "We stored the credential but could not test it right now: {}. Our team will check it and contact you if anything is wrong.",
                check.detail.trim_end_matches('.')
            ),
        ),
    }
}

//! The drop pages: `GET /d/{token}` shows the form, `POST /d/{token}` stores
//! the credential (`submit`, after the transport checks of `drop_form`) or
//! re-runs its live check (`receipt`).

mod drop_form;
mod receipt;
mod submit;

use super::client_ip::{ClientIp, ClientIpKey};
use super::csrf::Nonce;
use super::error::PageError;
use super::pages::{render, DropPage, ErrorPage, FieldView};
use super::throttle::{retry_after_secs, OncePerWindow};
use super::AppState;
use crate::domain::DropToken;
use crate::providers::{self, Provider};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::requests::{self, DropRequest, LinkState};
use crate::store::secrets;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use chrono::Utc;
use serde_json::json;
use std::sync::Arc;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::{GovernorError, GovernorLayer};

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/d/{token}", get(show).post(submit::post))
        .route(
            "/r/{id}",
            get(receipt::show).post(receipt::check_again_here),
        );
    let Some(limit) = state.config.rate_limit else {
        return routes;
    };
    let v6 = state.config.proxies.ipv6_prefix;
    let config = GovernorConfigBuilder::default()
        .key_extractor(ClientIpKey { ipv6_prefix: v6 })
        .period(limit.per / limit.count)
        .burst_size(limit.count)
        .finish()
        .expect("a positive rate limit is a valid governor config");
    let once = Arc::new(OncePerWindow::new(limit.per, v6));
    // Forget idle clients on a timer so the tables stay small (IPv6 clients
    // are keyed by network, so rotating addresses does not grow them).
    let limiter = Arc::downgrade(config.limiter());
    let weak_once = Arc::downgrade(&once);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(super::throttle::PRUNE_EVERY);
        loop {
            tick.tick().await;
            match (limiter.upgrade(), weak_once.upgrade()) {
                (Some(l), Some(o)) => {
                    l.retain_recent();
                    l.shrink_to_fit();
                    o.prune();
                }
                _ => break,
            }
        }
    });
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
        "Too many requests came from your network. Please wait {} and try again.",
        super::error::seconds(wait)
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

/// A public path with a method it does not answer: the HTML error page.
pub async fn method_not_allowed() -> Response {
    let mut resp = ErrorPage {
        title: "That cannot be done here",
        message: "This page does not accept that kind of request.",
        hint: "Open your drop link in a browser and use the form on the page.",
    }
    .into_response();
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp
}

/// Finds the link for a raw token. Failed lookups spend the client's
/// failure budget; once it is spent the client gets 429 before any lookup.
pub(super) async fn find_link(
    state: &AppState,
    ip: ClientIp,
    raw: &str,
) -> Result<DropRequest, PageError> {
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

pub(super) fn provider_of(link: &DropRequest) -> Result<&'static Provider, PageError> {
    providers::find(&link.provider).ok_or_else(|| {
        anyhow::anyhow!(
            "link {} names unknown provider {:?}",
            link.id,
            link.provider
        )
        .into()
    })
}

/// The page for a link that cannot take a submission, or `Ok` when it can.
/// `submitted` says whether anything was ever submitted through the link:
/// the page then says it was received, never that nothing was submitted.
pub(super) fn gone_unless_pending(state: LinkState, submitted: bool) -> Result<(), PageError> {
    const NEW_LINK: &str =
        "If you still need to send a credential, ask the person who sent you the link for a new one.";
    Err(match state {
        LinkState::Pending => return Ok(()),
        LinkState::Used => PageError::Gone {
            title: "This link has already been used",
            message:
                "A credential was already submitted through this link, so it cannot be used again.",
            hint: "If you sent it, it arrived and is stored encrypted: you do not need to send it again. If you did not, ask the person who sent you the link for a new one.",
        },
        LinkState::Expired if submitted => PageError::Gone {
            title: "This link has expired",
            message: "Drop links work for a limited time, and this one has run out. What was submitted through it before then was received and is kept.",
            hint: NEW_LINK,
        },
        LinkState::Expired => PageError::Gone {
            title: "This link has expired",
            message: "Drop links work for a limited time, and this one has run out. Nothing was submitted through it.",
            hint: NEW_LINK,
        },
        LinkState::Revoked if submitted => PageError::Gone {
            title: "This link was withdrawn",
            message: "The team that sent this link has cancelled it, so it takes no more submissions. What was submitted through it before then was received and is kept.",
            hint: NEW_LINK,
        },
        LinkState::Revoked => PageError::Gone {
            title: "This link was withdrawn",
            message: "The team that sent this link has cancelled it. Nothing was submitted through it.",
            hint: NEW_LINK,
        },
    })
}

async fn show(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let link = find_link(&state, ip, &token).await?;
    let cookie = state.csrf.cookie(&headers);
    let now = Utc::now();
    if link.state(now) != LinkState::Pending {
        if let Some(page) = already_received(&state, &link, cookie.as_ref()).await? {
            return Ok(page);
        }
        gone_unless_pending(link.state(now), link.use_count > 0)?;
    }
    let provider = provider_of(&link)?;
    let nonce = cookie.unwrap_or_else(Nonce::generate);
    let fields = provider
        .fields
        .iter()
        .map(|f| field_view(f, None, None))
        .collect();
    let page = drop_page(&state, &link, provider, &nonce, fields);
    Ok(with_cookie(&state, &link, &nonce, render(&page)))
}

/// Sets (or renews) the form cookie so it lives at least as long as the link
/// and its grace period: a page left open must not lose its cookie first.
pub(super) fn with_cookie(
    state: &AppState,
    link: &DropRequest,
    nonce: &Nonce,
    mut resp: Response,
) -> Response {
    let lifetime = link.expires_at + state.config.link_grace - Utc::now();
    resp.headers_mut()
        .append(header::SET_COOKIE, state.csrf.renew(nonce, lifetime));
    resp
}

/// For the browser that submitted through this (now used) link: the page
/// saying when it was received and its reference, instead of the 410 page.
pub(super) async fn already_received(
    state: &AppState,
    link: &DropRequest,
    cookie: Option<&Nonce>,
) -> Result<Option<Response>, PageError> {
    let Some(nonce) = cookie else {
        return Ok(None);
    };
    let Some((id, at)) =
        secrets::find_by_browser(&state.db, link.id, &nonce.browser_hash()).await?
    else {
        return Ok(None);
    };
    let message = format!(
        "We received this on {}, reference {id}.",
        at.format("%-d %B %Y, %H:%M UTC")
    );
    Ok(Some(
        ErrorPage {
            title: "We already received your credential",
            message: &message,
            hint: "It is stored encrypted; you do not need to send it again. Keep the reference if you want to ask us about it.",
        }
        .into_response(),
    ))
}

/// `303 See Other` to the receipt of secret `id` (Post/Redirect/Get: reloading
/// the receipt never sends the form again).
pub(super) fn see_receipt(id: uuid::Uuid) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/r/{id}"))],
    )
        .into_response()
}

pub(super) fn field_view(
    f: &'static providers::Field,
    value: Option<&str>,
    error: Option<String>,
) -> FieldView {
    FieldView {
        name: f.name,
        label: f.label,
        help: f.help,
        secret: f.secret,
        multiline: f.multiline(),
        choices: match f.kind {
            providers::FieldKind::Choice(c) => c,
            _ => &[],
        },
        required: f.required,
        // Secret values are never sent back to the browser.
        value: if f.secret {
            String::new()
        } else {
            value.unwrap_or_default().to_owned()
        },
        error,
    }
}

pub(super) fn drop_page<'a>(
    state: &AppState,
    link: &'a DropRequest,
    provider: &'static Provider,
    nonce: &Nonce,
    fields: Vec<FieldView>,
) -> DropPage<'a> {
    DropPage {
        provider,
        heading: heading(provider),
        system: system_name(provider),
        organization: &link.organization,
        expires_on: link.expires_at.format("%-d %B %Y, %H:%M UTC").to_string(),
        csrf_token: state.csrf.token(link.id, nonce),
        submission_id: state.csrf.submission_id(link.id, nonce, Utc::now()),
        refused_heading: None,
        expiring: {
            let left = link.expires_at - Utc::now();
            (left < chrono::Duration::hours(1)).then(|| {
                format!(
                    "This link expires in {} minutes, at {}. Send the form before then; a form opened before then is still accepted for a short while after.",
                    left.num_minutes().max(0),
                    link.expires_at.format("%H:%M UTC")
                )
            })
        },
        fields,
        submitter_name: String::new(),
        submitter_email: String::new(),
        name_error: None,
        email_error: None,
        errors: Vec::new(),
        egress_ips: state.checker.egress_ips().to_vec(),
    }
}

/// "Share your Lever credential"; a provider whose name already says
/// credential ("Other credential") is not doubled into "credential credential".
fn heading(provider: &Provider) -> String {
    if provider.name.to_lowercase().ends_with("credential") {
        "Share your credential".to_owned()
    } else {
        format!("Share your {} credential", provider.name)
    }
}

/// The provider as a system the customer has an account with; "system" for
/// the generic provider, whose name is not a system.
fn system_name(provider: &Provider) -> &'static str {
    if provider.name.to_lowercase().ends_with("credential") {
        "system"
    } else {
        provider.short_name
    }
}

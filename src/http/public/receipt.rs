//! The receipt page and its "check again" button.

use super::provider_of;
use crate::crypto::{Fingerprint, FingerprintKind};
use crate::domain::SecretStatus;
use crate::http::client_ip::ClientIp;
use crate::http::csrf::{check_origin, Nonce};
use crate::http::error::PageError;
use crate::http::form::Form;
use crate::http::pages::{render, ErrorPage, ReceiptPage};
use crate::http::AppState;
use crate::providers::{thousands, CheckResult, CheckStatus, Provider};
use crate::service::checks::recheck_within;
use crate::store::audit::Actor;
use crate::store::requests::DropRequest;
use crate::store::secrets;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use uuid::Uuid;

/// How long after a submission the receipt's "check again" button works.
const RECHECK_WINDOW: chrono::Duration = chrono::Duration::hours(1);
/// After this many public re-checks of one secret, the button shows the last result.
const RECHECK_LIMIT: i64 = 20;

/// The receipt's "check again" button: re-runs the live check for a secret
/// submitted through this link, shortly after submission, while staff have
/// not yet taken it over.
pub(super) async fn check_again(
    state: &AppState,
    actor: &Actor,
    link: &DropRequest,
    provider: &'static Provider,
    form: &Form,
    nonce: &Nonce,
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
        .ok_or(PageError::SubmissionNotFound)?;
    // The credential was received whatever happened to the link since; the
    // page says so, and who checks it now.
    const RECEIVED: &str =
        "Your credential was received and is stored encrypted. You do not need to send it again.";
    if link.revoked_at.is_some() {
        return Err(PageError::Gone {
            title: "This check can no longer be repeated here",
            message: "The team that sent this link has cancelled it, so the check cannot be repeated from this page. They will check the credential themselves.",
            hint: RECEIVED,
        });
    }
    if Utc::now() - meta.created_at > RECHECK_WINDOW || meta.status != SecretStatus::Received {
        return Err(PageError::Gone {
            title: "This check can no longer be repeated here",
            message: "Our team has taken over this credential and will check it again themselves.",
            hint: RECEIVED,
        });
    }
    let last: Option<CheckResult> = serde_json::from_value(meta.check_result.clone()).ok();
    // The attempt is claimed in the database before any decryption, so
    // parallel posts cannot exceed the limit; past it, the last result shows.
    let check = match recheck_within(
        &state.db,
        &state.keys,
        &state.checker,
        actor,
        id,
        RECHECK_LIMIT,
    )
    .await?
    {
        Some((_, result)) => result,
        None => last.unwrap_or_else(|| {
            CheckResult::unverified("this credential was checked as often as the page allows")
        }),
    };
    Ok(receipt(
        state,
        link,
        provider,
        &id,
        &Fingerprint {
            kind: FingerprintKind::parse(&meta.fingerprint_kind),
            text: meta.fingerprint.clone(),
        },
        secrets::secret_length(&state.db, id).await?,
        meta.created_at,
        &check,
        nonce,
    ))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn receipt(
    state: &AppState,
    link: &DropRequest,
    provider: &'static Provider,
    id: &uuid::Uuid,
    fingerprint: &Fingerprint,
    secret_length: Option<i32>,
    created_at: chrono::DateTime<Utc>,
    check: &CheckResult,
    nonce: &Nonce,
) -> Response {
    let (check_class, check_title, check_message) = describe(provider, check);
    let can_recheck = provider.check.is_some()
        && matches!(
            check.status,
            CheckStatus::MissingPermissions | CheckStatus::Unverified
        );
    render(&ReceiptPage {
        reference: id.to_string(),
        provider_name: provider.name,
        organization: &link.organization,
        fingerprint: fingerprint.kind.describe(&fingerprint.text),
        fingerprint_note: match fingerprint.kind {
            FingerprintKind::Tail | FingerprintKind::Legacy => {
                "the last characters of what you pasted"
            }
            FingerprintKind::Keyed => {
                "a code computed from what you pasted that contains none of it; our team sees the same code"
            }
            FingerprintKind::None => "",
        },
        // The length as received, for the admin to compare with what they pasted.
        secret_length: secret_length.map(|n| {
            let n = usize::try_from(n).unwrap_or_default();
            format!(
                "{} character{}",
                thousands(n),
                if n == 1 { "" } else { "s" }
            )
        }),
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
        // "I have fixed it" only where there was something to fix; an
        // unreachable provider needs no change on the admin's side.
        recheck_label: if check.status == CheckStatus::MissingPermissions {
            "I have added them, check again"
        } else {
            "Check again"
        },
    })
}

/// How the receipt words a check result.
fn describe(provider: &Provider, check: &CheckResult) -> (&'static str, &'static str, String) {
    match check.status {
        CheckStatus::Verified => ("verified", "Verified", "We tested the credential and it has every permission we need.".into()),
        CheckStatus::MissingPermissions if provider.permissions_editable => (
            "missing",
            "Some permissions are missing",
            "The credential works, but it lacks the permissions listed below. Add them to the same credential; you do not need to submit it again.".into(),
        ),
        // Lever, Workable, SmartRecruiters: a key keeps the access it was created with.
        CheckStatus::MissingPermissions => (
            "missing",
            "Some permissions are missing",
            format!("The credential works, but it lacks the permissions listed below. {} cannot add permissions to an existing key, so a new one is needed: the steps below say how.", provider.short_name),
        ),
        CheckStatus::Invalid => ("invalid", "The credential was rejected", check.detail.clone()),
        CheckStatus::Unverified if provider.check.is_none() => (
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

/// The page for a receipt this browser did not submit (or an unknown one):
/// it gives nothing away about whether the reference exists.
fn not_yours() -> Response {
    let mut resp = ErrorPage {
        title: "This receipt opens only where it was sent from",
        message: "A receipt can be reopened only in the browser that sent the credential.",
        hint: "If you sent a credential, it arrived as the receipt said; keep its reference if you want to ask us about it.",
    }
    .into_response();
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// The submitting browser's view of secret `raw_id` (the browser known by
/// its form cookie), with its link and provider.
async fn own_receipt(
    state: &AppState,
    cookie: Option<&Nonce>,
    raw_id: &str,
) -> Result<Option<(secrets::Receipt, &'static Provider)>, PageError> {
    let Ok(id) = Uuid::parse_str(raw_id) else {
        return Ok(None);
    };
    let Some(nonce) = cookie else {
        return Ok(None);
    };
    let Some(found) = secrets::receipt(&state.db, id, &nonce.browser_hash()).await? else {
        return Ok(None);
    };
    let provider = provider_of(&found.link)?;
    Ok(Some((found, provider)))
}

/// `GET /r/{id}`: the receipt a successful submission redirects to. Only the
/// browser that submitted (its form cookie) can open it, and the page never
/// contains the link's token, so it can be reloaded and bookmarked safely.
pub(super) async fn show(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let cookie = state.csrf.cookie(&headers);
    let Some((found, provider)) = own_receipt(&state, cookie.as_ref(), &raw_id).await? else {
        return Ok(not_yours());
    };
    let meta = found.meta;
    let check: CheckResult = serde_json::from_value(meta.check_result)
        .map_err(|e| anyhow::anyhow!("stored check result of {} is unreadable: {e}", meta.id))?;
    let nonce = cookie.unwrap_or_else(Nonce::generate);
    Ok(receipt(
        &state,
        &found.link,
        provider,
        &meta.id,
        &Fingerprint {
            kind: FingerprintKind::parse(&meta.fingerprint_kind),
            text: meta.fingerprint,
        },
        found.secret_length,
        meta.created_at,
        &check,
        &nonce,
    ))
}

/// `POST /r/{id}`: the receipt's "check again" button; then back to the
/// receipt (`303`), which shows the new result.
pub(super) async fn check_again_here(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    // An unreadable body is answered with the HTML error page, never axum's
    // plain-text rejection.
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            PageError::TooLarge
        } else {
            PageError::BadRequest("The form could not be read.".into())
        }
    })?;
    if check_origin(&headers, &state.config.public_origin()).is_err() {
        return Err(PageError::Forbidden(
            "This form was sent from another website, so we did not accept it.",
        ));
    }
    let cookie = state.csrf.cookie(&headers);
    let Some((found, provider)) = own_receipt(&state, cookie.as_ref(), &raw_id).await? else {
        return Ok(not_yours());
    };
    let (meta, link) = (found.meta, found.link);
    let form = Form::parse(&body)
        .map_err(|e| PageError::BadRequest(format!("The form could not be read: {e}.")))?;
    let verified = state
        .csrf
        .verify(cookie.as_ref(), link.id, form.get("csrf_token"));
    let nonce = match verified {
        Ok(nonce) if form.get("reference") == Some(raw_id.as_str()) => nonce,
        _ => {
            return Err(PageError::Forbidden(
                "Your form session expired or could not be confirmed, so we did not accept it.",
            ))
        }
    };
    let actor = Actor::public(Some(ip.0.to_string()));
    check_again(&state, &actor, &link, provider, &form, nonce).await?;
    Ok(super::see_receipt(meta.id))
}

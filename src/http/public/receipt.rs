//! The receipt page and its "check again" button.

use crate::crypto::{Fingerprint, FingerprintKind};
use crate::http::error::PageError;
use crate::http::form::Form;
use crate::http::pages::{render, ReceiptPage};
use crate::http::AppState;
use crate::providers::{thousands, Check, CheckResult, CheckStatus, Provider};
use crate::service::checks::{recheck_within, RecheckError};
use crate::store::audit::Actor;
use crate::store::requests::DropRequest;
use crate::store::secrets;
use axum::response::Response;
use chrono::Utc;

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
    if Utc::now() - meta.created_at > RECHECK_WINDOW || meta.status != "received" {
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
        &state.keyring,
        &state.checker,
        actor,
        id,
        RECHECK_LIMIT,
    )
    .await
    {
        Ok(Some((_, result))) => result,
        Ok(None) => last.unwrap_or_else(|| {
            CheckResult::unverified("this credential was checked as often as the page allows")
        }),
        Err(RecheckError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(anyhow::Error::new(e).into()),
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

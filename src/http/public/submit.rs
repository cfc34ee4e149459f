//! `POST /d/{token}`: after the transport checks ([`DropForm`]), one of two
//! actions: a submission ([`submit`], through `service::submission::submit`,
//! whose outcome becomes a page) or the receipt's "check again"
//! ([`recheck`]).

use super::drop_form::{form_again, kept, DropForm};
use super::receipt::check_again;
use super::{drop_page, field_view, gone_unless_pending, see_receipt};
use crate::http::error::PageError;
use crate::http::pages::{render, FormError};
use crate::http::AppState;
use crate::service::submission::{self, Deps, Draft, FieldError, Outcome, SubmitError};
use crate::store::requests::LinkState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

/// The drop form's POST: a form carrying `recheck` is the receipt's button.
pub(super) async fn post(
    State(state): State<AppState>,
    form: DropForm,
) -> Result<Response, PageError> {
    if form.is_recheck() {
        recheck(&state, &form).await
    } else {
        submit(&state, &form).await
    }
}

/// The receipt's "check again", posted to the drop link it was submitted
/// through (`receipt::check_again`).
async fn recheck(state: &AppState, form: &DropForm) -> Result<Response, PageError> {
    check_again(
        state,
        &form.actor,
        &form.link,
        form.provider,
        &form.form,
        &form.nonce,
    )
    .await
}

/// A submission: `303` to its receipt when stored (or when it repeats a
/// stored form), the form again with what is wrong (422), or the page of a
/// link that takes no more.
async fn submit(state: &AppState, form: &DropForm) -> Result<Response, PageError> {
    let deps = Deps {
        db: &state.db,
        keys: &state.keys,
        fingerprinter: &state.fingerprints,
        checker: &state.checker,
        metrics: &state.metrics,
        grace: state.config.link_grace,
    };
    let browser_hash = form.nonce.browser_hash();
    let draft = Draft {
        link: &form.link,
        provider: form.provider,
        actor: &form.actor,
        form: &form.form,
        submission_id: form.submission_id.as_ref().map(|s| s.id.as_str()),
        served_at: form.submission_id.as_ref().map(|s| s.served_at),
        browser_hash: Some(&browser_hash),
    };
    match submission::submit(&deps, &draft).await {
        Ok(Outcome::Stored(stored)) => Ok(see_receipt(stored.id)),
        Ok(Outcome::Invalid(invalid)) => Ok(again(state, form, &invalid.errors, &invalid.withheld)),
        Ok(Outcome::Rejected { field, message }) => {
            Ok(again(state, form, &[FieldError { field, message }], &[]))
        }
        Err(SubmitError::Repeat(first)) => Ok(see_receipt(first)),
        Err(SubmitError::GraceOver) => {
            let link = &form.link;
            let message = format!(
                "This link expired on {}, while the page was open, and the extra time we allow for a form opened before then has passed too. Nothing was stored. Ask the person who sent you the link for a new one; the values you typed are below so you can copy them.",
                link.expires_at.format("%-d %B %Y, %H:%M UTC")
            );
            let mut resp = form_again(
                state,
                link,
                form.provider,
                &form.nonce,
                &form.form,
                "This link has expired",
                &message,
            );
            *resp.status_mut() = StatusCode::GONE;
            Ok(resp)
        }
        Err(SubmitError::LinkGone(s)) => {
            let submitted = form.link.use_count > 0 || s == LinkState::Used;
            Err(gone_unless_pending(s, submitted)
                .err()
                .unwrap_or(PageError::NotFound))
        }
        Err(SubmitError::Db(e)) => Err(e.into()),
        Err(SubmitError::Kms(e)) => {
            tracing::error!(error = %e, "KMS unavailable: submission refused, nothing stored");
            Err(PageError::Unavailable)
        }
        Err(e @ SubmitError::Crypto(_)) => Err(anyhow::Error::new(e).into()),
    }
}

/// The form again (422) with every problem in `errors`: typed non-secret
/// values kept, except `withheld` ones (a secret typed into them); secret
/// fields empty.
fn again(
    state: &AppState,
    form: &DropForm,
    errors: &[FieldError],
    withheld: &[&'static str],
) -> Response {
    let error_for = |name: &str| {
        errors
            .iter()
            .find(|e| e.field == name)
            .map(|e| e.message.clone())
    };
    let views = form
        .provider
        .fields
        .iter()
        .map(|f| {
            let value = (!withheld.contains(&f.name))
                .then(|| form.form.get(f.name))
                .flatten();
            field_view(f, value, error_for(f.name))
        })
        .collect();
    let mut page = drop_page(state, &form.link, form.provider, &form.nonce, views);
    page.submitter_name = kept(&form.form, "submitter_name", 200);
    page.submitter_email = kept(&form.form, "submitter_email", 254);
    page.name_error = error_for("submitter_name");
    page.email_error = error_for("submitter_email");
    page.errors = errors
        .iter()
        .map(|e| FormError {
            field: e.field,
            message: e.message.clone(),
        })
        .collect();
    let mut resp = render(&page);
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    resp
}

//! Askama templates for the public pages, and their rendering.

use crate::providers::Provider;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Renders a template as an HTML response (500 if rendering fails).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub hint: &'a str,
}

impl IntoResponse for ErrorPage<'_> {
    fn into_response(self) -> Response {
        render(&self)
    }
}

/// One provider field as shown on the form. `value` is always empty for secrets.
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub secret: bool,
    /// A text area: the value may span lines.
    pub multiline: bool,
    /// Fixed values (value, label) shown as a drop-down; empty for text inputs.
    pub choices: &'static [(&'static str, &'static str)],
    pub required: bool,
    pub value: String,
    pub error: Option<String>,
}

/// An entry of the error summary, linking to its field.
pub struct FormError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "drop.html")]
pub struct DropPage<'a> {
    pub provider: &'static Provider,
    /// The page's title and heading ("Share your Lever API key credential").
    pub heading: String,
    /// What the customer's system is called in a sentence ("your Lever account").
    pub system: &'static str,
    pub organization: &'a str,
    pub expires_on: String,
    pub csrf_token: String,
    /// The form's one-time id (`CsrfKey::submission_id`): makes a repeat harmless.
    pub submission_id: String,
    /// Replaces the usual heading when the form comes back after a refusal.
    pub refused_heading: Option<&'static str>,
    /// A warning when the link expires within the hour.
    pub expiring: Option<String>,
    pub fields: Vec<FieldView>,
    pub submitter_name: String,
    pub submitter_email: String,
    pub name_error: Option<String>,
    pub email_error: Option<String>,
    pub errors: Vec<FormError>,
    pub egress_ips: Vec<String>,
}

#[derive(Template)]
#[template(path = "receipt.html")]
pub struct ReceiptPage<'a> {
    pub reference: String,
    pub provider_name: &'a str,
    pub organization: &'a str,
    /// "ends in …3WK3" or "fingerprint K7-2QX" (`crypto::fingerprint`).
    pub fingerprint: String,
    /// What kind of fingerprint it is, in words.
    pub fingerprint_note: &'static str,
    /// "4,204 characters": the length of the secret as received.
    pub secret_length: Option<String>,
    pub received_at: String,
    pub check_class: &'static str,
    pub check_title: &'static str,
    pub check_message: String,
    pub missing: Vec<String>,
    /// Steps to add missing permissions in the provider's UI.
    pub fix_steps: &'static [&'static str],
    pub egress_ips: Vec<String>,
    /// A CSRF token for the "check again" button, when it is offered.
    pub recheck_csrf: Option<String>,
    /// The "check again" button's words.
    pub recheck_label: &'static str,
}

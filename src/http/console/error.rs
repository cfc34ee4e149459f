//! The console's error pages: a clear page with the right status for every
//! refusal; server faults are logged and shown only as a generic message.

use crate::http::pages::render;
use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: to the login page, then back to `return_to` (a
    /// console path, see `auth::return_path`) when the request was a page view.
    #[error("sign in first")]
    Login { return_to: Option<String> },
    #[error("your groups do not grant the {0:?} scope")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    /// The form's CSRF token or origin was wrong.
    #[error(
        "this form was not sent from a console page of this session; reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// The KMS holding the secret's key could not be asked (down, slow,
    /// refusing): a 503 that says nothing changed. The cause is logged only.
    #[error(
        "the key service that holds this secret's key is unavailable, so the secret could not be \
         opened. Nothing was changed (the attempt is in the audit trail). Try again in a moment."
    )]
    KmsUnavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for ConsoleError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// Renders a standalone error page with `status`.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response {
    (status, render(&ErrorPage { title, message })).into_response()
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            Self::Login { return_to } => {
                let to = match return_to {
                    Some(path) => format!(
                        "/login?next={}",
                        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
                    ),
                    None => "/login".to_owned(),
                };
                (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
            }
            Self::Forbidden(_) => page(StatusCode::FORBIDDEN, "Not allowed", &message),
            Self::NotFound(_) => page(StatusCode::NOT_FOUND, "Not found", &message),
            Self::Csrf => page(StatusCode::FORBIDDEN, "Form expired", &message),
            Self::BadRequest(_) => page(StatusCode::BAD_REQUEST, "Cannot do that", &message),
            Self::Conflict(_) => page(StatusCode::CONFLICT, "Cannot do that", &message),
            Self::KmsUnavailable(why) => {
                tracing::error!(error = %why, "KMS unavailable: console action refused");
                page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Key service unavailable",
                    &message,
                )
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "console request failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not complete this request; it was logged. Try again shortly.",
                )
            }
        }
    }
}

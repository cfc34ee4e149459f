//! Errors at the HTTP edge: JSON for the internal API, HTML pages for the public side.
//!
//! Client mistakes get a precise status and message. Server faults are logged
//! with their cause and shown only as a generic message.

use super::pages::ErrorPage;
use crate::domain::SecretStatus;
use crate::service::secrets::SecretError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered by the internal API as `{"error":{"code","message"}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid staff token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("this token lacks the {0:?} scope")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Well-formed input that breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    #[error("the request body is too large")]
    TooLarge,
    /// A body in a format the endpoint does not read (415).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("this endpoint does not answer that method")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the key that encrypted this secret (KEK {0:?}) is not configured on this server")]
    KekUnavailable(String),
    /// The KMS holding this secret's key could not be asked (503).
    #[error("the key management service is unavailable; try again shortly")]
    KmsUnavailable(String),
    #[error("too many failed attempts from your address; retry after {}", seconds(*.0))]
    RateLimited(u64),
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::KekUnavailable(_) => (StatusCode::INTERNAL_SERVER_ERROR, "kek_unavailable"),
            Self::KmsUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "kms_unavailable"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            tracing::error!(error = %e, "database unavailable");
            Self::Unavailable
        } else {
            Self::Internal(e.into())
        }
    }
}

/// The secret actions' errors, mapped once for every handler.
impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::NotFound => Self::NotFound(SECRET_NOT_FOUND),
            SecretError::Shredded => Self::conflict(
                SecretStatus::Shredded.as_str(),
                "this secret was shredded; its ciphertext no longer exists",
            ),
            e @ SecretError::Transition { .. } => {
                Self::conflict("invalid_transition", e.to_string())
            }
            SecretError::KekUnavailable(kek) => Self::KekUnavailable(kek),
            SecretError::KmsUnavailable(e) => Self::KmsUnavailable(e.to_string()),
            e @ SecretError::Crypto(_) => Self::Internal(anyhow::Error::new(e)),
            SecretError::Db(e) => e.into(),
        }
    }
}

/// The API's 404 message for a secret id.
pub const SECRET_NOT_FOUND: &str = "no secret with that id";

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::KekUnavailable(id) => {
                tracing::error!(kek_id = %id, "secret wrapped by a KEK that is not configured")
            }
            Self::KmsUnavailable(why) => tracing::error!(error = %why, "KMS unavailable"),
            _ => {}
        }
        let body = Json(json!({ "error": { "code": code, "message": self.to_string() } }));
        let mut resp = (status, body).into_response();
        if let Self::RateLimited(secs) = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if matches!(self, Self::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// "1 second", "30 seconds": for messages that tell a person how long to wait.
pub fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".to_owned()
    } else {
        format!("{n} seconds")
    }
}

/// True for errors meaning "the database can't be reached right now": no
/// connection in time, a dropped connection, a server shutting down or
/// starting (57P01-57P03), a connection failure (class 08), too many
/// connections (53300), or a read-only database (25006).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300" | "25006")
        }),
        _ => false,
    }
}

/// An error answered on the public listener as an HTML page.
#[derive(Debug)]
pub enum PageError {
    NotFound,
    /// A link (or a page's action) that no longer works. `hint` says what
    /// happened to anything already submitted: a page seen after a
    /// submission must never claim that nothing was submitted.
    Gone {
        title: &'static str,
        message: &'static str,
        hint: &'static str,
    },
    /// A receipt's "check again" named a submission this link does not have.
    SubmissionNotFound,
    Forbidden(&'static str),
    /// The form came back without its cookie: cookies are blocked (or the
    /// page was open for longer than the cookie lives). Filling the form in
    /// again cannot help until the browser keeps the cookie, so say so.
    CookiesBlocked,
    /// A body over the public listener's limit.
    TooLarge,
    BadRequest(String),
    /// Too many failed lookups from this client; retry after this many seconds.
    TooMany(u64),
    Unavailable,
    /// A receipt's "check again" while the KMS holding the secret's key
    /// cannot be asked: the credential is stored, only the check cannot run.
    RecheckUnavailable,
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            tracing::error!(error = %e, "database unavailable");
            Self::Unavailable
        } else {
            Self::Internal(e.into())
        }
    }
}

/// On a page, only an unreachable database is not a fault of ours to log.
impl From<SecretError> for PageError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Db(e) => e.into(),
            SecretError::KmsUnavailable(e) => {
                tracing::error!(error = %e, "KMS unavailable: public re-check refused");
                Self::RecheckUnavailable
            }
            e => Self::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Self::TooMany(secs) => Some(*secs),
            _ => None,
        };
        let (status, title, message, hint) = match self {
            Self::TooMany(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Please slow down",
                format!("Too many links that do not exist were opened from your network. Please wait {} and try again.", seconds(secs)),
                "Check that you copied the whole link from the message you received.",
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Link not found",
                "This drop link does not exist. Check that you copied the whole link from the message you received.".to_owned(),
                "If it still does not work, ask the person who sent it for a new link.",
            ),
            Self::Gone { title, message, hint } => (StatusCode::GONE, title, message.to_owned(), hint),
            Self::SubmissionNotFound => (
                StatusCode::NOT_FOUND,
                "Submission not found",
                "This link has no submission with that reference, so there is nothing to check again.".to_owned(),
                "Open the drop link again, or use the reference shown on your receipt when you ask us about it.",
            ),
            Self::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                "Please reload the page",
                why.to_owned(),
                "Nothing was stored. Open the link again and fill in the form once more.",
            ),
            Self::CookiesBlocked => (
                StatusCode::FORBIDDEN,
                "Please allow cookies for this site",
                "Your browser did not send back the cookie this form needs, so we could not confirm that the form came from this page. Nothing was stored.".to_owned(),
                "If your browser blocks cookies, allow cookies for this site (we set one, only to protect this form; it does not track you), then open the link again and fill in the form.",
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "That was too much text",
                "The form was larger than any credential we expect.".to_owned(),
                "Nothing was stored. Go back and paste only the credential itself.",
            ),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, "That request could not be read", why, "Nothing was stored."),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "We cannot store credentials right now.".to_owned(),
                "Nothing was stored. Please try again in a few minutes.",
            ),
            Self::RecheckUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The check cannot run right now",
                "The service that holds our encryption keys is not answering, so we cannot check your credential again at the moment.".to_owned(),
                "Your credential was received and is stored encrypted; you do not need to send it again. Try the check again in a few minutes.",
            ),
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error on a public page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "We could not complete your request.".to_owned(),
                    "Nothing was stored. Please try again in a few minutes.",
                )
            }
        };
        let mut resp = ErrorPage {
            title,
            message: &message,
            hint,
        }
        .into_response();
        *resp.status_mut() = status;
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_worded_in_singular_and_plural() {
        assert_eq!(seconds(1), "1 second");
        assert_eq!(seconds(30), "30 seconds");
        assert_eq!(
            ApiError::RateLimited(1).to_string(),
            "too many failed attempts from your address; retry after 1 second"
        );
    }
}

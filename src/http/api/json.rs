//! Body and query extractors whose rejections are API errors written for a
//! person: `{"error":…}` with a message naming the field and what it must be,
//! never serde's internals ("expected i64", "struct CreateBody with 6 elements").
//!
//! serde reports errors as developer text. The translation below reads that
//! text (its wording has been stable across serde 1.x) and falls back to a
//! generic sentence naming the field when a message is not recognised, so a
//! future serde wording change degrades the message, never the status code.

use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// Like `axum::Json`: a JSON body (`Content-Type: application/json`, else 415).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        let bytes = read(req, state).await?;
        parse(&bytes).map(Self)
    }
}

/// A JSON object body that may be left out: an empty body (whatever its
/// content type, as a client without a body sends it) or JSON `null` is
/// `None`; any other is read like [`JsonBody`] (415 unless it is JSON, 400
/// malformed, 422 a field), and must be an object (serde would otherwise
/// fill a struct from a list).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !json {
            return Err(not_json());
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'n') => parse(&bytes).map(Self),
            _ => {
                // Not JSON at all is a 400 that says where; a list or a
                // scalar is the wrong shape.
                parse::<serde::de::IgnoredAny>(&bytes)?;
                Err(ApiError::Invalid(
                    "the body must be a JSON object with named fields".into(),
                ))
            }
        }
    }
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType(
        "send the body as JSON, with the header Content-Type: application/json",
    )
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::bad_request("bad_request", "the request body could not be read")
        }
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v).map_err(path_error))
        .map_err(|e| json_error(&e))
}

/// `serde_json`'s `end()` error has no path; give it the root one.
fn path_error(e: serde_json::Error) -> serde_path_to_error::Error<serde_json::Error> {
    serde_path_to_error::Error::new(serde_path_to_error::Track::new().path(), e)
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let inner = e.inner();
    match inner.classify() {
        Category::Data => ApiError::Invalid(describe(&e.path().to_string(), &inner.to_string())),
        Category::Eof => ApiError::bad_request(
            "malformed_json",
            "the body is not complete JSON (it ends too early)",
        ),
        Category::Syntax | Category::Io => ApiError::bad_request(
            "malformed_json",
            format!(
                "the body is not valid JSON (near line {}, column {})",
                inner.line(),
                inner.column()
            ),
        ),
    }
}

/// Like `axum::extract::Query`, answering unreadable query strings with a
/// 400 `invalid_filter` error a person can act on.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            ApiError::bad_request(
                "invalid_filter",
                describe(&e.path().to_string(), &e.inner().to_string()),
            )
        })
    }
}

/// A list's `limit` query parameter: a whole number in `1..=max`, or `default`.
pub fn limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(default);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_filter",
                format!("limit must be a whole number from 1 to {max}"),
            )
        })
}

/// Turns a serde message about the value at `path` into a sentence.
fn describe(path: &str, message: &str) -> String {
    // serde_json appends the position; the field name says more.
    let message = message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i]);
    // Every body is an object: an error inside a top-level list (`[0]`) or
    // at the root means the body has the wrong shape.
    let field = if path.is_empty() || path == "." || path.starts_with('[') {
        None
    } else {
        Some(path)
    };
    if let Some(name) = backticked(message, "missing field `") {
        return format!("{name} is required");
    }
    if let Some(name) = backticked(message, "unknown field `") {
        return match message.split_once("expected one of ") {
            Some((_, list)) => format!(
                "there is no field {name:?}; the fields are {}",
                list.replace('`', "")
            ),
            None => format!("there is no field {name:?}"),
        };
    }
    if let Some(name) = backticked(message, "duplicate field `") {
        return format!("{name} is given more than once; give it once");
    }
    if let Some(variant) = backticked(message, "unknown variant `") {
        let options = message
            .split_once("expected one of ")
            .or_else(|| message.split_once("expected "))
            .map(|(_, l)| l.replace('`', ""))
            .unwrap_or_default();
        return format!(
            "{} cannot be {variant:?}; use one of {options}",
            field.unwrap_or("the value")
        );
    }
    let expected = message
        .split_once(", expected ")
        .or_else(|| message.split_once("expected "))
        .map(|(_, e)| kind(e));
    match (field, expected) {
        (None, _) => "the body must be a JSON object with named fields".to_owned(),
        (Some(f), Some(e)) => format!("{f} must be {e}"),
        (Some(f), None) => format!("{f} has a value that cannot be used here"),
    }
}

/// The name in `` prefix`name` ``, if `message` starts with `prefix`.
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// serde's "expected …" phrase, in words.
fn kind(expected: &str) -> &'static str {
    let e = expected.trim();
    if [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "integer",
    ]
    .iter()
    .any(|t| e.contains(t))
    {
        "a whole number"
    } else if e.contains("f32") || e.contains("f64") {
        "a number"
    } else if e.contains("string") || e.contains("char") {
        "text (a JSON string)"
    } else if e.contains("bool") {
        "true or false"
    } else if e.contains("struct") || e.contains("map") {
        "a JSON object"
    } else if e.contains("sequence") || e.contains("tuple") {
        "a list"
    } else {
        "a value of another kind"
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn serde_messages_become_sentences_without_rust_type_names() {
        let cases = [
            (
                "max_uses",
                "invalid type: string \"x\", expected i64 at line 1 column 9",
                "max_uses must be a whole number",
            ),
            (
                ".",
                "invalid type: sequence, expected struct CreateBody",
                "the body must be a JSON object with named fields",
            ),
            (
                ".",
                "invalid length 6, expected struct CreateBody with 6 elements",
                "the body must be a JSON object with named fields",
            ),
            (
                "[0]",
                "invalid type: integer `1`, expected a string",
                "the body must be a JSON object with named fields",
            ),
            (
                ".",
                "missing field `organization`",
                "organization is required",
            ),
            (
                ".",
                "unknown field `surprise`, expected one of `organization`, `provider`",
                "there is no field \"surprise\"; the fields are organization, provider",
            ),
            (
                "organization",
                "invalid type: integer `5`, expected a string",
                "organization must be text (a JSON string)",
            ),
            (
                "",
                "duplicate field `status`",
                "status is given more than once; give it once",
            ),
            (
                "max_uses",
                "invalid value: integer `-1`, expected u32",
                "max_uses must be a whole number",
            ),
        ];
        for (path, message, want) in cases {
            let got = describe(path, message);
            assert_eq!(got, want);
            for internal in ["i64", "u32", "struct", "CreateBody", "line 1"] {
                assert!(!got.contains(internal), "{got}");
            }
        }
    }
}

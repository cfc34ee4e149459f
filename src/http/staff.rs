//! Staff authentication: the `Staff` extractor for the internal API.

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::throttle::retry_after_secs;
use super::AppState;
use crate::domain::{Scope, Scopes, StaffSecret};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::tokens;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use serde_json::json;

/// An authenticated staff token. Handlers call [`Staff::require`] for their scope.
#[derive(Debug, Clone)]
pub struct Staff {
    scopes: Scopes,
    pub actor: Actor,
}

impl Staff {
    /// 403 unless the token holds `scope` (or one that includes it).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme name is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` work too.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = parts.extensions.get::<ClientIp>().map(|c| c.0);
        let ip = client.map(|c| c.to_string());
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let Some(presented) = presented else {
            return Err(ApiError::Unauthorized);
        };
        if let Some(wait) = client.and_then(|c| state.staff_failures.blocked(c)) {
            return Err(ApiError::RateLimited(retry_after_secs(wait)));
        }
        let found = match StaffSecret::parse(presented) {
            Some(secret) => tokens::authenticate(&state.db, &secret.hash()).await?,
            None => None,
        };
        let Some(token) = found else {
            // Unknown, revoked, expired or malformed: audited without the token itself.
            let actor = Actor::public(ip);
            audit::record(
                &state.db,
                NewEvent::failure(&actor, "token.rejected", "denied")
                    .detail(json!({ "path": parts.uri.path(), "method": parts.method.as_str() })),
            )
            .await?;
            if let Some(wait) = client.and_then(|c| state.staff_failures.failed(c)) {
                audit::record(
                    &state.db,
                    NewEvent::failure(&actor, "rate_limited", "denied")
                        .detail(json!({ "limit": "staff_token_failures" })),
                )
                .await?;
                if let Some(ip) = client {
                    tracing::warn!(client_ip = %ip, "too many failed staff tokens; throttling");
                }
                return Err(ApiError::RateLimited(retry_after_secs(wait)));
            }
            return Err(ApiError::Unauthorized);
        };
        Ok(Staff {
            actor: Actor::staff(token.id, token.name, ip),
            scopes: Scopes::from_stored(&token.scopes),
        })
    }
}

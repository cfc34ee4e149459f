//! Staff tokens, stored as SHA-256 hashes.

use crate::domain::{Scopes, TokenHash};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A stored staff token (never the token itself).
#[derive(Debug, Clone)]
pub struct StaffToken {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    name: &str,
    hash: &TokenHash,
    scopes: &Scopes,
    expires_at: Option<DateTime<Utc>>,
) -> sqlx::Result<StaffToken> {
    sqlx::query_as!(
        StaffToken,
        r#"INSERT INTO staff_tokens (id, name, token_hash, scopes, expires_at) VALUES ($1, $2, $3, $4, $5)
           RETURNING id, name, scopes, created_at, expires_at, revoked_at, last_used_at"#,
        Uuid::new_v4(),
        name,
        hash.as_bytes(),
        &scopes.names(),
        expires_at
    )
    .fetch_one(db)
    .await
}

/// A live (not revoked, not expired) token with this hash, marking it used.
/// `last_used_at` is written at most once a minute to keep reads cheap.
pub async fn authenticate(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
) -> sqlx::Result<Option<StaffToken>> {
    sqlx::query_as!(
        StaffToken,
        r#"WITH hit AS (
             SELECT id FROM staff_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
           ), touched AS (
             UPDATE staff_tokens SET last_used_at = now()
             WHERE id IN (SELECT id FROM hit)
               AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           )
           SELECT t.id, t.name, t.scopes, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
           FROM staff_tokens t JOIN hit USING (id)"#,
        hash.as_bytes()
    )
    .fetch_optional(db)
    .await
}

pub async fn list(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<StaffToken>> {
    sqlx::query_as!(
        StaffToken,
        "SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM staff_tokens ORDER BY created_at"
    )
    .fetch_all(db)
    .await
}

/// Revokes the live token with this name; `None` when there is none.
/// Revokes the live token with this id; returns its name.
pub async fn revoke_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "UPDATE staff_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING name",
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn revoke_by_name(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "UPDATE staff_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id",
        name
    )
    .fetch_optional(db)
    .await
}

//! Console logins in flight and console sessions.
//!
//! Both live in Postgres rather than in process memory, so any replica can
//! finish a login another started and every replica sees a revocation at
//! once. Only hashes of the browser's values are stored.

use crate::domain::TokenHash;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// What the callback needs to finish a login. The verifier and nonce are
/// one-time values; `Debug` leaves them out all the same.
pub struct PendingLogin {
    pub browser_hash: Vec<u8>,
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at: DateTime<Utc>,
    /// The console path to open after the sign-in.
    pub return_to: Option<String>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

pub async fn start_login(
    db: impl PgExecutor<'_>,
    state: &TokenHash,
    browser: &TokenHash,
    nonce: &str,
    pkce_verifier: &str,
    expires_at: DateTime<Utc>,
    return_to: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO console_logins (state_hash, browser_hash, nonce, pkce_verifier, expires_at, return_to)
         VALUES ($1, $2, $3, $4, $5, $6)",
        state.as_bytes(),
        browser.as_bytes(),
        nonce,
        pkce_verifier,
        expires_at,
        return_to
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Takes (deletes) the login with this state, so a state works once; stale
/// logins are swept on the way.
pub async fn take_login(
    db: impl PgExecutor<'_>,
    state: &TokenHash,
) -> sqlx::Result<Option<PendingLogin>> {
    sqlx::query_as!(
        PendingLogin,
        "WITH swept AS (DELETE FROM console_logins WHERE expires_at < now() - interval '1 hour')
         DELETE FROM console_logins WHERE state_hash = $1
         RETURNING browser_hash, nonce, pkce_verifier, expires_at, return_to",
        state.as_bytes()
    )
    .fetch_optional(db)
    .await
}

/// A session as the console and the admin's list show it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub client_ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
}

/// A new session's identity and grant.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub scopes: &'a [String],
    pub client_ip: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
    s: NewSession<'_>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO console_sessions
           (id, token_hash, issuer, subject, email, display_name, scopes, client_ip, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        Uuid::new_v4(),
        hash.as_bytes(),
        s.issuer,
        s.subject,
        s.email,
        s.display_name,
        s.scopes,
        s.client_ip,
        s.expires_at
    )
    .fetch_one(db)
    .await
}

/// The live session with this cookie hash, touched; `None` when unknown,
/// ended, past its lifetime or idle longer than `idle_secs`.
pub async fn authenticate(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
    idle_secs: f64,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as!(
        Session,
        "UPDATE console_sessions SET last_seen_at = now()
         WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > now()
           AND last_seen_at > now() - make_interval(secs => $2)
         RETURNING id, issuer, subject, email, display_name, scopes, client_ip,
                   created_at, last_seen_at, expires_at, ended_at, ended_by",
        hash.as_bytes(),
        idle_secs
    )
    .fetch_optional(db)
    .await
}

/// Ends a session (logout or revocation); `false` when it had already ended.
pub async fn end(db: impl PgExecutor<'_>, id: Uuid, by: &str) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE console_sessions SET ended_at = now(), ended_by = $2 WHERE id = $1 AND ended_at IS NULL",
        id,
        by
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sessions not ended and not past their lifetime, newest first.
pub async fn list_live(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Session>> {
    sqlx::query_as!(
        Session,
        "SELECT id, issuer, subject, email, display_name, scopes, client_ip,
                created_at, last_seen_at, expires_at, ended_at, ended_by
         FROM console_sessions WHERE ended_at IS NULL AND expires_at > now()
         ORDER BY created_at DESC LIMIT 500"
    )
    .fetch_all(db)
    .await
}

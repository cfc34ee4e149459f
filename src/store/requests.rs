//! Drop links (`drop_requests`).

use crate::domain::TokenHash;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A stored drop link. The raw token is never stored.
#[derive(Debug, Clone)]
pub struct DropRequest {
    pub id: Uuid,
    pub organization: String,
    pub provider: String,
    pub contact_email: Option<String>,
    pub note: Option<String>,
    pub created_by_name: String,
    pub max_uses: i32,
    pub use_count: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where a link is in its life (`status` in the API, spelled the same everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = LinkStatus)]
pub enum LinkState {
    Pending,
    Used,
    Expired,
    Revoked,
}

impl DropRequest {
    pub fn state(&self, now: DateTime<Utc>) -> LinkState {
        LinkState::of(
            self.revoked_at.is_some(),
            self.use_count,
            self.max_uses,
            self.expires_at,
            now,
        )
    }
}

impl LinkState {
    /// A link's state from the columns that decide it.
    pub fn of(
        revoked: bool,
        use_count: i32,
        max_uses: i32,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        if revoked {
            Self::Revoked
        } else if use_count >= max_uses {
            Self::Used
        } else if expires_at <= now {
            Self::Expired
        } else {
            Self::Pending
        }
    }
}

/// What is needed to create a link.
#[derive(Debug)]
pub struct NewRequest<'a> {
    pub id: Uuid,
    pub token_hash: &'a TokenHash,
    pub organization: &'a str,
    pub provider: &'a str,
    pub contact_email: Option<&'a str>,
    pub note: Option<&'a str>,
    pub created_by: Option<Uuid>,
    pub created_by_name: &'a str,
    /// The creator's email when a console (OIDC) user made the link; they
    /// are told of its submissions and failed checks.
    pub created_by_email: Option<&'a str>,
    pub max_uses: i32,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: impl PgExecutor<'_>, r: NewRequest<'_>) -> sqlx::Result<DropRequest> {
    sqlx::query_as!(
        DropRequest,
        r#"INSERT INTO drop_requests
             (id, token_hash, organization, provider, contact_email, note, created_by, created_by_name, max_uses,
              expires_at, created_by_email)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           RETURNING id, organization, provider, contact_email, note, created_by_name, max_uses, use_count,
                     created_at, expires_at, used_at, revoked_at"#,
        r.id,
        r.token_hash.as_bytes(),
        r.organization,
        r.provider,
        r.contact_email,
        r.note,
        r.created_by,
        r.created_by_name,
        r.max_uses,
        r.expires_at,
        r.created_by_email
    )
    .fetch_one(db)
    .await
}

pub async fn find_by_token(
    db: impl PgExecutor<'_>,
    hash: &TokenHash,
) -> sqlx::Result<Option<DropRequest>> {
    sqlx::query_as!(
        DropRequest,
        r#"SELECT id, organization, provider, contact_email, note, created_by_name, max_uses, use_count,
                  created_at, expires_at, used_at, revoked_at
           FROM drop_requests WHERE token_hash = $1"#,
        hash.as_bytes()
    )
    .fetch_optional(db)
    .await
}

/// A link by id (the receipt page finds its link this way).
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<DropRequest>> {
    sqlx::query_as!(
        DropRequest,
        r#"SELECT id, organization, provider, contact_email, note, created_by_name, max_uses, use_count,
                  created_at, expires_at, used_at, revoked_at
           FROM drop_requests WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Locks a link row for the rest of the transaction (submission, revocation).
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<DropRequest>> {
    sqlx::query_as!(
        DropRequest,
        r#"SELECT id, organization, provider, contact_email, note, created_by_name, max_uses, use_count,
                  created_at, expires_at, used_at, revoked_at
           FROM drop_requests WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx)
    .await
}

pub async fn revoke(tx: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE drop_requests SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        id
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Filters for listing links; `None` means any.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub state: Option<LinkState>,
    pub provider: Option<&'a str>,
    pub organization: Option<&'a str>,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub const ALL: [LinkState; 4] = [Self::Pending, Self::Used, Self::Expired, Self::Revoked];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Newest first. The state filter repeats [`DropRequest::state`] in SQL, with
/// the database's clock.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: Filter<'_>,
    limit: i64,
) -> sqlx::Result<Vec<DropRequest>> {
    sqlx::query_as!(
        DropRequest,
        r#"SELECT id, organization, provider, contact_email, note, created_by_name, max_uses, use_count,
                  created_at, expires_at, used_at, revoked_at
           FROM drop_requests
           WHERE CASE $1::text
                   WHEN 'revoked' THEN revoked_at IS NOT NULL
                   WHEN 'used' THEN revoked_at IS NULL AND use_count >= max_uses
                   WHEN 'expired' THEN revoked_at IS NULL AND use_count < max_uses AND expires_at <= now()
                   WHEN 'pending' THEN revoked_at IS NULL AND use_count < max_uses AND expires_at > now()
                   ELSE true
                 END
             AND ($2::text IS NULL OR provider = $2)
             AND ($3::text IS NULL OR organization = $3)
           ORDER BY created_at DESC, id LIMIT $4"#,
        f.state.map(LinkState::as_str),
        f.provider,
        f.organization,
        limit
    )
    .fetch_all(db)
    .await
}

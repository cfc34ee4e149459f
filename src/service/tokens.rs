//! Staff API tokens: create (the token is returned once) and revoke, each
//! with its audit event in the same transaction. The console's admin pages
//! call these; the CLI writes the same `token.created` / `token.revoked` events.

use crate::domain::{HumanDuration, Scopes, StaffSecret};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::tokens::{self, StaffToken};
use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("a live token named {0:?} already exists; revoke it first or pick another name")]
    Taken(String),
    #[error("no live token with that id")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates a token; the secret in the answer is its only copy.
pub async fn create(
    db: &PgPool,
    actor: &Actor,
    name: &str,
    scopes: &str,
    expires_in: Option<&str>,
) -> Result<(StaffToken, StaffSecret), TokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(TokenError::Invalid(
            "the name must be 1-100 characters".into(),
        ));
    }
    let scopes = Scopes::parse(scopes).map_err(TokenError::Invalid)?;
    let expires_at = expires_in
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            HumanDuration::parse(s).map_err(|e| TokenError::Invalid(format!("expires in: {e}")))
        })
        .transpose()?
        .map(|d| Utc::now() + d.as_chrono());
    let secret = StaffSecret::generate();
    let mut tx = db.begin().await?;
    let created = match tokens::insert(&mut *tx, name, &secret.hash(), &scopes, expires_at).await {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(TokenError::Taken(name.to_owned()))
        }
        other => other?,
    };
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "token.created")
            .detail(json!({ "token_id": created.id, "name": name, "scopes": scopes.names() })),
    )
    .await?;
    tx.commit().await?;
    Ok((created, secret))
}

/// Revokes the live token with this id; returns its name.
pub async fn revoke(db: &PgPool, actor: &Actor, id: Uuid) -> Result<String, TokenError> {
    let mut tx = db.begin().await?;
    let name = tokens::revoke_by_id(&mut *tx, id)
        .await?
        .ok_or(TokenError::NotFound)?;
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "token.revoked").detail(json!({ "token_id": id, "name": name })),
    )
    .await?;
    tx.commit().await?;
    Ok(name)
}

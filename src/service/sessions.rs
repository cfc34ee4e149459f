//! Staff console sessions: an admin revoking another person's sign-in, with
//! its `console.session_revoked` audit event in the same transaction (like
//! `service::tokens` for API tokens).

use crate::store::audit::{self, Actor, NewEvent};
use crate::store::console as sessions;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Ends live session `id` as revoked by `actor`. `false` when there is no
/// live session with that id (nothing is written).
pub async fn revoke(db: &PgPool, actor: &Actor, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    if !sessions::end(&mut *tx, id, "revoked").await? {
        return Ok(false);
    }
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "console.session_revoked").detail(json!({ "session_id": id })),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

//! SQL for the webhook outbox (`webhook_messages`, `webhook_deliveries`) and
//! link-expiry notices. The delivery logic is in `crate::webhooks`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// Writes a message in the caller's transaction.
pub async fn insert_message(
    db: impl PgExecutor<'_>,
    id: Uuid,
    event_type: &str,
    payload: &Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO webhook_messages (id, event_type, payload) VALUES ($1, $2, $3)",
        id,
        event_type,
        payload
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Creates one delivery per endpoint for messages not dispatched yet and at
/// least `min_age_secs` old; returns how many messages were dispatched. Safe
/// with several replicas (SKIP LOCKED).
pub async fn dispatch(
    db: &PgPool,
    endpoints: &[String],
    limit: i64,
    min_age_secs: f64,
) -> sqlx::Result<usize> {
    let mut tx = db.begin().await?;
    let ids: Vec<Uuid> = sqlx::query_scalar!(
        r#"SELECT id FROM webhook_messages
           WHERE dispatched_at IS NULL AND created_at <= now() - make_interval(secs => $2)
           ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED"#,
        limit,
        min_age_secs
    )
    .fetch_all(&mut *tx)
    .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    sqlx::query!(
        r#"INSERT INTO webhook_deliveries (message_id, endpoint)
           SELECT m, e FROM UNNEST($1::uuid[]) AS m CROSS JOIN UNNEST($2::text[]) AS e
           ON CONFLICT DO NOTHING"#,
        &ids,
        endpoints
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE webhook_messages SET dispatched_at = now() WHERE id = ANY($1)",
        &ids
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids.len())
}

/// A delivery claimed for one attempt.
#[derive(Debug)]
pub struct Claimed {
    pub message_id: Uuid,
    pub endpoint: String,
    pub attempts: i32,
    pub event_type: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// Claims due deliveries to `endpoints` (the ones this process knows; others
/// are left to the replicas configured for them): bumps their attempt count
/// and pushes their next attempt out by `lease_secs`, so a crashed worker's
/// claims come due again.
pub async fn claim_due(
    db: &PgPool,
    endpoints: &[String],
    limit: i64,
    lease_secs: f64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT message_id, endpoint FROM webhook_deliveries
               WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
                 AND endpoint = ANY($3)
               ORDER BY next_attempt_at LIMIT $1
               FOR UPDATE SKIP LOCKED)
           UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1, last_attempt_at = now(),
               next_attempt_at = now() + make_interval(secs => $2)
           FROM due, webhook_messages m
           WHERE d.message_id = due.message_id AND d.endpoint = due.endpoint AND m.id = d.message_id
           RETURNING d.message_id, d.endpoint, d.attempts, m.event_type, m.payload, m.created_at"#,
        limit,
        lease_secs,
        endpoints
    )
    .fetch_all(db)
    .await
}

/// Gives up deliveries to endpoints not in `endpoints` whose message is older
/// than `older_than_secs`: no replica configured for them delivered them in
/// the whole retry window, so the endpoint is gone everywhere.
pub async fn give_up_unknown(
    db: impl PgExecutor<'_>,
    endpoints: &[String],
    older_than_secs: f64,
) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"UPDATE webhook_deliveries d
           SET gave_up_at = now(), last_error = 'no replica has this endpoint configured'
           FROM webhook_messages m
           WHERE m.id = d.message_id AND d.delivered_at IS NULL AND d.gave_up_at IS NULL
             AND NOT (d.endpoint = ANY($1))
             AND m.created_at < now() - make_interval(secs => $2)"#,
        endpoints,
        older_than_secs
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Work this process leaves to others: pending deliveries to endpoints not in
/// `endpoints`, and (when `endpoints` is empty) messages not dispatched yet.
pub async fn left_to_others(
    db: impl PgExecutor<'_>,
    endpoints: &[String],
) -> sqlx::Result<(i64, i64)> {
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM webhook_deliveries
              WHERE delivered_at IS NULL AND gave_up_at IS NULL
                AND NOT (endpoint = ANY($1))) AS "deliveries!",
             (SELECT count(*) FROM webhook_messages WHERE dispatched_at IS NULL) AS "undispatched!""#,
        endpoints
    )
    .fetch_one(db)
    .await?;
    Ok((r.deliveries, r.undispatched))
}

pub async fn mark_delivered(
    db: impl PgExecutor<'_>,
    message_id: Uuid,
    endpoint: &str,
    status: i32,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE webhook_deliveries
           SET delivered_at = now(), last_status = $3, last_error = NULL
           WHERE message_id = $1 AND endpoint = $2"#,
        message_id,
        endpoint,
        status
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records a failed attempt: retry after `retry_in_secs`, or give up when `None`.
pub async fn mark_failed(
    db: impl PgExecutor<'_>,
    message_id: Uuid,
    endpoint: &str,
    status: Option<i32>,
    error: &str,
    retry_in_secs: Option<f64>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE webhook_deliveries
           SET last_status = $3, last_error = $4,
               next_attempt_at = CASE WHEN $5::float8 IS NULL THEN next_attempt_at
                                      ELSE now() + make_interval(secs => $5::float8) END,
               gave_up_at = CASE WHEN $5::float8 IS NULL THEN now() END
           WHERE message_id = $1 AND endpoint = $2"#,
        message_id,
        endpoint,
        status,
        error,
        retry_in_secs
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Delivery counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
}

pub async fn stats(db: impl PgExecutor<'_>) -> sqlx::Result<Stats> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL) AS "delivered!",
                  count(*) FILTER (WHERE gave_up_at IS NOT NULL) AS "failed!",
                  count(*) FILTER (WHERE delivered_at IS NULL AND gave_up_at IS NULL) AS "pending!"
           FROM webhook_deliveries"#
    )
    .fetch_one(db)
    .await?;
    Ok(Stats {
        delivered: r.delivered,
        failed: r.failed,
        pending: r.pending,
    })
}

/// Deletes messages older than `days` whose deliveries are all finished.
pub async fn prune(db: impl PgExecutor<'_>, days: i32) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"DELETE FROM webhook_messages m
           WHERE m.created_at < now() - make_interval(days => $1)
             AND m.dispatched_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = m.id
                             AND d.delivered_at IS NULL AND d.gave_up_at IS NULL)"#,
        days
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// A link that expired unused and was not announced yet.
#[derive(Debug)]
pub struct ExpiredLink {
    pub id: Uuid,
    pub organization: String,
    pub provider: String,
    pub expires_at: DateTime<Utc>,
    pub use_count: i32,
    pub max_uses: i32,
}

/// Claims links that expired (not revoked, not used up) within the last
/// `window_days`, recording a notice so each is announced once.
pub async fn claim_expired_links(
    tx: &mut PgConnection,
    window_days: i32,
) -> sqlx::Result<Vec<ExpiredLink>> {
    sqlx::query_as!(
        ExpiredLink,
        r#"WITH expired AS (
               SELECT d.id FROM drop_requests d
               WHERE d.expires_at <= now() AND d.expires_at > now() - make_interval(days => $1)
                 AND d.revoked_at IS NULL AND d.use_count < d.max_uses
                 AND NOT EXISTS (SELECT 1 FROM link_expiry_notices n WHERE n.request_id = d.id)
               LIMIT 500),
           noted AS (
               INSERT INTO link_expiry_notices (request_id) SELECT id FROM expired
               ON CONFLICT DO NOTHING RETURNING request_id)
           SELECT d.id, d.organization, d.provider, d.expires_at, d.use_count, d.max_uses
           FROM drop_requests d JOIN noted ON noted.request_id = d.id"#,
        window_days
    )
    .fetch_all(tx)
    .await
}

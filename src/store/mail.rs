//! SQL for the email outbox (`mail_messages`) and the sealed drop-link tokens
//! emails are built from (`mail_link_tokens`). The sending is in `crate::mail`.

use crate::crypto::Envelope;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// What an outbox row is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Link,
    Reminder,
    Submission,
    CheckFailed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Reminder => "reminder",
            Self::Submission => "submission",
            Self::CheckFailed => "check_failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Link,
            Self::Reminder,
            Self::Submission,
            Self::CheckFailed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A new outbox row.
#[derive(Debug)]
pub struct NewMessage<'a> {
    pub kind: Kind,
    pub request_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    /// `None`: staff (`KEYDROP_NOTIFY_EMAIL` when sent).
    pub recipient: Option<&'a str>,
    pub detail: Value,
}

pub async fn insert(db: impl PgExecutor<'_>, m: NewMessage<'_>) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        r#"INSERT INTO mail_messages (id, kind, request_id, secret_id, recipient, detail)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
        id,
        m.kind.as_str(),
        m.request_id,
        m.secret_id,
        m.recipient,
        m.detail
    )
    .execute(db)
    .await?;
    Ok(id)
}

/// Queues a staff note of `kind` twice over: for `KEYDROP_NOTIFY_EMAIL`
/// (recipient NULL, addressed when sent) and for the link's creator when a
/// console user with an email made it (`drop_requests.created_by_email`).
pub async fn insert_staff(
    db: impl PgExecutor<'_>,
    kind: Kind,
    request_id: Uuid,
    secret_id: Uuid,
    detail: Value,
) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"INSERT INTO mail_messages (id, kind, request_id, secret_id, recipient, detail)
           SELECT gen_random_uuid(), $1, $2, $3, r.recipient, $4
           FROM (SELECT NULL::text AS recipient UNION ALL
                 SELECT created_by_email FROM drop_requests
                 WHERE id = $2 AND created_by_email IS NOT NULL) r"#,
        kind.as_str(),
        request_id,
        secret_id,
        detail
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Whether a link's sealed token is kept (the link was emailed and can still
/// be used), without reading it.
pub async fn has_token(db: impl PgExecutor<'_>, request_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM mail_link_tokens WHERE request_id = $1) AS "kept!""#,
        request_id
    )
    .fetch_one(db)
    .await
}

/// Stores a link's sealed token (replacing an earlier one).
pub async fn put_token(
    db: impl PgExecutor<'_>,
    request_id: Uuid,
    sealed: &Envelope,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO mail_link_tokens (request_id, format_version, kek_id, sealed_token, wrapped_dek)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (request_id) DO UPDATE SET format_version = $2, kek_id = $3,
               sealed_token = $4, wrapped_dek = $5, created_at = now()"#,
        request_id,
        sealed.format_version,
        sealed.kek_id,
        sealed.payload,
        sealed.wrapped_dek
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A link's sealed token, while it is kept.
pub async fn token(db: impl PgExecutor<'_>, request_id: Uuid) -> sqlx::Result<Option<Envelope>> {
    let row = sqlx::query!(
        r#"SELECT format_version, kek_id, sealed_token, wrapped_dek FROM mail_link_tokens
           WHERE request_id = $1"#,
        request_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Envelope {
        format_version: r.format_version,
        kek_id: r.kek_id,
        payload: r.sealed_token,
        wrapped_dek: r.wrapped_dek,
    }))
}

/// A message claimed for one attempt.
#[derive(Debug)]
pub struct Claimed {
    pub id: Uuid,
    pub kind: String,
    pub request_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    pub recipient: Option<String>,
    pub detail: Value,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Claims due messages: bumps their attempt count and pushes the next
/// attempt out by `lease_secs`, so a crashed worker's claims come due again.
/// Safe with several replicas (SKIP LOCKED).
pub async fn claim_due(db: &PgPool, limit: i64, lease_secs: f64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT id FROM mail_messages
               WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1
               FOR UPDATE SKIP LOCKED)
           UPDATE mail_messages m
           SET attempts = m.attempts + 1, last_attempt_at = now(),
               next_attempt_at = now() + make_interval(secs => $2)
           FROM due WHERE m.id = due.id
           RETURNING m.id, m.kind, m.request_id, m.secret_id, m.recipient, m.detail,
                     m.attempts, m.created_at"#,
        limit,
        lease_secs
    )
    .fetch_all(db)
    .await
}

pub async fn mark_sent(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE mail_messages SET sent_at = now(), last_error = NULL WHERE id = $1",
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records a failed attempt: retry after `retry_in_secs`, or give up when `None`.
pub async fn mark_failed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    error: &str,
    retry_in_secs: Option<f64>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE mail_messages
           SET last_error = $2,
               next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at
                                      ELSE now() + make_interval(secs => $3::float8) END,
               gave_up_at = CASE WHEN $3::float8 IS NULL THEN now() END
           WHERE id = $1"#,
        id,
        error,
        retry_in_secs
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Queues one reminder for each link that can still be used, was never used,
/// had its link email sent before its reminder time, and reaches that time
/// (`before_secs` before expiry) now. The unique index makes it once per link
/// even with several replicas scheduling.
pub async fn schedule_reminders(db: impl PgExecutor<'_>, before_secs: f64) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"INSERT INTO mail_messages (id, kind, request_id, recipient)
           SELECT gen_random_uuid(), 'reminder', d.id, m.recipient
           FROM drop_requests d
           JOIN LATERAL (SELECT recipient, sent_at FROM mail_messages
                         WHERE request_id = d.id AND kind = 'link' AND sent_at IS NOT NULL
                         ORDER BY created_at DESC LIMIT 1) m ON true
           WHERE d.revoked_at IS NULL AND d.use_count = 0 AND d.expires_at > now()
             AND d.expires_at - make_interval(secs => $1) <= now()
             AND m.sent_at < d.expires_at - make_interval(secs => $1)
             AND EXISTS (SELECT 1 FROM mail_link_tokens t WHERE t.request_id = d.id)
           ON CONFLICT DO NOTHING"#,
        before_secs
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Forgets the sealed tokens of links that can no longer be used, and finished
/// messages older than `keep_days`.
pub async fn prune(db: impl PgExecutor<'_> + Copy, keep_days: i32) -> sqlx::Result<()> {
    sqlx::query!(
        r#"DELETE FROM mail_link_tokens t USING drop_requests d
           WHERE d.id = t.request_id
             AND (d.revoked_at IS NOT NULL OR d.use_count >= d.max_uses OR d.expires_at <= now())"#
    )
    .execute(db)
    .await?;
    sqlx::query!(
        r#"DELETE FROM mail_messages
           WHERE created_at < now() - make_interval(days => $1)
             AND (sent_at IS NOT NULL OR gave_up_at IS NOT NULL)"#,
        keep_days
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Gives up messages no replica could send within the retry window (every
/// replica runs without `KEYDROP_SMTP_URL`), so the outbox cannot grow forever.
pub async fn give_up_old(db: impl PgExecutor<'_>, older_than_secs: f64) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"UPDATE mail_messages
           SET gave_up_at = now(),
               last_error = coalesce(last_error, 'email is not configured (KEYDROP_SMTP_URL) on any replica')
           WHERE sent_at IS NULL AND gave_up_at IS NULL
             AND created_at < now() - make_interval(secs => $1)"#,
        older_than_secs
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// The state of a link's latest customer email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEmail {
    pub request_id: Uuid,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub recipient: Option<String>,
}

/// The latest `link` email of each of `ids` that has one.
pub async fn link_status(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<LinkEmail>> {
    sqlx::query_as!(
        LinkEmail,
        r#"SELECT DISTINCT ON (request_id) request_id AS "request_id!",
                  CASE WHEN sent_at IS NOT NULL THEN 'sent'
                       WHEN gave_up_at IS NOT NULL THEN 'failed'
                       ELSE 'queued' END AS "status!",
                  last_error AS error, recipient
           FROM mail_messages
           WHERE request_id = ANY($1) AND kind = 'link'
           ORDER BY request_id, created_at DESC"#,
        ids
    )
    .fetch_all(db)
    .await
}

//! SQL for the audit hash chain (`audit_seals`). The design is in `crate::chain`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// An audit event exactly as the chain hashes it.
#[derive(Debug, Clone)]
pub struct ChainEvent {
    pub id: i64,
    pub txid: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub client_ip: Option<String>,
    pub action: String,
    pub outcome: String,
    pub secret_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    /// `detail::text`: Postgres prints jsonb in one canonical form.
    pub detail: String,
}

/// The last seal: where the chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub event_id: i64,
    pub txid: i64,
    pub hash: Vec<u8>,
}

/// A new seal to append.
#[derive(Debug)]
pub struct NewSeal {
    pub seq: i64,
    pub event_id: i64,
    pub txid: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A stored seal joined with its event, if the event still exists.
#[derive(Debug)]
pub struct SealedRow {
    pub seq: i64,
    pub event_id: i64,
    pub seal_txid: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub event: Option<ChainEvent>,
}

/// Arbitrary but fixed: one sealer at a time across every replica.
const SEALER_LOCK: i64 = 0x6b64_6175_6469_7431; // "kdaudit1"

/// Takes the sealer lock for the rest of the transaction; false if another holds it.
pub async fn try_lock_sealer(tx: &mut PgConnection) -> sqlx::Result<bool> {
    let got: Option<bool> =
        sqlx::query_scalar!("SELECT pg_try_advisory_xact_lock($1)", SEALER_LOCK)
            .fetch_one(tx)
            .await?;
    Ok(got.unwrap_or(false))
}

pub async fn head(db: impl PgExecutor<'_>) -> sqlx::Result<Option<Head>> {
    sqlx::query_as!(
        Head,
        r#"SELECT seq, event_id, txid::text::bigint AS "txid!", hash
           FROM audit_seals ORDER BY seq DESC LIMIT 1"#
    )
    .fetch_optional(db)
    .await
}

/// Committed events after `(txid, id)` in chain order, but only those written by
/// transactions older than every transaction still running: nothing can ever
/// be inserted before them any more.
pub async fn sealable_after(
    db: impl PgExecutor<'_>,
    txid: i64,
    id: i64,
    limit: i64,
) -> sqlx::Result<Vec<ChainEvent>> {
    sqlx::query_as!(
        ChainEvent,
        r#"SELECT id, txid::text::bigint AS "txid!", occurred_at, actor_kind, actor_id, actor_name,
                  client_ip, action, outcome, secret_id, request_id, detail::text AS "detail!"
           FROM audit_events
           WHERE (txid, id) > ($1::text::xid8, $2)
             AND txid < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY txid, id
           LIMIT $3"#,
        txid.to_string(),
        id,
        limit
    )
    .fetch_all(db)
    .await
}

/// Appends seals in one statement.
pub async fn insert_seals(tx: &mut PgConnection, seals: &[NewSeal]) -> sqlx::Result<()> {
    let seq: Vec<i64> = seals.iter().map(|s| s.seq).collect();
    let event_id: Vec<i64> = seals.iter().map(|s| s.event_id).collect();
    let txid: Vec<String> = seals.iter().map(|s| s.txid.to_string()).collect();
    let prev: Vec<Vec<u8>> = seals.iter().map(|s| s.prev_hash.clone()).collect();
    let hash: Vec<Vec<u8>> = seals.iter().map(|s| s.hash.clone()).collect();
    sqlx::query!(
        r#"INSERT INTO audit_seals (seq, event_id, txid, prev_hash, hash)
           SELECT seq, event_id, txid::xid8, prev_hash, hash
           FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $5::bytea[])
                AS t(seq, event_id, txid, prev_hash, hash)"#,
        &seq,
        &event_id,
        &txid,
        &prev,
        &hash
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Seals with `seq > after`, in order, each with its event if it still exists.
pub async fn seals_after(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<SealedRow>> {
    let rows = sqlx::query!(
        r#"SELECT s.seq, s.event_id, s.txid::text::bigint AS "seal_txid!", s.prev_hash, s.hash,
                  e.id AS "e_id?", e.txid::text::bigint AS "e_txid?", e.occurred_at AS "occurred_at?",
                  e.actor_kind AS "actor_kind?", e.actor_id, e.actor_name, e.client_ip,
                  e.action AS "action?", e.outcome AS "outcome?", e.secret_id, e.request_id,
                  e.detail::text AS "detail?"
           FROM audit_seals s LEFT JOIN audit_events e ON e.id = s.event_id
           WHERE s.seq > $1
           ORDER BY s.seq
           LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let event = match (
                r.e_id,
                r.e_txid,
                r.occurred_at,
                r.actor_kind,
                r.action,
                r.outcome,
                r.detail,
            ) {
                (
                    Some(id),
                    Some(txid),
                    Some(occurred_at),
                    Some(actor_kind),
                    Some(action),
                    Some(outcome),
                    Some(detail),
                ) => Some(ChainEvent {
                    id,
                    txid,
                    occurred_at,
                    actor_kind,
                    actor_id: r.actor_id,
                    actor_name: r.actor_name,
                    client_ip: r.client_ip,
                    action,
                    outcome,
                    secret_id: r.secret_id,
                    request_id: r.request_id,
                    detail,
                }),
                _ => None,
            };
            SealedRow {
                seq: r.seq,
                event_id: r.event_id,
                seal_txid: r.seal_txid,
                prev_hash: r.prev_hash,
                hash: r.hash,
                event,
            }
        })
        .collect())
}

/// The first event that is not sealed yet sorts before `(txid, id)`: it was
/// inserted behind the chain's back.
pub async fn first_unsealed_before(
    db: impl PgExecutor<'_>,
    txid: i64,
    id: i64,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        r#"SELECT e.id FROM audit_events e
           WHERE (e.txid, e.id) < ($1::text::xid8, $2)
             AND NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.event_id = e.id)
           ORDER BY e.txid, e.id LIMIT 1"#,
        txid.to_string(),
        id
    )
    .fetch_optional(db)
    .await
}

/// How many events are not sealed yet (newer than the head, or all when there is none).
pub async fn unsealed_count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM audit_events e
           WHERE NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.event_id = e.id)"#
    )
    .fetch_one(db)
    .await?;
    Ok(n)
}

/// Events after `(txid, id)` in chain order: the ones waiting for the sealer.
pub async fn count_after(db: impl PgExecutor<'_>, txid: i64, id: i64) -> sqlx::Result<i64> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM audit_events WHERE (txid, id) > ($1::text::xid8, $2)"#,
        txid.to_string(),
        id
    )
    .fetch_one(db)
    .await?;
    Ok(n)
}

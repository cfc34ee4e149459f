//! Queries for background work: KEK rotation, retention, and the counts
//! health checks and metrics report.
//!
//! Every "claim" here locks rows with `FOR UPDATE SKIP LOCKED`, so several
//! processes (replicas, a CLI run beside the servers) can work through the same
//! table at once and each row is handled by exactly one of them.

use crate::domain::SecretStatus;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Rows that still hold ciphertext, by the KEK id that wraps their data key.
pub async fn rows_per_kek(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT kek_id AS "kek_id!", count(*) AS "rows!"
           FROM secrets WHERE payload IS NOT NULL AND kek_id IS NOT NULL
           GROUP BY kek_id ORDER BY kek_id"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kek_id, r.rows)).collect())
}

/// The KEK ids that wrap at least one stored secret, without counting rows:
/// a skip scan of the `secrets_kek_id` index (one descent per distinct id),
/// so its cost does not grow with the table. The readiness refresh asks
/// every second; a `GROUP BY` over every secret cost ~13 ms per call at
/// 20,000 rows and grew linearly (pg_stat_statements, BENCHMARKS.md).
pub async fn keks_in_use(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"WITH RECURSIVE k(kek_id) AS (
               (SELECT kek_id FROM secrets WHERE payload IS NOT NULL AND kek_id IS NOT NULL
                ORDER BY kek_id LIMIT 1)
               UNION ALL
               SELECT (SELECT s.kek_id FROM secrets s
                       WHERE s.payload IS NOT NULL AND s.kek_id > k.kek_id
                       ORDER BY s.kek_id LIMIT 1)
               FROM k WHERE k.kek_id IS NOT NULL)
           SELECT kek_id AS "kek_id!" FROM k WHERE kek_id IS NOT NULL"#
    )
    .fetch_all(db)
    .await
}

/// How many stored secrets `kek_id` wraps.
pub async fn rows_under(db: impl PgExecutor<'_>, kek_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "rows!" FROM secrets WHERE payload IS NOT NULL AND kek_id = $1"#,
        kek_id
    )
    .fetch_one(db)
    .await
}

/// Secrets by status (shredded ones are the tombstones).
pub async fn rows_per_status(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "rows!" FROM secrets GROUP BY status ORDER BY status"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.rows)).collect())
}

/// A data key waiting to be rewrapped. The payload is not read: rotation never touches it.
#[derive(Debug)]
pub struct WrappedDek {
    pub id: Uuid,
    pub kek_id: String,
    pub wrapped_dek: Vec<u8>,
    pub format_version: i16,
    /// Part of the row binding a KMS checks (with the id and format version).
    pub provider: String,
}

/// Rows under the active KEK that still need a rewrap: a Transit key's older
/// versions, told apart by the version marker (`vault:v2:`) a fresh wrap
/// starts with.
#[derive(Debug, Clone, Copy)]
pub struct Stale<'a> {
    pub active: &'a str,
    pub current_prefix: Option<&'a [u8]>,
}

/// Locks up to `limit` live secrets wrapped by one of `from` (never the active
/// KEK), or by an older version of the active one (`stale`), with ids above `after`, in id order, skipping rows another
/// transaction holds and ids in `skip`.
///
/// `after` is a cursor (the last id of the previous batch; `Uuid::nil()` to
/// start): without it every batch would walk past all the rows earlier
/// batches already rewrapped, which made a rotation quadratic in the table
/// size (see BENCHMARKS.md).
pub async fn claim_for_rewrap(
    tx: &mut PgConnection,
    from: &[String],
    skip: &[Uuid],
    after: Uuid,
    limit: i64,
    stale: Stale<'_>,
) -> sqlx::Result<Vec<WrappedDek>> {
    sqlx::query_as!(
        WrappedDek,
        r#"SELECT id, kek_id AS "kek_id!", wrapped_dek AS "wrapped_dek!", format_version, provider
           FROM secrets
           WHERE payload IS NOT NULL AND NOT (id = ANY($2)) AND id > $4
             AND (kek_id = ANY($1)
                  OR (kek_id = $5 AND substring(wrapped_dek FROM 1 FOR length($6::bytea)) <> $6::bytea))
           ORDER BY id
           LIMIT $3
           FOR UPDATE SKIP LOCKED"#,
        from,
        skip,
        limit,
        after,
        stale.active,
        stale.current_prefix
    )
    .fetch_all(tx)
    .await
}

/// Stores rewrapped data keys (all under `kek_id`) for rows locked by [`claim_for_rewrap`].
pub async fn store_rewrapped(
    tx: &mut PgConnection,
    kek_id: &str,
    ids: &[Uuid],
    wrapped: &[Vec<u8>],
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        r#"UPDATE secrets s SET wrapped_dek = u.dek, kek_id = $3
           FROM UNNEST($1::uuid[], $2::bytea[]) AS u(id, dek)
           WHERE s.id = u.id AND s.payload IS NOT NULL"#,
        ids,
        wrapped,
        kek_id
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

/// Live secrets whose data key is wrapped by a KEK other than the active
/// one, or by an older version of it.
pub async fn count_not_under(db: impl PgExecutor<'_>, stale: Stale<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM secrets
           WHERE payload IS NOT NULL
             AND (kek_id <> $1
                  OR substring(wrapped_dek FROM 1 FOR length($2::bytea)) <> $2::bytea)"#,
        stale.active,
        stale.current_prefix
    )
    .fetch_one(db)
    .await
}

/// Why retention shreds a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShredReason {
    /// Marked ingested longer ago than `KEYDROP_SHRED_AFTER_INGESTED`.
    Ingested,
    /// Never revealed, received longer ago than `KEYDROP_SHRED_UNCLAIMED_AFTER`.
    Unclaimed,
}

impl ShredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            // Named after the status the rule looks at.
            Self::Ingested => SecretStatus::Ingested.as_str(),
            Self::Unclaimed => "unclaimed",
        }
    }
}

/// A secret locked for shredding.
#[derive(Debug)]
pub struct DueForShred {
    pub id: Uuid,
    pub request_id: Uuid,
    pub provider: String,
    pub status: SecretStatus,
    pub reason: ShredReason,
}

/// Locks up to `limit` secrets the retention policy says to shred: ingested
/// at or before `ingested_before`, or still unrevealed and received at or
/// before `unclaimed_before` (`None` switches that rule off).
pub async fn claim_due_for_shred(
    tx: &mut PgConnection,
    ingested_before: Option<DateTime<Utc>>,
    unclaimed_before: Option<DateTime<Utc>>,
    limit: i64,
) -> sqlx::Result<Vec<DueForShred>> {
    let rows = sqlx::query!(
        r#"SELECT id, request_id, provider, status AS "status: SecretStatus" FROM secrets
           WHERE (status = $4 AND ingested_at <= $1)
              OR (status = $5 AND created_at <= $2)
           ORDER BY created_at, id
           LIMIT $3
           FOR UPDATE SKIP LOCKED"#,
        ingested_before,
        unclaimed_before,
        limit,
        SecretStatus::Ingested.as_str(),
        SecretStatus::Received.as_str()
    )
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DueForShred {
            reason: if r.status == SecretStatus::Ingested {
                ShredReason::Ingested
            } else {
                ShredReason::Unclaimed
            },
            id: r.id,
            request_id: r.request_id,
            provider: r.provider,
            status: r.status,
        })
        .collect())
}

/// How many secrets [`claim_due_for_shred`] would find, by reason:
/// `(ingested, unclaimed)`. Announces a purge before it shreds.
pub async fn count_due_for_shred(
    db: impl PgExecutor<'_>,
    ingested_before: Option<DateTime<Utc>>,
    unclaimed_before: Option<DateTime<Utc>>,
) -> sqlx::Result<(i64, i64)> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = $3 AND ingested_at <= $1) AS "ingested!",
                  count(*) FILTER (WHERE status = $4 AND created_at <= $2) AS "unclaimed!"
           FROM secrets
           WHERE (status = $3 AND ingested_at <= $1)
              OR (status = $4 AND created_at <= $2)"#,
        ingested_before,
        unclaimed_before,
        SecretStatus::Ingested.as_str(),
        SecretStatus::Received.as_str()
    )
    .fetch_one(db)
    .await?;
    Ok((r.ingested, r.unclaimed))
}

/// Versions of the migrations applied successfully, lowest first.
pub async fn applied_migrations(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<i64>> {
    // Not a `query!` macro: `_sqlx_migrations` is sqlx's own table, created at
    // run time, so it need not exist in the database the macros check against.
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(db)
        .await
}

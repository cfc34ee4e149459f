//! Encrypted secrets and their metadata.

use crate::crypto::{Envelope, Fingerprint, FingerprintKind};
use crate::domain::SecretStatus;
use crate::store::requests::DropRequest;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Everything about a secret except its ciphertext.
#[derive(Debug, Clone, Serialize)]
pub struct SecretMeta {
    pub id: Uuid,
    pub request_id: Uuid,
    pub organization: String,
    pub provider: String,
    pub submitter_name: String,
    pub submitter_email: String,
    pub fingerprint: String,
    /// `tail` ("ends in …3WK3"), `keyed` ("fingerprint K7-2QX"), `none`, or
    /// `legacy` (written before fingerprints were keyed).
    pub fingerprint_kind: String,
    pub kek_id: Option<String>,
    pub status: SecretStatus,
    #[serde(rename = "check")]
    pub check_result: Value,
    pub created_at: DateTime<Utc>,
    pub revealed_at: Option<DateTime<Utc>>,
    pub ingested_at: Option<DateTime<Utc>>,
    pub shredded_at: Option<DateTime<Utc>>,
}

/// A new secret, already sealed.
#[derive(Debug)]
pub struct NewSecret<'a> {
    pub id: Uuid,
    pub request_id: Uuid,
    pub organization: &'a str,
    pub provider: &'a str,
    pub submitter_name: &'a str,
    pub submitter_email: &'a str,
    pub fingerprint: &'a Fingerprint,
    /// The fingerprint key generation, for keyed fingerprints.
    pub fingerprint_key: i32,
    /// Characters of the main secret field as received.
    pub secret_length: Option<i32>,
    pub envelope: &'a Envelope,
    /// The live check's result as stored (`CheckResult`, serialised).
    pub check_result: super::JsonText,
    /// The drop form's one-time id (`None` for a form without one).
    pub submission_id: Option<&'a str>,
    /// SHA-256 of the submitting browser's form cookie.
    pub browser_hash: Option<&'a [u8]>,
}

/// Inserts a secret; `false` (and nothing inserted) when a secret with the same
/// submission id exists for the link: the unique key decides, also between
/// two transactions at the same moment.
pub async fn insert(tx: &mut PgConnection, s: NewSecret<'_>) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        r#"INSERT INTO secrets (id, request_id, organization, provider, submitter_name, submitter_email,
                                fingerprint, payload, wrapped_dek, kek_id, format_version, check_result,
                                fingerprint_kind, fingerprint_key, secret_length, submission_id, browser_hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           ON CONFLICT (request_id, submission_id) WHERE submission_id IS NOT NULL DO NOTHING"#,
        s.id,
        s.request_id,
        s.organization,
        s.provider,
        s.submitter_name,
        s.submitter_email,
        s.fingerprint.text,
        s.envelope.payload,
        s.envelope.wrapped_dek,
        s.envelope.kek_id,
        s.envelope.format_version,
        s.check_result as _,
        s.fingerprint.kind.as_str(),
        (s.fingerprint.kind == FingerprintKind::Keyed).then_some(s.fingerprint_key),
        s.secret_length,
        s.submission_id,
        s.browser_hash
    )
    .execute(tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The secret stored through `request_id` by the form with `submission_id`.
pub async fn find_by_submission(
    db: impl PgExecutor<'_>,
    request_id: Uuid,
    submission_id: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM secrets WHERE request_id = $1 AND submission_id = $2",
        request_id,
        submission_id
    )
    .fetch_optional(db)
    .await
}

/// The newest secret this browser submitted through `request_id`, with its time.
pub async fn find_by_browser(
    db: impl PgExecutor<'_>,
    request_id: Uuid,
    browser_hash: &[u8],
) -> sqlx::Result<Option<(Uuid, DateTime<Utc>)>> {
    let row = sqlx::query!(
        "SELECT id, created_at FROM secrets WHERE request_id = $1 AND browser_hash = $2
         ORDER BY created_at DESC LIMIT 1",
        request_id,
        browser_hash
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.id, r.created_at)))
}

/// A [`SecretMeta`] from a `query!` row that selected its columns under
/// their own names (each query's row is a type of its own).
macro_rules! secret_meta {
    ($r:ident) => {
        SecretMeta {
            id: $r.id,
            request_id: $r.request_id,
            organization: $r.organization,
            provider: $r.provider,
            submitter_name: $r.submitter_name,
            submitter_email: $r.submitter_email,
            fingerprint: $r.fingerprint,
            fingerprint_kind: $r.fingerprint_kind,
            kek_id: $r.kek_id,
            status: $r.status,
            check_result: $r.check_result,
            created_at: $r.created_at,
            revealed_at: $r.revealed_at,
            ingested_at: $r.ingested_at,
            shredded_at: $r.shredded_at,
        }
    };
}

/// What a receipt page shows: the secret, the link it came through, and the
/// length as received.
#[derive(Debug)]
pub struct Receipt {
    pub meta: SecretMeta,
    pub link: DropRequest,
    pub secret_length: Option<i32>,
}

/// The receipt of secret `id`, if the browser whose form cookie hashes to
/// `browser_hash` submitted it; `None` for any other browser, as for an
/// unknown id. One round-trip: the receipt page follows every submission.
pub async fn receipt(
    db: impl PgExecutor<'_>,
    id: Uuid,
    browser_hash: &[u8],
) -> sqlx::Result<Option<Receipt>> {
    let row = sqlx::query!(
        r#"SELECT s.id, s.request_id, s.organization, s.provider, s.submitter_name, s.submitter_email,
                  s.fingerprint, s.fingerprint_kind, s.kek_id, s.status AS "status: SecretStatus",
                  s.check_result, s.created_at, s.revealed_at, s.ingested_at, s.shredded_at, s.secret_length,
                  l.organization AS link_organization, l.provider AS link_provider, l.contact_email, l.note,
                  l.created_by_name, l.max_uses, l.use_count, l.created_at AS link_created_at, l.expires_at,
                  l.used_at, l.revoked_at
           FROM secrets s JOIN drop_requests l ON l.id = s.request_id
           WHERE s.id = $1 AND s.browser_hash = $2"#,
        id,
        browser_hash
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Receipt {
        link: DropRequest {
            id: r.request_id,
            organization: r.link_organization,
            provider: r.link_provider,
            contact_email: r.contact_email,
            note: r.note,
            created_by_name: r.created_by_name,
            max_uses: r.max_uses,
            use_count: r.use_count,
            created_at: r.link_created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            revoked_at: r.revoked_at,
        },
        meta: secret_meta!(r),
        secret_length: r.secret_length,
    }))
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<SecretMeta>> {
    sqlx::query_as!(
        SecretMeta,
        r#"SELECT id, request_id, organization, provider, submitter_name, submitter_email, fingerprint, fingerprint_kind,
                  kek_id, status AS "status: SecretStatus", check_result, created_at, revealed_at, ingested_at, shredded_at
           FROM secrets WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Filters for listing; `None` means any.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub status: Option<SecretStatus>,
    pub provider: Option<&'a str>,
    pub organization: Option<&'a str>,
}

/// Newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: Filter<'_>,
    limit: i64,
) -> sqlx::Result<Vec<SecretMeta>> {
    sqlx::query_as!(
        SecretMeta,
        r#"SELECT id, request_id, organization, provider, submitter_name, submitter_email, fingerprint, fingerprint_kind,
                  kek_id, status AS "status: SecretStatus", check_result, created_at, revealed_at, ingested_at, shredded_at
           FROM secrets
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::text IS NULL OR provider = $2)
             AND ($3::text IS NULL OR organization = $3)
           ORDER BY created_at DESC, id LIMIT $4"#,
        f.status.map(SecretStatus::as_str),
        f.provider,
        f.organization,
        limit
    )
    .fetch_all(db)
    .await
}

/// A secret row (locked for update by [`lock`]), with its envelope when not shredded.
#[derive(Debug)]
pub struct Locked {
    pub meta: SecretMeta,
    pub envelope: Option<Envelope>,
}

/// One row with its envelope columns, as [`lock`] reads it.
struct SealedRow {
    id: Uuid,
    request_id: Uuid,
    organization: String,
    provider: String,
    submitter_name: String,
    submitter_email: String,
    fingerprint: String,
    fingerprint_kind: String,
    kek_id: Option<String>,
    status: SecretStatus,
    check_result: Value,
    created_at: DateTime<Utc>,
    revealed_at: Option<DateTime<Utc>>,
    ingested_at: Option<DateTime<Utc>>,
    shredded_at: Option<DateTime<Utc>>,
    payload: Option<Vec<u8>>,
    wrapped_dek: Option<Vec<u8>>,
    format_version: i16,
}

impl From<SealedRow> for Locked {
    fn from(r: SealedRow) -> Self {
        let envelope = match (r.payload, r.wrapped_dek, r.kek_id.clone()) {
            (Some(payload), Some(wrapped_dek), Some(kek_id)) => Some(Envelope {
                format_version: r.format_version,
                kek_id,
                payload,
                wrapped_dek,
            }),
            _ => None,
        };
        Locked {
            meta: secret_meta!(r),
            envelope,
        }
    }
}

pub async fn lock(tx: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Locked>> {
    let row = sqlx::query_as!(
        SealedRow,
        r#"SELECT id, request_id, organization, provider, submitter_name, submitter_email, fingerprint, fingerprint_kind,
                  kek_id, status AS "status: SecretStatus", check_result, created_at, revealed_at, ingested_at, shredded_at,
                  payload, wrapped_dek, format_version
           FROM secrets WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx)
    .await?;
    Ok(row.map(Locked::from))
}

/// What a reveal reads of a secret (`service::secrets::read`).
#[derive(Debug)]
pub struct ToReveal {
    pub request_id: Uuid,
    pub organization: String,
    pub provider: String,
    /// `None` once shredded.
    pub envelope: Option<Envelope>,
}

/// A secret's ids, names and envelope, without a lock: a reveal opens it
/// first and then records the reveal in one statement
/// (`store::actions::reveal`), which locks the row and finds out whether it
/// was shredded meanwhile.
pub async fn to_reveal(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<ToReveal>> {
    let row = sqlx::query!(
        r#"SELECT request_id, organization, provider, kek_id, payload, wrapped_dek, format_version
           FROM secrets WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| ToReveal {
        request_id: r.request_id,
        organization: r.organization,
        provider: r.provider,
        envelope: match (r.payload, r.wrapped_dek, r.kek_id) {
            (Some(payload), Some(wrapped_dek), Some(kek_id)) => Some(Envelope {
                format_version: r.format_version,
                kek_id,
                payload,
                wrapped_dek,
            }),
            _ => None,
        },
    }))
}

/// Moves a locked secret to `status`, stamping the matching time column.
/// Shredding also deletes the ciphertext and wrapped data key.
pub async fn set_status(tx: &mut PgConnection, id: Uuid, status: SecretStatus) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE secrets SET
             status = $2,
             revealed_at = CASE WHEN $3 THEN coalesce(revealed_at, now()) ELSE revealed_at END,
             ingested_at = CASE WHEN $4 THEN now() ELSE ingested_at END,
             shredded_at = CASE WHEN $5 THEN now() ELSE shredded_at END,
             payload     = CASE WHEN $5 THEN NULL ELSE payload END,
             wrapped_dek = CASE WHEN $5 THEN NULL ELSE wrapped_dek END
           WHERE id = $1"#,
        id,
        status.as_str(),
        status == SecretStatus::Revealed,
        status == SecretStatus::Ingested,
        status == SecretStatus::Shredded
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// How many characters of the main secret field were received (for the receipt).
pub async fn secret_length(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!("SELECT secret_length FROM secrets WHERE id = $1", id)
        .fetch_optional(db)
        .await
        .map(Option::flatten)
}

/// Records the latest live-check result of a secret.
pub async fn set_check(db: impl PgExecutor<'_>, id: Uuid, result: &Value) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE secrets SET check_result = $2 WHERE id = $1",
        id,
        result
    )
    .execute(db)
    .await?;
    Ok(())
}

/// How many times the public "check again" button re-ran this secret's check.
pub async fn public_recheck_count(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM audit_events WHERE secret_id = $1 AND action = 'check.run' AND actor_kind = 'public'"#,
        id
    )
    .fetch_one(db)
    .await
}

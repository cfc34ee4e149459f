//! Re-running a live check on a stored secret (staff API and the receipt's
//! "check again" button). The credential is decrypted only in memory, for the
//! check; the stored result and audit events hold no secret material.
//! `check.run` is written (and, on the public page, the attempt counted)
//! before the decryption; `check.completed` carries the result.

use super::secrets::{self as secrets_service, SecretError};
use crate::kms::Keys;
use crate::providers::live::Checker;
use crate::providers::{self, CheckResult};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::secrets::{self, SecretMeta};
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Why a re-check did not run: the secret actions' one error type.
pub type RecheckError = SecretError;

/// Audits, decrypts, checks, stores the result and audits that.
pub async fn recheck(
    db: &PgPool,
    keys: &Keys,
    checker: &Checker,
    actor: &Actor,
    id: Uuid,
) -> Result<(SecretMeta, CheckResult), RecheckError> {
    run(db, keys, checker, actor, id, None)
        .await
        .map(|done| done.expect("an unlimited re-check always runs"))
}

/// Like [`recheck`], for the public receipt page: runs only while fewer than
/// `limit` public re-checks of this secret were made, and `Ok(None)` after.
/// The attempt is claimed (its `check.run` event written) under the secret's
/// row lock before anything is decrypted, so N parallel requests make at
/// most `limit` provider calls between them.
pub async fn recheck_within(
    db: &PgPool,
    keys: &Keys,
    checker: &Checker,
    actor: &Actor,
    id: Uuid,
    limit: i64,
) -> Result<Option<(SecretMeta, CheckResult)>, RecheckError> {
    run(db, keys, checker, actor, id, Some(limit)).await
}

/// The order is the point: claim and audit (`check.run`, one transaction
/// holding the row lock), then decrypt and call the provider, then store the
/// result and audit it (`check.completed`). A decryption is never without
/// its record, even if the process dies mid-check.
async fn run(
    db: &PgPool,
    keys: &Keys,
    checker: &Checker,
    actor: &Actor,
    id: Uuid,
    limit: Option<i64>,
) -> Result<Option<(SecretMeta, CheckResult)>, RecheckError> {
    let (meta, plaintext) = {
        let mut tx = db.begin().await?;
        let sealed = secrets_service::lock(&mut tx, id).await?;
        if let Some(limit) = limit {
            // Parallel claims wait on the row lock above, so this count is exact.
            if secrets::public_recheck_count(&mut *tx, id).await? >= limit {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        audit::record(
            &mut *tx,
            NewEvent::success(actor, "check.run")
                .secret(id)
                .request(sealed.meta.request_id)
                .detail(
                    json!({ "provider": sealed.meta.provider, "kek_id": sealed.envelope.kek_id }),
                ),
        )
        .await?;
        tx.commit().await?;
        // Opened after `check.run` is committed: the record comes first.
        let plaintext = sealed.open(keys).await?.plaintext;
        (sealed.meta, plaintext)
    };
    let provider = providers::find(&meta.provider).ok_or(RecheckError::NotFound)?;
    let fields = secrets_service::fields_of(&plaintext)?;
    drop(plaintext);
    let borrowed: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let result = checker.check(provider, &borrowed).await;
    drop(borrowed);
    drop(fields);

    let mut tx = db.begin().await?;
    secrets::set_check(
        &mut *tx,
        id,
        &serde_json::to_value(&result).expect("check result serialises"),
    )
    .await?;
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "check.completed")
            .secret(id)
            .request(meta.request_id)
            .detail(json!({ "provider": provider.id, "status": result.status, "missing": result.missing })),
    )
    .await?;
    // check.failed webhook when the credential is invalid or lacks permissions.
    crate::webhooks::enqueue_check(
        &mut tx,
        id,
        meta.request_id,
        &meta.organization,
        provider.id,
        &result,
    )
    .await?;
    // And a note to staff by email, likewise.
    crate::mail::queue_check_failed(
        &mut tx,
        id,
        meta.request_id,
        &meta.organization,
        provider.id,
        &result,
    )
    .await?;
    tx.commit().await?;
    let meta = secrets::get(db, id).await?.ok_or(RecheckError::NotFound)?;
    Ok(Some((meta, result)))
}

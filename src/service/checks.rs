//! Re-running a live check on a stored secret (staff API and the receipt's
//! "check again" button). The credential is decrypted only in memory, for the
//! check; the stored result and audit event hold no secret material.

use crate::crypto::{self, Context, CryptoError, Keyring};
use crate::providers::live::Checker;
use crate::providers::{self, CheckResult};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::secrets::{self, SecretMeta};
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    #[error("no secret with that id")]
    NotFound,
    #[error("this secret was shredded")]
    Shredded,
    #[error("the KEK {0:?} is not configured")]
    KekUnavailable(String),
    #[error("decryption failed: {0}")]
    Crypto(CryptoError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Decrypts, checks, stores the result and audits it.
pub async fn recheck(
    db: &PgPool,
    keyring: &Keyring,
    checker: &Checker,
    actor: &Actor,
    id: Uuid,
) -> Result<(SecretMeta, CheckResult), RecheckError> {
    let (meta, plaintext) = {
        let mut tx = db.begin().await?;
        let locked = secrets::lock(&mut tx, id)
            .await?
            .ok_or(RecheckError::NotFound)?;
        let envelope = locked.envelope.ok_or(RecheckError::Shredded)?;
        let ctx = Context {
            secret_id: id,
            provider: &locked.meta.provider,
        };
        let plaintext = crypto::open(keyring, ctx, &envelope).map_err(|e| match e {
            CryptoError::UnknownKek(k) => RecheckError::KekUnavailable(k),
            other => RecheckError::Crypto(other),
        })?;
        tx.rollback().await?;
        (locked.meta, plaintext)
    };
    let provider = providers::find(&meta.provider).ok_or(RecheckError::NotFound)?;
    let fields: BTreeMap<String, Zeroizing<String>> = serde_json::from_slice(&plaintext)
        .map_err(|_| RecheckError::Crypto(CryptoError::Authentication))?;
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
        NewEvent::success(actor, "check.run")
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
    tx.commit().await?;
    let meta = secrets::get(db, id).await?.ok_or(RecheckError::NotFound)?;
    Ok((meta, result))
}

//! What staff (and retention) do to a stored secret: reveal it, mark it
//! ingested, shred it. One function per action, called by the internal API,
//! the CLI, retention and the staff console, so each writes the same audit
//! events and webhooks. The live check again is in [`super::checks`]; it
//! shares [`lock`] and [`Sealed::open`] with reveal.
//!
//! Every action locks the secret's row first (`FOR UPDATE`), so a reveal and
//! a shred of the same secret, or two retention replicas, happen one after
//! the other and each sees the status the other left.

use crate::crypto::{Context, CryptoError, Envelope};
use crate::domain::{Actor, SecretStatus};
use crate::kms::{KeyError, Keys, KmsError, Opened};
use crate::store::actions;
use crate::store::audit::{self, NewEvent};
use crate::store::secrets::{self, SecretMeta};
use crate::webhooks;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Why a secret action did not happen. The API and the pages map these once
/// (`From<SecretError>` in `http::error`).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no secret with that id")]
    NotFound,
    /// The action needs the ciphertext, which shredding deleted.
    #[error("this secret was shredded")]
    Shredded,
    /// A lifecycle move [`SecretStatus::can_become`] refuses.
    #[error("{}", transition_message(*from, *to))]
    Transition {
        from: SecretStatus,
        to: SecretStatus,
    },
    /// Sealed under a KEK this process's ring lacks.
    #[error("the KEK {0:?} is not configured")]
    KekUnavailable(String),
    /// Tampering, a mismatched key or a corrupt payload.
    #[error("decryption failed: {0}")]
    Crypto(CryptoError),
    /// The KMS holding the key could not be asked (down, slow, refusing).
    #[error("the KMS is unavailable: {0}")]
    KmsUnavailable(KmsError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn transition_message(from: SecretStatus, to: SecretStatus) -> String {
    use SecretStatus::*;
    match (from, to) {
        (Shredded, _) => "this secret was already shredded".to_owned(),
        (Received, Ingested) => "reveal the secret before marking it ingested".to_owned(),
        (Ingested, Ingested) => "this secret was already marked ingested".to_owned(),
        _ => format!("this secret is {from} and cannot become {to}"),
    }
}

/// A secret's row, locked in the caller's transaction, with its envelope.
#[derive(Debug)]
pub struct Sealed {
    pub meta: SecretMeta,
    pub envelope: Envelope,
}

/// What a reveal reads of a secret that still has its ciphertext, without a
/// lock: the ids, names and envelope, and none of the metadata it does not
/// show (decoding the stored check result alone cost a JSON parse per
/// reveal; issue 16).
#[derive(Debug)]
pub struct ToReveal {
    pub meta: RevealedMeta,
    pub envelope: Envelope,
}

/// The metadata a revealed credential comes with.
#[derive(Debug, Clone)]
pub struct RevealedMeta {
    pub id: Uuid,
    pub request_id: Uuid,
    pub organization: String,
    pub provider: String,
}

/// Reads a secret to reveal, without a lock.
pub async fn read(db: &PgPool, id: Uuid) -> Result<ToReveal, SecretError> {
    let row = secrets::to_reveal(db, id)
        .await?
        .ok_or(SecretError::NotFound)?;
    let envelope = row.envelope.ok_or(SecretError::Shredded)?;
    Ok(ToReveal {
        meta: RevealedMeta {
            id,
            request_id: row.request_id,
            organization: row.organization,
            provider: row.provider,
        },
        envelope,
    })
}

/// Locks a secret that still has its ciphertext.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Sealed, SecretError> {
    let locked = secrets::lock(tx, id).await?.ok_or(SecretError::NotFound)?;
    let envelope = locked.envelope.ok_or(SecretError::Shredded)?;
    Ok(Sealed {
        meta: locked.meta,
        envelope,
    })
}

impl Sealed {
    /// Opens the envelope through the local ring or the KMS: [`open`].
    pub async fn open(&self, keys: &Keys) -> Result<Opened, SecretError> {
        open(keys, self.meta.id, &self.meta.provider, &self.envelope).await
    }
}

/// A credential's fields as submitted, zeroized when dropped.
pub type Fields = BTreeMap<String, Zeroizing<String>>;

impl Sealed {
    /// Opens the envelope ([`Sealed::open`]) and reads the credential's fields.
    pub async fn open_fields(&self, keys: &Keys) -> Result<Fields, SecretError> {
        fields_of(&self.open(keys).await?.plaintext)
    }
}

/// The fields of an opened envelope. A payload that is not a JSON object of
/// strings was not written by Keydrop: a failed decryption.
pub fn fields_of(plaintext: &[u8]) -> Result<Fields, SecretError> {
    serde_json::from_slice(plaintext).map_err(|_| SecretError::Crypto(CryptoError::Authentication))
}

/// Opens the envelope of secret `id` (of `provider`) through the local ring
/// or the KMS (`kms::Keys`): the one place a stored data key is unwrapped for
/// an action, and where an unknown KEK or an unreachable KMS become their own
/// errors.
pub async fn open(
    keys: &Keys,
    id: Uuid,
    provider: &str,
    envelope: &Envelope,
) -> Result<Opened, SecretError> {
    let ctx = Context {
        secret_id: id,
        provider,
    };
    keys.open(ctx, envelope).await.map_err(|e| match e {
        KeyError::Crypto(CryptoError::UnknownKek(k)) | KeyError::Kms(KmsError::NotMine(k)) => {
            SecretError::KekUnavailable(k)
        }
        KeyError::Kms(e) if e.is_unavailable() => SecretError::KmsUnavailable(e),
        KeyError::Kms(_) => SecretError::Crypto(CryptoError::Authentication),
        KeyError::Crypto(other) => SecretError::Crypto(other),
    })
}

/// A revealed credential: its fields as submitted, zeroized when dropped.
/// `Debug` shows the id only; the fields are secret.
pub struct RevealedSecret {
    pub meta: RevealedMeta,
    pub fields: Fields,
}

impl std::fmt::Debug for RevealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedSecret")
            .field("id", &self.meta.id)
            .field("fields", &"[redacted]")
            .finish()
    }
}

/// Decrypts a credential for `actor`. The audit event (with `reason`, when
/// given) commits before anything is returned: no record, no reveal. Two
/// round-trips (issue 16): the row is read and opened unlocked, then one
/// statement (`store::actions::reveal`) records it. A failed decryption is
/// recorded as a failure.
pub async fn reveal(
    db: &PgPool,
    keys: &Keys,
    actor: &Actor,
    id: Uuid,
    reason: Option<&str>,
) -> Result<RevealedSecret, SecretError> {
    let sealed = read(db, id).await?;
    let opened = match open(keys, id, &sealed.meta.provider, &sealed.envelope).await {
        Ok(o) => o,
        Err(e) => {
            let cause = match &e {
                SecretError::KekUnavailable(k) => CryptoError::UnknownKek(k.clone()).to_string(),
                SecretError::Crypto(c) => c.to_string(),
                SecretError::KmsUnavailable(k) => k.to_string(),
                other => other.to_string(),
            };
            audit::record(
                db,
                NewEvent::failure(actor, "secret.revealed", "failure")
                    .secret(id)
                    .detail(json!({ "error": cause, "kek_id": sealed.envelope.kek_id })),
            )
            .await?;
            return Err(e);
        }
    };
    let fields = fields_of(&opened.plaintext)?;
    let meta = sealed.meta;
    let message = webhooks::message(&webhooks::Event::SecretRevealed {
        secret_id: id,
        request_id: meta.request_id,
        organization: &meta.organization,
        provider: &meta.provider,
        revealed_by: actor_name(actor),
    });
    // Serialised straight into the statement's parameter (no `Value`).
    #[derive(serde::Serialize)]
    struct Detail<'a> {
        provider: &'a str,
        kek_id: &'a str,
        /// The KMS key and request id join this event with the KMS's own audit log.
        #[serde(skip_serializing_if = "Option::is_none")]
        kms: Option<&'a crate::kms::KmsRecord>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    let event = NewEvent::success(actor, "secret.revealed")
        .secret(id)
        .request(meta.request_id)
        .detail_of(&Detail {
            provider: &meta.provider,
            kek_id: &sealed.envelope.kek_id,
            kms: opened.kms.as_ref(),
            reason,
        });
    // One statement locks the row, moves `received` to `revealed` and writes
    // the event and the message; nothing if it was shredded since the read.
    if !actions::reveal(db, id, event, vec![message]).await? {
        return Err(SecretError::Shredded);
    }
    tracing::info!(secret_id = %id, actor = actor_name(actor), "secret revealed");
    Ok(RevealedSecret { meta, fields })
}

/// Marks a revealed secret ingested (in use downstream).
pub async fn mark_ingested(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<SecretMeta, SecretError> {
    let mut tx = db.begin().await?;
    transition(&mut tx, actor, id, SecretStatus::Ingested, None).await?;
    tx.commit().await?;
    secrets::get(db, id).await?.ok_or(SecretError::NotFound)
}

/// Crypto-shreds a secret: ciphertext and wrapped key deleted, metadata kept.
pub async fn shred(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    reason: Option<&str>,
) -> Result<SecretMeta, SecretError> {
    let mut tx = db.begin().await?;
    shred_in(&mut tx, actor, actor_name(actor), id, reason).await?;
    tx.commit().await?;
    secrets::get(db, id).await?.ok_or(SecretError::NotFound)
}

/// [`shred`] inside the caller's transaction (retention shreds a claimed
/// batch in one), announced by webhook as shredded by `shredded_by` (the
/// policy's name for retention, whoever runs it). Returns the status the
/// secret had.
pub async fn shred_in(
    tx: &mut PgConnection,
    actor: &Actor,
    shredded_by: &str,
    id: Uuid,
    reason: Option<&str>,
) -> Result<SecretStatus, SecretError> {
    let before = transition(tx, actor, id, SecretStatus::Shredded, reason).await?;
    webhooks::enqueue(
        &mut *tx,
        &webhooks::Event::SecretShredded {
            secret_id: id,
            request_id: before.request_id,
            organization: &before.organization,
            provider: &before.provider,
            shredded_by,
        },
    )
    .await?;
    Ok(before.status)
}

/// Moves a secret along its lifecycle and records `secret.<to>` with
/// `{"from": …}` (and `"reason"` when given). Returns the row as it was.
async fn transition(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    to: SecretStatus,
    reason: Option<&str>,
) -> Result<SecretMeta, SecretError> {
    let locked = secrets::lock(tx, id).await?.ok_or(SecretError::NotFound)?;
    let from = locked.meta.status;
    if !from.can_become(to) {
        return Err(SecretError::Transition { from, to });
    }
    secrets::set_status(tx, id, to).await?;
    let mut detail = json!({ "from": from });
    with_reason(&mut detail, reason);
    let action = match to {
        SecretStatus::Ingested => "secret.ingested",
        _ => "secret.shredded",
    };
    audit::record(
        &mut *tx,
        NewEvent::success(actor, action)
            .secret(id)
            .request(locked.meta.request_id)
            .detail(detail),
    )
    .await?;
    Ok(locked.meta)
}

fn with_reason(detail: &mut Value, reason: Option<&str>) {
    if let (Some(reason), Value::Object(map)) = (reason, detail) {
        map.insert("reason".into(), Value::String(reason.to_owned()));
    }
}

/// The name webhooks and logs give the actor (a token's name, `cli:NAME`,
/// `retention`).
fn actor_name(actor: &Actor) -> &str {
    actor.name.as_deref().unwrap_or(actor.kind)
}

//! Email: drop links sent to the customer, a reminder before they expire, and
//! short notes to staff, all through an SMTP relay (`lettre`, rustls).
//!
//! Like webhooks, an email is a row in an outbox written in the transaction of
//! the action it belongs to ([`queue_link`], [`submission_note`],
//! [`queue_check_failed`]), so it exists exactly when the action committed; a
//! worker in every `keydrop serve` process ([`worker`]) sends it, retrying
//! with backoff for three days, safe with several replicas.
//!
//! A drop link's token must not rest in the database in clear: the outbox
//! holds no message body at all. The link's token is sealed with the envelope
//! code (bound to the link's id) and the email is built when it is sent; the
//! sealed token is forgotten once the link can no longer be used. Staff notes
//! carry metadata only: never credential material, never the drop link.
//! They go to `KEYDROP_NOTIFY_EMAIL` and, as a message of its own, to the
//! link's creator when a console user with an email made it.
//!
//! Why the sealed token is under the local ring even with a KMS configured
//! (`docs/email.md`, "Sealed tokens and KMS"): the ring is required in every
//! deployment (CSRF, fingerprints, webhook ids), the token is also in the
//! customer's mailbox in clear once sent, it grants a submission, never a
//! read, and it is deleted once the link can no longer be used; sealing it
//! locally keeps link creation and delivery independent of the KMS.

pub mod compose;
pub mod config;
pub mod worker;

pub use config::MailConfig;

use crate::crypto::{self, Context, CryptoError, Envelope, Keyring};
use crate::domain::{DropToken, Email};
use crate::providers::{CheckResult, CheckStatus};
use crate::store::mail::{self as store, Kind, NewMessage};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The "provider" part of a sealed token's associated data: what the blob is,
/// so it can never be confused with a secret's payload.
const TOKEN_PURPOSE: &str = "drop-link-token";

fn token_context(request_id: Uuid) -> Context<'static> {
    Context {
        secret_id: request_id,
        provider: TOKEN_PURPOSE,
    }
}

/// Seals a link's token (the only copy that outlives the API answer).
pub fn seal_token(
    keyring: &Keyring,
    request_id: Uuid,
    token: &DropToken,
) -> Result<Envelope, CryptoError> {
    crypto::seal(
        keyring,
        token_context(request_id),
        token.expose().as_bytes(),
    )
}

/// Opens a sealed token; fails unless it was sealed for this very link.
pub fn open_token(
    keyring: &Keyring,
    request_id: Uuid,
    sealed: &Envelope,
) -> Result<Zeroizing<String>, CryptoError> {
    let raw = crypto::open(keyring, token_context(request_id), sealed)?;
    let s = std::str::from_utf8(&raw).map_err(|_| CryptoError::Authentication)?;
    Ok(Zeroizing::new(s.to_owned()))
}

/// Queues the drop-link email to `to`, in the caller's transaction: stores the
/// sealed token and the outbox row. `sealed` comes from [`seal_token`]
/// (sealed before the transaction, so no lock waits on the cipher).
pub async fn queue_link(
    tx: &mut PgConnection,
    request_id: Uuid,
    sealed: &Envelope,
    to: &Email,
) -> sqlx::Result<Uuid> {
    store::put_token(&mut *tx, request_id, sealed).await?;
    store::insert(
        &mut *tx,
        NewMessage {
            kind: Kind::Link,
            request_id: Some(request_id),
            secret_id: None,
            recipient: Some(to.as_str()),
            detail: json!({}),
        },
    )
    .await
}

/// The staff note's detail for a stored submission, written with it
/// (`store::actions::submit`). It names the check's result, so a failed
/// check at submission is one email, not two. Metadata only.
pub fn submission_note(
    organization: &str,
    provider: &str,
    submitter_email: &str,
    check: &CheckResult,
) -> crate::store::JsonText {
    #[derive(serde::Serialize)]
    struct Note<'a> {
        organization: &'a str,
        provider: &'a str,
        submitter_email: &'a str,
        check_status: CheckStatus,
        missing: &'a [String],
    }
    crate::store::json_text(&Note {
        organization,
        provider,
        submitter_email,
        check_status: check.status,
        missing: &check.missing,
    })
}

/// Queues the drop-link email again, to the address the link's latest email
/// went to, from the sealed token kept for it (`links::resend` checks that
/// the link can still be used and holds the link's row lock).
pub async fn queue_resend(tx: &mut PgConnection, request_id: Uuid, to: &str) -> sqlx::Result<Uuid> {
    store::insert(
        &mut *tx,
        NewMessage {
            kind: Kind::Link,
            request_id: Some(request_id),
            secret_id: None,
            recipient: Some(to),
            detail: json!({ "resend": true }),
        },
    )
    .await
}

/// Queues the staff note for a live check run again that found the
/// credential invalid or missing permissions; nothing otherwise.
pub async fn queue_check_failed(
    tx: &mut PgConnection,
    secret_id: Uuid,
    request_id: Uuid,
    organization: &str,
    provider: &str,
    check: &CheckResult,
) -> sqlx::Result<()> {
    if !matches!(
        check.status,
        CheckStatus::Invalid | CheckStatus::MissingPermissions
    ) {
        return Ok(());
    }
    store::insert_staff(
        &mut *tx,
        Kind::CheckFailed,
        request_id,
        secret_id,
        json!({
            "organization": organization,
            "provider": provider,
            "check_status": check.status,
            "missing": check.missing,
        }),
    )
    .await?;
    Ok(())
}

//! Storing a submitted credential: seal, then one statement for the secret,
//! the link's use count, the audit event and the webhook messages, so none
//! exists without the others.

use crate::crypto::{Context, CryptoError, Fingerprint, FingerprintKind, Fingerprinter};
use crate::domain::Email;
use crate::kms::{KeyError, Keys, KmsError};
use crate::metrics::Metrics;
use crate::providers::{CheckResult, Provider};
use crate::store::actions::{self, Submitted};
use crate::store::audit::{Actor, NewEvent};
use crate::store::requests::{DropRequest, LinkState};
use crate::store::secrets::{self, NewSecret};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A validated submission. Field values borrow from the zeroizing form.
pub struct Submission<'a> {
    pub submitter_name: &'a str,
    pub submitter_email: &'a Email,
    /// Provider field name → trimmed value; optional fields left blank are absent.
    pub fields: BTreeMap<&'static str, &'a str>,
    /// The form's one-time id: a repeat with the same id stores nothing new.
    pub submission_id: Option<&'a str>,
    /// SHA-256 of the browser's form cookie, binding the receipt to it.
    pub browser_hash: Option<&'a [u8]>,
    /// The form was served before the link expired: accept it until the link's
    /// expiry plus this grace (`KEYDROP_LINK_GRACE`).
    pub grace: Option<chrono::Duration>,
}

impl std::fmt::Debug for Submission<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What the receipt shows.
#[derive(Debug)]
pub struct Stored {
    pub id: Uuid,
    pub fingerprint: Fingerprint,
    /// Characters of the main secret field as received.
    pub secret_length: Option<i32>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The link was used up, revoked or expired while the form was open.
    #[error("the link is no longer usable ({0:?})")]
    LinkGone(LinkState),
    /// This form (submission id) was already stored: the repeat is answered
    /// with that secret's receipt, and nothing new is stored.
    #[error("this form was already submitted as secret {0}")]
    Repeat(Uuid),
    #[error("encryption failed: {0}")]
    Crypto(#[from] CryptoError),
    /// The KMS could not wrap the data key (down, slow, refusing): nothing
    /// was written, the submitter may try again.
    #[error("the KMS could not wrap the data key: {0}")]
    Kms(#[from] KmsError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<KeyError> for SubmitError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Crypto(e) => Self::Crypto(e),
            KeyError::Kms(e) => Self::Kms(e),
        }
    }
}

/// Serialises the fields as a JSON object into a zeroizing buffer.
fn plaintext(fields: &BTreeMap<&'static str, &str>) -> Zeroizing<Vec<u8>> {
    let cap = 2 + fields
        .iter()
        .map(|(k, v)| k.len() + 6 * v.len() + 6)
        .sum::<usize>();
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    serde_json::to_writer(&mut *buf, fields).expect("serialising strings cannot fail");
    buf
}

/// Encrypts and stores a submission through `link`.
#[allow(clippy::too_many_arguments)]
pub async fn store(
    db: &PgPool,
    keys: &Keys,
    fingerprinter: &Fingerprinter,
    link: &DropRequest,
    provider: &Provider,
    sub: &Submission<'_>,
    check: &CheckResult,
    actor: &Actor,
    metrics: &Metrics,
) -> Result<Stored, SubmitError> {
    let id = Uuid::new_v4();
    // Never more of the secret than the fingerprint rule allows (crypto::fingerprint).
    let fingerprint = sub
        .fields
        .get(provider.fingerprint_field.as_str())
        .map(|v| fingerprinter.fingerprint(v))
        .unwrap_or(Fingerprint {
            kind: FingerprintKind::None,
            text: String::new(),
        });
    let secret_length = sub
        .fields
        .get(provider.fingerprint_field.as_str())
        .map(|v| i32::try_from(v.chars().count()).unwrap_or(i32::MAX));
    // Sealed (and, with a KMS, the data key wrapped) before the transaction:
    // a KMS that fails leaves nothing written.
    let envelope = keys
        .seal(
            Context {
                secret_id: id,
                provider: provider.id,
            },
            &plaintext(&sub.fields),
        )
        .await?;

    // One statement (store::actions::submit): the link's lock, the secret, the
    // use, the audit event and the outbox messages commit together or not at all.
    let messages = crate::webhooks::submission_messages(
        id,
        link.id,
        &link.organization,
        provider.id,
        sub.submitter_email.as_str(),
        check,
    );
    let event = NewEvent::success(actor, "secret.submitted")
        .secret(id)
        .request(link.id)
        .detail(json!({
            "provider": provider.id,
            "organization": link.organization,
            "submitter_email": sub.submitter_email.as_str(),
            "fingerprint": fingerprint.text,
            "fingerprint_kind": fingerprint.kind.as_str(),
            "kek_id": envelope.kek_id,
            "check_status": check.status,
        }));
    let secret = NewSecret {
        id,
        request_id: link.id,
        organization: &link.organization,
        provider: provider.id,
        submitter_name: sub.submitter_name,
        submitter_email: sub.submitter_email.as_str(),
        fingerprint: &fingerprint,
        fingerprint_key: fingerprinter.generation(),
        secret_length,
        envelope: &envelope,
        check_result: serde_json::to_value(check).expect("check result serialises"),
        submission_id: sub.submission_id,
        browser_hash: sub.browser_hash,
    };
    let grace = sub.grace.map(|g| g.num_seconds() as f64);
    let staff_mail = crate::mail::submission_note(
        &link.organization,
        provider.id,
        sub.submitter_email.as_str(),
        check,
    );
    match actions::submit(db, secret, grace, event, messages, Some(staff_mail)).await? {
        Submitted::Stored => {}
        Submitted::NotStored { link: locked, open } => {
            // A repeat of a stored form wins over the link's state (the first
            // submission may have used the link up).
            if let Some(sid) = sub.submission_id {
                if let Some(first) = secrets::find_by_submission(db, link.id, sid).await? {
                    return Err(SubmitError::Repeat(first));
                }
            }
            return Err(match locked {
                None => SubmitError::LinkGone(LinkState::Revoked),
                Some(_) if open => SubmitError::Db(sqlx::Error::RowNotFound),
                Some(l) => SubmitError::LinkGone(match l.state(Utc::now()) {
                    // The database's clock said expired (its grace passed).
                    LinkState::Pending => LinkState::Expired,
                    state => state,
                }),
            });
        }
    }
    metrics.submission(provider.id);
    Ok(Stored {
        id,
        fingerprint,
        secret_length,
        created_at: Utc::now(),
    })
}

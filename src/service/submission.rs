//! Storing a submitted credential: seal, then one transaction for the secret,
//! the link's use count and the audit event, so none exists without the others.

use crate::crypto::{
    self, Context, CryptoError, Fingerprint, FingerprintKind, Fingerprinter, Keyring,
};
use crate::domain::Email;
use crate::metrics::Metrics;
use crate::providers::{CheckResult, Provider};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::requests::{self, DropRequest, LinkState};
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
    #[error(transparent)]
    Db(#[from] sqlx::Error),
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
    keyring: &Keyring,
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
    let envelope = crypto::seal(
        keyring,
        Context {
            secret_id: id,
            provider: provider.id,
        },
        &plaintext(&sub.fields),
    )?;

    let mut tx = db.begin().await?;
    let locked = requests::lock(&mut tx, link.id).await?;
    let Some(locked) = locked else {
        return Err(SubmitError::LinkGone(LinkState::Revoked));
    };
    // Insert first: the unique key on (link, submission id) decides whether this
    // is a repeat, before the link's state (used up by the first) is looked at.
    let inserted = secrets::insert(
        &mut tx,
        NewSecret {
            id,
            request_id: link.id,
            organization: &locked.organization,
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
        },
    )
    .await?;
    if !inserted {
        tx.rollback().await?;
        let sid = sub.submission_id.unwrap_or_default();
        return match secrets::find_by_submission(db, link.id, sid).await? {
            Some(first) => Err(SubmitError::Repeat(first)),
            None => Err(SubmitError::Db(sqlx::Error::RowNotFound)),
        };
    }
    let now = Utc::now();
    let state = locked.state(now);
    let in_grace =
        state == LinkState::Expired && sub.grace.is_some_and(|g| now <= locked.expires_at + g);
    if state != LinkState::Pending && !in_grace {
        return Err(SubmitError::LinkGone(state));
    }
    if let Some(g) = sub.grace.filter(|_| in_grace) {
        // Tells the lifecycle trigger (the backstop) that this use is within grace.
        sqlx::query("SELECT set_config('keydrop.link_grace', $1, true)")
            .bind(format!("{} seconds", g.num_seconds()))
            .execute(&mut *tx)
            .await?;
    }
    requests::consume(&mut tx, link.id).await?;
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "secret.submitted")
            .secret(id)
            .request(link.id)
            .detail(json!({
                "provider": provider.id,
                "organization": locked.organization,
                "submitter_email": sub.submitter_email.as_str(),
                "fingerprint": fingerprint.text,
                "fingerprint_kind": fingerprint.kind.as_str(),
                "kek_id": envelope.kek_id,
                "check_status": check.status,
            })),
    )
    .await?;
    crate::webhooks::enqueue_submission(
        &mut tx,
        id,
        link.id,
        &locked.organization,
        provider.id,
        sub.submitter_email.as_str(),
        check,
    )
    .await?;
    tx.commit().await?;
    metrics.submission(provider.id);
    Ok(Stored {
        id,
        fingerprint,
        secret_length,
        created_at: Utc::now(),
    })
}

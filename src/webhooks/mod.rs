//! Outgoing webhooks: signed notifications when something happens.
//!
//! Code that does something noteworthy calls [`enqueue`] with its own
//! transaction, so the notification exists exactly when the action committed
//! (a transactional outbox); the hot actions written in one statement
//! (`store::actions`) take [`message`]s instead. A worker in every `keydrop serve` process
//! ([`worker`]) fans each message out to the configured endpoints and delivers
//! it, signed per the Standard Webhooks specification, retrying with
//! exponential backoff and jitter for days: a receiver that is down loses
//! nothing, and may see a message more than once (same `webhook-id`).
//!
//! Payloads carry ids and metadata only, never credential material.

pub mod endpoint;
pub mod worker;

pub use endpoint::{Endpoint, Format, WebhookConfig};

use crate::providers::{CheckResult, CheckStatus};
pub use crate::store::actions::Message;
use crate::store::webhooks as store;
use crate::store::{json_text, JsonText};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Something a receiver is told about. `data` fields never hold secrets.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Event<'a> {
    /// `submission.received`: a customer submitted a credential.
    SubmissionReceived {
        secret_id: Uuid,
        request_id: Uuid,
        organization: &'a str,
        provider: &'a str,
        submitter_email: &'a str,
        /// The live check's status at submission.
        check_status: CheckStatus,
    },
    /// `check.failed`: a live check found the credential invalid or lacking permissions.
    CheckFailed {
        secret_id: Uuid,
        request_id: Uuid,
        organization: &'a str,
        provider: &'a str,
        /// `invalid` or `missing_permissions`.
        status: CheckStatus,
        missing: &'a [String],
    },
    /// `secret.revealed`: staff decrypted a credential.
    SecretRevealed {
        secret_id: Uuid,
        request_id: Uuid,
        organization: &'a str,
        provider: &'a str,
        revealed_by: &'a str,
    },
    /// `secret.shredded`: a credential's ciphertext was destroyed.
    SecretShredded {
        secret_id: Uuid,
        request_id: Uuid,
        organization: &'a str,
        provider: &'a str,
        /// Who or what shredded it: a staff token name, or `retention`.
        shredded_by: &'a str,
    },
    /// `link.expired`: a drop link expired before it was used up.
    LinkExpired {
        request_id: Uuid,
        organization: &'a str,
        provider: &'a str,
        expires_at: DateTime<Utc>,
        use_count: i32,
        max_uses: i32,
    },
}

impl Event<'_> {
    /// The Standard Webhooks `type`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::SubmissionReceived { .. } => "submission.received",
            Self::CheckFailed { .. } => "check.failed",
            Self::SecretRevealed { .. } => "secret.revealed",
            Self::SecretShredded { .. } => "secret.shredded",
            Self::LinkExpired { .. } => "link.expired",
        }
    }

    /// `{type, timestamp, data}` as the Standard Webhooks payload structure has it.
    pub fn payload(&self, at: DateTime<Utc>) -> Value {
        json!({
            "type": self.event_type(),
            "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self,
        })
    }

    /// [`Self::payload`] serialised straight from the event, with no `Value`
    /// in between (the hot actions, `store::actions`).
    pub fn payload_text(&self, at: DateTime<Utc>) -> JsonText {
        #[derive(Serialize)]
        struct Payload<'e, 'a> {
            #[serde(rename = "type")]
            event_type: &'static str,
            timestamp: String,
            data: &'e Event<'a>,
        }
        json_text(&Payload {
            event_type: self.event_type(),
            timestamp: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data: self,
        })
    }
}

/// Queues `event` for every endpoint, in the caller's transaction; returns the
/// message id (sent as `webhook-id`, `msg_<uuid>`). Call it with the same
/// transaction that performs the action, e.g.
/// `webhooks::enqueue(&mut *tx, &Event::CheckFailed { .. }).await?`.
pub async fn enqueue(db: impl PgExecutor<'_>, event: &Event<'_>) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    store::insert_message(db, id, event.event_type(), &event.payload(Utc::now())).await?;
    Ok(id)
}

/// `event` as an outbox message, for an action written in one statement
/// (`store::actions`) rather than through [`enqueue`].
pub fn message(event: &Event<'_>) -> Message {
    Message {
        id: Uuid::new_v4(),
        event_type: event.event_type(),
        payload: event.payload_text(Utc::now()),
    }
}

/// What a stored submission announces: `submission.received`, and
/// `check.failed` too when its live check found a problem.
pub fn submission_messages(
    secret_id: Uuid,
    request_id: Uuid,
    organization: &str,
    provider: &str,
    submitter_email: &str,
    check: &CheckResult,
) -> Vec<Message> {
    let received = Event::SubmissionReceived {
        secret_id,
        request_id,
        organization,
        provider,
        submitter_email,
        check_status: check.status,
    };
    std::iter::once(received)
        .chain(check_failed(
            secret_id,
            request_id,
            organization,
            provider,
            check,
        ))
        .map(|e| message(&e))
        .collect()
}

/// `check.failed` if `check` found the credential invalid or missing
/// permissions; `None` otherwise.
fn check_failed<'a>(
    secret_id: Uuid,
    request_id: Uuid,
    organization: &'a str,
    provider: &'a str,
    check: &'a CheckResult,
) -> Option<Event<'a>> {
    matches!(
        check.status,
        CheckStatus::Invalid | CheckStatus::MissingPermissions
    )
    .then_some(Event::CheckFailed {
        secret_id,
        request_id,
        organization,
        provider,
        status: check.status,
        missing: &check.missing,
    })
}

/// [`check_failed`]'s message, if any, queued in the live-check code's transaction.
pub async fn enqueue_check(
    tx: &mut PgConnection,
    secret_id: Uuid,
    request_id: Uuid,
    organization: &str,
    provider: &str,
    check: &CheckResult,
) -> sqlx::Result<()> {
    if let Some(e) = check_failed(secret_id, request_id, organization, provider, check) {
        enqueue(&mut *tx, &e).await?;
    }
    Ok(())
}

/// `secret.shredded` for a secret shredded by something other than a staff
/// request (retention passes `"retention"`); reads the metadata it announces.
pub async fn enqueue_shredded(
    tx: &mut PgConnection,
    secret_id: Uuid,
    shredded_by: &str,
) -> sqlx::Result<()> {
    let Some(meta) = crate::store::secrets::get(&mut *tx, secret_id).await? else {
        return Ok(());
    };
    enqueue(
        &mut *tx,
        &Event::SecretShredded {
            secret_id,
            request_id: meta.request_id,
            organization: &meta.organization,
            provider: &meta.provider,
            shredded_by,
        },
    )
    .await?;
    Ok(())
}

/// The `webhook-id` header for a message.
pub fn message_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

//! What the internal API answers, as types: the handlers serialise them, the
//! OpenAPI document is generated from them (`utoipa`), and the `keydrop` CLI
//! deserialises them when it talks to the API and prints them with `--json`.
//! One definition, so the server, its contract and its client cannot drift.
//!
//! Field names are the DESIGN.md contract; add fields, never rename them.

use super::schema::ProviderId;
use crate::providers::CheckResult;
use crate::store::requests::{DropRequest, LinkState};
use crate::store::secrets::SecretMeta;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A drop link as staff see it (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Link)]
pub struct LinkView {
    pub id: Uuid,
    pub organization: String,
    #[schema(value_type = ProviderId)]
    pub provider: String,
    pub status: LinkState,
    pub contact_email: Option<String>,
    pub note: Option<String>,
    /// The staff token (or `cli:NAME`) that created it.
    pub created_by: String,
    pub max_uses: i32,
    pub use_count: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The link's email to the customer (`send_to`), when it was emailed.
    #[serde(default)]
    pub email: Option<EmailStatus>,
    /// Why the email was not sent yet (queued, retrying) or at all (failed),
    /// as the mail server or Keydrop put it.
    #[serde(default)]
    pub email_error: Option<String>,
}

/// Where a link's email is: waiting or retrying, handed to the mail server,
/// or given up (refused, or undeliverable for three days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    Queued,
    Sent,
    Failed,
}

impl LinkView {
    /// Adds the state of the link's email (`store::mail::link_status`).
    pub fn with_email(mut self, mail: Option<&crate::store::mail::LinkEmail>) -> Self {
        if let Some(m) = mail {
            self.email = Some(match m.status.as_str() {
                "sent" => EmailStatus::Sent,
                "failed" => EmailStatus::Failed,
                _ => EmailStatus::Queued,
            });
            self.email_error = m.error.clone();
        }
        self
    }

    /// The view of `r` with its state as of `now`.
    pub fn new(r: &DropRequest, now: DateTime<Utc>) -> Self {
        Self {
            id: r.id,
            organization: r.organization.clone(),
            provider: r.provider.clone(),
            status: r.state(now),
            contact_email: r.contact_email.clone(),
            note: r.note.clone(),
            created_by: r.created_by_name.clone(),
            max_uses: r.max_uses,
            use_count: r.use_count,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            revoked_at: r.revoked_at,
            email: None,
            email_error: None,
        }
    }
}

/// A link just created: the view plus `url`, the only copy of its token.
/// A link created with `send_to` has no `url`: its token is in the email
/// only, and `email` says `queued`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedLink {
    #[serde(flatten)]
    pub link: LinkView,
    /// The drop link to send to the customer. Shown once; only its hash is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl fmt::Debug for CreatedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedLink")
            .field("link", &self.link)
            .field("url", &"[redacted]")
            .finish()
    }
}

/// `GET /api/v1/requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkList {
    pub items: Vec<LinkView>,
}

/// A secret's metadata with its last live-check result; never its contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = SecretMeta)]
pub struct SecretView {
    pub id: Uuid,
    /// The drop link it was submitted through.
    pub request_id: Uuid,
    pub organization: String,
    #[schema(value_type = ProviderId)]
    pub provider: String,
    pub submitter_name: String,
    pub submitter_email: String,
    /// Last four characters of the main secret field when it has 20 characters
    /// or more (kind `tail`), otherwise a keyed fingerprint such as `K7-2QX`
    /// that contains none of it (kind `keyed`); see docs/fingerprints.md.
    pub fingerprint: String,
    /// `tail`, `keyed`, `none`, or `legacy` (written before keyed fingerprints;
    /// `keydrop fingerprints refresh` replaces it).
    pub fingerprint_kind: String,
    /// The KEK that wraps its data key; `null` once shredded.
    pub kek_id: Option<String>,
    #[schema(schema_with = super::schema::secret_status)]
    pub status: crate::domain::SecretStatus,
    pub check: CheckResult,
    pub created_at: DateTime<Utc>,
    pub revealed_at: Option<DateTime<Utc>>,
    pub ingested_at: Option<DateTime<Utc>>,
    pub shredded_at: Option<DateTime<Utc>>,
}

impl From<SecretMeta> for SecretView {
    fn from(m: SecretMeta) -> Self {
        // Every stored result was written from a `CheckResult`; a row that
        // does not read back says so rather than failing the whole list.
        let check = serde_json::from_value(m.check_result).unwrap_or_else(|_| CheckResult {
            checked_at: None,
            ..CheckResult::unverified("the stored check result could not be read")
        });
        Self {
            id: m.id,
            request_id: m.request_id,
            organization: m.organization,
            provider: m.provider,
            submitter_name: m.submitter_name,
            submitter_email: m.submitter_email,
            fingerprint: m.fingerprint,
            fingerprint_kind: m.fingerprint_kind,
            kek_id: m.kek_id,
            status: m.status,
            check,
            created_at: m.created_at,
            revealed_at: m.revealed_at,
            ingested_at: m.ingested_at,
            shredded_at: m.shredded_at,
        }
    }
}

/// `GET /api/v1/secrets`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretList {
    pub items: Vec<SecretView>,
}

/// A decrypted credential. `Debug` names the fields, never their values, and
/// the values are wiped from memory when dropped.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct Revealed {
    pub id: Uuid,
    #[schema(value_type = ProviderId)]
    pub provider: String,
    pub organization: String,
    /// The provider's fields by their form names, e.g. `client_id` and `client_secret`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub fields: BTreeMap<String, Zeroizing<String>>,
}

impl fmt::Debug for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revealed")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One entry of the audit trail: the stored event is already the view.
pub use crate::store::audit::Event as AuditEventView;

/// `GET /api/v1/audit`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` for the next (older) page; `null` when this page is the last.
    pub next_cursor: Option<String>,
}

/// Every error the API answers: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `code` is stable for programs; `message` is written for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// The optional body of a reveal or a shred: why, for the audit trail (the
/// event's `detail.reason`, as the console records it). An empty body,
/// `null`, `{}` or `{"reason": null}` record no reason.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reason)]
pub struct ReasonBody {
    /// One line of 3 to 500 characters (surrounding whitespace is trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schema::reason)]
    pub reason: Option<String>,
}

/// `POST /api/v1/requests`: a new drop link. `null` for an optional field
/// means the same as leaving it out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// The customer organization, shown on the drop page: one line, no
    /// control or invisible formatting characters.
    #[schema(schema_with = super::schema::organization)]
    pub organization: String,
    #[schema(value_type = ProviderId)]
    pub provider: String,
    /// How long the link works, such as `48h` or `7d` (default `KEYDROP_LINK_TTL`, 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schema::expires_in)]
    pub expires_in: Option<String>,
    /// How many submissions the link accepts (default 1). A whole number;
    /// `3.0` is read as 3.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_uses: Option<i64>,
    /// The customer admin's address, for staff reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schema::contact_email)]
    pub contact_email: Option<String>,
    /// Shown to the customer on the drop page; line breaks and tabs allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schema::note)]
    pub note: Option<String>,
    /// Email the link to this address (needs `KEYDROP_SMTP_URL`); the answer
    /// then has no `url`, and `email` shows the delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schema::send_to)]
    pub send_to: Option<String>,
}

/// A JSON number that is a whole number, written as `3` or `3.0` (JSON
/// Schema counts both as integers; some clients send the second).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Whole;
    impl<'de> serde::de::Visitor<'de> for Whole {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(Some(v as i64))
            } else {
                Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
            }
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_option(Whole)
}

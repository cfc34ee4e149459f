//! A drop form's submission, once its transport checks passed
//! (`http::public::DropForm`): [`submit`] answers a repeat with its first
//! receipt, applies the link's state and expiry grace, validates every field,
//! asks the provider, and stores only a credential the provider did not
//! reject. [`store`] seals, then writes in one statement the secret, the
//! link's use count, the audit event and the webhook messages, so none exists
//! without the others.

use crate::crypto::{Context, CryptoError, Fingerprint, FingerprintKind, Fingerprinter};
use crate::domain::text::{self, TextError};
use crate::domain::Email;
use crate::kms::{KeyError, Keys, KmsError};
use crate::metrics::Metrics;
use crate::providers::live::Checker;
use crate::providers::{CheckResult, CheckStatus, Provider};
use crate::store::actions::{self, Submitted};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::requests::{DropRequest, LinkState};
use crate::store::secrets::{self, NewSecret};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The submitted form's values by name (the HTTP edge's parsed form).
/// `Sync`: a draft is held across the provider call in a request's future.
pub trait FormValues: Sync {
    fn get(&self, name: &str) -> Option<&str>;
}

/// A drop form as it arrived, after the transport checks (origin, CSRF
/// token, the signed submission id).
pub struct Draft<'a> {
    pub link: &'a DropRequest,
    pub provider: &'static Provider,
    pub actor: &'a Actor,
    pub form: &'a dyn FormValues,
    /// The form's verified one-time id, when it carried one.
    pub submission_id: Option<&'a str>,
    /// When the form was served (signed into its submission id).
    pub served_at: Option<DateTime<Utc>>,
    /// SHA-256 of the browser's form cookie, binding the receipt to it.
    pub browser_hash: Option<&'a [u8]>,
}

/// What a submission uses besides the form: the application's shared parts.
pub struct Deps<'a> {
    pub db: &'a PgPool,
    pub keys: &'a Keys,
    pub fingerprinter: &'a Fingerprinter,
    pub checker: &'a Checker,
    pub metrics: &'a Metrics,
    /// How long after the link's expiry a form served before it is accepted
    /// (`KEYDROP_LINK_GRACE`).
    pub grace: chrono::Duration,
}

/// What became of a submission that reached a verdict.
#[derive(Debug)]
pub enum Outcome {
    /// Stored: the receipt's facts.
    Stored(Stored),
    /// The form has mistakes, every one at once; the provider was not asked
    /// and nothing was stored.
    Invalid(Invalid),
    /// The provider rejected the credential: it is not stored. `field` is
    /// the field the provider's answer is about.
    Rejected {
        field: &'static str,
        message: String,
    },
}

/// The mistakes in a form.
#[derive(Debug)]
pub struct Invalid {
    /// In the order the form shows its fields, then the submitter's name and
    /// email.
    pub errors: Vec<FieldError>,
    /// Non-secret fields whose value must not be shown back: it is a
    /// secret's value, typed in the wrong field.
    pub withheld: Vec<&'static str>,
}

/// One field's problem, in words for the person filling in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

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
    /// The form was served before the link expired, but the grace allowed
    /// for such a form has passed too.
    #[error("the link expired while the form was open, and its grace has passed")]
    GraceOver,
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

/// Records a refused submission (`secret.rejected`, denied) with `reason`:
/// every refusal is audited, from a malformed body to a rejected credential.
pub async fn refuse(
    db: &PgPool,
    actor: &Actor,
    link: &DropRequest,
    reason: &str,
    mut detail: Value,
) -> Result<(), sqlx::Error> {
    detail["reason"] = json!(reason);
    audit::record(
        db,
        NewEvent::failure(actor, "secret.rejected", "denied")
            .request(link.id)
            .detail(detail),
    )
    .await?;
    Ok(())
}

/// Takes a drop form through every rule, in order: a repeat of a stored form
/// (same submission id) answers that receipt ([`SubmitError::Repeat`]), even
/// once the link is used up; the link must take submissions, or be expired
/// within the grace of a form served before its expiry; the fields must be
/// valid ([`Outcome::Invalid`]); the provider's live check must not reject
/// the credential ([`Outcome::Rejected`]); then it is stored.
pub async fn submit(deps: &Deps<'_>, draft: &Draft<'_>) -> Result<Outcome, SubmitError> {
    let (link, provider) = (draft.link, draft.provider);
    if let Some(sid) = draft.submission_id {
        if let Some(first) = secrets::find_by_submission(deps.db, link.id, sid).await? {
            return Err(SubmitError::Repeat(first));
        }
    }
    let now = Utc::now();
    let state = link.state(now);
    let served_in_time = draft.served_at.is_some_and(|at| at < link.expires_at);
    let in_grace =
        state == LinkState::Expired && served_in_time && now <= link.expires_at + deps.grace;
    if state == LinkState::Expired && served_in_time && !in_grace {
        return Err(SubmitError::GraceOver);
    }
    if !in_grace && state != LinkState::Pending {
        return Err(SubmitError::LinkGone(state));
    }

    let valid = match validate(provider, draft.form) {
        Ok(valid) => valid,
        Err(invalid) => {
            let names: Vec<_> = invalid.errors.iter().map(|e| e.field).collect();
            let detail = json!({ "fields": names });
            refuse(deps.db, draft.actor, link, "invalid_fields", detail).await?;
            return Ok(Outcome::Invalid(invalid));
        }
    };

    // Ask the provider before storing: a rejected credential is not kept.
    let check = deps.checker.check(provider, &valid.fields).await;
    // `link_id`, not `request_id`: that name is the HTTP request's id in the span.
    if provider.check.is_none() {
        // Debug only: "credential received" follows, and a line per request costs.
        tracing::debug!(link_id = %link.id, provider = provider.id, check = "none", "no live check for this provider");
    } else {
        tracing::info!(link_id = %link.id, provider = provider.id, status = %check.status.as_str(), "live check finished");
    }
    if check.status == CheckStatus::Invalid {
        let detail = json!({ "detail": check.detail });
        refuse(deps.db, draft.actor, link, "invalid_credential", detail).await?;
        // The check says which field it is about; the fingerprinted secret otherwise.
        let field = check.field.unwrap_or(provider.fingerprint_field).as_str();
        return Ok(Outcome::Rejected {
            field,
            message: check.detail,
        });
    }

    let sub = Submission {
        submitter_name: valid.name,
        submitter_email: &valid.email,
        fields: valid.fields,
        submission_id: draft.submission_id,
        browser_hash: draft.browser_hash,
        grace: in_grace.then_some(deps.grace),
    };
    let stored = store(
        deps.db,
        deps.keys,
        deps.fingerprinter,
        link,
        provider,
        &sub,
        &check,
        draft.actor,
        deps.metrics,
    )
    .await?;
    tracing::info!(secret_id = %stored.id, link_id = %link.id, provider = provider.id, "credential received");
    Ok(Outcome::Stored(stored))
}

/// A form that passed validation. Values borrow from the (zeroizing) form.
struct Valid<'f> {
    /// Provider field → trimmed value; blank optional fields are absent.
    fields: BTreeMap<&'static str, &'f str>,
    name: &'f str,
    email: Email,
}

/// Every field's rule at once: the provider's fields, a secret typed into a
/// non-secret field, the submitter's name and email.
fn validate<'f>(
    provider: &'static Provider,
    form: &'f dyn FormValues,
) -> Result<Valid<'f>, Invalid> {
    let mut errors = Vec::new();
    let mut fields = BTreeMap::new();
    for f in provider.fields {
        match f.validate(form.get(f.name)) {
            Ok(Some(v)) => {
                fields.insert(f.name, v);
            }
            Ok(None) => {}
            Err(message) => errors.push(FieldError {
                field: f.name,
                message,
            }),
        }
    }
    let withheld = refuse_secret_in_plain_field(provider, &fields, &mut errors);
    let name = text::identifier(form.get("submitter_name").unwrap_or(""), 200).map_err(|e| {
        match e {
            TextError::Empty => "Enter your name.",
            TextError::TooLong(_) | TextError::Control => {
                "Enter your name in at most 200 characters, on one line."
            }
            TextError::Format => {
                "Your name contains invisible formatting characters (such as a right-to-left override). Type it again rather than pasting it."
            }
        }
    });
    if let Err(m) = name {
        errors.push(FieldError {
            field: "submitter_name",
            message: m.to_owned(),
        });
    }
    let email = Email::parse(form.get("submitter_email").unwrap_or(""));
    if let Err(m) = &email {
        errors.push(FieldError {
            field: "submitter_email",
            message: (*m).to_owned(),
        });
    }
    match (name, email) {
        (Ok(name), Ok(email)) if errors.is_empty() => Ok(Valid {
            fields,
            name,
            email,
        }),
        _ => Err(Invalid { errors, withheld }),
    }
}

/// A non-secret field (echoed back, shown to staff in lists) that holds the
/// same value as a secret field is refused, and its value is not echoed: it is
/// the secret. The generic provider's label invites exactly this mistake.
/// Returns the fields whose value must not be shown back.
fn refuse_secret_in_plain_field(
    provider: &'static Provider,
    fields: &BTreeMap<&'static str, &str>,
    errors: &mut Vec<FieldError>,
) -> Vec<&'static str> {
    let mut withheld = Vec::new();
    for plain in provider.fields.iter().filter(|f| !f.secret) {
        let Some(value) = fields.get(plain.name) else {
            continue;
        };
        let Some(secret) = provider
            .fields
            .iter()
            .find(|f| f.secret && fields.get(f.name) == Some(value))
        else {
            continue;
        };
        errors.push(FieldError {
            field: plain.name,
            message: format!(
                "The {} is the same as the {}. Describe the secret here in a few words; never put the secret itself in this field.",
                plain.label.to_lowercase(),
                secret.label.to_lowercase()
            ),
        });
        withheld.push(plain.name);
    }
    withheld
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
    // Serialised straight into the statement's parameter (no `Value`).
    #[derive(serde::Serialize)]
    struct Detail<'a> {
        provider: &'a str,
        organization: &'a str,
        submitter_email: &'a str,
        fingerprint: &'a str,
        fingerprint_kind: &'a str,
        kek_id: &'a str,
        check_status: CheckStatus,
    }
    let event = NewEvent::success(actor, "secret.submitted")
        .secret(id)
        .request(link.id)
        .detail_of(&Detail {
            provider: provider.id,
            organization: &link.organization,
            submitter_email: sub.submitter_email.as_str(),
            fingerprint: &fingerprint.text,
            fingerprint_kind: fingerprint.kind.as_str(),
            kek_id: &envelope.kek_id,
            check_status: check.status,
        });
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
        check_result: crate::store::json_text(check),
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
        Submitted::NotStored { state, open } => {
            // A repeat of a stored form wins over the link's state (the first
            // submission may have used the link up).
            if let Some(sid) = sub.submission_id {
                if let Some(first) = secrets::find_by_submission(db, link.id, sid).await? {
                    return Err(SubmitError::Repeat(first));
                }
            }
            return Err(match state {
                None => SubmitError::LinkGone(LinkState::Revoked),
                Some(_) if open => SubmitError::Db(sqlx::Error::RowNotFound),
                Some(state) => SubmitError::LinkGone(match state {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl FormValues for HashMap<&'static str, &'static str> {
        fn get(&self, name: &str) -> Option<&str> {
            HashMap::get(self, name).copied()
        }
    }

    fn generic() -> &'static Provider {
        crate::providers::find("generic").unwrap()
    }

    #[test]
    fn every_mistake_is_named_at_once_in_the_order_the_form_shows_them() {
        let form = HashMap::from([("submitter_email", "not-an-email")]);
        let Err(invalid) = validate(generic(), &form) else {
            panic!("an empty form is not valid");
        };
        let fields: Vec<_> = invalid.errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["label", "secret", "submitter_name", "submitter_email"]
        );
        assert!(invalid.withheld.is_empty());
    }

    #[test]
    fn a_secret_typed_into_a_plain_field_is_refused_and_withheld() {
        let secret = "the-same-value-in-both-fields";
        let form = HashMap::from([
            ("label", secret),
            ("secret", secret),
            ("submitter_name", "Jane"),
            ("submitter_email", "jane@example.com"),
        ]);
        let Err(invalid) = validate(generic(), &form) else {
            panic!("a secret in the label is refused");
        };
        assert_eq!(invalid.withheld, ["label"]);
        assert_eq!(invalid.errors.len(), 1);
        assert_eq!(invalid.errors[0].field, "label");
        assert!(!invalid.errors[0].message.contains(secret));
    }

    #[test]
    fn a_valid_form_keeps_trimmed_values_and_the_parsed_email() {
        let form = HashMap::from([
            ("label", " warehouse "),
            ("secret", "s3cret-value-long-enough"),
            ("submitter_name", "  Jane Admin "),
            ("submitter_email", "jane@example.com"),
        ]);
        let Ok(valid) = validate(generic(), &form) else {
            panic!("a complete form is valid");
        };
        assert_eq!(valid.name, "Jane Admin");
        assert_eq!(valid.email.as_str(), "jane@example.com");
        assert_eq!(valid.fields.get("label"), Some(&"warehouse"));
    }
}

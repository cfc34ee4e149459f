//! Creating, revoking and re-sending drop links.

use crate::crypto::Keyring;
use crate::domain::drop_url;
use crate::domain::{text, DropToken, Email, HumanDuration};
use crate::providers::{self, Provider};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::mail;
use crate::store::requests::{self, DropRequest, LinkState, NewRequest};
use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

/// A validated request for a new link.
#[derive(Debug)]
pub struct LinkInput {
    pub organization: String,
    pub provider: &'static Provider,
    pub expires_in: HumanDuration,
    pub max_uses: i32,
    pub contact_email: Option<Email>,
    pub note: Option<String>,
    /// Email the link to this address (`send_to`), instead of showing it.
    pub send_to: Option<Email>,
}

/// Raw values as a caller typed them.
#[derive(Debug, Default)]
pub struct RawLink<'a> {
    pub organization: &'a str,
    pub provider: &'a str,
    pub expires_in: Option<&'a str>,
    pub max_uses: Option<i64>,
    pub contact_email: Option<&'a str>,
    pub note: Option<&'a str>,
    pub send_to: Option<&'a str>,
}

pub const MAX_USES_LIMIT: i64 = 100_000;

impl LinkInput {
    /// Parses raw input; `default_ttl` applies when no expiry is given.
    pub fn parse(raw: RawLink<'_>, default_ttl: HumanDuration) -> Result<Self, String> {
        let organization =
            text::identifier(raw.organization, 200).map_err(|e| format!("organization {e}"))?;
        let provider = providers::find(raw.provider.trim()).ok_or_else(|| {
            let ids: Vec<_> = providers::PROVIDERS.iter().map(|p| p.id).collect();
            format!(
                "unknown provider {:?}: use one of {}",
                raw.provider,
                ids.join(", ")
            )
        })?;
        let expires_in = match raw.expires_in {
            Some(s) => HumanDuration::parse(s).map_err(|e| format!("expires_in: {e}"))?,
            None => default_ttl,
        };
        let max_uses = raw.max_uses.unwrap_or(1);
        if !(1..=MAX_USES_LIMIT).contains(&max_uses) {
            return Err(format!("max_uses must be between 1 and {MAX_USES_LIMIT}"));
        }
        let contact_email = raw
            .contact_email
            .filter(|e| !e.trim().is_empty())
            .map(|e| Email::parse(e).map_err(|m| format!("contact_email: {m}")))
            .transpose()?;
        let send_to = raw
            .send_to
            .map(|e| Email::parse(e).map_err(|m| format!("send_to: {m}")))
            .transpose()?;
        // The address the link goes to is the contact, unless another is given.
        let contact_email = contact_email.or_else(|| send_to.clone());
        let note = raw
            .note
            .map(|n| text::multiline(n, 2000))
            .transpose()
            .map_err(|e| format!("note {e} (line breaks and tabs are allowed)"))?
            .filter(|n| !n.is_empty());
        Ok(Self {
            organization: organization.to_owned(),
            provider,
            expires_in,
            max_uses: max_uses as i32,
            contact_email,
            note: note.map(str::to_owned),
            send_to,
        })
    }
}

/// A created link. `url` holds the only copy of the raw token; show it once.
/// When the link was emailed (`send_to`), `url` is `None`: the token is in
/// that email only.
pub struct CreatedLink {
    pub request: DropRequest,
    pub url: Option<String>,
}

impl std::fmt::Debug for CreatedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedLink")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// Why a link could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("sealing the link's token for its email failed: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a new link and its audit event in one transaction; with `send_to`,
/// also its email in the outbox (`crate::mail`), with the token sealed under
/// `keyring`.
pub async fn create(
    db: &PgPool,
    keyring: &Keyring,
    base_url: &Url,
    actor: &Actor,
    input: &LinkInput,
) -> Result<CreatedLink, CreateError> {
    let token = DropToken::generate();
    let id = Uuid::new_v4();
    let sealed = input
        .send_to
        .as_ref()
        .map(|_| crate::mail::seal_token(keyring, id, &token))
        .transpose()?;
    let creator = creator_email(actor);
    let mut tx = db.begin().await?;
    let request = requests::insert(
        &mut *tx,
        NewRequest {
            id,
            token_hash: &token.hash(),
            organization: &input.organization,
            provider: input.provider.id,
            contact_email: input.contact_email.as_ref().map(Email::as_str),
            note: input.note.as_deref(),
            created_by: actor.id,
            created_by_name: actor.name.as_deref().unwrap_or(actor.kind),
            created_by_email: creator.as_ref().map(Email::as_str),
            max_uses: input.max_uses,
            expires_at: Utc::now() + input.expires_in.as_chrono(),
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "link.created")
            .request(id)
            .detail(json!({
                "organization": input.organization,
                "provider": input.provider.id,
                "max_uses": input.max_uses,
                "expires_at": request.expires_at,
                "emailed": input.send_to.is_some(),
            })),
    )
    .await?;
    if let (Some(to), Some(sealed)) = (&input.send_to, &sealed) {
        crate::mail::queue_link(&mut tx, id, sealed, to).await?;
    }
    tx.commit().await?;
    Ok(CreatedLink {
        url: sealed.is_none().then(|| drop_url(base_url, token.expose())),
        request,
    })
}

/// The address a link's creator is told at: a person signed in to the
/// console whose identity provider gave an email. Staff tokens and the CLI
/// name no mailbox.
fn creator_email(actor: &Actor) -> Option<Email> {
    let who = actor.oidc.as_ref().filter(|_| actor.kind == "oidc")?;
    Email::parse(who.email.as_deref()?).ok()
}

/// Why a link's email could not be sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("no drop link with that id")]
    NotFound,
    /// Only a link that can still be used is sent again.
    #[error("{}", not_resendable(*.0))]
    NotUsable(LinkState),
    /// Keydrop keeps a link's token only when it emailed the link.
    #[error("this link was never emailed, so Keydrop holds no copy of its token to send (only a hash); create a new link with an email address")]
    NotEmailed,
    /// One email per request: the last one has not been sent or given up yet.
    #[error("the link's email is still queued for {0}; wait until it is sent or has failed before sending it again")]
    StillQueued(String),
    #[error("email is off on this server (KEYDROP_SMTP_URL is not set), so the link cannot be sent again")]
    EmailOff,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn not_resendable(state: LinkState) -> &'static str {
    match state {
        LinkState::Revoked => "the link was revoked, so it is not sent again",
        LinkState::Used => "the link is used (every use was spent), so it is not sent again",
        LinkState::Expired => "the link is expired, so it is not sent again",
        LinkState::Pending => "the link can still be used",
    }
}

/// The link and where its email went again.
#[derive(Debug)]
pub struct Resent {
    pub request: DropRequest,
    pub to: String,
}

/// Sends a link's email again, to the address its latest email went to: a
/// new outbox row built from the sealed token at send time, so the token is
/// again in the email only. Never to another address: that would leave a
/// working link with whoever got the first email (a mistyped address); for
/// another address, revoke the link and create a new one.
/// `email_on`: this process has SMTP settings (checked after the link's
/// state, so an unknown or used link is named as such first).
pub async fn resend(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    email_on: bool,
) -> Result<Resent, ResendError> {
    let mut tx = db.begin().await?;
    // The row lock orders concurrent resends: the second sees the first queued.
    let req = requests::lock(&mut tx, id)
        .await?
        .ok_or(ResendError::NotFound)?;
    let state = req.state(Utc::now());
    if state != LinkState::Pending {
        return Err(ResendError::NotUsable(state));
    }
    let last = mail::link_status(&mut *tx, &[id]).await?.into_iter().next();
    let (Some(last), true) = (last, mail::has_token(&mut *tx, id).await?) else {
        return Err(ResendError::NotEmailed);
    };
    let Some(to) = last.recipient else {
        return Err(ResendError::NotEmailed);
    };
    if last.status == "queued" {
        return Err(ResendError::StillQueued(to));
    }
    if !email_on {
        return Err(ResendError::EmailOff);
    }
    let mail_id = crate::mail::queue_resend(&mut tx, id, &to).await?;
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "link.resent")
            .request(id)
            .detail(json!({
                "mail_id": mail_id,
                "previous_email": last.status,
                "use_count": req.use_count,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(Resent { request: req, to })
}

/// Why a link could not be revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no drop link with that id")]
    NotFound,
    /// Only a link that can still be used can be revoked: revoking a used or
    /// expired one would rewrite its history (the customer who submitted
    /// would read "withdrawn"), and stop nothing.
    #[error("{}", not_revocable(*.0))]
    NotRevocable(LinkState),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn not_revocable(state: LinkState) -> &'static str {
    match state {
        LinkState::Revoked => "the link was already revoked",
        LinkState::Used => {
            "the link is used (every use was spent), so it can no longer be used and there is nothing to revoke"
        }
        LinkState::Expired => {
            "the link is expired, so it can no longer be used and there is nothing to revoke"
        }
        LinkState::Pending => "the link can still be used",
    }
}

/// Revokes a link that can still be used, so it no longer can.
pub async fn revoke(db: &PgPool, actor: &Actor, id: Uuid) -> Result<DropRequest, RevokeError> {
    let mut tx = db.begin().await?;
    let req = requests::lock(&mut tx, id)
        .await?
        .ok_or(RevokeError::NotFound)?;
    let state = req.state(Utc::now());
    if state != LinkState::Pending {
        return Err(RevokeError::NotRevocable(state));
    }
    requests::revoke(&mut tx, id).await?;
    audit::record(
        &mut *tx,
        NewEvent::success(actor, "link.revoked")
            .request(id)
            .detail(json!({ "use_count": req.use_count, "max_uses": req.max_uses })),
    )
    .await?;
    let req = requests::lock(&mut tx, id)
        .await?
        .ok_or(RevokeError::NotFound)?;
    tx.commit().await?;
    Ok(req)
}

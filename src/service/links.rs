//! Creating and revoking drop links.

use crate::crypto::Keyring;
use crate::domain::drop_url;
use crate::domain::{text, DropToken, Email, HumanDuration};
use crate::providers::{self, Provider};
use crate::store::audit::{self, Actor, NewEvent};
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

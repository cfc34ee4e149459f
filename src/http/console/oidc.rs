//! The OpenID Connect relying party, on the `openidconnect` crate: discovery,
//! the authorization request (code flow with PKCE, `state` and `nonce`), the
//! code exchange and ID-token validation (signature against the issuer's
//! JWKS, `iss`, `aud`, `exp`, `nonce`).
//!
//! Discovery happens at the first login, not at start-up, so Keydrop starts
//! while the identity provider is down. The metadata (with the JWKS) is kept
//! for [`METADATA_TTL`]; an ID token whose key is not in the cached JWKS
//! triggers one fresh discovery, which is how a provider's key rotation is
//! picked up at once.

use crate::config::OidcConfig;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, SignatureVerificationError,
    StandardErrorResponse, StandardTokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long discovered metadata and keys are trusted before fetching again.
pub const METADATA_TTL: Duration = Duration::from_secs(300);

/// Claims beyond the standard ones, kept as JSON: the groups claim's name is
/// configurable (`KEYDROP_OIDC_GROUPS_CLAIM`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

type Fields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResponse = StandardTokenResponse<Fields, CoreTokenType>;
type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Client = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Who the identity provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Why a login could not finish; each is shown as a clear page and audited.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Provider(String),
    #[error("the identity provider refused the code exchange: {0}")]
    Exchange(String),
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(String),
}

impl LoginError {
    /// A short, stable word for the audit trail.
    pub fn reason(&self) -> &'static str {
        match self {
            LoginError::Provider(_) => "provider_unreachable",
            LoginError::Exchange(_) => "code_exchange_failed",
            LoginError::NoIdToken => "no_id_token",
            LoginError::IdToken(_) => "id_token_invalid",
        }
    }
}

/// What a started login must remember until the callback.
pub struct Started {
    pub url: url::Url,
    pub nonce: String,
    pub pkce_verifier: String,
}

pub struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    cached: Mutex<Option<(Instant, ProviderMetadataWithLogout)>>,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> anyhow::Result<Self> {
        // No redirects: the crate's advice against SSRF through a provider's answers.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            config,
            http,
            cached: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn metadata(&self, fresh: bool) -> Result<ProviderMetadataWithLogout, LoginError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, meta)) = cached.as_ref() {
            if !fresh && at.elapsed() < METADATA_TTL {
                return Ok(meta.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| LoginError::Provider(e.to_string()))?;
        let meta = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| LoginError::Provider(error_chain(&e)))?;
        *cached = Some((Instant::now(), meta.clone()));
        Ok(meta)
    }

    fn client(&self, meta: ProviderMetadataWithLogout) -> Result<Client, LoginError> {
        let redirect = RedirectUrl::new(self.config.redirect_uri())
            .map_err(|e| LoginError::Provider(e.to_string()))?;
        Ok(Client::from_provider_metadata(
            meta,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// The authorization URL for a login carrying `state`.
    pub async fn start(&self, state: &str) -> Result<Started, LoginError> {
        let client = self.client(self.metadata(false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            Nonce::new_random,
        );
        for s in &self.config.scopes {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, _, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            url,
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` and validates the ID token against `nonce`.
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Identity, LoginError> {
        let client = self.client(self.metadata(false).await?)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::Exchange(error_chain(&e)))?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or(LoginError::NoIdToken)?;
        self.verify(id_token, nonce).await
    }

    /// Validates a compact ID token against the issuer's keys, this client
    /// and `nonce`: what [`Oidc::finish`] does with the token endpoint's
    /// answer. Public so tests can present tokens no honest provider would
    /// send through the code exchange (another audience, another key).
    pub async fn verify_compact(&self, compact: &str, nonce: &str) -> Result<Identity, LoginError> {
        let id_token: IdToken = compact
            .parse()
            .map_err(|e: serde_json::Error| LoginError::IdToken(e.to_string()))?;
        self.verify(&id_token, nonce).await
    }

    async fn verify(&self, id_token: &IdToken, nonce: &str) -> Result<Identity, LoginError> {
        let client = self.client(self.metadata(false).await?)?;
        let nonce = Nonce::new(nonce.to_owned());
        let first = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .cloned();
        let claims = match first {
            Ok(c) => c,
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // Perhaps the provider rotated its keys: look once more.
                let fresh = self.client(self.metadata(true).await?)?;
                let verified = id_token
                    .claims(&fresh.id_token_verifier(), &nonce)
                    .map_err(|e| LoginError::IdToken(e.to_string()))?
                    .clone();
                verified
            }
            Err(e) => return Err(LoginError::IdToken(e.to_string())),
        };
        let groups = match claims
            .additional_claims()
            .claims
            .get(&self.config.groups_claim)
        {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(Identity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            groups,
        })
    }

    /// The provider's end-session URL (RP-initiated logout), when it offers one.
    pub async fn logout_url(&self) -> Option<url::Url> {
        let meta = self.metadata(false).await.ok()?;
        let endpoint = meta.additional_metadata().end_session_endpoint.clone()?;
        let back = PostLogoutRedirectUrl::new(format!(
            "{}/login?logged_out=1",
            self.config.internal_url.as_str().trim_end_matches('/')
        ))
        .ok()?;
        Some(
            LogoutRequest::from(endpoint)
                .set_client_id(ClientId::new(self.config.client_id.clone()))
                .set_post_logout_redirect_uri(back)
                .http_get_url(),
        )
    }
}

/// An error with its causes, for logs and the audit trail (never a token:
/// the crate's errors name statuses and parse failures, not bodies' secrets).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out.chars().take(300).collect()
}

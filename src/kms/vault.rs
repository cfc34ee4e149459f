//! Vault / OpenBao Transit as a KEK backend.
//!
//! Hand-written on purpose: there is no official Rust SDK for Vault, and the
//! community crates cover far more than the three calls used here (Transit
//! `encrypt` and `decrypt`, AppRole `login`, whose lease says when to log in
//! again). A thin typed client on the reqwest already in the tree keeps the
//! dependency surface small and every request visible.
//!
//! Transit `rewrap` is deliberately not used: Transit accepts AEAD
//! `associated_data` on `encrypt`/`decrypt` but not on `rewrap` (OpenBao's
//! `path_rewrap.go` decrypts without it), so a key bound to its row cannot be
//! rewrapped there. Moving a row to the newest key version is decrypt, then
//! encrypt under the latest version; the payload is never touched.

use super::config::{VaultAuth, VaultConfig};
use super::{KekBackend, KmsError, Unwrapped, Wrapped};
use crate::crypto::{DataKey, RowBinding};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// A Transit client for one mount, writing under one key.
pub struct Transit {
    http: reqwest::Client,
    cfg: VaultConfig,
    kek_id: String,
    token: Mutex<Token>,
}

struct Token {
    value: SecretString,
    /// When to log in again (AppRole); `None` for a static token.
    refresh_at: Option<Instant>,
}

impl std::fmt::Debug for Transit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transit")
            .field("addr", &self.cfg.addr.as_str())
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer<T> {
    request_id: Option<String>,
    data: Option<T>,
}

#[derive(Deserialize)]
struct EncryptData {
    ciphertext: String,
}

#[derive(Deserialize)]
struct DecryptData {
    plaintext: Zeroizing<String>,
}

#[derive(Deserialize)]
struct Login {
    auth: LoginAuth,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: Zeroizing<String>,
    lease_duration: u64,
}

#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl Transit {
    /// Builds the client; logs in first when AppRole is configured.
    pub async fn connect(cfg: VaultConfig, timeout: Duration) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(path) = &cfg.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read VAULT_CACERT {path:?}: {e}"))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("VAULT_CACERT {path:?} is not a PEM certificate: {e}")
            })?;
            http = http.add_root_certificate(cert);
        }
        let kek_id = format!("vault:{}/{}", cfg.mount, cfg.key);
        let token = match &cfg.auth {
            VaultAuth::Token(t) => Token {
                value: t.clone(),
                refresh_at: None,
            },
            VaultAuth::AppRole { .. } => Token {
                value: SecretString::from(String::new()),
                refresh_at: Some(Instant::now()),
            },
        };
        Ok(Self {
            http: http.build()?,
            cfg,
            kek_id,
            token: Mutex::new(token),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.cfg.addr.as_str().trim_end_matches('/'))
    }

    /// The token to send, logging in again (AppRole) once two thirds of the
    /// last token's lease have passed.
    async fn token(&self) -> Result<SecretString, KmsError> {
        let mut token = self.token.lock().await;
        if let (Some(at), VaultAuth::AppRole { role_id, secret_id }) =
            (token.refresh_at, &self.cfg.auth)
        {
            if Instant::now() >= at {
                let body = json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() });
                let login: Login = self
                    .send("auth/approle/login", None, &body, "login")
                    .await?
                    .1;
                let lease = Duration::from_secs(login.auth.lease_duration.max(1));
                *token = Token {
                    value: SecretString::from(login.auth.client_token.as_str().to_owned()),
                    refresh_at: Some(Instant::now() + lease * 2 / 3),
                };
            }
        }
        Ok(token.value.clone())
    }

    /// A Transit call with the current token. With AppRole, a refusal (the
    /// token was revoked or expired early) logs in again and retries once.
    async fn transit<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> Result<(Option<String>, T), KmsError> {
        let token = self.token().await?;
        match self.send(path, Some(&token), body, what).await {
            Err(KmsError::Denied(_)) if matches!(self.cfg.auth, VaultAuth::AppRole { .. }) => {
                self.token.lock().await.refresh_at = Some(Instant::now());
                let token = self.token().await?;
                self.send(path, Some(&token), body, what).await
            }
            other => other,
        }
    }

    /// POSTs `body` to `path`; `what` names the capability for errors.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&SecretString>,
        body: &serde_json::Value,
        what: &str,
    ) -> Result<(Option<String>, T), KmsError> {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t.expose_secret());
        }
        if let Some(ns) = &self.cfg.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                KmsError::Timeout
            } else {
                KmsError::Unreachable(format!("Vault at {}: {}", self.cfg.addr, e.without_url()))
            }
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                KmsError::Timeout
            } else {
                KmsError::Unreachable(e.without_url().to_string())
            }
        })?;
        if !status.is_success() {
            let errors = serde_json::from_slice::<Errors>(&bytes)
                .unwrap_or_default()
                .errors;
            let text = errors.join("; ");
            return Err(match status.as_u16() {
                400 | 403 if what == "login" => KmsError::Denied(format!(
                    "Vault refused the AppRole login ({text}): check VAULT_ROLE_ID and the \
                     secret id in VAULT_SECRET_ID_FILE"
                )),
                403 => KmsError::Denied(format!(
                    "Vault refused to {what} ({text}): the token's policy needs \
                     path \"{path}\" {{ capabilities = [\"update\"] }}"
                )),
                400 if what == "decrypt" => KmsError::Rejected,
                code if code >= 500 || code == 429 => {
                    KmsError::Unreachable(format!("Vault answered {status} to {what}: {text}"))
                }
                _ => KmsError::Other(format!(
                    "Vault answered {status} to {what} on {path}: {text}"
                )),
            });
        }
        let answer: Answer<T> = serde_json::from_slice(&bytes).map_err(|e| {
            KmsError::Other(format!("Vault's answer to {what} is not understood: {e}"))
        })?;
        if let Some(data) = answer.data {
            return Ok((answer.request_id, data));
        }
        // Login answers carry `auth`, not `data`.
        let whole: T = serde_json::from_slice(&bytes).map_err(|e| {
            KmsError::Other(format!("Vault's answer to {what} is not understood: {e}"))
        })?;
        Ok((answer.request_id, whole))
    }

    /// Names a key on this mount: `vault:<mount>/<key>` → `<key>`.
    fn key_of<'a>(&self, kek_id: &'a str) -> Result<&'a str, KmsError> {
        kek_id
            .strip_prefix("vault:")
            .and_then(|rest| rest.strip_prefix(self.cfg.mount.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|k| !k.is_empty() && !k.contains('/'))
            .ok_or_else(|| KmsError::NotMine(kek_id.to_owned()))
    }
}

impl KekBackend for Transit {
    fn backend(&self) -> &'static str {
        "vault-transit"
    }

    fn kek_id(&self) -> &str {
        &self.kek_id
    }

    fn owns(&self, kek_id: &str) -> bool {
        self.key_of(kek_id).is_ok()
    }

    async fn wrap(&self, dek: &DataKey, binding: &RowBinding) -> Result<Wrapped, KmsError> {
        let path = format!("{}/encrypt/{}", self.cfg.mount, self.cfg.key);
        let plaintext = Zeroizing::new(STANDARD.encode(dek.expose()));
        let body = json!({
            "plaintext": plaintext.as_str(),
            "associated_data": STANDARD.encode(binding.associated_data()),
        });
        let (request_id, data): (_, EncryptData) = self.transit(&path, &body, "encrypt").await?;
        Ok(Wrapped {
            kek_id: self.kek_id.clone(),
            wrapped: data.ciphertext.into_bytes(),
            request_id,
        })
    }

    async fn unwrap(
        &self,
        kek_id: &str,
        wrapped: &[u8],
        binding: &RowBinding,
    ) -> Result<Unwrapped, KmsError> {
        let key = self.key_of(kek_id)?;
        let ciphertext = std::str::from_utf8(wrapped).map_err(|_| KmsError::Rejected)?;
        let path = format!("{}/decrypt/{key}", self.cfg.mount);
        let body = json!({
            "ciphertext": ciphertext,
            "associated_data": STANDARD.encode(binding.associated_data()),
        });
        let (request_id, data): (_, DecryptData) = self.transit(&path, &body, "decrypt").await?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(data.plaintext.as_bytes())
                .map_err(|_| KmsError::Rejected)?,
        );
        Ok(Unwrapped {
            dek: DataKey::from_slice(&bytes).map_err(|_| KmsError::Rejected)?,
            request_id,
        })
    }

    fn version_prefix<'a>(&self, wrapped: &'a [u8]) -> Option<&'a [u8]> {
        version_prefix(wrapped)
    }
}

/// `vault:v3:` of a Transit ciphertext: which key version wrapped it.
fn version_prefix(wrapped: &[u8]) -> Option<&[u8]> {
    let rest = wrapped.strip_prefix(b"vault:v")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0 && rest.get(digits) == Some(&b':')).then(|| &wrapped[..7 + digits + 1])
}

#[cfg(test)]
mod tests {
    use super::version_prefix;

    #[test]
    fn the_key_version_is_read_from_a_transit_ciphertext() {
        assert_eq!(version_prefix(b"vault:v12:abc"), Some(&b"vault:v12:"[..]));
        assert_eq!(version_prefix(b"vault:v:abc"), None);
        assert_eq!(version_prefix(b"vault:v1"), None);
        assert_eq!(version_prefix(b"\x01\x02"), None);
    }
}

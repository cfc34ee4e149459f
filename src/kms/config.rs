//! KMS settings, parsed from the environment lookup `crate::config` hands in.
//!
//! `KEYDROP_KMS` picks the backend (unset: the local ring only). Tokens and
//! secret ids are read from files where the contract allows, held as
//! `SecretString`, and never printed.

use crate::domain::HumanDuration;
use anyhow::{bail, Context as _};
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Which KMS wraps new data keys, and how to reach it.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    pub backend: BackendConfig,
    /// Budget of one KMS call (`KEYDROP_KMS_TIMEOUT`, default 2s).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum BackendConfig {
    VaultTransit(VaultConfig),
    AwsKms(AwsConfig),
}

/// Vault or OpenBao Transit.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub addr: Url,
    pub auth: VaultAuth,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub mount: String,
    pub key: String,
}

/// How Keydrop gets its Vault token. `SecretString` redacts `Debug`.
#[derive(Debug, Clone)]
pub enum VaultAuth {
    Token(SecretString),
    AppRole {
        role_id: String,
        secret_id: SecretString,
    },
}

/// AWS KMS: the key, and where to reach it. What is set here (read, like all
/// configuration, through one lookup) is passed to the SDK explicitly; what
/// is not comes from the SDK's standard chain (profile, web identity, ECS or
/// instance metadata).
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// Key id, ARN, alias name or alias ARN (`KEYDROP_AWS_KMS_KEY_ID`).
    pub key_id: String,
    /// `AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: a VPC endpoint, or a stand-in in tests.
    pub endpoint_url: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub static_credentials: Option<AwsKeys>,
}

/// Static AWS credentials from the environment; the secret parts redact.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl KmsConfig {
    /// `None` when `KEYDROP_KMS` is unset (the local ring wraps data keys).
    pub fn from_lookup(env: Env<'_>) -> anyhow::Result<Option<Self>> {
        let Some(kind) = env("KEYDROP_KMS") else {
            return Ok(None);
        };
        let timeout = HumanDuration::parse(&env("KEYDROP_KMS_TIMEOUT").unwrap_or("2s".into()))
            .map_err(|e| anyhow::anyhow!("KEYDROP_KMS_TIMEOUT: {e}"))?
            .as_std();
        let backend = match kind.as_str() {
            "vault-transit" => BackendConfig::VaultTransit(vault(env)?),
            "aws-kms" => BackendConfig::AwsKms(aws(env)?),
            "local" => return Ok(None),
            other => bail!("KEYDROP_KMS={other:?}: use vault-transit or aws-kms (or leave it unset for the local KEK ring)"),
        };
        Ok(Some(Self { backend, timeout }))
    }
}

fn aws(env: Env<'_>) -> anyhow::Result<AwsConfig> {
    let key_id = env("KEYDROP_AWS_KMS_KEY_ID")
        .context("KEYDROP_KMS=aws-kms needs KEYDROP_AWS_KMS_KEY_ID (a key id, ARN or alias/…)")?;
    let endpoint_url = env("AWS_ENDPOINT_URL");
    if let Some(e) = &endpoint_url {
        Url::parse(e)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .with_context(|| format!("AWS_ENDPOINT_URL={e:?} is not an http(s) URL"))?;
    }
    let static_credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(AwsKeys {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: env("AWS_SESSION_TOKEN").map(SecretString::from),
        }),
        (None, None) => None,
        _ => bail!("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither"),
    };
    Ok(AwsConfig {
        key_id,
        region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
        endpoint_url,
        static_credentials,
    })
}

fn read_secret_file(var: &str, path: &str) -> anyhow::Result<SecretString> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {var} {path:?}"))?;
    let text = text.trim();
    if text.is_empty() {
        bail!("{var} {path:?} is empty");
    }
    Ok(SecretString::from(text.to_owned()))
}

fn vault(env: Env<'_>) -> anyhow::Result<VaultConfig> {
    let addr = env("VAULT_ADDR")
        .context("KEYDROP_KMS=vault-transit needs VAULT_ADDR, e.g. https://vault.internal:8200")?;
    let addr = Url::parse(&addr)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| format!("VAULT_ADDR={addr:?} is not an http(s) URL"))?;
    let auth = match (
        env("VAULT_TOKEN"),
        env("VAULT_TOKEN_FILE"),
        env("VAULT_ROLE_ID"),
    ) {
        (Some(t), None, None) => VaultAuth::Token(SecretString::from(t)),
        (None, Some(path), None) => VaultAuth::Token(read_secret_file("VAULT_TOKEN_FILE", &path)?),
        (None, None, Some(role_id)) => {
            let path = env("VAULT_SECRET_ID_FILE")
                .context("VAULT_ROLE_ID (AppRole) needs VAULT_SECRET_ID_FILE")?;
            VaultAuth::AppRole {
                role_id,
                secret_id: read_secret_file("VAULT_SECRET_ID_FILE", &path)?,
            }
        }
        (None, None, None) => bail!(
            "KEYDROP_KMS=vault-transit needs a token: VAULT_TOKEN, VAULT_TOKEN_FILE, or AppRole \
             (VAULT_ROLE_ID and VAULT_SECRET_ID_FILE)"
        ),
        _ => bail!("set only one of VAULT_TOKEN, VAULT_TOKEN_FILE and VAULT_ROLE_ID"),
    };
    let name = |var: &str, default: &str| -> anyhow::Result<String> {
        let v = env(var).unwrap_or_else(|| default.to_owned());
        let ok = !v.is_empty()
            && v.split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            });
        if !ok {
            bail!("{var}={v:?}: use letters, digits, - _ . (and / between mount segments)");
        }
        Ok(v)
    };
    let mount = name("KEYDROP_VAULT_TRANSIT_MOUNT", "transit")?;
    let key = name("KEYDROP_VAULT_TRANSIT_KEY", "keydrop")?;
    if key.contains('/') {
        bail!("KEYDROP_VAULT_TRANSIT_KEY={key:?}: a Transit key name has no '/'");
    }
    Ok(VaultConfig {
        addr,
        auth,
        namespace: env("VAULT_NAMESPACE"),
        ca_cert: env("VAULT_CACERT").map(PathBuf::from),
        mount,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> anyhow::Result<Option<KmsConfig>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KmsConfig::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn unset_means_the_local_ring_and_defaults_follow_the_contract() {
        assert!(parse(&[]).unwrap().is_none());
        let c = parse(&[
            ("KEYDROP_KMS", "vault-transit"),
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hvs.secret-token"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(2));
        let BackendConfig::VaultTransit(v) = &c.backend else {
            panic!("not vault")
        };
        assert_eq!((v.mount.as_str(), v.key.as_str()), ("transit", "keydrop"));
        assert!(!format!("{c:?}").contains("hvs.secret-token"));
    }

    #[test]
    fn missing_or_bad_settings_name_the_variable() {
        let e = parse(&[("KEYDROP_KMS", "gcp")]).unwrap_err().to_string();
        assert!(e.contains("KEYDROP_KMS"), "{e}");
        let e = parse(&[("KEYDROP_KMS", "aws-kms")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("KEYDROP_AWS_KMS_KEY_ID"), "{e}");
        let e = parse(&[("KEYDROP_KMS", "vault-transit"), ("VAULT_ADDR", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("VAULT_ADDR"), "{e}");
        let e = parse(&[
            ("KEYDROP_KMS", "vault-transit"),
            ("VAULT_ADDR", "http://v:8200"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("VAULT_TOKEN"), "{e}");
        let e = parse(&[
            ("KEYDROP_KMS", "vault-transit"),
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_TOKEN", "t"),
            ("KEYDROP_VAULT_TRANSIT_KEY", "a/b"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("KEYDROP_VAULT_TRANSIT_KEY"), "{e}");
        let e = parse(&[
            ("KEYDROP_KMS", "aws-kms"),
            ("KEYDROP_AWS_KMS_KEY_ID", "alias/keydrop"),
            ("KEYDROP_KMS_TIMEOUT", "soon"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("KEYDROP_KMS_TIMEOUT"), "{e}");
    }
}

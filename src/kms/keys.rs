//! [`Keys`]: the one object every action seals, opens and rewraps through.

use super::aws::AwsKms;
use super::config::{BackendConfig, KmsConfig};
use super::vault::Transit;
use super::{KekBackend, KeyError, KmsError, Unwrapped, Wrapped};
use crate::crypto::{self, Context, CryptoError, DataKey, Envelope, Keyring, RowBinding};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The configured KMS client.
#[derive(Debug)]
enum Kms {
    Vault(Box<Transit>),
    Aws(AwsKms),
}

/// The KEK ring plus, when configured, the KMS that wraps new data keys.
#[derive(Debug)]
pub struct Keys {
    ring: Arc<Keyring>,
    kms: Option<Kms>,
    timeout: Duration,
    /// The last readiness canary, reused while young (`status`).
    last_status: std::sync::Mutex<Option<(Instant, KmsStatus)>>,
}

/// A decrypted credential and, when a KMS unwrapped its key, what the KMS's
/// own audit log will show (for `secret.revealed`).
pub struct Opened {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub kms: Option<KmsRecord>,
}

/// The KMS key and request id of one unwrap.
#[derive(Debug, Clone, Serialize)]
pub struct KmsRecord {
    pub key: String,
    pub request_id: Option<String>,
}

/// `/readyz`'s `kms` object.
#[derive(Debug, Clone, Serialize)]
pub struct KmsStatus {
    pub status: &'static str,
    pub backend: &'static str,
    pub key: String,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Calls `$f` on whichever client is configured.
macro_rules! with_kms {
    ($kms:expr, $c:ident => $f:expr) => {
        match $kms {
            Kms::Vault($c) => $f,
            Kms::Aws($c) => $f,
        }
    };
}

/// The binding the start-up and readiness canaries wrap under.
fn canary_binding() -> RowBinding {
    RowBinding {
        format_version: crypto::FORMAT_VERSION,
        secret_id: Uuid::nil(),
        provider: "keydrop-canary".into(),
    }
}

impl Keys {
    /// Only the local ring.
    pub fn local(ring: Arc<Keyring>) -> Self {
        Self {
            ring,
            kms: None,
            timeout: Duration::from_secs(2),
            last_status: Default::default(),
        }
    }

    /// Connects to the configured KMS and proves, with an encrypt/decrypt
    /// canary, that this process may do both; the error names what is missing.
    pub async fn connect(ring: Arc<Keyring>, cfg: Option<KmsConfig>) -> anyhow::Result<Self> {
        let Some(cfg) = cfg else {
            return Ok(Self::local(ring));
        };
        let kms = match cfg.backend {
            BackendConfig::VaultTransit(v) => {
                Kms::Vault(Box::new(Transit::connect(v, cfg.timeout).await?))
            }
            BackendConfig::AwsKms(a) => Kms::Aws(AwsKms::connect(a, cfg.timeout).await?),
        };
        let mut keys = Self {
            ring,
            kms: Some(kms),
            timeout: cfg.timeout,
            last_status: Default::default(),
        };
        let arn = keys.canary().await.map_err(|e| {
            anyhow::anyhow!(
                "the KMS start-up check (wrap and unwrap a canary data key) failed: {e}"
            )
        })?;
        if let (Some(Kms::Aws(aws)), Some(arn)) = (&mut keys.kms, arn) {
            aws.set_arn(&arn);
        }
        Ok(keys)
    }

    /// The local ring (also for CSRF, fingerprint and webhook subkeys).
    pub fn ring(&self) -> &Keyring {
        &self.ring
    }

    /// `local`, `vault-transit` or `aws-kms`.
    pub fn backend(&self) -> &'static str {
        self.kms
            .as_ref()
            .map_or("local", |k| with_kms!(k, c => c.backend()))
    }

    /// The KEK id new rows are written under.
    pub fn active_kek(&self) -> String {
        match &self.kms {
            Some(k) => with_kms!(k, c => c.kek_id().to_owned()),
            None => self.ring.active().id().as_str().to_owned(),
        }
    }

    /// True when this process can unwrap rows under `kek_id`.
    pub fn serves(&self, kek_id: &str) -> bool {
        if !kek_id.contains(':') {
            return self.ring.get(kek_id).is_some();
        }
        self.kms
            .as_ref()
            .is_some_and(|k| with_kms!(k, c => c.owns(kek_id)))
    }

    /// Wraps and unwraps a canary; returns the key's KMS id (AWS: its ARN).
    async fn canary(&self) -> Result<Option<String>, KmsError> {
        let binding = canary_binding();
        let (dek, wrapped) = self.new_data_key(&binding).await?;
        let back = self
            .kms_unwrap(&wrapped.kek_id, &wrapped.wrapped, &binding)
            .await?;
        if back.dek.expose() != dek.expose() {
            return Err(KmsError::Other(
                "the KMS unwrapped a different data key".into(),
            ));
        }
        Ok(Some(wrapped.kek_id))
    }

    /// `/readyz`: a canary round trip (within `budget`) and its latency, or
    /// the last one when it is younger than `max_age`. `None` without a KMS.
    pub async fn status(&self, max_age: Duration, budget: Duration) -> Option<KmsStatus> {
        let kms = self.kms.as_ref()?;
        let lock = || self.last_status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, status)) = lock().as_ref() {
            if at.elapsed() < max_age {
                return Some(status.clone());
            }
        }
        let started = Instant::now();
        let result = tokio::time::timeout(budget, self.canary())
            .await
            .unwrap_or(Err(KmsError::Timeout));
        let status = KmsStatus {
            status: if result.is_ok() { "ok" } else { "unavailable" },
            backend: with_kms!(kms, c => c.backend()),
            key: self.active_kek(),
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: result.err().map(|e| e.to_string()),
        };
        *lock() = Some((Instant::now(), status.clone()));
        Some(status)
    }

    /// Runs one KMS call within the deadline (the clients have their own
    /// timeouts; this is the backstop, so nothing waits longer).
    ///
    /// The call's future lives on the heap: the SDK and HTTP client futures
    /// are many kilobytes, and inline they would make every future that
    /// awaits `seal` or `open` (the submission and reveal handlers) that
    /// large even with no KMS configured; axum and tower move a handler's
    /// future into a box of their own, a memcpy of its whole size on every
    /// request (callgrind, BENCHMARKS.md). One allocation per KMS call is
    /// nothing beside its network round-trip.
    fn deadline<'a, T: 'a>(
        &self,
        call: impl Future<Output = Result<T, KmsError>> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = Result<T, KmsError>> + Send + 'a>> {
        let limit = self.timeout + Duration::from_millis(250);
        Box::pin(async move {
            tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(KmsError::Timeout))
        })
    }

    async fn new_data_key(&self, binding: &RowBinding) -> Result<(DataKey, Wrapped), KmsError> {
        let Some(kms) = &self.kms else {
            return Err(KmsError::NotMine("local".into()));
        };
        self.deadline(async {
            match kms {
                Kms::Aws(c) => c.generate(binding).await,
                Kms::Vault(c) => {
                    let dek = DataKey::generate().map_err(|e| KmsError::Other(e.to_string()))?;
                    let wrapped = c.wrap(&dek, binding).await?;
                    Ok((dek, wrapped))
                }
            }
        })
        .await
    }

    async fn kms_unwrap(
        &self,
        kek_id: &str,
        wrapped: &[u8],
        binding: &RowBinding,
    ) -> Result<Unwrapped, KmsError> {
        let kms = self
            .kms
            .as_ref()
            .filter(|k| with_kms!(k, c => c.owns(kek_id)))
            .ok_or_else(|| KmsError::NotMine(kek_id.to_owned()))?;
        self.deadline(async { with_kms!(kms, c => c.unwrap(kek_id, wrapped, binding).await) })
            .await
    }

    /// Seals a credential for the row in `ctx`: under a fresh data key that
    /// the KMS wraps, or under the local ring when no KMS is configured.
    pub async fn seal(&self, ctx: Context<'_>, plaintext: &[u8]) -> Result<Envelope, KeyError> {
        if self.kms.is_none() {
            return Ok(crypto::seal(&self.ring, ctx, plaintext)?);
        }
        let (dek, wrapped) = self.new_data_key(&RowBinding::new(ctx)).await?;
        Ok(Envelope {
            format_version: crypto::FORMAT_VERSION,
            kek_id: wrapped.kek_id,
            payload: crypto::seal_payload(&dek, ctx, plaintext)?,
            wrapped_dek: wrapped.wrapped,
        })
    }

    /// Opens a stored envelope, asking the KMS when the row's key lives there.
    pub async fn open(&self, ctx: Context<'_>, envelope: &Envelope) -> Result<Opened, KeyError> {
        if !envelope.kek_id.contains(':') {
            return Ok(Opened {
                plaintext: crypto::open(&self.ring, ctx, envelope)?,
                kms: None,
            });
        }
        if envelope.format_version != crypto::FORMAT_VERSION {
            return Err(CryptoError::UnsupportedVersion(envelope.format_version).into());
        }
        let binding = RowBinding::of(ctx, envelope.format_version);
        let un = self
            .kms_unwrap(&envelope.kek_id, &envelope.wrapped_dek, &binding)
            .await?;
        Ok(Opened {
            plaintext: crypto::open_payload(&un.dek, ctx, envelope)?,
            kms: Some(KmsRecord {
                key: envelope.kek_id.clone(),
                request_id: un.request_id,
            }),
        })
    }

    /// Rewraps a row's data key under the active KEK (the payload is neither
    /// read nor written): ring to ring, ring to KMS, KMS key to KMS key
    /// (AWS `ReEncrypt` inside KMS), or to the newest Transit key version.
    /// Returns the new KEK id and wrapped key.
    pub async fn rewrap(
        &self,
        ctx: Context<'_>,
        envelope: &Envelope,
    ) -> Result<(String, Vec<u8>), KeyError> {
        let Some(kms) = &self.kms else {
            let new = crypto::rewrap(&self.ring, ctx.secret_id, envelope)?;
            return Ok((new.kek_id, new.wrapped_dek));
        };
        let binding = RowBinding::of(ctx, envelope.format_version);
        if let (Kms::Aws(aws), true) = (kms, envelope.kek_id.starts_with("aws:")) {
            let w = self
                .deadline(aws.reencrypt(&envelope.kek_id, &envelope.wrapped_dek, &binding))
                .await?;
            return Ok((w.kek_id, w.wrapped));
        }
        let dek = if envelope.kek_id.contains(':') {
            self.kms_unwrap(&envelope.kek_id, &envelope.wrapped_dek, &binding)
                .await?
                .dek
        } else {
            crypto::unwrap_local(&self.ring, ctx.secret_id, envelope)?
        };
        let w = self
            .deadline(async { with_kms!(kms, c => c.wrap(&dek, &binding).await) })
            .await?;
        Ok((w.kek_id, w.wrapped))
    }

    /// For Transit: the version marker a fresh wrap carries now (`vault:v2:`),
    /// so rotation also moves rows under older versions of the active key.
    pub async fn current_version_prefix(&self) -> Result<Option<Vec<u8>>, KmsError> {
        let Some(Kms::Vault(c)) = &self.kms else {
            return Ok(None);
        };
        let dek = DataKey::generate().map_err(|e| KmsError::Other(e.to_string()))?;
        let w = self.deadline(c.wrap(&dek, &canary_binding())).await?;
        Ok(c.version_prefix(&w.wrapped).map(<[u8]>::to_vec))
    }
}

//! Where key-encryption keys live: the local ring, or a KMS that never
//! releases them (Vault/OpenBao Transit, AWS KMS).
//!
//! `crypto` stays pure (seal and open with a data key it is given); this layer
//! does the I/O of wrapping data keys. [`Keys`] routes by the KEK id stored on
//! each row: ids with a backend prefix (`vault:<mount>/<key>`,
//! `aws:<key-arn>`) go to the KMS, bare ids (the ring's, what the docs call
//! `local:<id>`) to the local ring, so one database can hold rows of both
//! while `keydrop rotate` migrates them. Every KMS call has a deadline
//! (`KEYDROP_KMS_TIMEOUT`) and fails closed: no data key, no secret.
//!
//! The ring stays configured beside a KMS: it still keys CSRF tokens,
//! fingerprints and webhook ids, and opens rows not yet migrated.

// The AWS SDK is optional (the `aws-kms` feature, on by default): builds
// without it, such as the fuzz targets', get a stand-in that refuses
// `KEYDROP_KMS=aws-kms` at start-up.
#[cfg(feature = "aws-kms")]
mod aws;
#[cfg(not(feature = "aws-kms"))]
#[path = "aws_off.rs"]
mod aws;
pub mod config;
mod keys;
mod vault;

pub use config::KmsConfig;
pub use keys::{Keys, KmsRecord, KmsStatus, Opened};

use crate::crypto::{CryptoError, DataKey, RowBinding};
use std::future::Future;

/// Why a KMS call failed. Never carries key material or tokens.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("the KMS did not answer in time (KEYDROP_KMS_TIMEOUT)")]
    Timeout,
    #[error("the KMS is unreachable: {0}")]
    Unreachable(String),
    /// Missing permission; the message names the capability or policy path.
    #[error("{0}")]
    Denied(String),
    /// The KMS would not unwrap this key for this row (altered, or moved).
    #[error("the KMS rejected the wrapped data key: wrong row, wrong key, or altered")]
    Rejected,
    /// The row names a KMS key this process is not configured for.
    #[error("KEK {0:?} is held by a KMS this process is not configured for")]
    NotMine(String),
    #[error("{0}")]
    Other(String),
}

impl KmsError {
    /// The KMS could not be asked (down, slow, refusing): answer 503, retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Unreachable(_) | Self::Denied(_) | Self::Other(_)
        )
    }
}

/// A failure to seal or open through [`Keys`].
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Kms(#[from] KmsError),
}

/// A data key wrapped by a KMS.
#[derive(Debug)]
pub struct Wrapped {
    /// The row's KEK id (`vault:transit/keydrop`, `aws:<arn>`).
    pub kek_id: String,
    pub wrapped: Vec<u8>,
    /// The KMS's id for the call, to join with its audit log.
    pub request_id: Option<String>,
}

/// A data key a KMS unwrapped.
#[derive(Debug)]
pub struct Unwrapped {
    pub dek: DataKey,
    pub request_id: Option<String>,
}

/// A KMS holding key-encryption keys. Implemented by the Transit and AWS
/// clients; [`Keys`] picks one by configuration.
pub trait KekBackend: Send + Sync {
    /// `vault-transit` or `aws-kms`, for `/readyz` and logs.
    fn backend(&self) -> &'static str;

    /// The KEK id new rows are written under.
    fn kek_id(&self) -> &str;

    /// True when `kek_id` names a key of this KMS (it can try to unwrap it).
    fn owns(&self, kek_id: &str) -> bool;

    /// Wraps `dek` under the active key, bound to `binding`.
    fn wrap(
        &self,
        dek: &DataKey,
        binding: &RowBinding,
    ) -> impl Future<Output = Result<Wrapped, KmsError>> + Send;

    /// Unwraps a data key wrapped under `kek_id` for exactly this row.
    fn unwrap(
        &self,
        kek_id: &str,
        wrapped: &[u8],
        binding: &RowBinding,
    ) -> impl Future<Output = Result<Unwrapped, KmsError>> + Send;

    /// The key-version marker of a wrapped key (Transit's `vault:v3:`), so
    /// rotation can find rows under an older version of the active key.
    fn version_prefix<'a>(&self, _wrapped: &'a [u8]) -> Option<&'a [u8]> {
        None
    }
}

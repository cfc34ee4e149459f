//! The AWS KMS backend's stand-in in builds without the `aws-kms` feature.
//!
//! The fuzz targets build the library without it (fuzz/Cargo.toml): the AWS
//! SDK is most of what they would otherwise compile with coverage and
//! AddressSanitizer, and none of it is fuzzed. `KEYDROP_KMS=aws-kms` still
//! parses, so such a build refuses it at start-up naming the build, not the
//! setting. No value of [`AwsKms`] can exist, so every other method is
//! unreachable by construction (`match *self {}`), not by a panic.

use super::config::AwsConfig;
use super::{KekBackend, KmsError, Unwrapped, Wrapped};
use crate::crypto::{DataKey, RowBinding};
use std::time::Duration;

/// Uninhabited: [`AwsKms::connect`] always fails.
#[derive(Debug)]
pub enum AwsKms {}

impl AwsKms {
    pub async fn connect(_cfg: AwsConfig, _timeout: Duration) -> anyhow::Result<Self> {
        anyhow::bail!(
            "KEYDROP_KMS=aws-kms: this build has no aws-kms support; rebuild with the default features"
        )
    }

    pub async fn reencrypt(
        &self,
        _kek_id: &str,
        _wrapped: &[u8],
        _binding: &RowBinding,
    ) -> Result<Wrapped, KmsError> {
        match *self {}
    }

    pub async fn generate(&self, _binding: &RowBinding) -> Result<(DataKey, Wrapped), KmsError> {
        match *self {}
    }

    pub fn set_arn(&mut self, _kek_id: &str) {
        match *self {}
    }
}

impl KekBackend for AwsKms {
    fn backend(&self) -> &'static str {
        match *self {}
    }

    fn kek_id(&self) -> &str {
        match *self {}
    }

    fn owns(&self, _kek_id: &str) -> bool {
        match *self {}
    }

    async fn wrap(&self, _dek: &DataKey, _binding: &RowBinding) -> Result<Wrapped, KmsError> {
        match *self {}
    }

    async fn unwrap(
        &self,
        _kek_id: &str,
        _wrapped: &[u8],
        _binding: &RowBinding,
    ) -> Result<Unwrapped, KmsError> {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{BackendConfig, KmsConfig};
    use super::super::Keys;
    use super::*;
    use crate::crypto::{Kek, KekId, Keyring};
    use std::sync::Arc;

    #[tokio::test]
    async fn configuring_aws_kms_fails_at_start_naming_the_build() {
        let kek = Kek::new(KekId::parse("ring-a").unwrap(), &[7; 32]).unwrap();
        let ring = Arc::new(Keyring::new(vec![kek]).unwrap());
        let cfg = KmsConfig {
            backend: BackendConfig::AwsKms(AwsConfig {
                key_id: "alias/keydrop".into(),
                region: None,
                endpoint_url: None,
                static_credentials: None,
            }),
            timeout: Duration::from_secs(2),
        };
        let err = Keys::connect(ring, Some(cfg))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no aws-kms support") && err.contains("default features"),
            "{err}"
        );
    }
}

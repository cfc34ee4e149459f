//! AWS KMS as a KEK backend, through the official `aws-sdk-kms`.
//!
//! `GenerateDataKey` makes each secret's data key inside KMS, `Decrypt` opens
//! it on reveal and `ReEncrypt` moves it to another KMS key without Keydrop
//! seeing it. The row binding travels as the `EncryptionContext`, which KMS
//! authenticates, records in CloudTrail, and lets key policies match
//! (`kms:EncryptionContext:keydrop:secret`). Credentials and region come from
//! the SDK's standard chain; `AWS_ENDPOINT_URL` points it at a VPC endpoint
//! (or, in tests, at moto_server).

use super::config::AwsConfig;
use super::{KekBackend, KmsError, Unwrapped, Wrapped};
use crate::crypto::{DataKey, RowBinding};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::Credentials;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::time::Duration;
use zeroize::Zeroize;

/// A KMS client writing under one key (its ARN, resolved at start).
pub struct AwsKms {
    client: Client,
    /// As configured: id, ARN or alias.
    key_ref: String,
    /// `aws:<key-arn>`, known after [`AwsKms::connect`]'s first call.
    kek_id: String,
}

impl std::fmt::Debug for AwsKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKms")
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// The binding as an encryption context.
fn context(binding: &RowBinding) -> HashMap<String, String> {
    binding
        .context_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn map_err<E, R>(err: SdkError<E, R>, action: &str) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = |err: &SdkError<E, R>| DisplayErrorContext(err).to_string();
    match &err {
        SdkError::TimeoutError(_) => KmsError::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            KmsError::Unreachable(format!("AWS KMS {action}: {}", detail(&err)))
        }
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("unknown");
            let message = e.message().unwrap_or("");
            match code {
                "InvalidCiphertextException" | "IncorrectKeyException" => KmsError::Rejected,
                "AccessDeniedException" => KmsError::Denied(format!(
                    "AWS KMS refused {action} ({message}): the key policy or the role's IAM \
                     policy must allow {action} on this key"
                )),
                "DisabledException" | "KMSInvalidStateException" | "NotFoundException" => {
                    KmsError::Denied(format!("AWS KMS {action}: {code}: {message}"))
                }
                "KMSInternalException" | "DependencyTimeoutException" | "ThrottlingException" => {
                    KmsError::Unreachable(format!("AWS KMS {action}: {code}: {message}"))
                }
                _ => KmsError::Other(format!("AWS KMS {action}: {code}: {message}")),
            }
        }
        _ => KmsError::Other(format!("AWS KMS {action}: {}", detail(&err))),
    }
}

impl AwsKms {
    /// Loads the SDK configuration (standard chain, `AWS_ENDPOINT_URL`) with
    /// `timeout` as the budget of each operation, retries included.
    pub async fn connect(cfg: AwsConfig, timeout: Duration) -> anyhow::Result<Self> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &cfg.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(keys) = &cfg.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                &keys.access_key_id,
                keys.secret_access_key.expose_secret(),
                keys.session_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                None,
                "keydrop-environment",
            ));
        }
        let sdk = loader
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .connect_timeout(timeout)
                    .build(),
            )
            .load()
            .await;
        anyhow::ensure!(
            sdk.region().is_some(),
            "KEYDROP_KMS=aws-kms needs a region: set AWS_REGION"
        );
        Ok(Self {
            client: Client::new(&sdk),
            kek_id: format!("aws:{}", cfg.key_id),
            key_ref: cfg.key_id,
        })
    }

    /// Moves a wrapped key to this client's key inside KMS (`ReEncrypt`).
    pub async fn reencrypt(
        &self,
        kek_id: &str,
        wrapped: &[u8],
        binding: &RowBinding,
    ) -> Result<Wrapped, KmsError> {
        let source = kek_id
            .strip_prefix("aws:")
            .ok_or_else(|| KmsError::NotMine(kek_id.to_owned()))?;
        let ctx = context(binding);
        let out = self
            .client
            .re_encrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .source_key_id(source)
            .set_source_encryption_context(Some(ctx.clone()))
            .destination_key_id(&self.key_ref)
            .set_destination_encryption_context(Some(ctx))
            .send()
            .await
            .map_err(|e| map_err(e, "kms:ReEncrypt"))?;
        self.wrapped(
            out.key_id(),
            out.ciphertext_blob(),
            out.request_id(),
            "ReEncrypt",
        )
    }

    /// Makes a data key inside KMS: the plaintext key and its wrapped form.
    pub async fn generate(&self, binding: &RowBinding) -> Result<(DataKey, Wrapped), KmsError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_ref)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context(binding)))
            .send()
            .await
            .map_err(|e| map_err(e, "kms:GenerateDataKey"))?;
        let wrapped = self.wrapped(
            out.key_id(),
            out.ciphertext_blob(),
            out.request_id(),
            "GenerateDataKey",
        )?;
        let mut plain = out
            .plaintext
            .ok_or_else(|| KmsError::Other("GenerateDataKey returned no plaintext".into()))?
            .into_inner();
        let dek = DataKey::from_slice(&plain).map_err(|_| KmsError::Rejected);
        plain.zeroize();
        Ok((dek?, wrapped))
    }

    /// A wrapped key as an answer describes it: the key that wrapped it (its
    /// ARN), the ciphertext blob and the request id.
    fn wrapped(
        &self,
        arn: Option<&str>,
        blob: Option<&Blob>,
        request_id: Option<&str>,
        action: &str,
    ) -> Result<Wrapped, KmsError> {
        Ok(Wrapped {
            kek_id: arn.map_or_else(|| self.kek_id.clone(), |arn| format!("aws:{arn}")),
            request_id: request_id.map(str::to_owned),
            wrapped: blob
                .ok_or_else(|| KmsError::Other(format!("{action} returned no ciphertext")))?
                .as_ref()
                .to_vec(),
        })
    }

    /// Learns the key's ARN (the configured reference may be an alias), so
    /// rows name the key itself.
    pub fn set_arn(&mut self, kek_id: &str) {
        self.kek_id = kek_id.to_owned();
    }
}

impl KekBackend for AwsKms {
    fn backend(&self) -> &'static str {
        "aws-kms"
    }

    fn kek_id(&self) -> &str {
        &self.kek_id
    }

    fn owns(&self, kek_id: &str) -> bool {
        kek_id.starts_with("aws:")
    }

    async fn wrap(&self, dek: &DataKey, binding: &RowBinding) -> Result<Wrapped, KmsError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_ref)
            .plaintext(Blob::new(dek.expose()))
            .set_encryption_context(Some(context(binding)))
            .send()
            .await
            .map_err(|e| map_err(e, "kms:Encrypt"))?;
        self.wrapped(
            out.key_id(),
            out.ciphertext_blob(),
            out.request_id(),
            "Encrypt",
        )
    }

    async fn unwrap(
        &self,
        kek_id: &str,
        wrapped: &[u8],
        binding: &RowBinding,
    ) -> Result<Unwrapped, KmsError> {
        let key = kek_id
            .strip_prefix("aws:")
            .ok_or_else(|| KmsError::NotMine(kek_id.to_owned()))?;
        let out = self
            .client
            .decrypt()
            .key_id(key)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context(binding)))
            .send()
            .await
            .map_err(|e| map_err(e, "kms:Decrypt"))?;
        let request_id = out.request_id().map(str::to_owned);
        let mut plain = out
            .plaintext
            .ok_or_else(|| KmsError::Other("Decrypt returned no plaintext".into()))?
            .into_inner();
        let dek = DataKey::from_slice(&plain).map_err(|_| KmsError::Rejected);
        plain.zeroize();
        Ok(Unwrapped {
            dek: dek?,
            request_id,
        })
    }
}

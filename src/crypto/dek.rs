//! Envelopes whose data key is wrapped somewhere else (a KMS).
//!
//! Crypto stays pure: it seals and opens the payload under a data key it is
//! handed and says what binds that key to its row. Wrapping the key is the job
//! of a KEK backend outside this module (`src/kms`), which sends the binding as
//! the KMS's associated data / encryption context, so a wrapped key copied onto
//! another row fails inside the KMS too.

use super::{
    aead_key, dek_aad, encode_aad, open_blob, payload_aad, random_key, seal_blob, Context,
    CryptoError, Envelope, Kek, Keyring, FORMAT_VERSION, KEY_LEN,
};
use std::fmt;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A plaintext 256-bit data key; zeroed on drop, never printed.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, CryptoError> {
        random_key().map(Self)
    }

    /// Takes a key a KMS returned; anything but 32 bytes is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::Authentication);
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The key bytes, to hand to a KMS for wrapping.
    pub fn expose(&self) -> &[u8] {
        &self.0[..]
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// What a wrapped data key is bound to: format version, secret id, provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowBinding {
    pub format_version: i16,
    pub secret_id: Uuid,
    pub provider: String,
}

impl RowBinding {
    /// The binding of a row about to be written in the current format.
    pub fn new(ctx: Context<'_>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            secret_id: ctx.secret_id,
            provider: ctx.provider.to_owned(),
        }
    }

    /// The binding of a stored row.
    pub fn of(ctx: Context<'_>, format_version: i16) -> Self {
        Self {
            format_version,
            ..Self::new(ctx)
        }
    }

    /// Canonical bytes for a KMS's AEAD associated data (Vault Transit).
    pub fn associated_data(&self) -> Vec<u8> {
        encode_aad(&[
            &self.format_version.to_be_bytes(),
            b"kms-dek",
            self.secret_id.as_bytes(),
            self.provider.as_bytes(),
        ])
    }

    /// Key/value pairs for an encryption context (AWS KMS), which is a map
    /// of strings the KMS logs with each call and key policies can match.
    pub fn context_pairs(&self) -> [(&'static str, String); 3] {
        [
            ("keydrop:format", self.format_version.to_string()),
            ("keydrop:secret", self.secret_id.to_string()),
            ("keydrop:provider", self.provider.clone()),
        ]
    }
}

/// Seals the credential under `dek` for the row in `ctx` (current format).
pub fn seal_payload(
    dek: &DataKey,
    ctx: Context<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal_blob(
        &aead_key(dek.expose()),
        &payload_aad(FORMAT_VERSION, ctx),
        plaintext,
    )
}

/// Opens an envelope's payload with a data key unwrapped elsewhere.
pub fn open_payload(
    dek: &DataKey,
    ctx: Context<'_>,
    envelope: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if envelope.format_version != FORMAT_VERSION {
        return Err(CryptoError::UnsupportedVersion(envelope.format_version));
    }
    open_blob(
        &aead_key(dek.expose()),
        &payload_aad(envelope.format_version, ctx),
        &envelope.payload,
    )
}

/// Unwraps a data key wrapped by the local ring (for moving it into a KMS).
pub fn unwrap_local(
    ring: &Keyring,
    secret_id: Uuid,
    envelope: &Envelope,
) -> Result<DataKey, CryptoError> {
    let dek = super::unwrap_dek(ring, secret_id, envelope)?;
    DataKey::from_slice(&dek)
}

/// Wraps a data key under a local KEK (a KMS row moved back to the ring).
pub fn wrap_local(
    kek: &Kek,
    secret_id: Uuid,
    format_version: i16,
    dek: &DataKey,
) -> Result<Vec<u8>, CryptoError> {
    seal_blob(
        &kek.key,
        &dek_aad(format_version, secret_id, kek.id().as_str()),
        dek.expose(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KekId;

    #[test]
    fn a_payload_sealed_under_a_given_key_opens_only_with_that_key_and_row() {
        let id = Uuid::new_v4();
        let ctx = Context {
            secret_id: id,
            provider: "lever",
        };
        let dek = DataKey::generate().unwrap();
        let env = Envelope {
            format_version: FORMAT_VERSION,
            kek_id: "vault:transit/keydrop".into(),
            payload: seal_payload(&dek, ctx, b"{}").unwrap(),
            wrapped_dek: Vec::new(),
        };
        assert_eq!(&open_payload(&dek, ctx, &env).unwrap()[..], b"{}");
        let other = DataKey::generate().unwrap();
        assert!(open_payload(&other, ctx, &env).is_err());
        let moved = Context {
            secret_id: Uuid::new_v4(),
            ..ctx
        };
        assert!(open_payload(&dek, moved, &env).is_err());
    }

    #[test]
    fn bindings_of_different_rows_differ_and_never_print_the_key() {
        let a = RowBinding::new(Context {
            secret_id: Uuid::nil(),
            provider: "ashby",
        });
        let mut b = a.clone();
        b.provider = "lever".into();
        assert_ne!(a.associated_data(), b.associated_data());
        assert_eq!(a.context_pairs()[1].1, Uuid::nil().to_string());
        assert_eq!(
            format!("{:?}", DataKey::generate().unwrap()),
            "DataKey([redacted])"
        );
        assert!(DataKey::from_slice(&[0; 31]).is_err());
    }

    #[test]
    fn a_key_moved_between_the_ring_and_a_kms_keeps_its_bytes() {
        let kek = Kek::new(KekId::parse("k1").unwrap(), &[7; 32]).unwrap();
        let ring = Keyring::new(vec![
            Kek::new(KekId::parse("k1").unwrap(), &[7; 32]).unwrap()
        ])
        .unwrap();
        let id = Uuid::new_v4();
        let dek = DataKey::generate().unwrap();
        let env = Envelope {
            format_version: FORMAT_VERSION,
            kek_id: "k1".into(),
            payload: Vec::new(),
            wrapped_dek: wrap_local(&kek, id, FORMAT_VERSION, &dek).unwrap(),
        };
        assert_eq!(
            unwrap_local(&ring, id, &env).unwrap().expose(),
            dek.expose()
        );
        assert!(unwrap_local(&ring, Uuid::new_v4(), &env).is_err());
    }
}

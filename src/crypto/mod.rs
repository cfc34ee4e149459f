//! Envelope encryption, with no I/O.
//!
//! Every secret gets a fresh 256-bit data key (DEK). The credential is sealed
//! with AES-256-GCM under the DEK; the DEK is sealed (wrapped) under the active
//! key-encryption key (KEK). Both blobs are `nonce ‖ ciphertext ‖ tag` and carry
//! associated data that binds them to their row, so a blob copied onto another
//! row fails to open instead of revealing someone else's secret.

mod dek;
pub mod fingerprint;
mod keyring;

pub use dek::{open_payload, seal_payload, unwrap_local, wrap_local, DataKey, RowBinding};
pub use fingerprint::{Fingerprint, FingerprintKind, Fingerprinter};
pub use keyring::{generate as generate_kek, Kek, KekId, Keyring, KeyringError};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Version of the blob layout and AAD encoding written by [`seal`].
pub const FORMAT_VERSION: i16 = 1;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Why sealing or opening failed. Never carries key or plaintext bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the system random number generator failed")]
    Rng,
    #[error("no KEK with id {0:?} is configured")]
    UnknownKek(String),
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(i16),
    #[error("the blob is too short to be an envelope")]
    Truncated,
    #[error("authentication failed: wrong key, or the blob or its row was altered")]
    Authentication,
}

/// What a blob is bound to: the row it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub secret_id: Uuid,
    pub provider: &'a str,
}

/// The stored form of one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub format_version: i16,
    pub kek_id: String,
    /// `nonce ‖ ciphertext ‖ tag` of the credential under the DEK.
    pub payload: Vec<u8>,
    /// `nonce ‖ ciphertext ‖ tag` of the DEK under the KEK.
    pub wrapped_dek: Vec<u8>,
}

/// Encrypts `plaintext` for the row described by `ctx` under a fresh DEK.
pub fn seal(ring: &Keyring, ctx: Context<'_>, plaintext: &[u8]) -> Result<Envelope, CryptoError> {
    let dek = random_key()?;
    let payload = seal_blob(
        &aead_key(&dek[..]),
        &payload_aad(FORMAT_VERSION, ctx),
        plaintext,
    )?;
    let kek = ring.active();
    let wrapped_dek = seal_blob(
        &kek.key,
        &dek_aad(FORMAT_VERSION, ctx.secret_id, kek.id().as_str()),
        &dek[..],
    )?;
    Ok(Envelope {
        format_version: FORMAT_VERSION,
        kek_id: kek.id().to_string(),
        payload,
        wrapped_dek,
    })
}

/// Decrypts an envelope; fails unless it was sealed for exactly this row.
pub fn open(
    ring: &Keyring,
    ctx: Context<'_>,
    envelope: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let dek = unwrap_dek(ring, ctx.secret_id, envelope)?;
    open_blob(
        &aead_key(&dek),
        &payload_aad(envelope.format_version, ctx),
        &envelope.payload,
    )
}

/// Rewraps the DEK under the active KEK; the payload is untouched.
pub fn rewrap(
    ring: &Keyring,
    secret_id: Uuid,
    envelope: &Envelope,
) -> Result<Envelope, CryptoError> {
    let dek = unwrap_dek(ring, secret_id, envelope)?;
    let kek = ring.active();
    let wrapped_dek = seal_blob(
        &kek.key,
        &dek_aad(envelope.format_version, secret_id, kek.id().as_str()),
        &dek[..],
    )?;
    Ok(Envelope {
        kek_id: kek.id().to_string(),
        wrapped_dek,
        ..envelope.clone()
    })
}

/// True when the ring's key for `envelope.kek_id` unwraps this row's data key
/// (the payload is neither read nor needed). Proves, before a KEK id that lost
/// its canary is adopted, that the configured key is the one the row was
/// written with.
pub fn unwraps_dek(ring: &Keyring, secret_id: Uuid, envelope: &Envelope) -> bool {
    unwrap_dek(ring, secret_id, envelope).is_ok()
}

/// A small sealed value proving which key a KEK id had when it was first seen.
pub fn make_canary(kek: &Kek) -> Result<Vec<u8>, CryptoError> {
    seal_blob(&kek.key, &canary_aad(kek.id()), CANARY)
}

/// True when `canary` was made by [`make_canary`] with this very key.
pub fn check_canary(kek: &Kek, canary: &[u8]) -> bool {
    open_blob(&kek.key, &canary_aad(kek.id()), canary).is_ok_and(|p| p[..] == *CANARY)
}

const CANARY: &[u8] = b"keydrop kek canary";

fn unwrap_dek(
    ring: &Keyring,
    secret_id: Uuid,
    envelope: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if envelope.format_version != FORMAT_VERSION {
        return Err(CryptoError::UnsupportedVersion(envelope.format_version));
    }
    let kek = ring
        .get(&envelope.kek_id)
        .ok_or_else(|| CryptoError::UnknownKek(envelope.kek_id.clone()))?;
    let dek = open_blob(
        &kek.key,
        &dek_aad(envelope.format_version, secret_id, &envelope.kek_id),
        &envelope.wrapped_dek,
    )?;
    if dek.len() != KEY_LEN {
        return Err(CryptoError::Authentication);
    }
    Ok(dek)
}

/// 32 fresh random bytes from the operating system.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new()
        .fill(&mut key[..])
        .map_err(|_| CryptoError::Rng)?;
    Ok(key)
}

fn aead_key(material: &[u8]) -> LessSafeKey {
    // Only ever called with KEY_LEN bytes, which AES-256-GCM always accepts.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, material).expect("32-byte AES-256 key"))
}

/// Seals with a random nonce: `nonce ‖ ciphertext ‖ tag`.
fn seal_blob(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CryptoError::Rng)?;
    let mut blob = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut blob[NONCE_LEN..],
        )
        .map_err(|_| CryptoError::Authentication)?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Opens a `nonce ‖ ciphertext ‖ tag` blob.
fn open_blob(
    key: &LessSafeKey,
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Truncated);
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Truncated)?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf[..])
        .map_err(|_| CryptoError::Authentication)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Canonical AAD: each part as a 4-byte big-endian length, then its bytes.
fn encode_aad(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn payload_aad(version: i16, ctx: Context<'_>) -> Vec<u8> {
    encode_aad(&[
        &version.to_be_bytes(),
        b"payload",
        ctx.secret_id.as_bytes(),
        ctx.provider.as_bytes(),
    ])
}

fn dek_aad(version: i16, secret_id: Uuid, kek_id: &str) -> Vec<u8> {
    encode_aad(&[
        &version.to_be_bytes(),
        b"dek",
        secret_id.as_bytes(),
        kek_id.as_bytes(),
    ])
}

fn canary_aad(kek_id: &KekId) -> Vec<u8> {
    encode_aad(&[
        &FORMAT_VERSION.to_be_bytes(),
        b"canary",
        kek_id.as_str().as_bytes(),
    ])
}

#[cfg(test)]
mod tests;

//! Fingerprints: how staff and the customer admin recognise a credential
//! without seeing it.
//!
//! The familiar "ends in …3WK3" is kept only where the tail is a small part of a
//! long value: at most 4 characters and at most a fifth of the value, so from
//! [`TAIL_MIN_CHARS`] characters up. Shorter values (passwords, PINs, Wi-Fi keys)
//! get a keyed fingerprint instead: 25 bits of HMAC-SHA256 under a fingerprint
//! key that is never stored in clear, so a database dump cannot be used to test
//! guesses offline. The same value under the same key always gives the same
//! fingerprint, so staff can still compare two submissions.
//!
//! The key itself is random, created once per database and stored wrapped under
//! the active KEK (see `store::fingerprint_keys`), exactly like a data key: it is
//! rewrapped when the KEK rotates, so fingerprints stay stable across rotations,
//! and a KMS can unwrap it like any data key.

use super::{encode_aad, open_blob, random_key, seal_blob, CryptoError, Keyring, FORMAT_VERSION};
use ring::hmac;
use zeroize::Zeroizing;

/// Values of at least this many characters may show their last four.
pub const TAIL_MIN_CHARS: usize = 20;
/// How many trailing characters a tail fingerprint shows.
const TAIL_CHARS: usize = 4;

/// Which kind of fingerprint a stored value is (the `fingerprint_kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintKind {
    /// The last four characters of a value of at least [`TAIL_MIN_CHARS`].
    Tail,
    /// A keyed hash, e.g. `K7-2QX`.
    Keyed,
    /// Nothing to fingerprint (the field was absent).
    None,
    /// Written before fingerprints were keyed: the last four characters of a
    /// value of any length. `keydrop fingerprints refresh` replaces these.
    Legacy,
}

impl FingerprintKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tail => "tail",
            Self::Keyed => "keyed",
            Self::None => "none",
            Self::Legacy => "legacy",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "tail" => Self::Tail,
            "keyed" => Self::Keyed,
            "none" => Self::None,
            _ => Self::Legacy,
        }
    }

    /// How a page words a fingerprint of this kind: "ends in …3WK3" or
    /// "fingerprint K7-2QX".
    pub fn describe(self, text: &str) -> String {
        match self {
            Self::Tail | Self::Legacy => format!("ends in …{text}"),
            Self::Keyed => format!("fingerprint {text}"),
            Self::None => "none".to_owned(),
        }
    }
}

/// A computed fingerprint: its kind and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub kind: FingerprintKind,
    pub text: String,
}

/// The fingerprint key, unwrapped, with the generation it is stored under.
pub struct Fingerprinter {
    generation: i32,
    key: hmac::Key,
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("generation", &self.generation)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A fingerprint key sealed under a KEK, as stored.
#[derive(Debug, Clone)]
pub struct WrappedFingerprintKey {
    pub kek_id: String,
    pub wrapped: Vec<u8>,
    pub format_version: i16,
}

/// Crockford's base32 alphabet: no I, L, O or U, so a fingerprint read aloud
/// or retyped is not misread. Five characters are a few lines; a crate for
/// 25 bits would be more code to read than this.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl Fingerprinter {
    /// The generation of the stored key this fingerprinter uses.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The fingerprint of `value` under the rule above.
    pub fn fingerprint(&self, value: &str) -> Fingerprint {
        let chars = value.chars().count();
        if chars >= TAIL_MIN_CHARS {
            let start = value
                .char_indices()
                .rev()
                .nth(TAIL_CHARS - 1)
                .map_or(0, |(i, _)| i);
            return Fingerprint {
                kind: FingerprintKind::Tail,
                text: value[start..].to_owned(),
            };
        }
        let tag = hmac::sign(&self.key, value.as_bytes());
        let b = tag.as_ref();
        let bits = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) >> 7; // 25 bits
        let c = |i: u32| char::from(ALPHABET[((bits >> (5 * (4 - i))) & 31) as usize]);
        Fingerprint {
            kind: FingerprintKind::Keyed,
            text: format!("{}{}-{}{}{}", c(0), c(1), c(2), c(3), c(4)),
        }
    }

    /// Makes a new random fingerprint key and seals it under the active KEK.
    pub fn generate(
        ring: &Keyring,
    ) -> Result<(Zeroizing<[u8; 32]>, WrappedFingerprintKey), CryptoError> {
        let key = random_key()?;
        let wrapped = wrap(ring, &key[..])?;
        Ok((key, wrapped))
    }

    /// Opens a stored fingerprint key of `generation`.
    pub fn open_stored(
        ring: &Keyring,
        generation: i32,
        stored: &WrappedFingerprintKey,
    ) -> Result<Self, CryptoError> {
        let key = open(ring, stored)?;
        Ok(Self::from_key(generation, &key))
    }

    /// A fingerprinter from raw key material.
    pub fn from_key(generation: i32, key: &[u8]) -> Self {
        Self {
            generation,
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }
}

/// Seals a fingerprint key under the active KEK.
pub fn wrap(ring: &Keyring, key: &[u8]) -> Result<WrappedFingerprintKey, CryptoError> {
    let kek = ring.active();
    let wrapped = seal_blob(&kek.key, &aad(FORMAT_VERSION, kek.id().as_str()), key)?;
    Ok(WrappedFingerprintKey {
        kek_id: kek.id().to_string(),
        wrapped,
        format_version: FORMAT_VERSION,
    })
}

/// Opens a stored fingerprint key (for rewrapping it under a new KEK).
pub fn open(
    ring: &Keyring,
    stored: &WrappedFingerprintKey,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if stored.format_version != FORMAT_VERSION {
        return Err(CryptoError::UnsupportedVersion(stored.format_version));
    }
    let kek = ring
        .get(&stored.kek_id)
        .ok_or_else(|| CryptoError::UnknownKek(stored.kek_id.clone()))?;
    let key = open_blob(
        &kek.key,
        &aad(stored.format_version, &stored.kek_id),
        &stored.wrapped,
    )?;
    if key.len() != 32 {
        return Err(CryptoError::Authentication);
    }
    Ok(key)
}

fn aad(version: i16, kek_id: &str) -> Vec<u8> {
    encode_aad(&[
        &version.to_be_bytes(),
        b"fingerprint key",
        kek_id.as_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::STANDARD, Engine as _};

    fn fp() -> Fingerprinter {
        Fingerprinter::from_key(1, &[7u8; 32])
    }

    #[test]
    fn long_values_show_their_last_four_characters() {
        let f = fp().fingerprint("abcdefghijklmnop3WK3");
        assert_eq!(
            f,
            Fingerprint {
                kind: FingerprintKind::Tail,
                text: "3WK3".into()
            }
        );
        assert_eq!(FingerprintKind::Tail.describe(&f.text), "ends in …3WK3");
        assert_eq!(fp().fingerprint(&"é".repeat(24)).text, "éééé");
    }

    #[test]
    fn short_values_get_a_keyed_fingerprint_that_contains_none_of_them() {
        for v in ["Zq9!", "hunter2hunter", "abcdefghijklmnopqrs"] {
            let f = fp().fingerprint(v);
            assert_eq!(f.kind, FingerprintKind::Keyed, "{v}");
            assert_eq!(f.text.len(), 6);
            assert_eq!(&f.text[2..3], "-");
            assert!(!f.text.contains(&v[v.len() - 4..]));
            // Same value, same key: same fingerprint. Another key: (almost surely) another.
            assert_eq!(fp().fingerprint(v), f);
            assert_ne!(Fingerprinter::from_key(1, &[8u8; 32]).fingerprint(v), f);
        }
        assert_eq!(
            FingerprintKind::Keyed.describe("K7-2QX"),
            "fingerprint K7-2QX"
        );
    }

    #[test]
    fn a_wrapped_key_opens_only_under_its_kek_and_survives_a_rewrap() {
        let a = format!("a={}", STANDARD.encode([1u8; 32]));
        let b = format!("b={}", STANDARD.encode([2u8; 32]));
        let ring_a = Keyring::parse(&a).unwrap();
        let (key, stored) = Fingerprinter::generate(&ring_a).unwrap();
        let opened = Fingerprinter::open_stored(&ring_a, 3, &stored).unwrap();
        assert_eq!(opened.generation(), 3);
        let ring_ba = Keyring::parse(&format!("{b},{a}")).unwrap();
        let rewrapped = wrap(&ring_ba, &open(&ring_ba, &stored).unwrap()).unwrap();
        assert_eq!(rewrapped.kek_id, "b");
        let again =
            Fingerprinter::open_stored(&Keyring::parse(&b).unwrap(), 3, &rewrapped).unwrap();
        assert_eq!(
            again.fingerprint("pin1"),
            Fingerprinter::from_key(3, &key[..]).fingerprint("pin1")
        );
        assert!(Fingerprinter::open_stored(&Keyring::parse(&b).unwrap(), 3, &stored).is_err());
        let mut moved = rewrapped.clone();
        moved.kek_id = "a".into();
        assert!(Fingerprinter::open_stored(&ring_ba, 3, &moved).is_err());
        assert!(!format!("{opened:?}").contains("07"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A tail is shown only for values of 20 characters or more, and then
        /// it is at most four trailing characters; anything shorter is keyed.
        #[test]
        fn a_fingerprint_never_shows_more_than_the_rule_allows(v in any::<String>()) {
            let f = Fingerprinter::from_key(1, &[9u8; 32]).fingerprint(&v);
            let n = v.chars().count();
            if f.kind == FingerprintKind::Tail {
                prop_assert!(n >= TAIL_MIN_CHARS);
                prop_assert!(v.ends_with(&f.text));
                prop_assert_eq!(f.text.chars().count(), 4);
            } else {
                prop_assert!(n < TAIL_MIN_CHARS);
                prop_assert_eq!(f.kind, FingerprintKind::Keyed);
                prop_assert!(f.text.bytes().all(|b| ALPHABET.contains(&b) || b == b'-'));
            }
        }
    }
}

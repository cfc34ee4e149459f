//! The key-encryption-key ring: parsing `KEYDROP_KEKS` / `KEYDROP_KEKS_FILE`.
//!
//! The first entry is the active KEK, used to wrap new data keys; the others
//! only unwrap. Key material never appears in errors or `Debug` output.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::{hkdf, hmac};
use std::fmt;
use zeroize::Zeroizing;

/// Why a KEK ring could not be parsed. Messages name the entry, never the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    #[error("the KEK ring is empty: set KEYDROP_KEKS or KEYDROP_KEKS_FILE (make a key with `keydrop keygen`)")]
    Empty,
    #[error("KEK {0} is not of the form id=base64key")]
    MissingEquals(String),
    #[error("KEK {0} has an invalid id: use 1-64 characters from A-Z a-z 0-9 . _ -")]
    BadId(String),
    #[error("KEK {0} is empty: remove the trailing or doubled comma")]
    EmptyEntry(String),
    #[error("KEK {0:?} is not valid base64")]
    BadBase64(String),
    #[error("KEK {id:?} is {len} bytes long; a KEK must be exactly 32 bytes")]
    BadLength { id: String, len: usize },
    #[error("KEK id {0:?} appears more than once")]
    Duplicate(String),
}

/// A validated KEK identifier (stored beside every wrapped data key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KekId(String);

impl KekId {
    /// Accepts 1–64 characters of `[A-Za-z0-9._-]`.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One key-encryption key. Holds the key only inside ring's opaque key type.
pub struct Kek {
    id: KekId,
    pub(super) key: LessSafeKey,
    /// HKDF pseudo-random key for deriving purpose-bound subkeys (e.g. CSRF).
    prk: hkdf::Prk,
}

impl Kek {
    /// Builds a KEK from exactly 32 bytes of key material.
    pub fn new(id: KekId, material: &[u8]) -> Result<Self, KeyringError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, material).map_err(|_| KeyringError::BadLength {
                id: id.0.clone(),
                len: material.len(),
            })?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"keydrop kek subkeys v1").extract(material);
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
            prk,
        })
    }

    /// Derives an HMAC-SHA256 key for one purpose; distinct `purpose`s give unrelated keys.
    pub fn derive_hmac_key(&self, purpose: &str) -> hmac::Key {
        let info = [purpose.as_bytes()];
        let okm = self
            .prk
            .expand(&info, hmac::HMAC_SHA256)
            .expect("HMAC-SHA256 key length is within HKDF limits");
        hmac::Key::from(okm)
    }

    pub fn id(&self) -> &KekId {
        &self.id
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The ordered set of KEKs; the first is active.
#[derive(Debug)]
pub struct Keyring {
    keks: Vec<Kek>,
}

impl Keyring {
    /// Builds a ring from KEKs, the first being active.
    pub fn new(keks: Vec<Kek>) -> Result<Self, KeyringError> {
        if keks.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (i, k) in keks.iter().enumerate() {
            if keks[..i].iter().any(|o| o.id == k.id) {
                return Err(KeyringError::Duplicate(k.id.0.clone()));
            }
        }
        Ok(Self { keks })
    }

    /// Parses `id=base64key` entries separated by commas or newlines.
    /// Blank lines and `#` comments (whole lines or after an entry) are
    /// ignored, as is a UTF-8 byte-order mark. Errors name the entry (`entry
    /// 2` in a one-line value, `line 4` in a file), never the key.
    pub fn parse(spec: &str) -> Result<Self, KeyringError> {
        let spec = spec.strip_prefix('\u{feff}').unwrap_or(spec);
        let multi_line = spec.trim().contains('\n');
        let mut keks = Vec::new();
        let mut entry_no = 0;
        for (line_no, line) in spec.lines().enumerate() {
            // Neither ids nor base64 contain '#', so it always starts a comment.
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let parts: Vec<&str> = line.split(',').map(str::trim).collect();
            if parts.iter().all(|p| p.is_empty()) {
                continue;
            }
            for entry in parts {
                entry_no += 1;
                let at = if multi_line {
                    format!("line {}", line_no + 1)
                } else {
                    format!("entry {entry_no}")
                };
                if entry.is_empty() {
                    return Err(KeyringError::EmptyEntry(at));
                }
                let (id, key) = entry
                    .split_once('=')
                    .ok_or_else(|| KeyringError::MissingEquals(at.clone()))?;
                let id = KekId::parse(id.trim()).ok_or(KeyringError::BadId(at))?;
                let material = Zeroizing::new(
                    STANDARD
                        .decode(key.trim())
                        .map_err(|_| KeyringError::BadBase64(id.0.clone()))?,
                );
                keks.push(Kek::new(id, &material)?);
            }
        }
        Self::new(keks)
    }

    /// The KEK that wraps new data keys.
    pub fn active(&self) -> &Kek {
        &self.keks[0]
    }

    /// Finds a KEK by id.
    pub fn get(&self, id: &str) -> Option<&Kek> {
        self.keks.iter().find(|k| k.id.0 == id)
    }

    /// Every KEK, active first.
    pub fn iter(&self) -> impl Iterator<Item = &Kek> {
        self.keks.iter()
    }
}

/// Makes a fresh random KEK and returns it as an `id=base64key` line.
pub fn generate(id: &KekId) -> Result<Zeroizing<String>, super::CryptoError> {
    let material = super::random_key()?;
    let mut line = Zeroizing::new(format!("{id}="));
    STANDARD.encode_string(&material[..], &mut line);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn the_first_entry_is_active_and_others_are_found_by_id() {
        let ring = Keyring::parse(&format!("new={}, old={}", key(1), key(2))).unwrap();
        assert_eq!(ring.active().id().as_str(), "new");
        assert!(ring.get("old").is_some());
        assert!(ring.get("missing").is_none());
    }

    #[test]
    fn a_file_with_one_entry_per_line_and_comments_parses() {
        let ring = Keyring::parse(&format!("# keys\nk1={}\n\nk2={}\n", key(1), key(2))).unwrap();
        assert_eq!(ring.iter().count(), 2);
    }

    #[test]
    fn malformed_rings_are_rejected_with_a_message_naming_the_problem() {
        assert_eq!(Keyring::parse("").unwrap_err(), KeyringError::Empty);
        assert_eq!(Keyring::parse(" , ").unwrap_err(), KeyringError::Empty);
        assert_eq!(
            Keyring::parse("nokey").unwrap_err(),
            KeyringError::MissingEquals("entry 1".into())
        );
        assert_eq!(
            Keyring::parse(&format!("a b={}", key(1))).unwrap_err(),
            KeyringError::BadId("entry 1".into())
        );
        assert_eq!(
            Keyring::parse("k=!!!").unwrap_err(),
            KeyringError::BadBase64("k".into())
        );
        let short = STANDARD.encode([7u8; 16]);
        assert_eq!(
            Keyring::parse(&format!("k={short}")).unwrap_err(),
            KeyringError::BadLength {
                id: "k".into(),
                len: 16
            }
        );
        assert_eq!(
            Keyring::parse(&format!("k={},k={}", key(1), key(2))).unwrap_err(),
            KeyringError::Duplicate("k".into())
        );
    }

    #[test]
    fn files_are_read_as_people_write_them_and_errors_name_the_line() {
        let file = format!(
            "\u{feff}# production ring\n\nnew={} # added 2027-01\nold={}\n",
            key(1),
            key(2)
        );
        let ring = Keyring::parse(&file).unwrap();
        assert_eq!(ring.active().id().as_str(), "new");
        assert!(ring.get("old").is_some());
        assert_eq!(
            Keyring::parse(&format!("# a\n\nk={}\nnokey\n", key(1))).unwrap_err(),
            KeyringError::MissingEquals("line 4".into())
        );
        assert_eq!(
            Keyring::parse(&format!("k={},", key(1))).unwrap_err(),
            KeyringError::EmptyEntry("entry 2".into())
        );
        assert_eq!(
            Keyring::parse(&format!("a={},,b={}", key(1), key(2))).unwrap_err(),
            KeyringError::EmptyEntry("entry 2".into())
        );
    }

    #[test]
    fn errors_and_debug_output_never_contain_key_material() {
        let secret = key(0xAB);
        let ring = Keyring::parse(&format!("k={secret}")).unwrap();
        assert!(!format!("{ring:?}").contains(&secret));
        let bad = STANDARD.encode([0xCDu8; 31]);
        let err = Keyring::parse(&format!("k={bad}")).unwrap_err().to_string();
        assert!(!err.contains(&bad), "{err}");
    }

    #[test]
    fn generated_keys_parse_back_into_a_ring() {
        let line = generate(&KekId::parse("fresh").unwrap()).unwrap();
        let ring = Keyring::parse(&line).unwrap();
        assert_eq!(ring.active().id().as_str(), "fresh");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._-]{1,64}"
    }

    proptest! {
        #[test]
        fn any_input_parses_or_fails_without_panicking(s in any::<String>()) {
            let _ = Keyring::parse(&s);
        }

        /// Distinct ids with 32-byte keys, separated by commas or newlines with
        /// stray spaces and comment lines, always make a ring: first one active.
        #[test]
        fn well_formed_rings_parse_in_order(
            keys in prop::collection::btree_map(id(), any::<[u8; 32]>(), 1..6),
            order in any::<prop::sample::Index>(),
            sep in prop::sample::select(vec![",", "\n", " , ", "\n# old keys\n", "\r\n"]),
        ) {
            let mut entries: Vec<(String, [u8; 32])> = keys.into_iter().collect();
            let first = order.index(entries.len());
            entries.swap(0, first);
            let spec: Vec<String> = entries.iter().map(|(i, k)| format!(" {i} = {} ", STANDARD.encode(k))).collect();
            let ring = Keyring::parse(&spec.join(sep)).unwrap();
            prop_assert_eq!(ring.active().id().as_str(), entries[0].0.as_str());
            prop_assert_eq!(ring.iter().count(), entries.len());
            for (i, _) in &entries {
                prop_assert!(ring.get(i).is_some());
            }
        }

        /// A key of any other length is refused, and the message never
        /// contains the key (only the id and the length).
        #[test]
        fn keys_of_the_wrong_length_are_refused_without_echoing_them(
            kid in id(),
            key in prop::collection::vec(any::<u8>(), 0..80).prop_filter("not 32", |k| k.len() != 32),
        ) {
            let b64 = STANDARD.encode(&key);
            let err = Keyring::parse(&format!("{kid}={b64}")).unwrap_err();
            prop_assert_eq!(&err, &KeyringError::BadLength { id: kid.clone(), len: key.len() });
            if b64.len() >= 8 {
                prop_assert!(!err.to_string().contains(&b64));
            }
        }

        #[test]
        fn a_repeated_id_is_refused(kid in id(), a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let spec = format!("{kid}={},{kid}={}", STANDARD.encode(a), STANDARD.encode(b));
            prop_assert_eq!(Keyring::parse(&spec).unwrap_err(), KeyringError::Duplicate(kid));
        }

        #[test]
        fn kek_ids_accept_exactly_the_documented_alphabet(s in any::<String>()) {
            let ok = (1..=64).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
            prop_assert_eq!(KekId::parse(&s).is_some(), ok);
        }
    }
}

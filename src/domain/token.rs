//! Bearer secrets: drop-link tokens and staff tokens, stored only as hashes.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// SHA-256 of a token: the only form a token is stored in.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

fn random_token(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    // The OS RNG failing is unrecoverable for a security product.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random number generator");
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    zeroize::Zeroize::zeroize(&mut bytes);
    SecretString::from(token)
}

/// Checks the shape of a token: prefix plus 43 base64url characters.
fn well_formed(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// What a bearer token is for; fixes its prefix (which also lets secret
/// scanners recognise a leaked token).
pub trait TokenKind {
    const PREFIX: &'static str;
    const NAME: &'static str;
}

/// Marker for drop-link tokens (`kdl_…`).
#[derive(Debug)]
pub enum Link {}
/// Marker for staff tokens (`kds_…`).
#[derive(Debug)]
pub enum Staff {}

/// Marker for console session ids (`kdc_…`), held in the session cookie.
#[derive(Debug)]
pub enum Session {}
/// Marker for the one-time values of a console login: the OIDC `state` and
/// the browser-binding cookie (`kdo_…`).
#[derive(Debug)]
pub enum Login {}

impl TokenKind for Session {
    const PREFIX: &'static str = "kdc_";
    const NAME: &'static str = "SessionSecret";
}

impl TokenKind for Login {
    const PREFIX: &'static str = "kdo_";
    const NAME: &'static str = "LoginSecret";
}

impl TokenKind for Link {
    const PREFIX: &'static str = "kdl_";
    const NAME: &'static str = "DropToken";
}

impl TokenKind for Staff {
    const PREFIX: &'static str = "kds_";
    const NAME: &'static str = "StaffSecret";
}

/// A bearer token: a prefix and 256 random bits, base64url.
pub struct Token<K: TokenKind>(SecretString, std::marker::PhantomData<K>);

/// The secret part of a drop link.
pub type DropToken = Token<Link>;
/// A staff bearer token.
pub type StaffSecret = Token<Staff>;
/// A console session id, as the browser holds it.
pub type SessionSecret = Token<Session>;
/// A one-time login value (OIDC `state`, browser binding).
pub type LoginSecret = Token<Login>;

impl<K: TokenKind> Token<K> {
    pub fn generate() -> Self {
        Self(random_token(K::PREFIX), std::marker::PhantomData)
    }

    /// Accepts only well-formed tokens, so junk never reaches the database.
    pub fn parse(s: &str) -> Option<Self> {
        well_formed(s, K::PREFIX)
            .then(|| Self(SecretString::from(s.to_owned()), std::marker::PhantomData))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose_secret())
    }

    /// The raw token: to build a link URL, or to print a staff token once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl<K: TokenKind> fmt::Debug for Token<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}([redacted])", K::NAME)
    }
}

/// Joins the public base URL and a drop-link token: the drop link.
pub fn drop_url(base: &url::Url, token: &str) -> String {
    format!("{}/d/{token}", base.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_stably() {
        let t = DropToken::generate();
        let again = DropToken::parse(t.expose()).unwrap();
        assert_eq!(t.hash(), again.hash());
        assert_ne!(t.hash(), DropToken::generate().hash());
        assert!(StaffSecret::parse(StaffSecret::generate().expose()).is_some());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let t = DropToken::generate();
        let raw = t.expose();
        assert!(DropToken::parse(&raw[..raw.len() - 1]).is_none());
        assert!(DropToken::parse(&format!("{raw}A")).is_none());
        assert!(StaffSecret::parse(raw).is_none(), "wrong prefix");
        assert!(DropToken::parse(&format!("kdl_{}", "!".repeat(43))).is_none());
        assert!(DropToken::parse(&"x".repeat(10_000)).is_none());
    }

    #[test]
    fn debug_output_redacts_the_token() {
        let t = StaffSecret::generate();
        assert!(!format!("{t:?}").contains(t.expose()));
        let d = DropToken::generate();
        assert!(!format!("{d:?}{:?}", d.hash()).contains(d.expose()));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn only_the_exact_shape_parses(s in prop_oneof![
            "(kdl_|kds_|kdl|kdlx|KDL_)[A-Za-z0-9_\\-]{42,44}",
            "(kdl_|kds_|)[A-Za-z0-9_\\-+/=. ]{0,50}",
        ]) {
            let shaped = |p: &str| {
                s.strip_prefix(p).is_some_and(|r| {
                    r.len() == 43 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
            };
            prop_assert_eq!(DropToken::parse(&s).is_some(), shaped("kdl_"));
            prop_assert_eq!(StaffSecret::parse(&s).is_some(), shaped("kds_"));
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = DropToken::parse(&s);
            let _ = StaffSecret::parse(&s);
        }

        #[test]
        fn every_256_bit_token_parses_hashes_stably_and_stays_out_of_debug(bytes in any::<[u8; 32]>(), other in any::<[u8; 32]>()) {
            let raw = format!("kdl_{}", URL_SAFE_NO_PAD.encode(bytes));
            let t = DropToken::parse(&raw).unwrap();
            prop_assert_eq!(t.hash(), TokenHash::of(&raw));
            let debug = format!("{t:?}{:?}", t.hash());
            prop_assert!(!debug.contains(&raw[4..]));
            prop_assert!(StaffSecret::parse(&raw).is_none(), "a link token is never a staff token");
            if other != bytes {
                let o = DropToken::parse(&format!("kdl_{}", URL_SAFE_NO_PAD.encode(other))).unwrap();
                prop_assert_ne!(o.hash(), t.hash());
            }
        }
    }
}

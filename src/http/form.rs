//! A strict `application/x-www-form-urlencoded` parser.
//!
//! Unlike lossy decoders it refuses invalid UTF-8 (which would silently corrupt
//! a pasted key), a `%` that does not start a two-hex-digit escape (which a
//! lossy decoder keeps literally, storing something the sender did not mean:
//! browsers always send `%` as `%25`) and duplicate field names (which make
//! "which value wins" ambiguous), instead of guessing.

use percent_encoding::percent_decode;
use std::collections::HashMap;
use zeroize::Zeroizing;

/// Parsed form fields. Values are zeroized when the form is dropped.
pub struct Form(HashMap<String, Zeroizing<String>>);

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Form")
            .field("fields", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a body is not a form we accept. Never contains field values.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form is not valid UTF-8 text")]
    InvalidUtf8,
    #[error("a % sign is not followed by two hexadecimal digits (a % must be sent as %25)")]
    MalformedEscape,
    #[error("the field {0:?} appears more than once")]
    Duplicate(String),
    #[error("too many fields")]
    TooManyFields,
}

const MAX_FIELDS: usize = 32;

impl Form {
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let mut fields = HashMap::new();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let mut it = pair.splitn(2, |&b| b == b'=');
            let name = decode(it.next().unwrap_or_default())?;
            let value = decode(it.next().unwrap_or_default())?;
            if fields.len() >= MAX_FIELDS {
                return Err(FormError::TooManyFields);
            }
            if fields.contains_key(&*name) {
                let shown: String = name.chars().take(40).collect();
                return Err(FormError::Duplicate(shown));
            }
            fields.insert(name.to_string(), value);
        }
        Ok(Self(fields))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.as_str())
    }
}

impl crate::service::submission::FormValues for Form {
    fn get(&self, name: &str) -> Option<&str> {
        Form::get(self, name)
    }
}

fn decode(raw: &[u8]) -> Result<Zeroizing<String>, FormError> {
    let escapes_ok = raw.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || raw
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return Err(FormError::MalformedEscape);
    }
    let plus_as_space = Zeroizing::new(
        raw.iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect::<Vec<u8>>(),
    );
    let bytes: Vec<u8> = percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map(Zeroizing::new).map_err(|e| {
        let mut bytes = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut bytes);
        FormError::InvalidUtf8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_plus_encoding_decode() {
        let f = Form::parse(b"a=1+2%2B3&b=%C3%A9t%C3%A9&empty=&flag").unwrap();
        assert_eq!(f.get("a"), Some("1 2+3"));
        assert_eq!(f.get("b"), Some("été"));
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.get("flag"), Some(""));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn invalid_utf8_duplicates_and_floods_are_refused() {
        assert_eq!(Form::parse(b"a=%FF").unwrap_err(), FormError::InvalidUtf8);
        assert_eq!(Form::parse(b"a=\xff").unwrap_err(), FormError::InvalidUtf8);
        assert_eq!(
            Form::parse(b"a=1&a=2").unwrap_err(),
            FormError::Duplicate("a".into())
        );
        for bad in [&b"a=%zz"[..], b"a=50%", b"a=%2", b"a%g1=x", b"a=%%41"] {
            assert_eq!(Form::parse(bad).unwrap_err(), FormError::MalformedEscape);
        }
        let many: String = (0..40).map(|i| format!("f{i}=x&")).collect();
        assert_eq!(
            Form::parse(many.as_bytes()).unwrap_err(),
            FormError::TooManyFields
        );
    }

    #[test]
    fn debug_shows_names_not_values() {
        let f = Form::parse(b"api_key=topsecretvalue").unwrap();
        let d = format!("{f:?}");
        assert!(d.contains("api_key") && !d.contains("topsecretvalue"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Text biased towards the characters that matter to the encoding.
    fn text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            '&', '=', '+', '%', ' ', ';', '#', '\n', '\0', 'é', '€', '🔑',
        ]);
        prop::collection::vec(
            prop_oneof![2 => prop::char::range('a', 'z'), 2 => special, 1 => any::<char>()],
            0..24,
        )
        .prop_map(String::from_iter)
    }

    fn fields() -> impl Strategy<Value = HashMap<String, String>> {
        prop::collection::hash_map(text(), text(), 0..=MAX_FIELDS)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Form::parse(&body);
        }

        #[test]
        fn form_shaped_noise_never_panics(body in "([a-z%+=&]|%[0-9A-Fa-f]{2}|%[^0-9A-Fa-f]){0,200}") {
            let _ = Form::parse(body.as_bytes());
        }

        /// A `%` not followed by two hex digits is refused, never kept literally.
        #[test]
        fn a_malformed_escape_is_always_refused(prefix in "[a-z]{0,10}", bad in "%([^0-9A-Fa-f].?|[0-9A-Fa-f][^0-9A-Fa-f]|[0-9A-Fa-f]?)") {
            let body = format!("f={prefix}{bad}");
            prop_assert_eq!(Form::parse(body.as_bytes()).unwrap_err(), FormError::MalformedEscape);
        }

        /// What a browser sends (the WHATWG urlencoded serializer: `+` for
        /// space) parses back to exactly the same fields and values.
        #[test]
        fn browser_encoded_forms_roundtrip(fields in fields()) {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter())
                .finish();
            let form = Form::parse(body.as_bytes()).unwrap();
            for (k, v) in &fields {
                prop_assert_eq!(form.get(k), Some(v.as_str()));
            }
        }

        /// Fully percent-encoded (`%20` for space) forms roundtrip too.
        #[test]
        fn percent_encoded_forms_roundtrip(fields in fields()) {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC)))
                .collect();
            let form = Form::parse(body.join("&").as_bytes()).unwrap();
            for (k, v) in &fields {
                prop_assert_eq!(form.get(k), Some(v.as_str()));
            }
        }

        #[test]
        fn a_repeated_name_is_always_refused(name in text(), a in text(), b in text()) {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(&name, &a)
                .append_pair(&name, &b)
                .finish();
            prop_assert!(matches!(Form::parse(body.as_bytes()), Err(FormError::Duplicate(_))));
        }

        /// A value that is not UTF-8 after decoding is refused, never patched up.
        #[test]
        fn invalid_utf8_in_a_value_is_refused(prefix in "[a-z]{0,10}", bad in 0x80u8..=0xBF) {
            let body = format!("f={prefix}%{bad:02X}");
            prop_assert_eq!(Form::parse(body.as_bytes()).unwrap_err(), FormError::InvalidUtf8);
        }
    }
}

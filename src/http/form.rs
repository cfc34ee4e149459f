//! A strict `application/x-www-form-urlencoded` parser.
//!
//! Unlike lossy decoders it refuses invalid UTF-8 (which would silently corrupt
//! a pasted key) and duplicate field names (which make "which value wins"
//! ambiguous), instead of guessing.

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

fn decode(raw: &[u8]) -> Result<Zeroizing<String>, FormError> {
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

//! The provider catalog: every credential Keydrop can receive, described as data.
//!
//! Each [`Provider`] entry says what the drop page shows (name, steps, fields) and
//! how a submission is validated and fingerprinted. Adding a provider is one new
//! entry in [`catalog::PROVIDERS`].

mod catalog;
mod check;
pub mod live;

pub use catalog::PROVIDERS;
pub use check::{CheckResult, CheckStatus};

/// One kind of credential a drop link can ask for.
#[derive(Debug)]
pub struct Provider {
    /// Stable id used in URLs, the API and the database (`greenhouse`).
    pub id: &'static str,
    /// Human name shown to the customer admin ("Greenhouse Harvest API v3").
    pub name: &'static str,
    /// One line describing the credential ("OAuth client credentials").
    pub credential: &'static str,
    /// A warning shown above the steps, when the provider needs one.
    pub notice: Option<&'static str>,
    /// Step-by-step instructions for creating the credential, in order.
    pub steps: &'static [&'static str],
    /// Permissions the integration needs, as the provider's UI names them.
    pub permissions: &'static [&'static str],
    /// The form fields, in display order.
    pub fields: &'static [Field],
    /// Name of the main secret field, which gives the fingerprint (`crypto::fingerprint`).
    pub fingerprint_field: &'static str,
    /// How a submitted credential is checked against the provider.
    pub check: Check,
    /// What to do in the provider's UI when permissions are missing.
    pub fix_steps: &'static [&'static str],
}

/// The live check a provider's credential gets (see [`live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Harvest v3: OAuth client credentials, then one probe per resource.
    GreenhouseV3,
    /// Harvest v1: Basic auth with the key, one probe per resource.
    GreenhouseV1,
    /// Lever: Basic auth with the key, one probe per endpoint.
    Lever,
    /// Ashby: `apiKey.info`, then one probe per endpoint.
    Ashby,
    /// BambooHR: the employee directory of the company domain.
    BambooHr,
    /// No automatic check exists (generic secrets).
    None,
}

/// One input on the drop form.
#[derive(Debug)]
pub struct Field {
    /// Form field name, part of the interface contract (`client_secret`).
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    /// Secret fields are password inputs and are never echoed back.
    pub secret: bool,
    pub required: bool,
    /// Maximum length in characters.
    pub max_len: usize,
    pub kind: FieldKind,
}

/// How a field's value is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text on one line (no control characters).
    Text,
    /// A token or key: printable ASCII without spaces.
    Token,
    /// Digits only (e.g. a Greenhouse user id).
    Numeric,
    /// A DNS label such as a BambooHR company subdomain: letters, digits, `-`.
    Subdomain,
    /// A secret kept exactly as sent: it may span lines (a private key,
    /// service-account JSON) and begin or end with spaces. Shown as a
    /// multi-line text area; only control characters other than line breaks
    /// and tabs are refused.
    Verbatim,
}

/// Looks a provider up by its id.
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

impl Field {
    /// True when the field takes text over several lines (a text area).
    pub fn multiline(&self) -> bool {
        self.kind == FieldKind::Verbatim
    }

    /// The label inside a sentence: "client secret", but "API key", "client ID".
    pub fn label_in_sentence(&self) -> String {
        let acronym = |w: &str| w.chars().count() > 1 && w.chars().all(char::is_uppercase);
        self.label
            .split(' ')
            .map(|w| {
                if acronym(w) {
                    w.to_owned()
                } else {
                    w.to_lowercase()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Validates one submitted value, returning it (trimmed, except for
    /// [`FieldKind::Verbatim`]), or a message for the admin. `None` and
    /// blank mean "not given". Messages never quote the value.
    pub fn validate<'v>(&self, value: Option<&'v str>) -> Result<Option<&'v str>, String> {
        let raw = value.unwrap_or("");
        let label = self.label_in_sentence();
        if raw.trim().is_empty() {
            return if self.required {
                Err(format!("Enter the {label}."))
            } else {
                Ok(None)
            };
        }
        let v = if self.kind == FieldKind::Verbatim {
            raw
        } else {
            raw.trim()
        };
        let length = v.chars().count();
        if length > self.max_len {
            return Err(format!(
                "The {label} is too long: we received {} characters, and it can have at most {}. Check you pasted only the {label}.",
                thousands(length),
                thousands(self.max_len),
            ));
        }
        let ok = match self.kind {
            FieldKind::Text => !v.chars().any(char::is_control),
            FieldKind::Token => v.bytes().all(|b| b.is_ascii_graphic()),
            FieldKind::Numeric => v.bytes().all(|b| b.is_ascii_digit()),
            FieldKind::Subdomain => {
                v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !v.starts_with('-')
                    && !v.ends_with('-')
            }
            FieldKind::Verbatim => v
                .chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')),
        };
        if !ok {
            let why = match self.kind {
                FieldKind::Text => "must not contain line breaks or control characters",
                FieldKind::Token => "should contain no spaces or special characters; copy it again from the provider",
                FieldKind::Numeric => "must be a number",
                FieldKind::Subdomain => "should be only the part before .bamboohr.com, e.g. acme",
                FieldKind::Verbatim => "must not contain control characters other than line breaks and tabs",
            };
            return Err(format!("The {label} {why}."));
        }
        Ok(Some(v))
    }
}

/// `4204` as "4,204": lengths a person compares with what they pasted.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_in_the_contract_is_in_the_catalog_with_its_fields() {
        let expect: &[(&str, &[&str])] = &[
            ("greenhouse", &["client_id", "client_secret", "user_id"]),
            ("greenhouse-legacy", &["api_key"]),
            ("lever", &["api_key"]),
            ("ashby", &["api_key"]),
            ("bamboohr", &["company_domain", "api_key"]),
            ("generic", &["label", "secret"]),
        ];
        for (id, fields) in expect {
            let p = find(id).unwrap_or_else(|| panic!("{id} missing"));
            let names: Vec<_> = p.fields.iter().map(|f| f.name).collect();
            assert_eq!(&names, fields, "{id}");
            let fp = p
                .fields
                .iter()
                .find(|f| f.name == p.fingerprint_field)
                .unwrap();
            assert!(
                fp.secret && fp.required,
                "{id} fingerprints a required secret"
            );
            assert!(!p.steps.is_empty());
        }
        assert_eq!(PROVIDERS.len(), expect.len());
    }

    #[test]
    fn field_validation_trims_and_explains() {
        let gh = find("greenhouse").unwrap();
        let secret = &gh.fields[1];
        assert_eq!(
            secret.validate(Some("  abc123 \n")).unwrap(),
            Some("abc123")
        );
        assert!(secret.validate(None).unwrap_err().contains("client secret"));
        assert!(secret.validate(Some("has space")).is_err());
        let long = "a".repeat(secret.max_len + 1);
        let err = secret.validate(Some(&long)).unwrap_err();
        assert!(!err.contains(&long));
        assert!(gh.fields[0]
            .validate(None)
            .unwrap_err()
            .contains("client ID"));
        let lever_key = &find("lever").unwrap().fields[0];
        assert_eq!(lever_key.validate(None).unwrap_err(), "Enter the API key.");
        let user = &gh.fields[2];
        assert_eq!(user.validate(Some("")).unwrap(), None);
        assert!(user.validate(Some("12a")).is_err());
        let domain = &find("bamboohr").unwrap().fields[0];
        assert!(domain.validate(Some("acme.bamboohr.com")).is_err());
        assert_eq!(domain.validate(Some("acme")).unwrap(), Some("acme"));
    }

    #[test]
    fn a_verbatim_secret_keeps_its_spaces_and_line_breaks() {
        let secret = find("generic")
            .unwrap()
            .fields
            .iter()
            .find(|f| f.name == "secret")
            .unwrap();
        assert!(secret.multiline());
        for v in [
            " lead",
            "trail ",
            "line one\r\nline two\r\n",
            "{\n\t\"k\": 1\n}",
        ] {
            assert_eq!(secret.validate(Some(v)).unwrap(), Some(v));
        }
        assert!(secret
            .validate(Some(" \r\n "))
            .unwrap_err()
            .contains("Enter"));
        assert!(secret.validate(Some("a\u{0}b")).is_err());
        assert!(secret.validate(Some("a\u{1b}[2J")).is_err());
        let long = "x".repeat(secret.max_len + 1);
        let err = secret.validate(Some(&long)).unwrap_err();
        assert!(err.contains(&thousands(secret.max_len + 1)), "{err}");
    }

    #[test]
    fn lengths_are_written_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4204), "4,204");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn every_field() -> impl Strategy<Value = &'static Field> {
        let all: Vec<&'static Field> = PROVIDERS.iter().flat_map(|p| p.fields.iter()).collect();
        prop::sample::select(all)
    }

    proptest! {
        /// Whatever is pasted, validation answers (never panics), and an
        /// accepted value is the trimmed input obeying the field's rule.
        #[test]
        fn accepted_values_are_trimmed_bounded_and_of_the_right_kind(f in every_field(), v in any::<String>()) {
            match f.validate(Some(&v)) {
                Ok(Some(ok)) => {
                    let expect = if f.kind == FieldKind::Verbatim { v.as_str() } else { v.trim() };
                    prop_assert_eq!(ok, expect);
                    prop_assert!(!ok.is_empty() && ok.chars().count() <= f.max_len);
                    let kind_ok = match f.kind {
                        FieldKind::Text => !ok.chars().any(char::is_control),
                        FieldKind::Token => ok.bytes().all(|b| b.is_ascii_graphic()),
                        FieldKind::Numeric => ok.bytes().all(|b| b.is_ascii_digit()),
                        FieldKind::Subdomain => ok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                        FieldKind::Verbatim => ok.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')),
                    };
                    prop_assert!(kind_ok);
                }
                Ok(None) => prop_assert!(!f.required && v.trim().is_empty()),
                Err(msg) => prop_assert!(!msg.is_empty()),
            }
        }

        /// Error messages name the field, never the value (values may be secrets).
        #[test]
        fn messages_never_quote_the_value(f in every_field(), v in "Zq9[A-Za-z0-9 !-~]{5,400}") {
            if let Err(msg) = f.validate(Some(&v)) {
                prop_assert!(!msg.contains(v.trim()), "{msg}");
            }
        }
    }
}

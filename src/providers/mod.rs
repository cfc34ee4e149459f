//! The provider catalog: every credential Keydrop can receive, one module per
//! provider (`greenhouse.rs`, `lever.rs`, …). Each module holds its catalog
//! entry (what the drop page shows: steps, permissions as the provider's UI
//! names them, fields) and its live check (which calls prove what, and what
//! each status and body means), with the source of every fact in a comment
//! beside it. The checks share one probe engine ([`engine`]): deadline,
//! concurrency, retries, redirect policy and size caps live there once.
//!
//! Adding a provider is one new module plus one line in [`PROVIDERS`].

mod ashby;
mod bamboohr;
mod check;
pub mod engine;
mod generic;
mod greenhouse;
mod greenhouse_legacy;
mod hibob;
mod lever;
pub mod live;
mod personio;
mod rippling;
mod smartrecruiters;
mod workable;
mod workday;

pub use check::{CheckResult, CheckStatus};
pub use live::Upstreams;

/// Every provider a drop link can ask for, in the order staff see them.
pub static PROVIDERS: &[&Provider] = &[
    &greenhouse::PROVIDER,
    &greenhouse_legacy::PROVIDER,
    &lever::PROVIDER,
    &ashby::PROVIDER,
    &bamboohr::PROVIDER,
    &workday::PROVIDER,
    &hibob::PROVIDER,
    &personio::PROVIDER,
    &workable::PROVIDER,
    &smartrecruiters::PROVIDER,
    &rippling::PROVIDER,
    &generic::PROVIDER,
];

/// One kind of credential a drop link can ask for.
#[derive(Debug)]
pub struct Provider {
    /// Stable id used in URLs, the API and the database (`greenhouse`).
    pub id: &'static str,
    /// Human name shown to the customer admin ("Greenhouse Harvest API v3").
    pub name: &'static str,
    /// The provider's name in sentences ("Greenhouse").
    pub short_name: &'static str,
    /// One line describing the credential ("OAuth client credentials").
    pub credential: &'static str,
    /// A warning shown above the steps, when the provider needs one.
    pub notice: Option<&'static str>,
    /// Step-by-step instructions for creating the credential, in order.
    pub steps: &'static [&'static str],
    /// The sentence above the permission list: how this provider grants them
    /// ("Under Manage scopes, tick exactly these…"; BambooHR has nothing to tick).
    pub grant: &'static str,
    /// Permissions the integration needs, as the provider's UI names them.
    pub permissions: &'static [Permission],
    /// The form fields, in display order.
    pub fields: &'static [Field],
    /// The main secret: the field whose value gives the fingerprint (`crypto::fingerprint`).
    pub fingerprint_field: FieldName,
    /// What to do in the provider's UI when permissions are missing.
    pub fix_steps: &'static [&'static str],
    /// Whether missing permissions can be added to the credential already
    /// sent (Greenhouse, Ashby); if not (Lever keys cannot be edited), the
    /// receipt asks for a new one instead.
    pub permissions_editable: bool,
    /// The base URLs this provider's check calls, each overridable.
    pub upstreams: &'static [&'static Upstream],
    /// The live check; `None` where no automatic check exists.
    pub check: Option<CheckFn>,
}

/// A provider's live check: reads the fields from the context, calls the
/// provider through the engine, and says what it found.
pub type CheckFn = for<'a> fn(&'a engine::Ctx<'a>) -> BoxCheck<'a>;

/// The future a [`CheckFn`] returns.
pub type BoxCheck<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = CheckResult> + Send + 'a>>;

/// One permission the integration needs.
#[derive(Debug, serde::Serialize)]
pub struct Permission {
    /// As the provider's UI shows it ("Candidates → List candidates").
    pub label: &'static str,
    /// The API call that needs it ("GET /v3/candidates"), for staff and probes.
    pub api: &'static str,
}

/// A provider base URL and the variable that overrides it.
#[derive(Debug)]
pub struct Upstream {
    /// `KEYDROP_<PROVIDER>_BASE_URL`.
    pub env: &'static str,
    /// The production base; `None` where the host comes from the customer
    /// (BambooHR company, Workday host, Workable subdomain). An override then
    /// replaces scheme and host and keeps the documented path.
    pub default: Option<&'static str>,
}

/// The name of a form field, as a check refers to it when it reports which
/// field a rejection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldName(pub &'static str);

impl FieldName {
    pub fn as_str(self) -> &'static str {
        self.0
    }
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
    /// One DNS label that becomes part of a host name (a BambooHR company
    /// domain, a Workable subdomain): `[a-z0-9-]` only, not at either end,
    /// so it can never change the host beyond `<label><suffix>`. The suffix
    /// (".bamboohr.com") words the error message.
    Subdomain(&'static str),
    /// A full host name under one of the given domains (a Workday services
    /// host): dot-separated `[a-z0-9-]` labels, no scheme, port or path.
    Host(&'static [&'static str]),
    /// A name that goes into a URL path (a Workday tenant): letters, digits, `_`, `-`.
    Slug,
    /// One of a fixed set of values, shown as a drop-down (value, label).
    Choice(&'static [(&'static str, &'static str)]),
    /// A secret kept exactly as sent: it may span lines (a private key,
    /// service-account JSON) and begin or end with spaces. Shown as a
    /// multi-line text area; only control characters other than line breaks
    /// and tabs are refused.
    Verbatim,
}

/// Looks a provider up by its id.
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id).copied()
}

impl Provider {
    /// The form field called `name`.
    pub fn field(&self, name: FieldName) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name.0)
    }
}

fn is_label(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-')
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
            FieldKind::Subdomain(_) => is_label(v),
            FieldKind::Host(domains) => {
                v.split('.').all(is_label)
                    && domains.iter().any(|d| {
                        v.len() > d.len() && v.ends_with(d) && v[..v.len() - d.len()].ends_with('.')
                    })
            }
            FieldKind::Slug => v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            FieldKind::Choice(choices) => choices.iter().any(|(c, _)| *c == v),
            FieldKind::Verbatim => v
                .chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')),
        };
        if !ok {
            let why = match self.kind {
                FieldKind::Text => "must not contain line breaks or control characters".to_owned(),
                FieldKind::Token => "should contain no spaces or special characters; copy it again from the provider".to_owned(),
                FieldKind::Numeric => "must be a number".to_owned(),
                FieldKind::Subdomain(suffix) => format!("should be only the part before {suffix}, in lowercase letters, digits and hyphens (for example acme)"),
                FieldKind::Host(domains) => format!("should be only the host name, ending in {}, without https:// or a path", domains.join(" or ")),
                FieldKind::Slug => "should contain only letters, digits, _ and -".to_owned(),
                FieldKind::Choice(choices) => format!("must be one of: {}", choices.iter().map(|(_, l)| *l).collect::<Vec<_>>().join(", ")),
                FieldKind::Verbatim => "must not contain control characters other than line breaks and tabs".to_owned(),
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
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
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
            (
                "workday",
                &[
                    "host",
                    "tenant",
                    "client_id",
                    "client_secret",
                    "refresh_token",
                ],
            ),
            ("hibob", &["service_user_id", "service_user_token"]),
            ("personio", &["client_id", "client_secret"]),
            ("workable", &["subdomain", "api_token"]),
            ("smartrecruiters", &["api_key"]),
            ("rippling", &["api_token"]),
            ("generic", &["label", "secret"]),
        ];
        for (id, fields) in expect {
            let p = find(id).unwrap_or_else(|| panic!("{id} missing"));
            let names: Vec<_> = p.fields.iter().map(|f| f.name).collect();
            if p.id == "lever" {
                // The contract's api_key, plus the region the key belongs to.
                assert_eq!(names, ["api_key", "region"]);
            } else {
                assert_eq!(&names, fields, "{id}");
            }
            let fp = p
                .fields
                .iter()
                .find(|f| f.name == p.fingerprint_field.as_str())
                .unwrap();
            assert!(
                fp.secret && fp.required,
                "{id} fingerprints a required secret"
            );
            assert!(!p.steps.is_empty());
            assert_eq!(p.check.is_some(), *id != "generic", "{id}");
            for u in p.upstreams {
                assert!(
                    u.env.starts_with("KEYDROP_") && u.env.ends_with("_URL"),
                    "{}",
                    u.env
                );
            }
        }
        assert_eq!(PROVIDERS.len(), expect.len());
    }

    #[test]
    fn host_parts_from_the_customer_cannot_change_the_host() {
        let bamboo = find("bamboohr").unwrap();
        let domain = bamboo.field(FieldName("company_domain")).unwrap();
        for bad in [
            "acme.bamboohr.com",
            "evil.com/x",
            "acme@evil",
            "acme:443",
            "-acme",
            "Acme",
            "ac me",
            "a/../b",
        ] {
            assert!(domain.validate(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(domain.validate(Some("acme-eu2")).unwrap(), Some("acme-eu2"));
        let workday = find("workday").unwrap();
        let host = workday.field(FieldName("host")).unwrap();
        assert_eq!(
            host.validate(Some("wd5-services1.myworkday.com")).unwrap(),
            Some("wd5-services1.myworkday.com")
        );
        for bad in [
            "https://wd5-services1.myworkday.com",
            "wd5-services1.myworkday.com/ccx",
            "evil.com",
            "myworkday.com",
            "evilmyworkday.com",
            "wd5.myworkday.com.evil.com",
            "wd5.myworkday.com:8443",
            "x@wd5.myworkday.com",
        ] {
            assert!(host.validate(Some(bad)).is_err(), "{bad}");
        }
        let tenant = workday.field(FieldName("tenant")).unwrap();
        assert!(tenant.validate(Some("acme_dpt1")).is_ok());
        assert!(tenant.validate(Some("acme/../x")).is_err());
        let region = find("lever").unwrap().field(FieldName("region")).unwrap();
        assert_eq!(region.validate(Some("eu")).unwrap(), Some("eu"));
        assert!(region.validate(Some("api.eu.lever.co")).is_err());
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
        let err = domain.validate(Some("acme.bamboohr.com")).unwrap_err();
        assert!(err.contains("before .bamboohr.com"), "{err}");
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
                        FieldKind::Subdomain(_) => ok.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                        FieldKind::Host(_) => ok.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
                        FieldKind::Slug => ok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                        FieldKind::Choice(c) => c.iter().any(|(v, _)| *v == ok),
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

//! The provider catalog: every credential Keydrop can receive, described as data.
//!
//! Each [`Provider`] entry says what the drop page shows (name, steps, fields) and
//! how a submission is validated and fingerprinted. Adding a provider is one new
//! entry in [`catalog::PROVIDERS`].

mod catalog;

pub use catalog::PROVIDERS;

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
    /// Name of the field whose last four characters form the fingerprint.
    pub fingerprint_field: &'static str,
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
}

/// Looks a provider up by its id.
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

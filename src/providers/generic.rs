//! Any other secret: no steps of a particular provider and no live check,
//! only a label saying what it is.

use super::{Field, FieldKind, FieldName, Provider};

pub static PROVIDER: Provider = Provider {
    id: "generic",
    name: "Other credential",
    short_name: "The provider",
    credential: "the secret we asked you for",
    notice: None,
    steps: &[
        "Check with the person who sent you this link which system and which access they need.",
        "Follow that system's own instructions to create a new credential, read-only wherever the system allows it.",
        "Copy the secret it gives you.",
        "Fill in the Label so we know what the secret is, for example the system name and whether it is production or test.",
        "Paste the secret into the form below and submit it.",
    ],
    grant: "",
    permissions: &[],
    fields: &[
        Field {
            name: "label",
            label: "Label",
            help: "A short description of what this secret is, for example \"Workday production API password\". Do not put the secret itself here.",
            secret: false,
            required: true,
            max_len: 200,
            kind: FieldKind::Text,
        },
        Field {
            name: "secret",
            label: "Secret",
            help: "The key, token or password itself, exactly as you copied it: it may span several lines (a private key, a JSON key file). It is encrypted as soon as it reaches us. If you choose it yourself, make it at least 16 characters long: a short secret is weak, however well we store it.",
            secret: true,
            required: true,
            // Room for a private key or a service-account JSON file.
            max_len: 16_384,
            kind: FieldKind::Verbatim,
        },
    ],
    fingerprint_field: FieldName("secret"),
    permissions_editable: true,
    fix_steps: &[],
    upstreams: &[],
    check: None,
};

//! BambooHR API keys: Basic auth with the key, on the company's own host.
//! The probe is the field metadata (no permission needed), not the employee
//! directory, which a company can switch off and which answers 404 when empty.
//!
//! Sources:
//! * [BH-GS] https://documentation.bamboohr.com/docs/getting-started (company domain, key = the user's access)
//! * [BH-TECH] https://documentation.bamboohr.com/docs/api-details (`https://{companyDomain}.bamboohr.com/api/`, status table, 503 throttling)
//! * [BH-DIR] https://documentation.bamboohr.com/reference/get-employees-directory (403 when sharing is off, 404 when empty)
//! * [BH-META] https://www.bamboohr.com/api/documentation/metadata.php ("Read only access to metadata does not require any special permissions"; `/api/gateway.php/{companyDomain}/v1/` path)
//! * [BH-LIST] https://documentation.bamboohr.com/reference/list-employees (429 "Too many requests.")
//! * [AB-BH] airbytehq/airbyte `source-bamboo-hr/manifest.yaml` (check = `meta/fields`, password `x`, `Accept: application/json`)
//! * [OKTA] https://help.okta.com/en-us/content/topics/provisioning/bamboohr/bamboohr-generate-api.htm (UI steps)

use super::engine::{self, Ctx, Retry};
use super::{BoxCheck, Field, FieldKind, FieldName, Provider, Upstream};

/// No default: the host is `https://{companyDomain}.bamboohr.com` [BH-TECH].
/// When set, this replaces scheme and host; the path keeps the company
/// domain the way BambooHR's docs show it (`/api/gateway.php/{companyDomain}/v1/…` [BH-META]).
pub const BASE: Upstream = Upstream {
    env: "KEYDROP_BAMBOOHR_BASE_URL",
    default: None,
};

const COMPANY: FieldName = FieldName("company_domain");
const API_KEY: FieldName = FieldName("api_key");

pub static PROVIDER: Provider = Provider {
    id: "bamboohr",
    name: "BambooHR",
    short_name: "BambooHR",
    credential: "BambooHR API key and company domain",
    notice: Some(
        "A BambooHR API key can see exactly what the person who creates it can see. Please have it created by a user whose access level covers every employee and field we need, ideally a dedicated integration user rather than a personal administrator account.",
    ),
    // [OKTA], [BH-GS] ("click their name in the upper right-hand corner… API Keys").
    steps: &[
        "Sign in to BambooHR as the user the key should act as, click your name or profile picture at the top right and choose API Keys.",
        "Click Add New Key, enter a name such as \"Keydrop\" under API Key Name, and click Generate Key.",
        "Click Copy Key: BambooHR shows the key only once. Then click Done.",
        "Your company domain is the part of your BambooHR address before .bamboohr.com (acme for acme.bamboohr.com).",
        "Paste the company domain and the key into the form below and submit it.",
    ],
    // BambooHR keys have no permissions of their own [BH-GS].
    grant: "BambooHR keys have no permissions to tick: a key can read exactly what its creator can read. Create it as a user whose access level covers all employees and the fields we need.",
    permissions: &[],
    fields: &[
        Field {
            name: "company_domain",
            label: "Company domain",
            help: "The part before .bamboohr.com in the address you use to sign in. For acme.bamboohr.com, enter acme.",
            secret: false,
            required: true,
            max_len: 63,
            kind: FieldKind::Subdomain(".bamboohr.com"),
        },
        Field {
            name: "api_key",
            label: "API key",
            help: "The key you generated under your name, API Keys. BambooHR shows it only once; if you no longer have it, generate a new one. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
    ],
    fingerprint_field: API_KEY,
    permissions_editable: true,
    fix_steps: &[
        "The key has the access of the BambooHR user who created it.",
        "Ask a BambooHR administrator to raise that user's access level (Settings, Access Levels), or to create a new key as a user who can see all employees, and send it through a new link.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

/// `https://{company}.bamboohr.com` or the override, then the documented path.
/// `company` passed validation: one `[a-z0-9-]` label, so the host cannot move.
fn url(ctx: &Ctx<'_>, company: &str, path: &str) -> String {
    let base = match ctx.base(&BASE) {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => format!("https://{company}.bamboohr.com"),
    };
    format!("{base}/api/gateway.php/{company}/v1{path}")
}

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let company = ctx.field(COMPANY);
        let req = ctx
            .get(url(ctx, company, "/meta/fields"))
            // Many endpoints answer XML without it [BH-DIR], [AB-BH].
            .header("accept", "application/json")
            // Key as username, any password; `x` by convention [AB-BH].
            .basic_auth(ctx.field(API_KEY), Some("x"));
        // Throttling is 503 in the technical overview, 429 on current pages [BH-TECH], [BH-LIST].
        let a = match ctx.send(req, Retry::RATE_LIMITED_OR_503).await {
            Ok(a) => a,
            Err(why) => {
                return engine::unverified(format!("BambooHR could not be reached ({why})"))
            }
        };
        // The reason is in this header, the body is often empty [BH-TECH].
        let said = a
            .header_text("x-bamboohr-error-message")
            .map(|m| format!(" BambooHR said: \"{m}\"."))
            .unwrap_or_default();
        match a.status {
            200..=299 => engine::verified(
                "BambooHR accepted the key for this company. What it can read depends on its creator's access level",
            ),
            _ if a.ip_refusal() => ctx.ip_blocked("BambooHR"),
            // "Unauthorized — Your API key is missing" (also a wrong key) [BH-TECH].
            401 => engine::invalid(
                Some(API_KEY),
                format!("BambooHR did not accept this API key for this company. Check you copied all of it.{said}"),
            ),
            // "Verify your API key belongs to an enabled user with the required
            // permissions" [BH-TECH]: metadata needs none, so most likely a
            // disabled user; the docs do not separate the two.
            403 => {
                let mut r = engine::unverified(format!(
                    "BambooHR refused the key (HTTP 403): the user who created it may be disabled or lack access.{said}"
                ));
                r.field = Some(API_KEY);
                r
            }
            // An unknown company domain is not documented; 404 is the likely answer.
            404 => {
                let mut r = engine::unverified(format!(
                    "BambooHR did not find the company \"{company}\" (HTTP 404). Check the company domain: the part before .bamboohr.com in your BambooHR address.{said}"
                ));
                r.field = Some(COMPANY);
                r
            }
            status => engine::unverified(format!("BambooHR answered HTTP {status}.{said}")),
        }
    })
}

//! Lever API keys: Basic auth with the key, one probe per endpoint, on the
//! host of the region the account lives in (US or EU).
//!
//! Sources:
//! * [LV-DOC] https://hire.lever.co/developer/documentation (root URL, Basic auth with blank password)
//! * [LV-HELP-KEYS] https://help.lever.co/hc/en-us/articles/20087297592477-Generating-and-using-API-credentials
//! * [LV-HELP-CONF] https://help.lever.co/hc/en-us/articles/360042364412-How-do-I-create-an-API-key-with-access-to-confidential-data- (keys cannot be edited)
//! * [AB-LV] airbytehq/airbyte `airbyte-integrations/connectors/source-lever-hiring/manifest.yaml`
//! * [ADWAY] https://docs.adway.ai/integration-docs/2lPvwMCOeOjdmXXtX8Yw/onboarding/ats-sync/lever (permission labels)
//! * EU host `api.eu.lever.co` beside the EU app `hire.eu.lever.co`: Lever's public postings API
//!   documents it for `/v0`; the Data API there is inferred (one company lives in exactly one region).

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

pub const US: Upstream = Upstream {
    env: "KEYDROP_LEVER_BASE_URL",
    default: Some("https://api.lever.co"), // [LV-DOC] "https://api.lever.co/v1"
};
pub const EU: Upstream = Upstream {
    env: "KEYDROP_LEVER_EU_BASE_URL",
    default: Some("https://api.eu.lever.co"),
};

const API_KEY: FieldName = FieldName("api_key");
const REGION: FieldName = FieldName("region");

/// READ checkboxes of the key's Permissions list [ADWAY]; † not seen verbatim.
const ENDPOINTS: &[Permission] = &[
    Permission {
        label: "Find all users",
        api: "GET /v1/users",
    }, // †
    Permission {
        label: "Find all opportunities",
        api: "GET /v1/opportunities",
    },
    Permission {
        label: "Find all postings",
        api: "GET /v1/postings",
    },
    Permission {
        label: "Find all archive reasons",
        api: "GET /v1/archive_reasons",
    }, // †
    Permission {
        label: "Find all stages",
        api: "GET /v1/stages",
    },
];

pub static PROVIDER: Provider = Provider {
    id: "lever",
    name: "Lever",
    short_name: "Lever",
    credential: "Lever API key",
    notice: None,
    // [LV-HELP-KEYS]: Super Admin with "Manage API credentials and manage integrations"; [LV-DOC], [LV-HELP-CONF].
    steps: &[
        "Sign in to Lever as a Super Admin, click your profile picture at the top right and choose Settings.",
        "Open Integrations and API, then the API Credentials tab.",
        "Under Lever API credentials, click Generate New Key and give it a name such as \"Keydrop - your company name\".",
        "Under Permissions, tick each READ permission listed below. Leave \"Allow access to confidential data\" off unless we asked for it.",
        "Copy the key before you click Done: Lever shows it only once, and a key's permissions cannot be changed later.",
        "Choose your region below (EU if your Lever address starts with hire.eu.lever.co), paste the key and submit the form.",
    ],
    grant: "Under Permissions, tick each of these READ permissions:",
    permissions: ENDPOINTS,
    fields: &[
        Field {
            name: "api_key",
            label: "API key",
            help: "The key you generated under Settings, Integrations and API, API Credentials. Lever shows it only once; if you no longer have it, generate a new one. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
        Field {
            name: "region",
            label: "Region",
            help: "Where your Lever account lives. Choose EU if your Lever address starts with hire.eu.lever.co; otherwise keep US.",
            secret: false,
            required: false,
            max_len: 2,
            kind: FieldKind::Choice(&[("us", "US (hire.lever.co)"), ("eu", "EU (hire.eu.lever.co)")]),
        },
    ],
    fingerprint_field: API_KEY,
    // "Once an API key has been created, its access cannot be edited" [LV-HELP-CONF].
    // "Once an API key has been created, its access cannot be edited" [LV-HELP-CONF].
    permissions_editable: false,
    fix_steps: &[
        "Lever keys cannot be changed after they are created, so the key needs replacing.",
        "In Lever, go to Settings, then Integrations and API, then API Credentials, and click Generate New Key.",
        "Tick every permission listed above, copy the new key, and send it to us through a new link (ask the person who sent you this one).",
        "Then delete the old key in the same list.",
    ],
    upstreams: &[&US, &EU],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let eu = ctx.optional(REGION) == Some("eu");
        let base = if eu { &EU } else { &US };
        let key = ctx.field(API_KEY);
        let probes = ctx
            .each(ENDPOINTS, |p| async move {
                let path = p.api.trim_start_matches("GET ");
                // "providing an API key as the username and leaving the password blank" [LV-DOC].
                let req = ctx
                    .get(ctx.url(base, &format!("{path}?limit=1")))
                    .header("accept", "application/json")
                    .basic_auth(key, Some(""));
                match ctx.send(req, Retry::RATE_LIMITED).await {
                    Ok(a) => endpoint(&a, eu),
                    Err(why) => Verdict::Unknown(why),
                }
            })
            .await;
        ctx.summarize("Lever", probes)
    })
}

fn endpoint(a: &Answer, eu: bool) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // A key unknown to this region's host, or a deleted key. A US host
        // refuses an EU key the same way, so the message names the region.
        401 => Verdict::Rejected {
            field: Some(API_KEY),
            detail: if eu {
                "Lever's EU service did not accept this API key. Check you copied all of it, and that your Lever address starts with hire.eu.lever.co.".into()
            } else {
                "Lever did not accept this API key. Check you copied all of it. If your Lever address starts with hire.eu.lever.co, choose EU as the region.".into()
            },
        },
        // Keys carry per-endpoint permissions since 2024 [LV-HELP-KEYS].
        403 => Verdict::Missing,
        404 => Verdict::Unknown("not found (HTTP 404)".into()),
        _ => engine::undocumented(a),
    }
}

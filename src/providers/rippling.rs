//! Rippling API tokens: Bearer token on the REST API. Validity from the
//! token's own user (`/sso-me`), then one list call per read scope.
//!
//! Rippling's developer portal was not readable; the sources are SDKs
//! generated from Rippling's published OpenAPI and integrators' guides:
//! * [RP-SDK] docs.rs `rippling-api` (generated from Rippling's OpenAPI): base
//!   `https://rest.ripplingapis.com`, `/sso-me`, `/workers`, Bearer auth
//! * [FIVETRAN-RP] https://fivetran.com/docs/applications/rippling/setup-guide (scope ids by parent scope, token fields)
//! * [STACKONE-RP] https://docs.stackone.com/connectors/rippling/guides/link-account/api-token (API Tokens app, shown once)
//! * [POSTHOG-RP] PostHog's Rippling source (401: token wrong or expired after 30 days unused; 403: scope missing)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

pub const BASE: Upstream = Upstream {
    env: "KEYDROP_RIPPLING_BASE_URL",
    default: Some("https://rest.ripplingapis.com"), // [RP-SDK]
};

const TOKEN: FieldName = FieldName("api_token");

/// Scope ids as the token's scope screen lists them [FIVETRAN-RP].
const SCOPES: &[Permission] = &[
    Permission {
        label: "Company: companies.read",
        api: "GET /companies",
    },
    Permission {
        label: "Worker: workers.read",
        api: "GET /workers",
    },
    Permission {
        label: "Users: users.read",
        api: "GET /users",
    },
];

pub static PROVIDER: Provider = Provider {
    id: "rippling",
    name: "Rippling",
    short_name: "Rippling",
    credential: "Rippling API token",
    notice: Some(
        "A Rippling API token can read only what the admin who creates it can read, and it expires after 30 days without use.",
    ),
    // [STACKONE-RP], [FIVETRAN-RP]; guides disagree on the menu path, so the
    // search box, which every guide mentions, is the step.
    steps: &[
        "Sign in to Rippling as an admin and search for API Tokens in the search bar (or open app.rippling.com/api-tokens).",
        "Click Create API Token and fill in Name (such as \"Keydrop\"), Unique Identifier and API Version.",
        "On the scopes screen, tick the read scopes listed below and nothing else, then click Save.",
        "Copy the token: Rippling shows it only once.",
        "Paste it into the form below and submit it.",
    ],
    grant: "Tick these read scopes when you create the token:",
    permissions: SCOPES,
    fields: &[Field {
        name: "api_token",
        label: "API token",
        help: "The token shown once when you created it in the API Tokens app. It is encrypted as soon as it reaches us.",
        secret: true,
        required: true,
        max_len: 1024,
        kind: FieldKind::Token,
    }],
    fingerprint_field: TOKEN,
    permissions_editable: true,
    fix_steps: &[
        "In Rippling, open the API Tokens app and edit the token you created for us, ticking each scope listed above; if its scopes cannot be changed, create a new token with them and send it through a new link.",
        "The token acts with its creator's access: an admin who cannot see these records cannot grant them.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let token = ctx.field(TOKEN);
        let req = ctx
            .get(ctx.url(&BASE, "/sso-me"))
            .header("accept", "application/json")
            .bearer_auth(token);
        match ctx.send(req, Retry::RATE_LIMITED).await {
            // /sso-me needs no read scope of ours: a 403 still proves the token [RP-SDK].
            Ok(a) if (200..300).contains(&a.status) || a.status == 403 && !a.ip_refusal() => {}
            Ok(a) if a.ip_refusal() => return ctx.ip_blocked("Rippling"),
            Ok(a) if a.status == 401 => {
                return engine::invalid(
                    Some(TOKEN),
                    "Rippling did not accept this token: it is wrong, revoked, or expired after 30 days without use. Create a new one in the API Tokens app.",
                )
            }
            Ok(a) => return engine::unverified(format!("Rippling answered HTTP {}", a.status)),
            Err(why) => return engine::unverified(format!("Rippling could not be reached ({why})")),
        }
        let probes = ctx
            .each(SCOPES, |p| async move {
                let path = p.api.trim_start_matches("GET ");
                let req = ctx
                    .get(ctx.url(&BASE, &format!("{path}?limit=1")))
                    .header("accept", "application/json")
                    .bearer_auth(token);
                match ctx.send(req, Retry::RATE_LIMITED).await {
                    Ok(a) => scope(&a),
                    Err(why) => Verdict::Unknown(why),
                }
            })
            .await;
        ctx.summarize("Rippling", probes)
    })
}

/// [POSTHOG-RP]: 401 token problem, 403 missing read scope.
fn scope(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        403 => Verdict::Missing,
        _ => engine::undocumented(a),
    }
}

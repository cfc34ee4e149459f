//! Workable account API access tokens: Bearer token on the account's own
//! subdomain, one probe per scope.
//!
//! Sources:
//! * [WK-TOKENS] https://help.workable.com/hc/en-us/articles/115015785428-Generating-revoking-access-tokens-for-Workable-s-API (UI steps, shown once, scopes)
//! * [WK-JOBS] https://workable.readme.io/reference/jobs (`https://{subdomain}.workable.com/spi/v3/jobs`, scope `r_jobs`)
//! * [WK-CAND] https://workable.readme.io/reference/job-candidates-index (`/spi/v3/candidates`, scope `r_candidates`)
//! * [WK-RATE] https://workable.readme.io/docs/rate-limits (429; 10 requests per 10 s for account tokens)
//! * [AB-WK] airbytehq/airbyte `source-workable/manifest.yaml` (Bearer auth, `https://{subdomain}.workable.com`)
//! * [WITHONE-WK] withone.ai Workable action pages derived from Workable's OpenAPI (401 "Not authorized", 403 "Forbidden")

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

/// No default: the host is `https://{subdomain}.workable.com` [WK-JOBS].
/// When set, this replaces scheme and host; the path stays `/spi/v3/…`.
pub const BASE: Upstream = Upstream {
    env: "KEYDROP_WORKABLE_BASE_URL",
    default: None,
};

const SUBDOMAIN: FieldName = FieldName("subdomain");
const TOKEN: FieldName = FieldName("api_token");

/// The UI lists the scopes by their identifiers [WK-TOKENS].
const SCOPES: &[Permission] = &[
    Permission {
        label: "r_jobs",
        api: "GET /spi/v3/jobs",
    },
    Permission {
        label: "r_candidates",
        api: "GET /spi/v3/candidates",
    },
];

pub static PROVIDER: Provider = Provider {
    id: "workable",
    name: "Workable",
    short_name: "Workable",
    credential: "Workable API access token and subdomain",
    notice: Some("Only Workable Admins can generate API access tokens."),
    // [WK-TOKENS], quoted where it names buttons.
    steps: &[
        "In Workable, click your profile icon at the top right and go to Settings, then Integrations, then Apps.",
        "In the API Access Tokens section, click + Generate API token and give it a name such as \"Keydrop\".",
        "Choose an expiry (30 days up to 2 years; pick at least as long as we said we need the data).",
        "Tick the scopes listed below, and no write (w_) scopes. Click Generate token.",
        "Copy the token from the window that opens: it is not shown again after you close it.",
        "Your subdomain is the part of your Workable address between https:// and .workable.com (also on Settings, Company profile). Fill in the form below and submit it.",
    ],
    grant: "Tick these scopes when you generate the token (read only):",
    permissions: SCOPES,
    fields: &[
        Field {
            name: "subdomain",
            label: "Subdomain",
            help: "The part of your Workable address between https:// and .workable.com. For acme.workable.com, enter acme.",
            secret: false,
            required: true,
            max_len: 63,
            kind: FieldKind::Subdomain(".workable.com"),
        },
        Field {
            name: "api_token",
            label: "API access token",
            help: "The token from the window shown when you generated it. If you closed it, generate a new token. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
    ],
    fingerprint_field: TOKEN,
    // Only generating and revoking tokens is documented, not editing scopes [WK-TOKENS].
    // Only generating and revoking tokens is documented [WK-TOKENS].
    permissions_editable: false,
    fix_steps: &[
        "Workable tokens keep the scopes they were generated with, so the token needs replacing.",
        "In Workable, go to Settings, Integrations, Apps, API Access Tokens, and click + Generate API token with every scope listed above ticked.",
        "Send the new token through a new link (ask the person who sent you this one), then revoke the old token on the same page.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

/// `https://{subdomain}.workable.com` or the override. The subdomain passed
/// validation (one `[a-z0-9-]` label), so the host cannot move.
fn url(ctx: &Ctx<'_>, path: &str) -> String {
    let base = match ctx.base(&BASE) {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => format!("https://{}.workable.com", ctx.field(SUBDOMAIN)),
    };
    format!("{base}{path}")
}

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let token = ctx.field(TOKEN);
        // Two probes: within the 10-per-10-seconds account budget [WK-RATE].
        let probes = ctx
            .each(SCOPES, |p| async move {
                let path = p.api.trim_start_matches("GET ");
                let req = ctx
                    .get(url(ctx, &format!("{path}?limit=1")))
                    .header("accept", "application/json")
                    .bearer_auth(token);
                match ctx.send(req, Retry::RATE_LIMITED).await {
                    Ok(a) => scope(&a),
                    Err(why) if why.starts_with("redirected") => Verdict::Unknown(format!(
                        "{why}; an unknown subdomain can be answered this way"
                    )),
                    Err(why) => Verdict::Unknown(why),
                }
            })
            .await;
        let mut result = ctx.summarize("Workable", probes);
        if result.status == super::CheckStatus::Unverified
            && (result.detail.contains("404") || result.detail.contains("redirected"))
        {
            // Not documented for an unknown subdomain; the likeliest cause.
            result.detail.push_str(
                ". Check the subdomain: the part of your Workable address before .workable.com",
            );
            result.field = Some(SUBDOMAIN);
        }
        result
    })
}

fn scope(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // 401 {"error":"Not authorized"} [WITHONE-WK]: wrong, revoked or expired token.
        401 => Verdict::Rejected {
            field: Some(TOKEN),
            detail: "Workable did not accept this token for this subdomain: it is wrong, revoked or expired. Check you copied all of it.".into(),
        },
        // 403 {"error":"Forbidden"}: the token lacks this scope [WITHONE-WK].
        403 => Verdict::Missing,
        _ => engine::undocumented(a),
    }
}

//! Greenhouse Harvest API v1/v2 keys: Basic auth with the key, one probe per
//! endpoint permission. Its own resource list: v1 paths differ from v3
//! (`/v1/scheduled_interviews`, not `/v1/interviews`).
//!
//! Sources:
//! * [GH-V1DOC] grnhse/greenhouse-api-docs `source/includes/harvest/_introduction.md` (auth, errors)
//! * [GH-MIG] https://harvestdocs.greenhouse.io/docs/step-by-step-migration-instructions (v1 ↔ v3 paths)
//! * [GH-SUP-CREATE] https://support.greenhouse.io/hc/en-us/articles/5888163769883 (retirement after 2026-08-31)
//! * [GEM] https://support.gem.com/hc/en-us/articles/5352664945559-Harvest-API-Key-Required-Permissions (checkbox labels)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::greenhouse::HARVEST;
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider};

const API_KEY: FieldName = FieldName("api_key");

/// Endpoint checkboxes as "Manage permissions" labels them ("<Section> → GET: …" [GEM]).
const ENDPOINTS: &[Permission] = &[
    Permission {
        label: "Candidates → GET: List Candidates",
        api: "GET /v1/candidates",
    },
    Permission {
        label: "Applications → GET: List Applications",
        api: "GET /v1/applications",
    },
    Permission {
        label: "Jobs → GET: List Jobs",
        api: "GET /v1/jobs",
    },
    Permission {
        label: "Offers → GET: List Offers",
        api: "GET /v1/offers",
    },
    Permission {
        label: "Users → GET: List Users",
        api: "GET /v1/users",
    },
    Permission {
        label: "Departments → GET: List Departments",
        api: "GET /v1/departments",
    },
    Permission {
        label: "Offices → GET: List Offices",
        api: "GET /v1/offices",
    },
    Permission {
        label: "Scorecards → GET: List Scorecards",
        api: "GET /v1/scorecards",
    },
    // There is no /v1/interviews [GH-MIG], [GEM].
    Permission {
        label: "Scheduled Interviews → GET: List Interviews",
        api: "GET /v1/scheduled_interviews",
    },
    Permission {
        label: "Job Posts → GET: List Job Posts",
        api: "GET /v1/job_posts",
    },
    Permission {
        label: "Sources → GET: List Sources",
        api: "GET /v1/sources",
    },
    Permission {
        label: "Rejection Reasons → GET: List Rejection Reasons",
        api: "GET /v1/rejection_reasons",
    },
    Permission {
        label: "Custom Fields → GET: Get Custom Fields",
        api: "GET /v1/custom_fields",
    },
    Permission {
        label: "EEOC → GET: List EEOC",
        api: "GET /v1/eeoc",
    }, // label not seen verbatim
    Permission {
        label: "Close Reasons → GET: Get Close Reasons",
        api: "GET /v1/close_reasons",
    },
    Permission {
        label: "User Roles → GET: List User Roles",
        api: "GET /v1/user_roles",
    },
];

pub static PROVIDER: Provider = Provider {
    id: "greenhouse-legacy",
    name: "Greenhouse Harvest API v1/v2 (legacy)",
    short_name: "Greenhouse",
    credential: "Harvest API key (being retired by Greenhouse in 2026)",
    // [GH-SUP-CREATE]: "unavailable after August 31, 2026".
    notice: Some(
        "Greenhouse announced that Harvest API v1/v2 keys stop working after August 31, 2026. If you can, please create a Harvest v3 (OAuth) credential instead and ask us for a Greenhouse v3 link.",
    ),
    // Older UI wording [GH-SUP-PERM] (older version), [GEM].
    steps: &[
        "In Greenhouse, click the Configure icon (the gear on the navigation bar), then Dev Center on the left.",
        "Click API Credential Management, then Create new API key.",
        "Set API type to \"Harvest\", Partner to \"Unlisted vendor\", and a Description such as \"Keydrop - your company name\". Click Manage permissions.",
        "Copy the API key into the form below. Greenhouse shows it only once; then click \"I have stored the API Key\".",
        "Tick each endpoint listed below (only the GET ones) and click Save.",
        "Submit the form below.",
    ],
    grant: "Under Manage permissions, tick each of these GET endpoints:",
    permissions: ENDPOINTS,
    fields: &[Field {
        name: "api_key",
        label: "API key",
        help: "The Harvest key you just created. Greenhouse shows it only once; if you no longer have it, create a new key. It is encrypted as soon as it reaches us.",
        secret: true,
        required: true,
        max_len: 512,
        kind: FieldKind::Token,
    }],
    fingerprint_field: API_KEY,
    permissions_editable: true,
    fix_steps: &[
        "In Greenhouse, go to Configure, then Dev Center, then API Credential Management.",
        "Find the API key you created for us, click Edit, and open its permissions.",
        "Tick each endpoint listed above and click Save.",
        "The key itself does not change, so you do not need to send it again.",
    ],
    upstreams: &[&HARVEST],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let key = ctx.field(API_KEY);
        let probes = ctx
            .each(ENDPOINTS, |p| async move {
                let path = p.api.trim_start_matches("GET ");
                // "The username is your Greenhouse API token and the password should be blank" [GH-V1DOC].
                let req = ctx
                    .get(ctx.url(&HARVEST, &format!("{path}?per_page=1&skip_count=true")))
                    .basic_auth(key, Some(""));
                match ctx.send(req, Retry::RATE_LIMITED).await {
                    Ok(a) => endpoint(&a),
                    Err(why) => Verdict::Unknown(why),
                }
            })
            .await;
        // After the retirement date every v1 path may answer something no
        // document describes; say so instead of listing sixteen failures.
        if probes.iter().all(
            |(_, v)| matches!(v, Verdict::Unknown(w) if w.contains("404") || w.contains("410")),
        ) {
            return engine::unverified("Greenhouse no longer answers for Harvest v1 keys. Please create a Harvest v3 (OAuth) credential and ask us for a Greenhouse v3 link");
        }
        ctx.summarize("Greenhouse", probes)
    })
}

/// [GH-V1DOC] Errors table.
fn endpoint(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // "Unauthorized -- Invalid Harvest API key".
        401 => Verdict::Rejected {
            field: Some(API_KEY),
            detail: "Greenhouse did not accept this API key. Check you copied all of it.".into(),
        },
        // "This API Key does not have permission for this endpoint" [GH-V1DOC].
        403 => Verdict::Missing,
        // A missing path is not a missing permission.
        404 => Verdict::Unknown("not found (HTTP 404)".into()),
        _ => engine::undocumented(a),
    }
}

//! Greenhouse Harvest API v3: OAuth client credentials, then one read probe
//! per scope the integration needs.
//!
//! Sources (cited beside the data as [tag]):
//! * [GH-AUTH] https://harvestdocs.greenhouse.io/docs/authentication
//! * [GH-SUP-PERM] https://support.greenhouse.io/hc/en-us/articles/115000521723-Manage-Harvest-API-key-permissions
//! * [GH-MIG] https://harvestdocs.greenhouse.io/docs/step-by-step-migration-instructions
//! * [AB-V3] airbytehq/airbyte `airbyte-integrations/connectors/source-greenhouse/manifest.yaml` (v3 paths and scopes)
//! * [PAGEUP] https://knowledgeportal.pageuppeople.com/hc/en-gb/articles/15890024198927-Migrating-to-Greenhouse-Harvest-v3 (scope labels as the UI shows them)
//! * [CFYI] https://support.candidate.fyi/articles/5925055851-greenhouse-integration-upgrade-v2-v3-customer-action-required (scope labels)
//! * [NANGO-CC] https://nango.dev/docs/api-integrations/greenhouse-harvest-oauth2-cc/connect (Manage Scopes, user id)
//! * [W6W] measured token-endpoint answers in a public Greenhouse client (w6w app `auth/token.ts`, 2026-08-11)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

pub const AUTH: Upstream = Upstream {
    env: "KEYDROP_GREENHOUSE_AUTH_URL",
    default: Some("https://auth.greenhouse.io"), // [GH-AUTH]
};
/// Shared with the legacy v1 key, which lives on the same host [GH-AUTH].
pub const HARVEST: Upstream = Upstream {
    env: "KEYDROP_GREENHOUSE_HARVEST_URL",
    default: Some("https://harvest.greenhouse.io"),
};

const CLIENT_ID: FieldName = FieldName("client_id");
const CLIENT_SECRET: FieldName = FieldName("client_secret");
const USER_ID: FieldName = FieldName("user_id");

/// The read scopes the integration needs, labelled as "Manage scopes" shows
/// them ("<Resource> > List <resource>" [PAGEUP], [CFYI]); `api` is the v3
/// path probed [AB-V3]. Labels marked † follow that pattern but were not
/// seen verbatim in a source.
const SCOPES: &[Permission] = &[
    Permission {
        label: "Candidates → List candidates",
        api: "GET /v3/candidates",
    },
    Permission {
        label: "Applications → List applications",
        api: "GET /v3/applications",
    },
    Permission {
        label: "Jobs → List jobs",
        api: "GET /v3/jobs",
    },
    Permission {
        label: "Offers → List offers",
        api: "GET /v3/offers",
    }, // †
    Permission {
        label: "Users → List users",
        api: "GET /v3/users",
    }, // †
    Permission {
        label: "Departments → List departments",
        api: "GET /v3/departments",
    },
    Permission {
        label: "Offices → List offices",
        api: "GET /v3/offices",
    },
    Permission {
        label: "Scorecards → List scorecards",
        api: "GET /v3/scorecards",
    }, // †
    // v1 /scheduled_interviews became v3 /interviews [GH-MIG], [AB-V3].
    Permission {
        label: "Interviews → List interviews",
        api: "GET /v3/interviews",
    },
    Permission {
        label: "Job posts → List job posts",
        api: "GET /v3/job_posts",
    },
    Permission {
        label: "Sources → List sources",
        api: "GET /v3/sources",
    }, // †
    Permission {
        label: "Rejection reasons → List rejection reasons",
        api: "GET /v3/rejection_reasons",
    }, // †
    Permission {
        label: "Custom fields → List custom fields",
        api: "GET /v3/custom_fields",
    },
    Permission {
        label: "EEOC → List EEOC",
        api: "GET /v3/eeoc",
    }, // † capitalisation unknown
    Permission {
        label: "Close reasons → List close reasons",
        api: "GET /v3/close_reasons",
    }, // †
    Permission {
        label: "User roles → List user roles",
        api: "GET /v3/user_roles",
    }, // †
];

pub static PROVIDER: Provider = Provider {
    id: "greenhouse",
    name: "Greenhouse Harvest API v3",
    short_name: "Greenhouse",
    credential: "OAuth client credentials (client ID and client secret)",
    notice: Some(
        "Creating API credentials needs the Greenhouse developer permission \"Can manage ALL organization's API Credentials\". Without it, API Credential Management is missing from the Dev Center: ask another Site Admin to grant it to you (Configure, Users, your user, Permissions). Greenhouse warns that a Harvest credential can be as powerful as a Site Admin, so grant only the read scopes listed below.",
    ),
    // The flow as the current UI names it [GH-SUP-PERM], [NANGO-CC].
    steps: &[
        "Open this page in a second window first: Greenhouse shows the client secret only once, and you paste it here before confirming you stored it.",
        "In Greenhouse, click the Configure icon (the gear on the navigation bar), then Dev Center on the left.",
        "Click API Credential Management, then Create new API credentials.",
        "Set API type to \"Harvest v3 (OAuth)\", Partner to \"Unlisted vendor\" (or \"Custom\"), and a Description such as \"Keydrop - your company name\". Click View and store credentials.",
        "Copy the client ID and the client secret into the form below. The secret is shown only once.",
        "Click \"I have stored the client credentials\".",
        "Under Manage scopes, open Harvest and tick exactly the read scopes listed below. Do not use Select All: it also grants write scopes we never use. Click Save.",
        "Submit the form below. We check the credential with Greenhouse straight away.",
    ],
    grant: "Under Manage scopes, tick exactly these read scopes (no write scopes are needed):",
    permissions: SCOPES,
    fields: &[
        Field {
            name: "client_id",
            label: "Client ID",
            help: "Shown next to the client secret when you create the credential, and later in the list under Dev Center, API Credential Management.",
            secret: false,
            required: true,
            max_len: 200,
            kind: FieldKind::Token,
        },
        Field {
            name: "client_secret",
            label: "Client secret",
            help: "Greenhouse shows the secret only once, right after you create the credential. If you no longer have it, rotate it (edit the credential) or create a new one. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
        Field {
            name: "user_id",
            label: "User ID",
            // `sub` is the numeric id of a user; list endpoints need a Site Admin [GH-AUTH]; the id is in the user's page address [NANGO-CC].
            help: "The number of the Greenhouse user the integration acts for, who must be a Site Admin. Find it under Configure, Users: open the user and take the number at the end of the page address. Leave it blank unless we asked for it.",
            secret: false,
            required: false,
            max_len: 20,
            kind: FieldKind::Numeric,
        },
    ],
    fingerprint_field: CLIENT_SECRET,
    permissions_editable: true,
    fix_steps: &[
        "In Greenhouse, go to Configure, then Dev Center, then API Credential Management.",
        "Hover over the credential you created for us and click Edit (the pencil), then open Manage scopes.",
        "Under Harvest, tick each scope listed above, and nothing else. Click Save.",
        "The client ID and secret do not change, so you do not need to send them again.",
    ],
    upstreams: &[&AUTH, &HARVEST],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let token = match token(ctx).await {
            Ok(t) => t,
            Err(result) => return result,
        };
        let token = &token;
        let probes = ctx
            .each(SCOPES, |p| async move {
                let path = p.api.trim_start_matches("GET ");
                let req = ctx
                    .get(ctx.url(&HARVEST, &format!("{path}?per_page=1")))
                    .header("accept", "application/json")
                    .bearer_auth(token.as_str());
                match ctx.send(req, Retry::RATE_LIMITED).await {
                    Ok(a) => resource(&a),
                    Err(why) => Verdict::Unknown(why),
                }
            })
            .await;
        // Every probe refused: not sixteen separate gaps but one cause. A
        // 403 means a missing scope or a `sub` user who is not a Site Admin;
        // the two look the same [AB-V3] ("missing OAuth scope or authorizing
        // user is not a Site Admin").
        if probes.iter().all(|(_, v)| *v == Verdict::Missing) {
            let who = if ctx.optional(USER_ID).is_some() {
                "or the user in User ID is not a Site Admin"
            } else {
                "or its service user lacks access"
            };
            return super::CheckResult {
                status: super::CheckStatus::MissingPermissions,
                missing: vec![format!(
                    "Every Harvest read scope listed above: the credential has no Harvest scopes yet, {who}"
                )],
                checked_at: Some(chrono::Utc::now()),
                detail: format!("Greenhouse issued a token but refused every read: the credential has no Harvest scopes, {who}"),
                field: None,
            };
        }
        ctx.summarize("Greenhouse", probes)
    })
}

/// What a v3 resource answer means [AB-V3], [W6W].
fn resource(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        403 => Verdict::Missing,
        // v3 routes before it authenticates: a 404 on a documented path means
        // the path is gone, not that the scope is missing [W6W].
        404 => Verdict::Unknown("not found (HTTP 404)".into()),
        // A token Greenhouse just issued, refused: the docs do not say why.
        401 => {
            Verdict::Unknown("Greenhouse refused the token it had just issued (HTTP 401)".into())
        }
        _ => engine::undocumented(a),
    }
}

/// The client-credentials grant [GH-AUTH]; `Err` is the final result.
async fn token(ctx: &Ctx<'_>) -> Result<zeroize::Zeroizing<String>, super::CheckResult> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(sub) = ctx.optional(USER_ID) {
        form.push(("sub", sub));
    }
    let req = ctx
        .post(ctx.url(&AUTH, "/token"))
        .basic_auth(ctx.field(CLIENT_ID), Some(ctx.field(CLIENT_SECRET)))
        .form(&form);
    let a = match ctx.send(req, Retry::RATE_LIMITED).await {
        Ok(a) => a,
        Err(why) => {
            return Err(engine::unverified(format!(
                "Greenhouse could not be reached ({why})"
            )))
        }
    };
    if a.status == 200 {
        return a.access_token("Greenhouse");
    }
    if a.ip_refusal() {
        return Err(ctx.ip_blocked("Greenhouse"));
    }
    let error = a.oauth_error();
    let message = a
        .json()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    Err(match (a.status, error.as_deref()) {
        // Unknown client or wrong secret: 401 invalid_client [W6W], RFC 6749 §5.2.
        (400 | 401, Some("invalid_client")) => engine::invalid(
            Some(CLIENT_SECRET),
            "Greenhouse did not accept this client ID and secret. Check you copied both completely. The secret is shown only once: if you no longer have it, rotate it or create a new credential.",
        ),
        // "client_id=… does not contain a valid client ID suffix" (400) [W6W]:
        // the ID itself is malformed. The message quotes the ID, so it is not shown.
        (400, None) if message.contains("client ID suffix") => engine::invalid(
            Some(CLIENT_ID),
            "This is not a complete Greenhouse client ID. Copy it again from Dev Center, API Credential Management, where it stays visible.",
        ),
        // The client may not use this grant at all (RFC 6749 §5.2): Greenhouse
        // partner credentials cannot use client credentials [GH-MIG].
        (400 | 401, Some("unauthorized_client")) => engine::invalid(
            Some(CLIENT_ID),
            "Greenhouse does not allow this credential to be used by an integration like ours. Create it with Partner set to \"Unlisted vendor\" or \"Custom\".",
        ),
        // Anything else (a bad `sub`, a user who is not a Site Admin, a
        // credential without scopes) is undocumented: name the likely causes
        // and leave the decision to staff, on the field it most likely concerns.
        (400 | 401 | 403, _) => {
            let code = error.map(|e| format!(" ({e})")).unwrap_or_default();
            let mut r = if ctx.optional(USER_ID).is_some() {
                engine::unverified(format!(
                    "Greenhouse would not issue a token{code}. Check that User ID is the number of an active Site Admin user (Configure, Users), or leave it blank"
                ))
            } else {
                engine::unverified(format!(
                    "Greenhouse would not issue a token{code}; the credential may have no Harvest scopes yet"
                ))
            };
            r.field = ctx.optional(USER_ID).map(|_| USER_ID);
            r
        }
        (status, _) => engine::unverified(format!("Greenhouse answered the token request with HTTP {status}")),
    })
}

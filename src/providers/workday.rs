//! Workday REST: an "API Client for Integrations" with a non-expiring refresh
//! token for an integration system user. Refresh-token grant, then one
//! workers probe on the tenant's REST endpoint.
//!
//! Workday's own reference is behind a customer login; the facts below come
//! from Workday-authored public code and integrators' guides, each cited:
//! * [WD-PRISM] Workday/prism-python `prism/prism.py` (Workday-authored: token URL
//!   `{base}/ccx/oauth2/{tenant}/token`, credentials in the form body, REST base `{base}/ccx/api/v1/{tenant}`)
//! * [NANGO-WD] https://nango.dev/docs/api-integrations/workday-refresh-token/connect (host examples, token endpoint)
//! * [SF-WD] https://help.salesforce.com/s/articleView?id=platform.br_o_workday_errors_authentication.htm
//!   (token 401 "Invalid Credentials", 404 wrong host, 503 "Invalid Tenant Name")
//! * [IBM-WD] https://www.ibm.com/docs/en/app-connect/13.0.x?topic=workday-obtaining-connection-values (Register API Client
//!   for Integrations, Manage Refresh Tokens for Integrations)
//! * [SAILPOINT-WD] https://documentation.sailpoint.com/connectors/saas/workday/help/saas_connectivity/workday/get_and_put_permission_t.html
//!   (security group domains, Activate Pending Security Policy Changes)
//! * [OPENAPI-CITY] https://openapi.city/providers/workday-staffing (403 "User has insufficient permissions.")
//! * RFC 6749 §5.2 (OAuth error codes `invalid_client`, `invalid_grant`)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

/// No default: the host is the customer's (`wd5-services1.myworkday.com`).
/// When set, this replaces scheme and host; the path stays `/ccx/…/{tenant}/…`.
pub const BASE: Upstream = Upstream {
    env: "KEYDROP_WORKDAY_BASE_URL",
    default: None,
};

const HOST: FieldName = FieldName("host");
const TENANT: FieldName = FieldName("tenant");
const CLIENT_ID: FieldName = FieldName("client_id");
const CLIENT_SECRET: FieldName = FieldName("client_secret");
const REFRESH_TOKEN: FieldName = FieldName("refresh_token");

/// Two layers must both allow reading workers; a 403 cannot tell which is
/// missing [OPENAPI-CITY], so both are reported together.
const ACCESS: &[Permission] = &[
    // Register API Client for Integrations → Scope (Functional Areas) [IBM-WD].
    Permission {
        label: "API client scope (Functional Areas): Staffing",
        api: "GET /ccx/api/v1/{tenant}/workers",
    },
    // Domain security policy, Integration Permissions → Get [SAILPOINT-WD].
    Permission {
        label: "Security group domain, Get: Worker Data: Public Worker Reports",
        api: "GET /ccx/api/v1/{tenant}/workers",
    },
];

pub static PROVIDER: Provider = Provider {
    id: "workday",
    name: "Workday",
    short_name: "Workday",
    credential: "Workday API client for integrations (client ID, client secret and refresh token)",
    notice: Some(
        "This takes a Workday security administrator about fifteen minutes: an integration system user, a security group for it, an API client and a refresh token. The task names below are the ones you type into Workday's search box.",
    ),
    // Task names per [IBM-WD], [SAILPOINT-WD], [NANGO-WD].
    steps: &[
        "Run the task Create Integration System User: give it a user name and password, and untick Require New Password at Next Sign In.",
        "Run Create Security Group with type Integration System Security Group (Unconstrained), and add that user under Integration System Users.",
        "From the group's related actions, choose Security Group, Maintain Domain Permissions for Security Group, and give it Get access to the domains listed below. Then run Activate Pending Security Policy Changes.",
        "Run Register API Client for Integrations: name it \"Keydrop\", keep Non-Expiring Refresh Tokens ticked, and add the scope listed below. Click OK and copy the Client ID and Client Secret (the secret is shown only once).",
        "Run View API Clients, open the API Clients for Integrations tab, and note the Token Endpoint: the host is the part between https:// and /ccx, the tenant the part after /oauth2/.",
        "Open the client, choose API Client, Manage Refresh Tokens for Integrations, pick the integration system user as Workday Account, tick Generate New Refresh Token and copy the refresh token.",
        "Fill in the form below and submit it.",
    ],
    grant: "The API client needs this scope, and its integration system user's security group needs Get on this domain:",
    permissions: ACCESS,
    fields: &[
        Field {
            name: "host",
            label: "Host",
            help: "From the Token Endpoint in View API Clients: the part between https:// and /ccx, for example wd5-services1.myworkday.com.",
            secret: false,
            required: true,
            max_len: 253,
            // Hosts seen in Workday's own examples and integrators' guides [NANGO-WD].
            kind: FieldKind::Host(&["myworkday.com", "workday.com"]),
        },
        Field {
            name: "tenant",
            label: "Tenant",
            help: "From the Token Endpoint in View API Clients: the part after /oauth2/, for example acme.",
            secret: false,
            required: true,
            max_len: 64,
            kind: FieldKind::Slug,
        },
        Field {
            name: "client_id",
            label: "Client ID",
            help: "Shown when you register the API client, and later in View API Clients.",
            secret: false,
            required: true,
            max_len: 200,
            kind: FieldKind::Token,
        },
        Field {
            name: "client_secret",
            label: "Client secret",
            help: "Shown only when you register the API client or generate a new secret. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
        Field {
            name: "refresh_token",
            label: "Refresh token",
            help: "From Manage Refresh Tokens for Integrations for the integration system user. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 1024,
            kind: FieldKind::Token,
        },
    ],
    // The refresh token is the long-lived secret that carries the
    // integration user's identity; it changes whenever a new one is generated.
    fingerprint_field: REFRESH_TOKEN,
    permissions_editable: true,
    fix_steps: &[
        "Run Edit API Client for Integrations (or open the client in View API Clients) and add the Staffing scope.",
        "Give the integration system user's security group Get access to Worker Data: Public Worker Reports (Maintain Domain Permissions for Security Group).",
        "Run Activate Pending Security Policy Changes.",
        "The client and refresh token do not change, so you do not need to send them again.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

/// `https://{host}` or the override, then the documented path. `host` and
/// `tenant` passed validation (host names under Workday's domains, a slug).
fn url(ctx: &Ctx<'_>, path: &str) -> String {
    let base = match ctx.base(&BASE) {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => format!("https://{}", ctx.field(HOST)),
    };
    format!("{base}{path}")
}

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let tenant = ctx.field(TENANT);
        let token = match token(ctx, tenant).await {
            Ok(t) => t,
            Err(result) => return result,
        };
        let req = ctx
            .get(url(ctx, &format!("/ccx/api/v1/{tenant}/workers?limit=1")))
            .header("accept", "application/json")
            .bearer_auth(token.as_str());
        let verdict = match ctx.send(req, Retry::RATE_LIMITED).await {
            Ok(a) => workers(&a),
            Err(why) => Verdict::Unknown(why),
        };
        ctx.summarize(
            "Workday",
            ACCESS.iter().map(|p| (p, verdict.clone())).collect(),
        )
    })
}

fn workers(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // "User has insufficient permissions." [OPENAPI-CITY]
        403 => Verdict::Missing,
        // "Invalid resource or operation": a token for another tenant [OPENAPI-CITY]; undecided.
        401 => Verdict::Unknown("Workday refused the token it had just issued (HTTP 401)".into()),
        _ => engine::undocumented(a),
    }
}

/// The refresh-token grant as Workday's own client sends it, credentials in
/// the body [WD-PRISM]; `Err` is the final result.
async fn token(
    ctx: &Ctx<'_>,
    tenant: &str,
) -> Result<zeroize::Zeroizing<String>, super::CheckResult> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", ctx.field(REFRESH_TOKEN)),
        ("client_id", ctx.field(CLIENT_ID)),
        ("client_secret", ctx.field(CLIENT_SECRET)),
    ];
    let req = ctx
        .post(url(ctx, &format!("/ccx/oauth2/{tenant}/token")))
        .header("accept", "application/json")
        .form(&form);
    // A 503 here means a wrong tenant name [SF-WD]: never retried.
    let a = match ctx.send(req, Retry::RATE_LIMITED).await {
        Ok(a) => a,
        Err(why) => {
            return Err(engine::unverified(format!(
                "Workday could not be reached ({why})"
            )))
        }
    };
    if a.status == 200 {
        return a.access_token("Workday");
    }
    if a.ip_refusal() {
        return Err(ctx.ip_blocked("Workday"));
    }
    let with_field = |mut r: super::CheckResult, f| {
        r.field = Some(f);
        r
    };
    Err(match (a.status, a.oauth_error().as_deref()) {
        // RFC 6749 §5.2: the client failed to authenticate.
        (400 | 401, Some("invalid_client")) => engine::invalid(
            Some(CLIENT_SECRET),
            "Workday did not accept this client ID and secret. Copy them again, or generate a new client secret for the API client.",
        ),
        // RFC 6749 §5.2: the refresh token is invalid, expired or revoked.
        (400 | 401, Some("invalid_grant")) => engine::invalid(
            Some(REFRESH_TOKEN),
            "Workday did not accept this refresh token. Generate a new one (Manage Refresh Tokens for Integrations) and paste it again.",
        ),
        // 401 without an OAuth code: "Invalid Credentials" [SF-WD], which of the three is not said.
        (401, _) => with_field(
            engine::unverified("Workday rejected the client ID, client secret or refresh token (HTTP 401) without saying which"),
            CLIENT_SECRET,
        ),
        (404, _) => with_field(
            engine::unverified("Workday has no token endpoint at this host (HTTP 404). Copy the host from the Token Endpoint in View API Clients"),
            HOST,
        ),
        (503, _) => with_field(
            engine::unverified("Workday answered 503, which it also does for an unknown tenant. Check the tenant name in the Token Endpoint"),
            TENANT,
        ),
        (status, _) => engine::unverified(format!("Workday answered the token request with HTTP {status}")),
    })
}

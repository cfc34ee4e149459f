//! Personio API credentials: OAuth client credentials (v2), then one persons
//! probe that needs the Employees read right.
//!
//! Sources:
//! * [PE-TOKEN] https://developer.personio.de/reference/post_v2-auth-token (form body, client_id and
//!   client_secret; error examples "Invalid Client", "Invalid Credentials", all "Bad Request")
//! * [PE-PERSONS] https://developer.personio.de/reference/get_v2-persons (`limit`, "requires the personio:persons:read scope")
//! * [PE-403] https://developer.personio.de/discuss/66eaa0208463360025fe0990 (403 "Insufficient access scope")
//! * [PE-HELP] https://support.personio.de/hc/en-us/articles/4404623630993-Generate-and-manage-API-credentials (UI steps)
//! * RFC 6749 §5.2 (OAuth error codes)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

pub const BASE: Upstream = Upstream {
    env: "KEYDROP_PERSONIO_BASE_URL",
    default: Some("https://api.personio.de"), // [PE-TOKEN] servers
};

const CLIENT_ID: FieldName = FieldName("client_id");
const CLIENT_SECRET: FieldName = FieldName("client_secret");

/// Access rights as the custom integration's form names them [PE-HELP].
const RIGHTS: &[Permission] = &[Permission {
    label: "Access rights: Employees → Read",
    api: "GET /v2/persons (personio:persons:read)",
}];

pub static PROVIDER: Provider = Provider {
    id: "personio",
    name: "Personio",
    short_name: "Personio",
    credential: "Personio API credentials (client ID and client secret)",
    notice: Some(
        "Creating API credentials needs edit rights for Marketplace Integration and API, and custom integrations need Personio's Core Pro plan.",
    ),
    // Current UI [PE-HELP].
    steps: &[
        "In Personio, go to Marketplace, then Connected Integrations, and click Create custom integration at the top right.",
        "Enter a name such as \"Keydrop\" and click Next.",
        "Under Access rights, tick Read for Employees and choose the Readable employee attributes we asked for. Leave Write unticked.",
        "Click Create integration, then copy the Client ID and the secret: Personio shows the secret only once. Click Finish.",
        "Paste both into the form below and submit it.",
    ],
    grant: "Give the integration this access right (read only):",
    permissions: RIGHTS,
    fields: &[
        Field {
            name: "client_id",
            label: "Client ID",
            help: "Shown when you create the integration, and later in its details under Connected Integrations.",
            secret: false,
            required: true,
            max_len: 200,
            kind: FieldKind::Token,
        },
        Field {
            name: "client_secret",
            label: "Client secret",
            help: "Shown only once, when you create the integration. If you no longer have it, create a new one. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
    ],
    fingerprint_field: CLIENT_SECRET,
    permissions_editable: true,
    fix_steps: &[
        "In Personio, go to Marketplace, Connected Integrations, and open the integration you created for us.",
        "Under Access rights, tick Read for Employees and save. If the rights cannot be changed, create a new integration with them and send it through a new link.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let token = match token(ctx).await {
            Ok(t) => t,
            Err(result) => return result,
        };
        let req = ctx
            .get(ctx.url(&BASE, "/v2/persons?limit=1"))
            .header("accept", "application/json")
            .bearer_auth(token.as_str());
        let verdict = match ctx.send(req, Retry::RATE_LIMITED).await {
            Ok(a) => persons(&a),
            Err(why) => Verdict::Unknown(why),
        };
        ctx.summarize("Personio", vec![(&RIGHTS[0], verdict)])
    })
}

fn persons(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => Verdict::Granted,
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // "Insufficient access scope" [PE-403].
        403 => Verdict::Missing,
        _ => engine::undocumented(a),
    }
}

/// [PE-TOKEN]; `Err` is the final result.
async fn token(ctx: &Ctx<'_>) -> Result<zeroize::Zeroizing<String>, super::CheckResult> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", ctx.field(CLIENT_ID)),
        ("client_secret", ctx.field(CLIENT_SECRET)),
    ];
    let req = ctx
        .post(ctx.url(&BASE, "/v2/auth/token"))
        .header("accept", "application/json")
        .form(&form);
    let a = match ctx.send(req, Retry::RATE_LIMITED).await {
        Ok(a) => a,
        Err(why) => {
            return Err(engine::unverified(format!(
                "Personio could not be reached ({why})"
            )))
        }
    };
    if a.status == 200 {
        return a.access_token("Personio");
    }
    if a.ip_refusal() {
        return Err(ctx.ip_blocked("Personio"));
    }
    Err(match (a.status, a.oauth_error().as_deref()) {
        // "Bad Request - Invalid Client" / "Invalid Credentials" [PE-TOKEN], RFC 6749 §5.2.
        (400 | 401, Some("invalid_client" | "unauthorized_client")) => engine::invalid(
            Some(CLIENT_SECRET),
            "Personio did not accept this client ID and secret. Copy both again; if the secret is lost, create a new integration. Check too that the credential is not disabled.",
        ),
        (status, code) => engine::unverified(format!(
            "Personio answered the token request with HTTP {status}{}",
            code.map(|c| format!(" ({c})")).unwrap_or_default()
        )),
    })
}

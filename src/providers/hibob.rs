//! HiBob (Bob) API service users: Basic auth with the service user's ID and
//! token. Validity from the permission-free field list, then a people
//! search that needs the service user's permission group.
//!
//! Sources:
//! * [HB-AUTH] https://apidocs.hibob.com/reference/authorization (Basic auth, service user ID and token)
//! * [HB-SU] https://apidocs.hibob.com/docs/api-service-users (creating service users)
//! * [HB-FIELDS] https://apidocs.hibob.com/reference/get_company-people-fields ("does not require any permissions")
//! * [HB-SEARCH] https://apidocs.hibob.com/reference/post_people-search and
//!   https://apidocs.hibob.com/docs/people-read-api-contract (body, silent omission)
//! * [HB-ERR] https://apidocs.hibob.com/reference/error-handling (401, 403, 404, 429 meanings)
//! * [HB-RATE] https://apidocs.hibob.com/reference/rate-limiting (WAF blocks repeated 401/403: never retried)
//! * [MERGE-HB] https://help.merge.dev/en/articles/6361857-hibob-service-user-authentication (UI labels)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};

pub const BASE: Upstream = Upstream {
    env: "KEYDROP_HIBOB_BASE_URL",
    default: Some("https://api.hibob.com"), // [HB-FIELDS] "https://api.hibob.com/v1/…"
};

const ID: FieldName = FieldName("service_user_id");
const TOKEN: FieldName = FieldName("service_user_token");

/// The permission group settings, as Bob's People's data tab names them [MERGE-HB].
const PEOPLE: &[Permission] = &[Permission {
    label: "People's data: Whose data can members access? (your employees) and View selected employees' Basic info sections",
    api: "POST /v1/people/search",
}];

pub static PROVIDER: Provider = Provider {
    id: "hibob",
    name: "HiBob",
    short_name: "Bob",
    credential: "HiBob API service user (ID and token)",
    notice: None,
    // [HB-SU], [MERGE-HB].
    steps: &[
        "In Bob, open System settings (the gear), then Integrations, and click Manage on the Service users tile.",
        "Click Create service user, enter a Display name such as \"Keydrop\", and click Create.",
        "Copy the ID and the Token into the form below: Bob shows the token only once.",
        "Click Go to permission groups (or System settings, Account, Permission groups), then Add permission group, Service user. Name it, select the new service user and click Create.",
        "In the group's People's data tab, set Whose data can members access? to the employees we need, and under Edit permissions tick View selected employees' Basic info sections (plus any other sections we asked for). Save.",
        "Submit the form below.",
    ],
    grant: "A new service user can read nothing until its permission group allows it. In the group's People's data tab, set:",
    permissions: PEOPLE,
    fields: &[
        Field {
            name: "service_user_id",
            label: "Service user ID",
            help: "Shown with the token when you create the service user, and later in the Service users list.",
            secret: false,
            required: true,
            max_len: 200,
            kind: FieldKind::Token,
        },
        Field {
            name: "service_user_token",
            label: "Service user token",
            help: "Shown only once, when you create the service user. If you no longer have it, refresh the token and paste the new one. It is encrypted as soon as it reaches us.",
            secret: true,
            required: true,
            max_len: 512,
            kind: FieldKind::Token,
        },
    ],
    fingerprint_field: TOKEN,
    permissions_editable: true,
    fix_steps: &[
        "In Bob, go to System settings, Account, Permission groups, and open the group of the service user you created for us.",
        "In the People's data tab, set Whose data can members access? and tick View selected employees' Basic info sections.",
        "Save. The ID and token do not change, so you do not need to send them again.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        let (id, token) = (ctx.field(ID), ctx.field(TOKEN));
        // Validity: needs no permission at all [HB-FIELDS].
        let req = ctx
            .get(ctx.url(&BASE, "/v1/company/people/fields"))
            .header("accept", "application/json")
            .basic_auth(id, Some(token));
        match ctx.send(req, Retry::RATE_LIMITED).await {
            Ok(a) if (200..300).contains(&a.status) => {}
            Ok(a) if a.ip_refusal() => return ctx.ip_blocked("Bob"),
            // "The request could not be authenticated. Check your service user credentials" [HB-ERR].
            Ok(a) if a.status == 401 => {
                return engine::invalid(
                    Some(TOKEN),
                    "Bob did not accept this service user ID and token. Copy both again; a refreshed token replaces the old one, and personal API tokens no longer work.",
                )
            }
            Ok(a) => return engine::unverified(format!("Bob answered HTTP {}", a.status)),
            Err(why) => return engine::unverified(format!("Bob could not be reached ({why})")),
        }
        // People read: one field, active employees only [HB-SEARCH].
        let req = ctx
            .post(ctx.url(&BASE, "/v1/people/search"))
            .header("accept", "application/json")
            .basic_auth(id, Some(token))
            .json(&serde_json::json!({"fields": ["root.id"], "showInactive": false}));
        let verdict = match ctx.send(req, Retry::RATE_LIMITED).await {
            Ok(a) => people(&a),
            Err(why) => Verdict::Unknown(why),
        };
        ctx.summarize("Bob", vec![(&PEOPLE[0], verdict)])
    })
}

fn people(a: &Answer) -> Verdict {
    match a.status {
        200..=299 => {
            // Fields without permission are silently left out [HB-SEARCH]:
            // no employees, or none carrying their id, means the group
            // grants no people's data.
            let employees = a
                .json()
                .and_then(|v| v.get("employees").and_then(|e| e.as_array()).cloned())
                .unwrap_or_default();
            if employees.is_empty() {
                Verdict::Unknown(
                    "Bob returned no employees; the permission group may cover nobody".into(),
                )
            } else {
                Verdict::Granted
            }
        }
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // "The service user does not have permission to access this resource" [HB-ERR].
        403 => Verdict::Missing,
        _ => engine::undocumented(a),
    }
}

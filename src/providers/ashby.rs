//! Ashby API keys: RPC-style POSTs with the key as Basic username. Validity
//! first (`apiKey.info`), then one list call per module the integration reads.
//!
//! Sources:
//! * [AS-AUTH] https://developers.ashbyhq.com/docs/authentication (401 missing key, 403 wrong or
//!   deactivated key, 403 `missing_endpoint_permission`; modules with Read/Write; `Accept` header)
//! * [AS-RESP] https://developers.ashbyhq.com/docs/responses (`success:false` with `errorInfo`)
//! * [AS-APIKEY] https://developers.ashbyhq.com/reference/api-key (`apiKey.info` needs `apiKeysRead`)
//! * [AS-OAS] per-endpoint "Requires the `<perm>` permission" at https://developers.ashbyhq.com/reference/<endpoint>
//! * [MERGE] https://help.merge.dev/en/articles/5431238-ashby-api-key (UI steps, "<Module>: Read" labels)
//! * [AB-AS-T] airbytehq/airbyte source-ashby mock-server tests (both 200 and 403 permission forms)

use super::engine::{self, Answer, Ctx, Retry, Verdict};
use super::{BoxCheck, Field, FieldKind, FieldName, Permission, Provider, Upstream};
use serde_json::Value;

pub const BASE: Upstream = Upstream {
    env: "KEYDROP_ASHBY_BASE_URL",
    default: Some("https://api.ashbyhq.com"), // [AS-AUTH]
};

const API_KEY: FieldName = FieldName("api_key");

/// The `Accept` header of Ashby's own examples [AS-AUTH].
const ACCEPT: &str = "application/json; version=1";

/// Module permissions as the key's permission page names them ("<Module>:
/// Read" [MERGE], module names [AS-AUTH]); `api` is the endpoint probed,
/// which needs exactly that permission [AS-OAS].
const MODULES: &[Permission] = &[
    Permission {
        label: "Candidates: Read",
        api: "candidate.list",
    }, // candidatesRead
    Permission {
        label: "Jobs: Read",
        api: "job.list",
    }, // jobsRead
    Permission {
        label: "Interviews: Read",
        api: "interview.list",
    }, // interviewsRead
    Permission {
        label: "Hiring Process: Read",
        api: "source.list",
    }, // hiringProcessMetadataRead
    Permission {
        label: "Organization: Read",
        api: "user.list",
    }, // organizationRead
    Permission {
        label: "Offers: Read",
        api: "offer.list",
    }, // offersRead
];

pub static PROVIDER: Provider = Provider {
    id: "ashby",
    name: "Ashby",
    short_name: "Ashby",
    credential: "Ashby API key",
    notice: None,
    // [MERGE], [AS-AUTH].
    steps: &[
        "In Ashby, click Admin in the top navigation bar, then go to Integrations, then API Keys.",
        "Click + New, enter a name such as \"Keydrop - your company name\" and click Create API Key.",
        "Grant Read on each module listed below (no Write permissions are needed).",
        "Turn on \"Allow access to confidential jobs and projects?\" only if we asked for confidential data; otherwise leave it off.",
        "Save, copy the key, and paste it into the form below.",
    ],
    grant: "Give the key Read on each of these modules:",
    permissions: MODULES,
    fields: &[Field {
        name: "api_key",
        label: "API key",
        help: "The key you created under Admin, Integrations, API Keys. If you can no longer see it, create a new one. It is encrypted as soon as it reaches us.",
        secret: true,
        required: true,
        max_len: 512,
        kind: FieldKind::Token,
    }],
    fingerprint_field: API_KEY,
    // Keys are editable by an Admin ("Editing API Key Permissions") [AS-AUTH].
    permissions_editable: true,
    fix_steps: &[
        "In Ashby, go to Admin, then Integrations, then API Keys.",
        "Open the key you created for us and edit its permissions.",
        "Grant Read on each module listed above and save.",
        "The key does not change, so you do not need to send it again.",
    ],
    upstreams: &[&BASE],
    check: Some(check),
};

fn check<'a>(ctx: &'a Ctx<'a>) -> BoxCheck<'a> {
    Box::pin(async move {
        // apiKey.info needs API Keys: Read, which we do not ask for [AS-APIKEY].
        // It still proves the key: a missing module permission is an answer
        // to an authenticated key, a wrong key gets a plain 403 [AS-AUTH].
        match call(ctx, "apiKey.info", serde_json::json!({})).await {
            Ok(a) => match meaning(&a) {
                Verdict::Granted | Verdict::Missing => {}
                Verdict::Rejected { field, detail } => return engine::invalid(field, detail),
                Verdict::IpBlocked => return ctx.ip_blocked("Ashby"),
                Verdict::Unknown(why) => {
                    return engine::unverified(format!(
                        "Ashby could not be checked (apiKey.info: {why})"
                    ))
                }
            },
            Err(why) => return engine::unverified(format!("Ashby could not be reached ({why})")),
        }
        let probes = ctx
            .each(MODULES, |p| async move {
                match call(ctx, p.api, serde_json::json!({"limit": 1})).await {
                    Ok(a) => meaning(&a),
                    Err(why) => Verdict::Unknown(why),
                }
            })
            .await;
        ctx.summarize("Ashby", probes)
    })
}

async fn call(ctx: &Ctx<'_>, endpoint: &str, body: Value) -> Result<Answer, String> {
    // "request parameters must be sent in JSON bodies" with Content-Type
    // application/json (set by .json()); key as username, blank password [AS-AUTH].
    let req = ctx
        .post(ctx.url(&BASE, &format!("/{endpoint}")))
        .header("accept", ACCEPT)
        .basic_auth(ctx.field(API_KEY), Some(""))
        .json(&body);
    ctx.send(req, Retry::RATE_LIMITED).await
}

/// Whether an Ashby error body names `missing_endpoint_permission`, in any
/// of the shapes seen: `errorInfo.code`, `errors: ["…"]`, `errors: [{code|message}]` [AS-RESP], [AB-AS-T].
fn lacks_permission(v: &Value) -> bool {
    const CODE: &str = "missing_endpoint_permission";
    let info = v.pointer("/errorInfo/code").and_then(Value::as_str) == Some(CODE);
    let errors = v
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errs| {
            errs.iter().any(|e| {
                e.as_str() == Some(CODE)
                    || e.get("code").and_then(Value::as_str) == Some(CODE)
                    || e.get("message").and_then(Value::as_str) == Some(CODE)
            })
        });
    info || errors
}

fn meaning(a: &Answer) -> Verdict {
    let body = a.json().unwrap_or(Value::Null);
    match a.status {
        // HTTP 200 is not success by itself: "What would be 4XX errors will
        // return 200 with success being false" [AS-RESP].
        200 if body.get("success").and_then(Value::as_bool) == Some(true) => Verdict::Granted,
        200 | 403 if lacks_permission(&body) => Verdict::Missing,
        200 => Verdict::Unknown(format!(
            "Ashby reported an error ({})",
            body.pointer("/errorInfo/code")
                .and_then(Value::as_str)
                .unwrap_or("no error code")
                .chars()
                .take(64)
                .collect::<String>()
        )),
        _ if a.ip_refusal() => Verdict::IpBlocked,
        // "When the provided key is wrong or deactivated, the API will respond
        // with a 403"; 401 only when no key was sent [AS-AUTH].
        401 | 403 => Verdict::Rejected {
            field: Some(API_KEY),
            detail: "Ashby did not accept this API key: it is wrong or has been deactivated. Check you copied all of it.".into(),
        },
        _ => engine::undocumented(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn every_documented_ashby_answer_has_its_meaning() {
        assert_eq!(
            meaning(&answer(200, r#"{"success":true,"results":[]}"#)),
            Verdict::Granted
        );
        for missing in [
            r#"{"success":false,"errorInfo":{"code":"missing_endpoint_permission","message":"x"}}"#,
            r#"{"success":false,"errors":["missing_endpoint_permission"]}"#,
            r#"{"success":false,"errors":[{"message":"missing_endpoint_permission"}]}"#,
        ] {
            assert_eq!(
                meaning(&answer(200, missing)),
                Verdict::Missing,
                "{missing}"
            );
            assert_eq!(
                meaning(&answer(403, missing)),
                Verdict::Missing,
                "{missing}"
            );
        }
        assert!(matches!(
            meaning(&answer(403, "Forbidden")),
            Verdict::Rejected { .. }
        ));
        assert!(matches!(
            meaning(&answer(401, "Unauthorized")),
            Verdict::Rejected { .. }
        ));
        assert!(matches!(
            meaning(&answer(
                200,
                r#"{"success":false,"errors":null,"errorInfo":null}"#
            )),
            Verdict::Unknown(_)
        ));
        assert!(matches!(meaning(&answer(502, "")), Verdict::Unknown(_)));
    }
}

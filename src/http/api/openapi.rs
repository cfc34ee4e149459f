//! The API's contract, generated from the code: `utoipa` reads the handlers'
//! `#[utoipa::path]` attributes and the view types, and the document is
//! served at `GET /api/v1/openapi.json`. The contract test
//! (`scripts/contract-test`, Schemathesis) holds the server to it.

use super::views::{
    AuditEventView, AuditPage, CreatedLink, EmailStatus, ErrorBody, ErrorDetail, LinkList,
    LinkView, NewLink, ReasonBody, Revealed, SecretList, SecretView,
};
use super::{audit, requests, schema, secrets};
use crate::providers::{CheckResult, CheckStatus};
use crate::store::requests::LinkState;
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToResponse};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keydrop internal API",
        version = "1",
        description = "Staff API of Keydrop, a secure key drop, served on the internal listener only. \
Every /api/v1 endpoint except this document needs `Authorization: Bearer <staff token>` (the scheme \
name is case-insensitive); a missing, wrong, expired or revoked token is 401, a valid token without \
the scope is 403, too many failed tokens from one address is 429 with Retry-After. Every error, \
including 404 for an unknown path, 405 for a method a path does not answer (with `Allow`) and 415 \
for a body that is not `application/json`, is `{\"error\":{\"code\",\"message\"}}` with a message \
written for a person. Query parameters a list does not know are a 400 (`invalid_filter`), as are \
unknown status or provider values and a `limit` outside 1-1000."
    ),
    servers((url = "/", description = "the internal listener (KEYDROP_INTERNAL_ADDR)")),
    paths(
        requests::create, requests::list, requests::revoke, requests::resend,
        secrets::list, secrets::show, secrets::shred, secrets::reveal, secrets::ingested,
        secrets::check, audit::list, openapi_doc,
    ),
    components(
        schemas(
            LinkView, CreatedLink, LinkList, LinkState, EmailStatus, NewLink, SecretView, SecretList,
            Revealed, ReasonBody, CheckResult, CheckStatus, AuditEventView, AuditPage, ErrorBody,
            ErrorDetail, schema::ProviderId, schema::SecretStatus,
        ),
        responses(ErrorResponse)
    ),
    modifiers(&StaffToken, &CommonResponses),
    security(("staffToken" = [])),
)]
struct ApiDoc;

/// The `Error` response every operation refers to.
pub struct ErrorResponse;

impl<'r> ToResponse<'r> for ErrorResponse {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let content = Content::new(Some(Ref::from_schema_name("Error")));
        let response = ResponseBuilder::new()
            .description("An error, with a stable `code` and a `message` for a person")
            .content("application/json", content)
            .build();
        ("Error", response.into())
    }
}

/// The bearer scheme: staff tokens from `keydrop token create`.
struct StaffToken;

impl Modify for StaffToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("A staff token (`kds_…`) from `keydrop token create`".into());
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("staffToken", SecurityScheme::Http(scheme));
    }
}

/// Answers any authenticated operation can give, whatever it does: a bad
/// token (401), too many bad tokens (429), the database away (503).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let error = || RefOr::Ref(Ref::from_response_name("Error"));
        for (path, item) in doc.paths.paths.iter_mut() {
            if path.ends_with("/openapi.json") {
                continue;
            }
            let ops: [&mut Option<Operation>; 4] = [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
            ];
            for op in ops.into_iter().flatten() {
                for code in ["401", "429", "503"] {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(error);
                }
            }
        }
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the API document serialises")
});

/// This document (no token needed).
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")),
    security(())
)]
pub(super) async fn openapi_doc() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The document as a value, for tests and tools.
pub fn document() -> serde_json::Value {
    serde_json::from_str(&DOCUMENT).expect("the API document is JSON")
}

#[cfg(test)]
mod tests {
    use super::document;

    #[test]
    fn the_document_describes_what_the_server_accepts_for_a_new_link() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let new_link = &doc["components"]["schemas"]["NewLink"];
        assert_eq!(
            new_link["required"],
            serde_json::json!(["organization", "provider"])
        );
        let props = &new_link["properties"];
        assert_eq!(
            props["max_uses"]["type"],
            serde_json::json!(["integer", "null"])
        );
        assert_eq!(
            props["expires_in"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["staffToken"]["scheme"],
            "bearer"
        );
        let ops: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(ops, 12, "eleven operations and this document");
    }
}

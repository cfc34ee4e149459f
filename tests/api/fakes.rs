//! Local fake provider APIs speaking the HTTP of Greenhouse (auth + Harvest
//! v1/v3), Lever, Ashby and BambooHR, configurable per test.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const GH_CLIENT_ID: &str = "gh-client-id-1";
pub const GH_CLIENT_SECRET: &str = "gh-client-SECRET-9876";
pub const GH_BEARER: &str = "gh-bearer-TOKEN-from-fake-5555";
pub const LEGACY_KEY: &str = "legacy-harvest-KEY-4444";
pub const LEVER_KEY: &str = "lever-KEY-3333";
pub const ASHBY_KEY: &str = "ashby-KEY-2222";
pub const BAMBOO_KEY: &str = "bamboo-KEY-1111";
pub const BAMBOO_DOMAIN: &str = "acme";

/// How the fake behaves; change it between requests with [`Fake::set`].
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Resources/endpoints answering 403 (or Ashby's permission error).
    pub denied: Vec<String>,
    /// Delay before every answer.
    pub delay: Duration,
    /// The first N requests to each path answer 429 with `Retry-After: 1`.
    pub rate_limit_first: usize,
    /// Every request is refused because of an IP allowlist.
    pub ip_blocked: bool,
    /// Every resource answers this status instead.
    pub status: Option<u16>,
    /// Every request is redirected to this URL.
    pub redirect_to: Option<String>,
}

#[derive(Default)]
pub struct Seen {
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// "METHOD path" of every request.
    pub requests: Mutex<Vec<String>>,
    pub bodies: Mutex<Vec<String>>,
    hits: Mutex<HashMap<String, usize>>,
}

pub struct Fake {
    pub url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    pub seen: Arc<Seen>,
}

type Shared = (Arc<Mutex<Behaviour>>, Arc<Seen>);

impl Fake {
    pub async fn start(b: Behaviour) -> Self {
        let behaviour = Arc::new(Mutex::new(b));
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .fallback(handle)
            .with_state((behaviour.clone(), seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            behaviour,
            seen,
        }
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }

    pub fn requests(&self) -> Vec<String> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// Environment pointing every provider at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        keydrop::providers::live::Upstreams::default()
            .all()
            .into_iter()
            .map(|(k, _)| (k, self.url.clone()))
            .collect()
    }
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = String::from_utf8(STANDARD.decode(v).ok()?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn is_basic(headers: &HeaderMap, user: &str, pass: &str) -> bool {
    basic(headers).is_some_and(|(u, p)| u == user && p == pass)
}

async fn handle(State((behaviour, seen)): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    seen.requests
        .lock()
        .unwrap()
        .push(format!("{} {}", parts.method, parts.uri));
    seen.bodies
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let b = behaviour.lock().unwrap().clone();
    tokio::time::sleep(b.delay).await;
    let resp = answer(&b, &seen, &parts.method, &path, &parts.headers, &body);
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

fn answer(
    b: &Behaviour,
    seen: &Seen,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(to) = &b.redirect_to {
        return (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response();
    }
    if b.ip_blocked {
        return (
            StatusCode::FORBIDDEN,
            "Request not allowed from this IP address",
        )
            .into_response();
    }
    let hits = {
        let mut h = seen.hits.lock().unwrap();
        let n = h.entry(path.to_owned()).or_default();
        *n += 1;
        *n
    };
    if hits <= b.rate_limit_first {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response();
    }
    let denied = |name: &str| b.denied.iter().any(|d| d == name);
    let ok = || (StatusCode::OK, axum::Json(json!([{"id": 1}]))).into_response();
    let status = |fallback: Response| match b.status {
        Some(s) => StatusCode::from_u16(s).unwrap().into_response(),
        None => fallback,
    };

    // Greenhouse OAuth token endpoint.
    if path == "/token" && method == Method::POST {
        let form = String::from_utf8_lossy(body);
        if !form.contains("grant_type=client_credentials") {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "unsupported_grant_type"})),
            )
                .into_response();
        }
        if !is_basic(headers, GH_CLIENT_ID, GH_CLIENT_SECRET) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "invalid_client"})),
            )
                .into_response();
        }
        return axum::Json(
            json!({"access_token": GH_BEARER, "token_type": "bearer", "expires_in": 3600}),
        )
        .into_response();
    }
    if let Some(resource) = path.strip_prefix("/v3/") {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if bearer != Some(&format!("Bearer {GH_BEARER}")) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if denied(resource) {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"error": "forbidden"})),
            )
                .into_response();
        }
        return status(ok());
    }
    if let Some(resource) = path.strip_prefix("/v1/") {
        // Greenhouse Harvest v1 and Lever share the /v1 prefix; tell them apart by key.
        if is_basic(headers, LEGACY_KEY, "") {
            if denied(resource) {
                return (StatusCode::FORBIDDEN, axum::Json(json!({"message": "This API Key does not have permission for this endpoint"}))).into_response();
            }
            return status(ok());
        }
        if is_basic(headers, LEVER_KEY, "") {
            if denied(resource) {
                return StatusCode::FORBIDDEN.into_response();
            }
            return status(ok());
        }
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Invalid Basic Auth credentials"})),
        )
            .into_response();
    }
    if method == Method::POST && !path.starts_with("/api/") {
        // Ashby RPC-style endpoints.
        if !is_basic(headers, ASHBY_KEY, "") {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"success": false, "errors": ["invalid_api_key"]})),
            )
                .into_response();
        }
        let endpoint = path.trim_start_matches('/');
        if endpoint != "apiKey.info" && denied(endpoint) {
            return axum::Json(json!({"success": false, "errorInfo": {"code": "missing_endpoint_permission"}, "errors": ["missing_endpoint_permission"]})).into_response();
        }
        return status(axum::Json(json!({"success": true, "results": []})).into_response());
    }
    if let Some(rest) = path.strip_prefix("/api/gateway.php/") {
        let (domain, endpoint) = rest.split_once("/v1/").unwrap_or((rest, ""));
        if domain != BAMBOO_DOMAIN {
            return StatusCode::NOT_FOUND.into_response();
        }
        if !is_basic(headers, BAMBOO_KEY, "x") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if denied(endpoint) {
            return StatusCode::FORBIDDEN.into_response();
        }
        return status(axum::Json(json!({"employees": []})).into_response());
    }
    StatusCode::NOT_FOUND.into_response()
}

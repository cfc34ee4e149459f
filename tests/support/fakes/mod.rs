//! Local fake provider APIs, one listener per provider, each speaking that
//! provider's HTTP as its documentation (cited in `src/providers/<p>.rs`)
//! describes it: method, path, auth and headers are checked, a path the real
//! API does not have answers 404, and failures carry the documented status
//! and body. Behaviour is configurable per test.

mod ashby;
mod bamboohr;
mod greenhouse;
mod hibob;
mod lever;
mod personio;
mod rippling;
mod smartrecruiters;
mod workable;
mod workday;

pub use ashby::{ASHBY_DEACTIVATED_KEY, ASHBY_KEY};
pub use bamboohr::{BAMBOO_DISABLED_KEY, BAMBOO_DOMAIN, BAMBOO_KEY};
pub use greenhouse::{
    GH_BEARER, GH_CLIENT_ID, GH_CLIENT_SECRET, GH_NON_ADMIN_USER, GH_USER, LEGACY_KEY,
};
pub use hibob::{HIBOB_ID, HIBOB_TOKEN};
pub use lever::{LEVER_EU_KEY, LEVER_KEY};
pub use personio::{PERSONIO_ID, PERSONIO_SECRET};
pub use rippling::RIPPLING_TOKEN;
pub use smartrecruiters::SR_KEY;
pub use workable::{WORKABLE_SUBDOMAIN, WORKABLE_TOKEN};
pub use workday::{WD_CLIENT_ID, WD_CLIENT_SECRET, WD_HOST, WD_REFRESH, WD_TENANT};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fakes behave; change it between requests with [`Fake::set`].
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Resources/endpoints answering "missing permission" (the last API path
    /// segment, e.g. `offers`, `job.list`, `persons`), `*` for all.
    pub denied: Vec<String>,
    /// Delay before every answer.
    pub delay: Duration,
    /// The first N requests to each path are rate limited.
    pub rate_limit_first: usize,
    /// The status of those answers (429 unless set; BambooHR also used 503).
    pub rate_limit_status: Option<u16>,
    /// Their `Retry-After` (seconds or an HTTP date; "1" unless set).
    pub retry_after: Option<String>,
    /// Every request is refused because of an IP allowlist.
    pub ip_blocked: bool,
    /// Every resource (not token) request answers this status instead.
    pub status: Option<u16>,
    /// Every request is redirected to this URL.
    pub redirect_to: Option<String>,
    /// A barrier: each resource (not token) request is held until this many
    /// are in flight at once, then all go on together. Requests sent one
    /// after another never fill it: each is let go after [`BARRIER_GIVE_UP`],
    /// and `max_in_flight` shows how many there were.
    pub hold_until_in_flight: Option<usize>,
}

/// How long a request waits at the barrier for the others before going on.
pub const BARRIER_GIVE_UP: Duration = Duration::from_secs(5);

impl Behaviour {
    pub fn denies(&self, name: &str) -> bool {
        self.denied.iter().any(|d| d == name || d == "*")
    }
}

#[derive(Default)]
pub struct Seen {
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// "METHOD path?query" of every request, all fakes together.
    pub requests: Mutex<Vec<String>>,
    pub bodies: Mutex<Vec<String>>,
    /// Header maps of every request, in the same order.
    pub headers: Mutex<Vec<HeaderMap>>,
    hits: Mutex<HashMap<String, usize>>,
    /// Woken whenever a request arrives (for the barrier).
    arrived: tokio::sync::Notify,
}

/// One request as a fake provider sees it.
pub struct Req<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Req<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn basic(&self) -> Option<(String, String)> {
        let v = self.header("authorization")?.strip_prefix("Basic ")?;
        let raw = String::from_utf8(STANDARD.decode(v).ok()?).ok()?;
        let (u, p) = raw.split_once(':')?;
        Some((u.to_owned(), p.to_owned()))
    }

    pub fn is_basic(&self, user: &str, pass: &str) -> bool {
        self.basic().is_some_and(|(u, p)| u == user && p == pass)
    }

    pub fn is_bearer(&self, token: &str) -> bool {
        self.header("authorization") == Some(&format!("Bearer {token}"))
    }

    /// The form-encoded body as pairs.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body)
            .into_owned()
            .collect()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.body).ok()
    }

    pub fn accepts_json(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.starts_with("application/json"))
    }
}

type Answer = fn(&Behaviour, &Req) -> Response;

/// The fakes of every provider, sharing one behaviour and one log.
pub struct Fake {
    /// The Greenhouse fake's base URL.
    pub url: String,
    urls: Vec<(&'static str, String)>,
    behaviour: Arc<Mutex<Behaviour>>,
    pub seen: Arc<Seen>,
}

type Shared = (Arc<Mutex<Behaviour>>, Arc<Seen>, Answer);

impl Fake {
    pub async fn start(b: Behaviour) -> Self {
        let behaviour = Arc::new(Mutex::new(b));
        let seen = Arc::new(Seen::default());
        // Upstream variable(s) → the fake answering for them.
        let fakes: [(&[&'static str], Answer); 11] = [
            (
                &[
                    "KEYDROP_GREENHOUSE_AUTH_URL",
                    "KEYDROP_GREENHOUSE_HARVEST_URL",
                ],
                greenhouse::answer,
            ),
            (&["KEYDROP_LEVER_BASE_URL"], lever::answer_us),
            (&["KEYDROP_LEVER_EU_BASE_URL"], lever::answer_eu),
            (&["KEYDROP_ASHBY_BASE_URL"], ashby::answer),
            (&["KEYDROP_BAMBOOHR_BASE_URL"], bamboohr::answer),
            (&["KEYDROP_WORKDAY_BASE_URL"], workday::answer),
            (&["KEYDROP_HIBOB_BASE_URL"], hibob::answer),
            (&["KEYDROP_PERSONIO_BASE_URL"], personio::answer),
            (&["KEYDROP_WORKABLE_BASE_URL"], workable::answer),
            (
                &["KEYDROP_SMARTRECRUITERS_BASE_URL"],
                smartrecruiters::answer,
            ),
            (&["KEYDROP_RIPPLING_BASE_URL"], rippling::answer),
        ];
        let mut urls = Vec::new();
        for (vars, answer) in fakes {
            let app = Router::new().fallback(handle).with_state((
                behaviour.clone(),
                seen.clone(),
                answer,
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            for var in vars {
                urls.push((*var, url.clone()));
            }
        }
        Self {
            url: urls[0].1.clone(),
            urls,
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

    /// Environment pointing every provider at its fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.urls.clone()
    }
}

async fn handle(State((behaviour, seen, answer)): State<Shared>, req: Request) -> Response {
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
    seen.headers.lock().unwrap().push(parts.headers.clone());
    let b = behaviour.lock().unwrap().clone();
    let held = b.hold_until_in_flight.filter(|_| !path.contains("token"));
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    seen.arrived.notify_waiters();
    if let Some(n) = held {
        let give_up = tokio::time::Instant::now() + BARRIER_GIVE_UP;
        loop {
            // Registered before the count is read, so no arrival is missed.
            let next = seen.arrived.notified();
            if seen.in_flight.load(Ordering::SeqCst) >= n
                || tokio::time::timeout_at(give_up, next).await.is_err()
            {
                break;
            }
        }
        // The last to arrive wakes the others; they see the full count.
        seen.arrived.notify_waiters();
    }
    tokio::time::sleep(b.delay).await;
    let resp = common(&b, &seen, &path).unwrap_or_else(|| {
        answer(
            &b,
            &Req {
                method: &parts.method,
                path: &path,
                query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &body,
            },
        )
    });
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

/// What every fake does before its provider's own rules.
fn common(b: &Behaviour, seen: &Seen, path: &str) -> Option<Response> {
    if let Some(to) = &b.redirect_to {
        return Some((StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response());
    }
    if b.ip_blocked {
        return Some(
            (
                StatusCode::FORBIDDEN,
                "Request not allowed from this IP address",
            )
                .into_response(),
        );
    }
    let hits = {
        let mut h = seen.hits.lock().unwrap();
        let n = h.entry(path.to_owned()).or_default();
        *n += 1;
        *n
    };
    if hits <= b.rate_limit_first {
        let status = StatusCode::from_u16(b.rate_limit_status.unwrap_or(429)).unwrap();
        let after = b.retry_after.clone().unwrap_or_else(|| "1".into());
        return Some((status, [(header::RETRY_AFTER, after)], "slow down").into_response());
    }
    if let Some(s) = b.status {
        if !path.contains("token") {
            return Some(StatusCode::from_u16(s).unwrap().into_response());
        }
    }
    None
}

/// A JSON answer.
pub fn json(status: u16, v: serde_json::Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
}

/// What a path the real API does not have gets.
pub fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The `limit=1`-style query a probe must send.
pub fn has_query(r: &Req, pair: &str) -> bool {
    r.query.split('&').any(|p| p == pair)
}

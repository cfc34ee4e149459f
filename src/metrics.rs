//! Prometheus metrics, served at `GET /metrics` on the internal listener.
//!
//! Counters (requests, submissions, reveals, check outcomes, shreds) count what
//! this process did since it started; Prometheus sums them across replicas.
//! Gauges about stored data (rows per KEK id, secrets per status) are read from
//! the database at scrape time, so every replica reports the same, global
//! numbers. Nothing here carries a secret, a token or a raw URI: routes are the
//! matched patterns (`/d/{token}`), never the paths.
//!
//! `prometheus-client` (the Prometheus project's own Rust client) was chosen
//! over `metrics` + `metrics-exporter-prometheus`: typed label sets, and four
//! small dependencies instead of an exporter stack.

use crate::http::AppState;
use crate::store::maintenance;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    listener: &'static str,
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    provider: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KekLabels {
    kek_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    submissions: Family<ProviderLabels, Counter>,
    reveals: Family<ProviderLabels, Counter>,
    checks: Family<CheckLabels, Counter>,
    shredded: Family<ReasonLabels, Counter>,
    rewrapped: Counter,
    rows_per_kek: Family<KekLabels, Gauge>,
    secrets: Family<StatusLabels, Gauge>,
    database_up: Gauge,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut r = Registry::with_prefix("keydrop");
    let requests = Family::default();
    r.register(
        "http_requests",
        "HTTP requests by listener, method, matched route and status",
        requests.clone(),
    );
    let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
        Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
    });
    r.register(
        "http_request_duration_seconds",
        "HTTP request latency by listener, method and matched route",
        latency.clone(),
    );
    let submissions = Family::default();
    r.register(
        "submissions",
        "Credentials stored through drop links, by provider",
        submissions.clone(),
    );
    let reveals = Family::default();
    r.register(
        "reveals",
        "Secrets revealed to staff, by provider",
        reveals.clone(),
    );
    let checks = Family::default();
    r.register(
        "check_outcomes",
        "Provider live-check results, by provider and status",
        checks.clone(),
    );
    let shredded = Family::default();
    r.register(
        "secrets_shredded",
        "Secrets crypto-shredded by retention in this process, by reason",
        shredded.clone(),
    );
    let rewrapped = Counter::default();
    r.register(
        "deks_rewrapped",
        "Data keys rewrapped under the active KEK by rotation in this process",
        rewrapped.clone(),
    );
    let rows_per_kek = Family::default();
    r.register(
        "secret_rows_by_kek",
        "Secrets still holding ciphertext, by the KEK id wrapping their data key",
        rows_per_kek.clone(),
    );
    let secrets = Family::default();
    r.register(
        "secrets",
        "Secrets in the database by status (shredded ones are tombstones)",
        secrets.clone(),
    );
    let database_up = Gauge::default();
    r.register(
        "database_up",
        "1 when the database answered the last scrape's queries",
        database_up.clone(),
    );
    let pool = Family::default();
    r.register(
        "db_pool_connections",
        "Database pool connections by state (idle, in_use)",
        pool.clone(),
    );
    let pool_max = Gauge::default();
    r.register(
        "db_pool_max_connections",
        "Largest number of connections the pool opens",
        pool_max.clone(),
    );
    Metrics {
        registry: r,
        requests,
        latency,
        submissions,
        reveals,
        checks,
        shredded,
        rewrapped,
        rows_per_kek,
        secrets,
        database_up,
        pool,
        pool_max,
    }
});

/// A credential was stored for `provider`.
pub fn submission(provider: &str) {
    let labels = ProviderLabels {
        provider: provider.to_owned(),
    };
    METRICS.submissions.get_or_create(&labels).inc();
}

/// A secret of `provider` was revealed.
pub fn reveal(provider: &str) {
    let labels = ProviderLabels {
        provider: provider.to_owned(),
    };
    METRICS.reveals.get_or_create(&labels).inc();
}

/// A provider live check finished with `status` (`verified`, `missing_permissions`, …).
pub fn check_outcome(provider: &str, status: &str) {
    let labels = CheckLabels {
        provider: provider.to_owned(),
        status: status.to_owned(),
    };
    METRICS.checks.get_or_create(&labels).inc();
}

/// A live check ran and concluded `status`.
pub fn check_result(provider: &str, status: crate::providers::CheckStatus) {
    use crate::providers::CheckStatus;
    let status = match status {
        CheckStatus::Verified => "verified",
        CheckStatus::MissingPermissions => "missing_permissions",
        CheckStatus::Invalid => "invalid",
        CheckStatus::Unverified => "unverified",
    };
    check_outcome(provider, status);
}

/// Retention shredded `n` secrets for `reason`.
pub fn shredded(reason: &str, n: u64) {
    if n > 0 {
        let labels = ReasonLabels {
            reason: reason.to_owned(),
        };
        METRICS.shredded.get_or_create(&labels).inc_by(n);
    }
}

/// Rotation rewrapped `n` data keys.
pub fn rewrapped(n: u64) {
    METRICS.rewrapped.inc_by(n);
}

/// Counts and times every request of `router` by its matched route.
pub fn track(router: Router, listener: &'static str) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| async move {
            let method = method_label(req.method());
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str)
                .to_owned();
            let started = Instant::now();
            let resp = next.run(req).await;
            let elapsed = started.elapsed().as_secs_f64();
            let status = resp.status().as_u16();
            METRICS
                .latency
                .get_or_create(&RouteLabels {
                    listener,
                    method,
                    route: route.clone(),
                })
                .observe(elapsed);
            METRICS
                .requests
                .get_or_create(&RequestLabels {
                    listener,
                    method,
                    route,
                    status,
                })
                .inc();
            resp
        },
    ))
}

/// Methods outside the standard set share one label value, bounding cardinality.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`, for the internal router.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// Refreshes the database gauges (within a deadline) and renders everything.
async fn scrape(State(state): State<AppState>) -> Response {
    let m = &*METRICS;
    m.pool_max
        .set(i64::from(state.db.options().get_max_connections()));
    let size = i64::from(state.db.size());
    let idle = state.db.num_idle() as i64;
    m.pool
        .get_or_create(&PoolLabels { state: "idle" })
        .set(idle);
    m.pool
        .get_or_create(&PoolLabels { state: "in_use" })
        .set((size - idle).max(0));
    let counts = tokio::time::timeout(Duration::from_secs(2), async {
        let kek = maintenance::rows_per_kek(&state.db).await?;
        let status = maintenance::rows_per_status(&state.db).await?;
        Ok::<_, sqlx::Error>((kek, status))
    })
    .await;
    m.rows_per_kek.clear();
    m.secrets.clear();
    match counts {
        Ok(Ok((kek, status))) => {
            m.database_up.set(1);
            for (kek_id, n) in kek {
                m.rows_per_kek.get_or_create(&KekLabels { kek_id }).set(n);
            }
            for (status, n) in status {
                m.secrets.get_or_create(&StatusLabels { status }).set(n);
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: database query failed");
            m.database_up.set(0);
        }
        Err(_) => {
            m.database_up.set(0);
        }
    }
    let mut body = String::new();
    if let Err(e) = prometheus_text::encode(&mut body, &m.registry) {
        tracing::error!(error = %e, "metrics: encoding failed");
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // The audit chain's head and webhook deliveries (issue 5).
    body.push_str(&crate::chain::metrics::render(&state.db).await);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

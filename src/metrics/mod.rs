//! Prometheus metrics, served at `GET /metrics` on the internal listener.
//!
//! Counters (requests, submissions, reveals, check outcomes, shreds) count what
//! this process did since it started; Prometheus sums them across replicas.
//! Gauges about stored data (rows per KEK id, secrets per status) are read from
//! the database at scrape time, so every replica reports the same, global
//! numbers. Nothing here carries a secret, a token or a raw URI: routes are the
//! matched patterns (`/d/{token}`), never the paths.
//!
//! The registry is an instance ([`Metrics`], one per application, held in its
//! state), not a process-wide static: two applications in one process (every
//! integration test) count separately, so a test reads its own app's numbers.
//! This module knows nothing of the HTTP state: the scrape route gets the
//! pool it reads gauges from when it is built ([`Metrics::router`]).
//!
//! `prometheus-client` (the Prometheus project's own Rust client) was chosen
//! over `metrics` + `metrics-exporter-prometheus`: typed label sets, and four
//! small dependencies instead of an exporter stack.

mod scrape;

pub use scrape::TrackLayer;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

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
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
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

/// One application's registry and the series in it; cheap to clone (shared).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    submissions: Family<ProviderLabels, Counter>,
    reveals: Family<ProviderLabels, Counter>,
    checks: Family<CheckLabels, Counter>,
    shredded: Family<ReasonLabels, Counter>,
    rows_per_kek: Family<KekLabels, Gauge>,
    secrets: Family<StatusLabels, Gauge>,
    database_up: Gauge,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` under `name` and hands it back.
fn add<M: prometheus_client::registry::Metric + Clone>(
    r: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    r.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// A fresh registry (prefix `keydrop_`) with every series at zero.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("keydrop");
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let inner = Inner {
            requests: add(
                &mut r,
                "http_requests",
                "HTTP requests by listener, method, matched route and status",
                Family::default(),
            ),
            latency: add(
                &mut r,
                "http_request_duration_seconds",
                "HTTP request latency by listener, method and matched route",
                latency,
            ),
            submissions: add(
                &mut r,
                "submissions",
                "Credentials stored through drop links, by provider",
                Family::default(),
            ),
            reveals: add(
                &mut r,
                "reveals",
                "Secrets revealed to staff, by provider",
                Family::default(),
            ),
            checks: add(
                &mut r,
                "check_outcomes",
                "Provider live-check results, by provider and status",
                Family::default(),
            ),
            shredded: add(
                &mut r,
                "secrets_shredded",
                "Secrets crypto-shredded by retention in this process, by reason",
                Family::default(),
            ),
            rows_per_kek: add(
                &mut r,
                "secret_rows_by_kek",
                "Secrets still holding ciphertext, by the KEK id wrapping their data key",
                Family::default(),
            ),
            secrets: add(
                &mut r,
                "secrets",
                "Secrets in the database by status (shredded ones are tombstones)",
                Family::default(),
            ),
            database_up: add(
                &mut r,
                "database_up",
                "1 when the database answered the last scrape's queries",
                Gauge::default(),
            ),
            pool: add(
                &mut r,
                "db_pool_connections",
                "Database pool connections by state (idle, in_use)",
                Family::default(),
            ),
            pool_max: add(
                &mut r,
                "db_pool_max_connections",
                "Largest number of connections the pool opens",
                Gauge::default(),
            ),
            registry: r,
        };
        Self(Arc::new(inner))
    }

    /// A credential was stored for `provider`.
    pub fn submission(&self, provider: &str) {
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        self.0.submissions.get_or_create(&labels).inc();
    }

    /// A secret of `provider` was revealed.
    pub fn reveal(&self, provider: &str) {
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        self.0.reveals.get_or_create(&labels).inc();
    }

    /// A live check of `provider` concluded `status`: the check status's own
    /// name (`CheckStatus::as_str`, as stored and shown in the API), so the
    /// label is never a second spelling of it.
    pub fn check_outcome(&self, provider: &str, status: &'static str) {
        let labels = CheckLabels {
            provider: provider.to_owned(),
            status,
        };
        self.0.checks.get_or_create(&labels).inc();
    }

    /// Retention shredded `n` secrets for `reason` (`ShredReason::as_str`).
    pub fn shredded(&self, reason: &'static str, n: u64) {
        if n > 0 {
            self.0
                .shredded
                .get_or_create(&ReasonLabels { reason })
                .inc_by(n);
        }
    }

    /// Everything in the registry, in the Prometheus text format, as of the
    /// last scrape for the database gauges (`GET /metrics` refreshes those).
    pub fn encode(&self) -> String {
        let mut body = String::new();
        // Writing to a String cannot fail, nor can these label sets: an error
        // here is a bug, logged rather than turned into a panic or a 500.
        if let Err(e) = prometheus_text::encode(&mut body, &self.0.registry) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        body
    }
}

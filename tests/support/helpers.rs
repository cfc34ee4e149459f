//! The app under test: one builder, and a `TestApp` with one method per endpoint.
//!
//! How to spawn an app (every test gets its own database from `#[sqlx::test]`):
//!
//! ```ignore
//! let app = spawn_app(db).await;                       // the defaults
//! let app = TestApp::builder(db)
//!     .with_fake(&fake)                                // providers → local fakes
//!     .with_env([("KEYDROP_RATE_LIMIT", "3/min")])     // any KEYDROP_* variable
//!     .with_config(|c| c.webhooks.poll = Duration::from_millis(50)) // what no variable reaches
//!     .with_kek(&first.kek)                            // a second app on the same database
//!     .spawn()
//!     .await;
//! ```
//!
//! Defaults: ephemeral loopback ports, no rate limit, a fresh KEK with the id
//! `test-kek`, an `admin` token in `app.admin` (a later app on the same
//! database revokes the earlier one's), and every outside service on a closed
//! loopback port ([`CLOSED_UPSTREAM`]) unless a test names a fake: nothing
//! reaches the network, and a configuration naming a host beyond loopback
//! fails the test. Adding an outside service? Default it to a closed port in
//! [`test_config`].
//!
//! A second app on the same database is a second replica: give it the first
//! one's ring (`.with_kek(&first.kek)`), or its start refuses a different key
//! under `test-kek`. A start that must fail builds [`Application`] by hand
//! from [`test_config`].

use super::fakes::Fake;
use keydrop::config::Config;
use keydrop::crypto::{generate_kek, KekId, Keyring};
use keydrop::domain::{Scopes, StaffSecret};
use keydrop::metrics::Metrics;
use keydrop::startup::Application;
use keydrop::store::tokens;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;

pub struct TestApp {
    pub public: String,
    pub internal: String,
    pub db: PgPool,
    pub admin: String,
    /// `id=base64key` of the KEK the app runs with.
    pub kek: String,
    /// A browser-like client: keeps cookies, follows no redirects.
    pub browser: Client,
    pub api: Client,
    /// The app's own metrics registry: assert counter deltas with [`TestApp::metric`].
    pub metrics: Metrics,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn new_kek(id: &str) -> String {
    generate_kek(&KekId::parse(id).unwrap())
        .unwrap()
        .to_string()
}

/// Where every provider upstream points unless a test names a fake: a
/// loopback port nothing listens on, so a stray check fails fast with
/// "could not connect" instead of resolving and calling a real provider.
pub const CLOSED_UPSTREAM: &str = "http://127.0.0.1:1";

/// Every provider upstream variable set to [`CLOSED_UPSTREAM`]. Taken from the
/// library's own list, so a provider added there is covered here too.
pub fn closed_upstreams() -> Vec<(&'static str, String)> {
    keydrop::providers::live::Upstreams::default()
        .all()
        .into_iter()
        .map(|(k, _)| (k, CLOSED_UPSTREAM.to_owned()))
        .collect()
}

/// Whether `value` names a host beyond loopback: a URL whose host is not a
/// loopback IP literal (a name such as `localhost` would need a lookup), or a
/// socket address that is not loopback. Plain values (durations, keys) name none.
pub fn names_remote_host(value: &str) -> bool {
    if let Ok(addr) = value.parse::<std::net::SocketAddr>() {
        return !addr.ip().is_loopback();
    }
    match url::Url::parse(value) {
        Ok(u) => match u.host() {
            Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
            // Non-special schemes (postgres://) keep an IP literal as a "domain".
            Some(url::Host::Domain(d)) => !d
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        },
        Err(_) => false,
    }
}

/// Panics (failing the test) when a test configuration names a host beyond
/// loopback. No test may reach the internet: not a provider, not DNS.
pub fn assert_loopback_only<'a>(what: &str, env: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (k, v) in env {
        assert!(
            !names_remote_host(v),
            "{what}: {k} names a host beyond loopback; tests must use a local fake or {CLOSED_UPSTREAM}"
        );
    }
}

/// Panics when a built configuration would reach beyond loopback.
pub fn assert_config_loopback_only(config: &Config) {
    for (var, url) in config.upstreams.all() {
        // No URL: the provider's production host, derived from the customer's input.
        let url = url.map_or("https://customer-host.invalid", |u| u.as_str());
        assert_loopback_only("test configuration", [(var, url)]);
    }
}

/// Configuration as the tests want it: ephemeral ports, no rate limit, every
/// provider upstream on a closed loopback port unless `extra` names a fake.
pub fn test_config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", "postgres://127.0.0.1:1/unused"),
        ("KEYDROP_PUBLIC_ADDR", "127.0.0.1:0"),
        ("KEYDROP_INTERNAL_ADDR", "127.0.0.1:0"),
        ("KEYDROP_RATE_LIMIT", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(
        closed_upstreams()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    )
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    assert_loopback_only(
        "test configuration",
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let config = Config::from_lookup(&move |k| env.get(k).cloned()).unwrap();
    assert_config_loopback_only(&config);
    config
}

/// `TestApp::builder(db).spawn()`: the app with defaults, on a fresh database.
pub async fn spawn_app(db: PgPool) -> TestApp {
    TestApp::builder(db).spawn().await
}

/// A configuration change applied after the environment is read.
type Tweak = Box<dyn FnOnce(&mut Config) + Send>;

/// Builds a [`TestApp`]; see the module documentation.
#[must_use = "call .spawn().await to start the app"]
pub struct TestAppBuilder {
    db: PgPool,
    kek: Option<String>,
    env: Vec<(String, String)>,
    tweaks: Vec<Tweak>,
}

impl TestApp {
    /// Starts building an app on `db` (the `#[sqlx::test]` database).
    pub fn builder(db: PgPool) -> TestAppBuilder {
        TestAppBuilder {
            db,
            kek: None,
            env: Vec::new(),
            tweaks: Vec::new(),
        }
    }
}

impl TestAppBuilder {
    /// The key ring, `id=base64key[,id=base64key]` (first is active), e.g.
    /// [`new_kek`] or another app's `kek` for a second replica on the same
    /// database. Default: a fresh key with the id `test-kek`.
    pub fn with_kek(mut self, ring: &str) -> Self {
        self.kek = Some(ring.to_owned());
        self
    }

    /// Environment variables on top of [`test_config`]'s, as `KEYDROP_*`
    /// would be set for the binary. Checked: none may name a host beyond loopback.
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Every provider upstream pointed at `fake` (instead of a closed port).
    pub fn with_fake(self, fake: &Fake) -> Self {
        self.with_env(fake.env())
    }

    /// Changes the built [`Config`] where no environment variable reaches
    /// (e.g. webhook retries in milliseconds). Runs after `with_env`.
    pub fn with_config(mut self, tweak: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Builds and starts the app on ephemeral ports, with an `admin` token.
    pub async fn spawn(self) -> TestApp {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut config = test_config(&env);
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        assert_config_loopback_only(&config);
        let kek = self.kek.unwrap_or_else(|| new_kek("test-kek"));
        let app = Application::build(config, Keyring::parse(&kek).unwrap(), self.db.clone())
            .await
            .unwrap();
        // Drop links must point at the port the app really got.
        let public = format!("http://{}", app.public_addr());
        let internal = format!("http://{}", app.internal_addr());
        let metrics = app.metrics().clone();
        let db = self.db;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        // A second app on the same database takes over the admin token name.
        sqlx::query("UPDATE staff_tokens SET revoked_at = now() WHERE name = 'test-admin' AND revoked_at IS NULL")
            .execute(&db)
            .await
            .unwrap();
        let admin = create_token(&db, "test-admin", "admin").await;
        TestApp {
            public,
            internal,
            db,
            admin,
            kek,
            browser: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            api: Client::new(),
            metrics,
            shutdown: Some(tx),
        }
    }
}

pub async fn create_token(db: &PgPool, name: &str, scopes: &str) -> String {
    let secret = StaffSecret::generate();
    tokens::insert(
        db,
        name,
        &secret.hash(),
        &Scopes::parse(scopes).unwrap(),
        None,
    )
    .await
    .unwrap();
    secret.expose().to_owned()
}

/// Finds `name="csrf_token" value="…"` in a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF token") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.internal)
    }

    /// Rewrites a drop link onto this app's public address (links use the configured base URL).
    pub fn local(&self, link: &str) -> String {
        let path = &link[link.find("/d/").unwrap()..];
        format!("{}{path}", self.public)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.api
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req = self.api.post(self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.api
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a drop link through the API; returns (id, local URL).
    pub async fn create_link(&self, provider: &str) -> (String, String) {
        self.create_link_with(json!({ "organization": "Acme Corp", "provider": provider }))
            .await
    }

    pub async fn create_link_with(&self, body: Value) -> (String, String) {
        let resp = self.post("/api/v1/requests", &self.admin, Some(body)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let v: Value = resp.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            self.local(v["url"].as_str().unwrap()),
        )
    }

    /// GETs the drop page as a browser would and returns its CSRF token.
    pub async fn open_form(&self, link: &str) -> String {
        let resp = self.browser.get(link).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        csrf_from(&resp.text().await.unwrap())
    }

    /// Opens the drop page (for the CSRF cookie and token), then posts `fields` with that token.
    pub async fn open_and_submit(&self, link: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.open_form(link).await;
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        self.submit(link, &form).await
    }

    /// POSTs the drop form with the browser's cookies, and follows a `303` to
    /// the receipt as a browser does (so a success answers the receipt page).
    pub async fn submit(&self, link: &str, fields: &[(&str, &str)]) -> Response {
        let resp = self.post_form(link, fields).await;
        self.follow(link, resp).await
    }

    /// POSTs the drop form without following the redirect.
    pub async fn post_form(&self, link: &str, fields: &[(&str, &str)]) -> Response {
        self.browser.post(link).form(fields).send().await.unwrap()
    }

    /// Follows a `303 See Other` (relative to `base`) with the browser's cookies.
    pub async fn follow(&self, base: &str, resp: Response) -> Response {
        if resp.status() != StatusCode::SEE_OTHER {
            return resp;
        }
        let location = resp.headers()["location"].to_str().unwrap();
        let url = url::Url::parse(base).unwrap().join(location).unwrap();
        self.browser.get(url).send().await.unwrap()
    }

    /// Opens the form and submits a valid Greenhouse credential.
    pub async fn submit_greenhouse(&self, link: &str, secret: &str) -> Response {
        self.open_and_submit(
            link,
            &[
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("client_id", "client-id-123"),
                ("client_secret", secret),
            ],
        )
        .await
    }

    pub async fn reveal(&self, id: &str) -> Response {
        self.post(&format!("/api/v1/secrets/{id}/reveal"), &self.admin, None)
            .await
    }

    /// The value of one series (`name{labels}` exactly as exposed) in this
    /// app's registry; 0 for a series not counted yet. Counters are per app,
    /// but compare before and after an action rather than trusting totals.
    pub fn metric(&self, series: &str) -> f64 {
        sample(&self.metrics.encode(), series)
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

/// Pulls the reference id out of a receipt page.
pub fn reference_from(html: &str) -> String {
    let marker = "<dt>Reference</dt><dd><code>";
    let start = html.find(marker).expect("receipt has a reference") + marker.len();
    html[start..start + 36].to_owned()
}

/// The value of `series` (`name{labels}` as exposed) in a Prometheus text
/// exposition; 0 when absent (a counter not yet incremented).
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| {
            v.trim().parse().expect("a sample value is a number")
        })
}

/// How long [`eventually`] waits before failing the test: generous, because
/// the suite runs on loaded machines; a passing wait returns as soon as the
/// condition holds, so this costs nothing when things work.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// Waits for observable state (a row, a lock wait, a fake's hit count, a log
/// line): polls `check` until it holds, and fails the test naming `what`
/// after [`PATIENCE`]. Tests order themselves with this, never with a sleep.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sessions of this test's database waiting for a lock (e.g. a request
/// blocked behind a row the test holds `FOR UPDATE`).
pub async fn lock_waiters(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

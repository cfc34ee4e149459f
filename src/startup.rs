//! Building and running the application: both listeners, one state, one shutdown.

use crate::config::Config;
use crate::crypto::Keyring;
use crate::http::{self, AppState};
use crate::ops::retention;
use crate::store::{self, canary, fingerprint_keys};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A bound, ready-to-run Keydrop. Tests bind port 0 and read the ports back.
pub struct Application {
    public: TcpListener,
    internal: TcpListener,
    state: AppState,
}

/// What start-up does to the database schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (`keydrop serve`).
    Apply,
    /// Only look (`keydrop serve --no-migrate`, tests).
    Check,
}

impl Application {
    /// Binds both listeners, then checks the database (schema, KEK ring) and
    /// logs what an operator needs to know about this process.
    pub async fn build(config: Config, keyring: Keyring, db: PgPool) -> anyhow::Result<Self> {
        Self::build_with(config, keyring, db, Migrations::Check).await
    }

    /// [`Application::build`], applying migrations first when asked.
    ///
    /// The listeners are bound before anything is written to the database,
    /// so a port in use fails start-up without having migrated the schema or
    /// registered canaries.
    pub async fn build_with(
        config: Config,
        keyring: Keyring,
        db: PgPool,
        migrations: Migrations,
    ) -> anyhow::Result<Self> {
        let public = TcpListener::bind(config.public_addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on KEYDROP_PUBLIC_ADDR {}: {e}",
                config.public_addr
            )
        })?;
        let internal = TcpListener::bind(config.internal_addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on KEYDROP_INTERNAL_ADDR {}: {e}",
                config.internal_addr
            )
        })?;
        prepare_schema(&db, migrations).await?;
        let keks = canary::verify(&db, &keyring).await?;
        let fingerprints = fingerprint_keys::load(&db, &keyring).await?;
        log_keks(&keyring, &keks, config.allow_missing_keks);
        log_settings(&config);
        let state = AppState::new(db, keyring, fingerprints, config);
        // Refuses to start when the KMS cannot wrap and unwrap a canary key.
        let keys =
            crate::kms::Keys::connect(state.keyring.clone(), state.config.kms.clone()).await?;
        if keys.backend() != "local" {
            tracing::info!(backend = keys.backend(), key = %keys.active_kek(), "KMS wraps new data keys");
        }
        Ok(Self {
            public,
            internal,
            state: state.with_keys(keys),
        })
    }

    /// This application's metrics registry (what its `GET /metrics` serves).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.state.metrics
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn internal_addr(&self) -> SocketAddr {
        self.internal
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests for
    /// at most `KEYDROP_SHUTDOWN_TIMEOUT`. Also runs the retention loop.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(());
        let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
            let _ = rx.changed().await;
        };
        tracing::info!(public = %self.public_addr(), internal = %self.internal_addr(), version = env!("CARGO_PKG_VERSION"), "keydrop listening");
        // Audit sealing and webhook delivery; both end at the shutdown signal.
        tokio::spawn(crate::chain::sealer::run(
            self.state.db.clone(),
            crate::chain::sealer::EVERY,
            rx.clone(),
        ));
        tokio::spawn(crate::webhooks::worker::run(
            self.state.db.clone(),
            std::sync::Arc::new(
                self.state
                    .config
                    .webhooks
                    .clone()
                    .keyed(&self.state.keyring),
            ),
            rx.clone(),
        ));
        tokio::spawn(crate::mail::worker::run(
            crate::mail::worker::Mailer {
                db: self.state.db.clone(),
                keyring: self.state.keyring.clone(),
                cfg: std::sync::Arc::new(self.state.config.mail.clone()),
                brand: self.state.config.brand.clone(),
                public_url: self.state.config.public_url.clone(),
            },
            rx.clone(),
        ));
        // The public /readyz answers from this task's verdict; decide it once
        // before serving, so the first answer is already real.
        let first = http::health::refresh_once(&self.state);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), first).await;
        tokio::spawn(http::health::refresh(self.state.clone(), rx.clone()));
        // Failed-lookup throttles forget idle clients on a timer.
        let throttles = [
            self.state.link_failures.clone(),
            self.state.staff_failures.clone(),
        ];
        let mut prune_stop = rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(http::throttle::PRUNE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => throttles.iter().for_each(|t| t.prune()),
                    _ = prune_stop.changed() => return,
                }
            }
        });
        let config = self.state.config.clone();
        let retention = config.purge_interval.map(|every| {
            let policy = retention::Policy {
                after_ingested: config.shred_after_ingested,
                unclaimed_after: config.shred_unclaimed_after,
            };
            tokio::spawn(retention::run_periodically(
                self.state.db.clone(),
                policy,
                every,
                self.state.metrics.clone(),
                rx.clone(),
            ))
        });
        let mut deadline_rx = rx.clone();
        let limits = http::server::ConnectionLimits {
            per_client: config.max_connections_per_client,
            proxies: config.proxies.clone(),
        };
        let public = http::server::serve(
            self.public,
            http::public_router(self.state.clone()),
            limits.clone(),
            stopped(rx.clone()),
        );
        let internal = http::server::serve(
            self.internal,
            http::internal_router(self.state.clone()),
            limits,
            stopped(rx),
        );
        let signal = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = tx.send(());
        });
        // After the signal, in-flight requests get `shutdown_timeout` to finish;
        // whatever is still running then is dropped.
        let grace = config.shutdown_timeout;
        let deadline = async move {
            let _ = deadline_rx.changed().await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            (a, b) = async { tokio::join!(public, internal) } => a.and(b),
            () = deadline => {
                tracing::warn!(timeout = ?grace, "shutdown timeout reached: dropping unfinished requests");
                Ok(())
            }
        };
        signal.abort();
        if let Some(task) = retention {
            // It stops at the same signal; a purge in progress commits or rolls back whole.
            let _ = tokio::time::timeout(config.shutdown_timeout, task).await;
        }
        served?;
        tracing::info!("keydrop stopped");
        Ok(())
    }
}

/// Migrates (or only checks) the schema and logs where it stands. A database
/// a newer Keydrop migrated is served as it is: migrations only add, so this
/// version still works on it (rolling upgrades, rollbacks).
async fn prepare_schema(db: &PgPool, migrations: Migrations) -> anyhow::Result<()> {
    let before = match migrations {
        Migrations::Apply => store::schema(db).await?,
        Migrations::Check => store::require_migrated(db).await?,
    };
    let versions = store::versions;
    if !before.ahead.is_empty() {
        tracing::warn!(
            ahead = %versions(&before.ahead),
            pending = %versions(&before.pending),
            version = env!("CARGO_PKG_VERSION"),
            "database migrations: a newer Keydrop migrated this database (versions listed in `ahead` are unknown here); not migrating, serving on the newer schema"
        );
        return Ok(());
    }
    match migrations {
        Migrations::Apply if !before.pending.is_empty() => {
            store::migrate(db).await?;
            tracing::info!(
                applied = %versions(&before.pending),
                total = before.applied.len() + before.pending.len(),
                "database migrations: applied"
            );
        }
        Migrations::Check if !before.pending.is_empty() => tracing::warn!(
            pending = %versions(&before.pending),
            "database migrations: pending (started with --no-migrate); not ready until `keydrop migrate` runs"
        ),
        _ => tracing::info!(
            total = before.applied.len(),
            latest = before.applied.last().copied().unwrap_or_default(),
            "database migrations: current"
        ),
    }
    Ok(())
}

/// The ring, canaries registered now, and every KEK the database needs but
/// the ring lacks, with the number of secrets it wraps.
fn log_keks(ring: &Keyring, status: &canary::KeyringStatus, allow_missing: bool) {
    let ids: Vec<&str> = ring.iter().map(|k| k.id().as_str()).collect();
    tracing::info!(
        active = ring.active().id().as_str(),
        ring = %ids.join(","),
        canaries_registered = %status.unregistered.join(","),
        "KEK ring loaded"
    );
    for (kek_id, rows) in &status.missing {
        tracing::error!(
            kek_id = kek_id.as_str(),
            rows,
            "KEK missing from the ring: these secrets cannot be revealed by this process; put the key back in KEYDROP_KEKS / KEYDROP_KEKS_FILE (readiness fails{})",
            if allow_missing { " unless KEYDROP_ALLOW_MISSING_KEKS, which is set: reporting degraded" } else { " until then" }
        );
    }
}

/// Retention and webhook settings (never secrets: webhook URLs as origins only).
fn log_settings(config: &Config) {
    let show = |d: Option<std::time::Duration>| {
        d.map_or("off".to_owned(), |d| {
            crate::domain::HumanDuration::display(d)
        })
    };
    tracing::info!(
        shred_after_ingested = %show(config.shred_after_ingested),
        shred_unclaimed_after = %show(config.shred_unclaimed_after),
        purge_interval = %show(config.purge_interval),
        "retention policy"
    );
    let origins: Vec<String> = config
        .webhooks
        .endpoints
        .iter()
        .map(|e| e.origin())
        .collect();
    let mail = &config.mail;
    tracing::info!(
        smtp = %mail.smtp.as_ref().map_or("off (KEYDROP_SMTP_URL unset: drop links are not emailed)".to_owned(), |s| format!("{}:{} ({})", s.host, s.port, s.security.describe())),
        reminder_before = %show(mail.reminder_before),
        notify = mail.notify.len(),
        brand = %config.brand.name,
        "email"
    );
    tracing::info!(
        endpoints = config.webhooks.endpoints.len(),
        origins = %origins.join(","),
        "webhooks"
    );
}

/// Resolves on SIGTERM or Ctrl-C.
///
/// The handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM that arrives right after "keydrop listening" must
/// already find them, or it would kill the process without a graceful stop.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = wait(term) => {}, _ = wait(int) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

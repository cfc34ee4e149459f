//! Building and running the application: both listeners, one state, one shutdown.

use crate::config::Config;
use crate::crypto::Keyring;
use crate::http::{self, AppState};
use crate::ops::retention;
use crate::store::canary;
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

impl Application {
    /// Checks the KEK ring against the database and binds both listeners.
    pub async fn build(config: Config, keyring: Keyring, db: PgPool) -> anyhow::Result<Self> {
        canary::verify(&db, &keyring).await?;
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
        Ok(Self {
            public,
            internal,
            state: AppState::new(db, keyring, config),
        })
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
        tracing::info!(public = %self.public_addr(), internal = %self.internal_addr(), "keydrop listening");
        // Audit sealing and webhook delivery; both end at the shutdown signal.
        tokio::spawn(crate::chain::sealer::run(
            self.state.db.clone(),
            crate::chain::sealer::EVERY,
            rx.clone(),
        ));
        tokio::spawn(crate::webhooks::worker::run(
            self.state.db.clone(),
            std::sync::Arc::new(self.state.config.webhooks.clone()),
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
                rx.clone(),
            ))
        });
        let mut deadline_rx = rx.clone();
        let public = http::server::serve(
            self.public,
            http::public_router(self.state.clone()),
            stopped(rx.clone()),
        );
        let internal = http::server::serve(
            self.internal,
            http::internal_router(self.state.clone()),
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
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

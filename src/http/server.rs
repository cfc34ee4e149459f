//! The HTTP/1.1 accept loop, hardened against slow and greedy clients.
//!
//! `axum::serve` offers no header-read deadline, so a handful of clients
//! dribbling header bytes could hold connections forever. This loop sets one
//! (hyper's `header_read_timeout`), caps open connections per listener and
//! per client address (`KEYDROP_MAX_CONNECTIONS_PER_CLIENT`, so one address
//! cannot hold every slot), and drains in-flight connections on shutdown.
//! The per-client cap counts TCP peers (IPv6 by network, like the rate
//! limits); trusted proxies are exempt, since every client behind them shares
//! their address. TLS is terminated in front of
//! Keydrop, so plain HTTP/1.1 is all it speaks.

use super::client_ip::{client_key, ProxyConfig};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// A client must send its complete request head within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 32 * 1024;

pub use crate::config::{DEFAULT_MAX_CONNECTIONS_PER_CLIENT, MAX_CONNECTIONS};

/// Who may hold how many connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// `None`: no per-client cap.
    pub per_client: Option<usize>,
    /// Peers exempt from the per-client cap, and how IPv6 peers are grouped.
    pub proxies: ProxyConfig,
}

/// Open connections per client key; entries leave when their count reaches zero.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    fn try_take(self: &Arc<Self>, key: IpAddr, cap: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            key,
        })
    }
}

/// Gives a client's connection slot back when the connection ends.
struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for open
/// connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection failures (reset before accept, fd exhaustion): back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over its cap, a client's new connection is closed at once (it
        // keeps the ones it has); the global slot goes back with it.
        let slot = match limits.per_client {
            Some(cap) if !limits.proxies.is_trusted(peer.ip()) => {
                let key = client_key(peer.ip(), limits.proxies.ipv6_prefix);
                match per_client.try_take(key, cap) {
                    Some(slot) => Some(slot),
                    None => {
                        tracing::debug!(client_ip = %peer.ip(), "per-client connection cap reached; closing");
                        drop(stream);
                        continue;
                    }
                }
            }
            _ => None,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .max_header_size(MAX_HEAD_BYTES)
            .max_headers(64)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The peer address of a connection, as [`serve`] records it.
pub type Peer = ConnectInfo<SocketAddr>;

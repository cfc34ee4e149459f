//! Who the client is: the peer address, or — only when the peer is a
//! configured trusted proxy — the address that proxy reports.
//!
//! `X-Forwarded-For` is never believed blindly: it is read only from peers in
//! `KEYDROP_TRUSTED_PROXIES`, right to left, skipping entries that are
//! themselves trusted proxies, so a client cannot choose its own address by
//! sending the header. The walk stops at the first entry that is not a
//! trusted proxy (that is the client) or that does not parse (then the last
//! trusted hop is the client: nothing left of a malformed entry can be
//! believed, and one malformed entry no longer discards the hops to its right).
//!
//! Rate limits key clients by [`client_key`]: IPv4 addresses as they are,
//! IPv6 addresses by their network prefix (`KEYDROP_IPV6_PREFIX`, default
//! /64), because whoever holds one IPv6 address usually holds its whole /64
//! and could otherwise start 2⁶⁴ fresh budgets.

use axum::extract::{ConnectInfo, Request};
use std::net::{IpAddr, SocketAddr};

pub use crate::domain::net::{client_key, parse_hop, IpNet, ProxyConfig, DEFAULT_IPV6_PREFIX};

/// The client address every rate limit and audit event uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Records [`ClientIp`] in the request's extensions (a request mapping in
/// the listener's layer stack).
pub fn resolve(proxies: &ProxyConfig, mut req: Request) -> Request {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let ip = proxies.client_ip(peer, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    req
}

/// Rate-limit key: the resolved client address, IPv6 by network prefix.
#[derive(Debug, Clone, Copy)]
pub struct ClientIpKey {
    pub ipv6_prefix: u8,
}

impl tower_governor::key_extractor::KeyExtractor for ClientIpKey {
    type Key = IpAddr;

    fn extract<T>(
        &self,
        req: &axum::http::Request<T>,
    ) -> Result<IpAddr, tower_governor::GovernorError> {
        req.extensions()
            .get::<ClientIp>()
            .map(|c| client_key(c.0, self.ipv6_prefix))
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)
    }
}

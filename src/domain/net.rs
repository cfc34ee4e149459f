//! Client networks: `KEYDROP_TRUSTED_PROXIES` entries parsed once into
//! [`IpNet`], and the walk over `X-Forwarded-For` that finds the client
//! behind them ([`ProxyConfig`]). Plain values with no I/O, so `config` can
//! build them without depending on the HTTP layer, which uses them.
//! Why the walk goes right to left: see `crate::http::client_ip`.

use axum::http::{HeaderMap, HeaderName};
use std::net::{IpAddr, SocketAddr};

/// An IP network such as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The default network prefix that identifies one IPv6 client.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// What rate limits count a client as: an IPv4 address itself, an IPv6
/// address reduced to its first `v6_prefix` bits.
pub fn client_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let prefix = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`) as some proxies write it.
pub fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// How to find the client behind trusted proxies.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub trusted: Vec<IpNet>,
    pub header: HeaderName,
    /// IPv6 clients are keyed by this many leading bits (`KEYDROP_IPV6_PREFIX`).
    pub ipv6_prefix: u8,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            trusted: Vec::new(),
            header: HeaderName::from_static("x-forwarded-for"),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }
}

impl ProxyConfig {
    /// Whether `ip` is one of `KEYDROP_TRUSTED_PROXIES`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The client address for a request from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        // Right to left over every header line and entry: the right-most
        // entries were written by the proxies nearest to us.
        let lines: Vec<&str> = headers
            .get_all(&self.header)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        let mut client = peer;
        for entry in lines.iter().rev().flat_map(|l| l.rsplit(',')) {
            let Some(hop) = parse_hop(entry) else {
                break;
            };
            client = hop;
            if !self.is_trusted(hop) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.1.2.3")) && !n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.9.9.9")));
        assert!(IpNet::parse("192.0.2.1").unwrap().contains(ip("192.0.2.1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(IpNet::parse("10.0.0.0/33").is_none() && IpNet::parse("nope").is_none());
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let none = ProxyConfig::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.5"), &xff("1.2.3.4")),
            ip("203.0.113.5")
        );
        let cfg = ProxyConfig {
            trusted: vec![IpNet::parse("10.0.0.0/8").unwrap()],
            ..Default::default()
        };
        assert_eq!(
            cfg.client_ip(ip("203.0.113.5"), &xff("1.2.3.4")),
            ip("203.0.113.5"),
            "untrusted peer"
        );
        assert_eq!(
            cfg.client_ip(ip("10.0.0.2"), &xff("1.2.3.4")),
            ip("1.2.3.4")
        );
        // A client-supplied left-most entry cannot win: the right-most untrusted hop does.
        assert_eq!(
            cfg.client_ip(ip("10.0.0.2"), &xff("6.6.6.6, 198.51.100.9, 10.0.0.7")),
            ip("198.51.100.9")
        );
        assert_eq!(
            cfg.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        assert_eq!(
            cfg.client_ip(ip("10.0.0.2"), &xff("garbage")),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_malformed_forwarded_entry_stops_the_walk_instead_of_discarding_the_chain() {
        let cfg = ProxyConfig {
            trusted: vec![IpNet::parse("10.0.0.0/8").unwrap()],
            ..Default::default()
        };
        let peer = ip("10.0.0.2");
        // Garbage left of the client (written by the client itself): the client still counts.
        assert_eq!(
            cfg.client_ip(peer, &xff("not-an-ip, 198.51.100.9")),
            ip("198.51.100.9")
        );
        assert_eq!(
            cfg.client_ip(peer, &xff("1.2.3.4, unknown, 198.51.100.9, 10.0.0.7")),
            ip("198.51.100.9")
        );
        // Garbage right of a trusted hop: that hop is the last address we can believe.
        assert_eq!(
            cfg.client_ip(peer, &xff("198.51.100.9, bogus, 10.0.0.7")),
            ip("10.0.0.7")
        );
        // Ports and several header lines are understood; the last line is nearest.
        assert_eq!(
            cfg.client_ip(peer, &xff("[2001:db8::5]:4711")),
            ip("2001:db8::5")
        );
        let mut two = xff("6.6.6.6");
        two.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.8:80"),
        );
        assert_eq!(cfg.client_ip(peer, &two), ip("203.0.113.8"));
        // A header line that is not text at all stops the walk as well.
        let mut bin = xff("198.51.100.9");
        bin.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(cfg.client_ip(peer, &bin), peer);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_network_prefix() {
        let a = ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
        let b = ip("2001:db8:1:2::1");
        let other = ip("2001:db8:1:3::1");
        assert_eq!(client_key(a, 64), client_key(b, 64));
        assert_eq!(client_key(a, 64), ip("2001:db8:1:2::"));
        assert_ne!(client_key(a, 64), client_key(other, 64));
        assert_ne!(client_key(a, 128), client_key(b, 128));
        assert_eq!(client_key(a, 0), ip("::"));
        assert_eq!(client_key(ip("192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
    }
}

//! Fuzzes the client-address resolution with arbitrary `X-Forwarded-For` values.
//!
//! Never panics; the client is always the peer or an address named in the
//! header; an untrusted peer is never overridden; and the rate-limit key of an
//! IPv6 client has no bits past the configured prefix.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use keydrop::http::client_ip::{client_key, parse_hop, IpNet, ProxyConfig};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Some((&prefix, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = HeaderValue::from_bytes(rest) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", value);
    let cfg = ProxyConfig {
        trusted: vec![
            IpNet::parse("10.0.0.0/8").unwrap(),
            IpNet::parse("fd00::/8").unwrap(),
        ],
        ipv6_prefix: prefix % 129,
        ..Default::default()
    };
    let trusted_peer: IpAddr = "10.0.0.1".parse().unwrap();
    let client = cfg.client_ip(trusted_peer, &headers);
    let named: Vec<IpAddr> = std::str::from_utf8(rest)
        .unwrap_or("")
        .split(',')
        .filter_map(parse_hop)
        .collect();
    assert!(client == trusted_peer || named.contains(&client), "{client}");
    let untrusted: IpAddr = "203.0.113.9".parse().unwrap();
    assert_eq!(cfg.client_ip(untrusted, &headers), untrusted);
    if let IpAddr::V6(v6) = client_key(client, cfg.ipv6_prefix) {
        let p = u32::from(cfg.ipv6_prefix);
        let tail = u128::from(v6).checked_shl(p).unwrap_or(0);
        assert!(
            cfg.ipv6_prefix == 0 && u128::from(v6) == 0 || tail == 0,
            "{v6} has bits past /{p}"
        );
    }
});

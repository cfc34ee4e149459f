//! The host names the internal listener answers to (`KEYDROP_INTERNAL_HOSTS`),
//! parsed once by `config`; `crate::http::internal_guard` says why it checks them.

use std::net::{IpAddr, SocketAddr};

/// The names the internal listener answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternalHosts {
    /// `KEYDROP_INTERNAL_HOSTS=*`: no check (a proxy in front checks instead).
    Any,
    /// Lower-case host names or IP literals, without ports.
    Only(Vec<String>),
}

impl InternalHosts {
    /// The default list for a listener on `addr` and an optional public base URL
    /// of the internal listener (`KEYDROP_INTERNAL_URL`).
    pub fn default_for(addr: SocketAddr, internal_url: Option<&url::Url>) -> Self {
        let mut names = vec!["localhost".to_owned(), addr.ip().to_string()];
        if let Some(host) = internal_url.and_then(|u| u.host_str()) {
            names.push(strip_brackets(host).to_ascii_lowercase());
        }
        Self::Only(names)
    }

    /// Parses `KEYDROP_INTERNAL_HOSTS`: comma-separated names (ports ignored), or `*`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "*" {
            return Ok(Self::Any);
        }
        let mut names = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let host = host_of(entry).filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
            });
            match host {
                Some(h) => names.push(h),
                None => return Err(format!("{entry:?} is not a host name or address")),
            }
        }
        if names.is_empty() {
            return Err("list at least one host name, or * to accept any".into());
        }
        Ok(Self::Only(names))
    }

    /// Whether a request with this `Host` value is for us.
    pub fn allows(&self, host: Option<&str>, listener: IpAddr) -> bool {
        let names = match self {
            Self::Any => return true,
            Self::Only(names) => names,
        };
        let Some(host) = host.and_then(host_of) else {
            return false;
        };
        if names.contains(&host) {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => listener.is_unspecified() || ip == listener,
            Err(_) => false,
        }
    }
}

fn strip_brackets(h: &str) -> &str {
    h.trim_start_matches('[').trim_end_matches(']')
}

/// The lower-case host of a `Host` value or list entry, without port or brackets.
fn host_of(value: &str) -> Option<String> {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if value.matches(':').count() > 1 {
        value // a bare IPv6 address
    } else {
        value.split(':').next()?
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_answers_localhost_the_listener_and_the_internal_url_only() {
        let url = url::Url::parse("https://keydrop.corp.example:8443").unwrap();
        let h = InternalHosts::default_for("10.0.3.7:8081".parse().unwrap(), Some(&url));
        let listener = ip("10.0.3.7");
        for ok in [
            "localhost",
            "localhost:8081",
            "LOCALHOST",
            "10.0.3.7:8081",
            "keydrop.corp.example",
            "keydrop.corp.example:8443",
        ] {
            assert!(h.allows(Some(ok), listener), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8081",
            "10.0.3.8:8081",
            "",
            "localhost.evil.example",
        ] {
            assert!(!h.allows(Some(bad), listener), "{bad}");
        }
        assert!(!h.allows(None, listener));
        // A listener on every address takes any IP literal, still no foreign name.
        let any = InternalHosts::default_for("0.0.0.0:8081".parse().unwrap(), None);
        assert!(any.allows(Some("172.17.0.2:8081"), ip("0.0.0.0")));
        assert!(any.allows(Some("[::1]:8081"), ip("0.0.0.0")));
        assert!(!any.allows(Some("rebind.evil.example:8081"), ip("0.0.0.0")));
    }

    #[test]
    fn the_host_list_parses_and_star_turns_the_check_off() {
        let h = InternalHosts::parse("keydrop.internal, 10.0.0.5:8081, [fd00::1]").unwrap();
        assert_eq!(
            h,
            InternalHosts::Only(vec![
                "keydrop.internal".into(),
                "10.0.0.5".into(),
                "fd00::1".into()
            ])
        );
        assert!(h.allows(Some("[fd00::1]:8081"), ip("127.0.0.1")));
        assert_eq!(InternalHosts::parse("*").unwrap(), InternalHosts::Any);
        assert!(InternalHosts::parse(" , ").is_err());
        assert!(InternalHosts::parse("bad host/").is_err());
    }
}

//! Throttling of failed token lookups (drop-link and staff tokens) per client IP.
//!
//! Each failed lookup spends from the client's budget; once it is spent, the
//! client gets `429` with `Retry-After` for every lookup — before any database
//! work — until the budget refills. A 256-bit token cannot be guessed anyway;
//! this keeps guessing from costing us database load and noise.

use crate::config::RateLimit;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct FailureThrottle {
    /// `None` when throttling is off (`KEYDROP_AUTH_FAILURE_LIMIT=off`).
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// How long a client stays blocked once its budget is spent.
    cooldown: Duration,
}

impl FailureThrottle {
    /// `limit.count` failures per `limit.per`, per client; `None`: never throttle.
    pub fn new(limit: Option<RateLimit>) -> Self {
        let (limiter, cooldown) = match limit {
            Some(RateLimit { count, per }) => {
                let count = NonZeroU32::new(count.max(1)).expect("at least one");
                let cooldown = (per / count.get()).max(Duration::from_millis(1));
                let quota = Quota::with_period(cooldown)
                    .expect("non-zero period")
                    .allow_burst(count);
                (Some(DefaultKeyedRateLimiter::keyed(quota)), cooldown)
            }
            None => (None, Duration::ZERO),
        };
        Self {
            limiter,
            blocked: Mutex::new(HashMap::new()),
            cooldown,
        }
    }

    /// `Some(wait)` while `ip` is blocked.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.limiter.as_ref()?;
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            blocked.remove(&ip);
            None
        }
    }

    /// Counts a failure. Returns `Some(wait)` when this failure spent the budget
    /// (the moment to audit it, once per block).
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let limiter = self.limiter.as_ref()?;
        if limiter.check_key(&ip).is_ok() {
            return None;
        }
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() > 100_000 {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            limiter.retain_recent();
        }
        blocked.insert(ip, Instant::now() + self.cooldown);
        Some(self.cooldown)
    }
}

/// Says yes to the first event per client per window (to audit floods once).
pub struct OncePerWindow {
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Instant>>,
}

impl OncePerWindow {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn first(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.retain(|_, at| now.duration_since(*at) < self.window);
        }
        match seen.get(&ip) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                seen.insert(ip, now);
                true
            }
        }
    }
}

/// `Retry-After` seconds for a wait, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_blocked_after_its_budget_and_others_are_not() {
        let t = FailureThrottle::new(Some(RateLimit {
            count: 3,
            per: Duration::from_secs(60),
        }));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.failed(a).is_none() && t.failed(a).is_none() && t.failed(a).is_none());
        assert!(t.blocked(a).is_none());
        let wait = t.failed(a).expect("fourth failure blocks");
        assert!(wait <= Duration::from_secs(20));
        assert!(t.blocked(a).is_some());
        assert!(t.blocked(b).is_none() && t.failed(b).is_none());
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    }

    #[test]
    fn off_never_blocks() {
        let t = FailureThrottle::new(None);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..1000 {
            assert!(t.failed(a).is_none());
        }
        assert!(t.blocked(a).is_none());
    }

    #[test]
    fn once_per_window_says_yes_once_per_client() {
        let once = OncePerWindow::new(Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(once.first(a) && !once.first(a));
        assert!(once.first("192.0.2.2".parse().unwrap()));
    }
}

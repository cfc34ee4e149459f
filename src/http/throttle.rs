//! Throttling of failed token lookups (drop-link and staff tokens) per client.
//!
//! Each failed lookup spends from the client's budget; once it is spent, the
//! client gets `429` with `Retry-After` for every lookup — before any database
//! work — until the budget refills. A 256-bit token cannot be guessed anyway;
//! this keeps guessing from costing us database load and noise.
//!
//! Clients are keyed by [`client_key`] (IPv6 by /64), and every table here is
//! bounded: [`prune`](FailureThrottle::prune) runs on a timer (see
//! `startup`), and a table that still reaches [`MAX_TRACKED`] clients between
//! two prunes is pruned at once and, if that does not help, started afresh. A
//! flood of that many distinct networks within seconds is a distributed attack
//! that per-client budgets cannot stop anyway; the connection caps and the
//! token entropy still hold, and memory stays bounded.

use super::client_ip::client_key;
use crate::config::RateLimit;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most clients any one table tracks between prunes.
pub const MAX_TRACKED: usize = 100_000;
/// How often the tables are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct FailureThrottle {
    /// `None` when throttling is off (`KEYDROP_AUTH_FAILURE_LIMIT=off`).
    quota: Option<Quota>,
    /// Replaced wholesale when it outgrows [`MAX_TRACKED`] (governor has no `clear`).
    limiter: Mutex<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// How long a client stays blocked once its budget is spent.
    cooldown: Duration,
    ipv6_prefix: u8,
}

impl FailureThrottle {
    /// `limit.count` failures per `limit.per`, per client (IPv6 per
    /// `ipv6_prefix` network); `None`: never throttle.
    pub fn new(limit: Option<RateLimit>, ipv6_prefix: u8) -> Self {
        let (quota, cooldown) = match limit {
            Some(RateLimit { count, per }) => {
                let count = NonZeroU32::new(count.max(1)).expect("at least one");
                let cooldown = (per / count.get()).max(Duration::from_millis(1));
                let quota = Quota::with_period(cooldown)
                    .expect("non-zero period")
                    .allow_burst(count);
                (Some(quota), cooldown)
            }
            None => (None, Duration::ZERO),
        };
        // Unused when off; any quota will do.
        let table =
            DefaultKeyedRateLimiter::keyed(quota.unwrap_or(Quota::per_second(NonZeroU32::MIN)));
        Self {
            quota,
            limiter: Mutex::new(Arc::new(table)),
            blocked: Mutex::new(HashMap::new()),
            cooldown,
            ipv6_prefix,
        }
    }

    /// `Some(wait)` while `ip` is blocked.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.quota?;
        let key = client_key(ip, self.ipv6_prefix);
        let mut blocked = lock(&self.blocked);
        let until = *blocked.get(&key)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            blocked.remove(&key);
            None
        }
    }

    /// Counts a failure. Returns `Some(wait)` when this failure spent the budget
    /// (the moment to audit it, once per block).
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let quota = self.quota?;
        let key = client_key(ip, self.ipv6_prefix);
        let limiter = lock(&self.limiter).clone();
        let allowed = limiter.check_key(&key).is_ok();
        if limiter.len() > MAX_TRACKED {
            limiter.retain_recent();
            if limiter.len() > MAX_TRACKED {
                *lock(&self.limiter) = Arc::new(DefaultKeyedRateLimiter::keyed(quota));
            }
        }
        if allowed {
            return None;
        }
        let mut blocked = lock(&self.blocked);
        if blocked.len() >= MAX_TRACKED {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_TRACKED {
                // Keep the blocks that last longest.
                let mut untils: Vec<Instant> = blocked.values().copied().collect();
                let cut = untils.len() / 2;
                let (_, median, _) = untils.select_nth_unstable(cut);
                let median = *median;
                blocked.retain(|_, until| *until > median);
            }
        }
        blocked.insert(key, Instant::now() + self.cooldown);
        Some(self.cooldown)
    }

    /// Forgets clients whose budget is full again and blocks that ran out.
    pub fn prune(&self) {
        let limiter = lock(&self.limiter).clone();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let now = Instant::now();
        let mut blocked = lock(&self.blocked);
        blocked.retain(|_, until| *until > now);
        blocked.shrink_to_fit();
    }

    /// How many clients the throttle currently remembers.
    pub fn tracked(&self) -> usize {
        lock(&self.limiter).len() + lock(&self.blocked).len()
    }
}

/// Says yes to the first event per client per window (to audit floods once).
pub struct OncePerWindow {
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Instant>>,
    ipv6_prefix: u8,
}

impl OncePerWindow {
    pub fn new(window: Duration, ipv6_prefix: u8) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
            ipv6_prefix,
        }
    }

    pub fn first(&self, ip: IpAddr) -> bool {
        let key = client_key(ip, self.ipv6_prefix);
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, at| now.duration_since(*at) < self.window);
            if seen.len() >= MAX_TRACKED {
                // Saying yes again early only means one more audit event.
                seen.clear();
            }
        }
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }

    /// Forgets clients whose window ended.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        seen.retain(|_, at| now.duration_since(*at) < self.window);
        seen.shrink_to_fit();
    }

    pub fn tracked(&self) -> usize {
        lock(&self.seen).len()
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
        let t = FailureThrottle::new(
            Some(RateLimit {
                count: 3,
                per: Duration::from_secs(60),
            }),
            64,
        );
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
        let t = FailureThrottle::new(None, 64);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..1000 {
            assert!(t.failed(a).is_none());
        }
        assert!(t.blocked(a).is_none());
    }

    #[test]
    fn once_per_window_says_yes_once_per_client() {
        let once = OncePerWindow::new(Duration::from_secs(60), 64);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(once.first(a) && !once.first(a));
        assert!(once.first("192.0.2.2".parse().unwrap()));
    }
}

//! The retry schedule shared by the outboxes (webhooks, email): exponential
//! backoff with "equal jitter", so receivers that come back are not hit by
//! every replica's retries at the same instant.

use std::time::Duration;

/// The delay before attempt `attempts + 1`: a random point in the upper half
/// of `base · 2^(attempts-1)`, capped at `cap`. `random` is any `u64`.
pub fn backoff(base: Duration, cap: Duration, attempts: i32, random: u64) -> Duration {
    let exp = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let half = full / 2;
    let frac = (random % 1_000_000) as f64 / 1_000_000.0;
    half + half.mul_f64(frac)
}

/// A random `u64` for the jitter, from the operating system.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b)
}

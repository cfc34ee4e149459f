//! Latency recording (HDR histograms, microseconds) and the JSON summary.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::Duration;

/// One client's results; merged at the end.
pub struct Recorder {
    pub hist: Histogram<u64>,
    pub errors: u64,
    pub samples: Vec<String>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            // 1 µs to 60 s at 3 significant figures.
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
            samples: Vec::new(),
        }
    }

    pub fn ok(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(us);
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(what);
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        self.hist.add(&other.hist).expect("same bounds");
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
    }
}

pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// `{requests, rps, p50_ms, p90_ms, p99_ms, max_ms, errors, error_samples}`.
pub fn summary(mode: &str, concurrency: usize, seconds: f64, r: &Recorder) -> Value {
    let h = &r.hist;
    json!({
        "mode": mode,
        "concurrency": concurrency,
        "duration_s": seconds,
        "requests": h.len(),
        "rps": h.len() as f64 / seconds,
        "p50_ms": ms(h, 0.50),
        "p90_ms": ms(h, 0.90),
        "p99_ms": ms(h, 0.99),
        "max_ms": h.max() as f64 / 1000.0,
        "errors": r.errors,
        "error_samples": r.samples,
    })
}

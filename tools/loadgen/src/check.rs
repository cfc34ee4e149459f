//! Live-check latency: Keydrop's own `Checker` against the fake, timed one
//! check at a time, beside one plain request to the same fake (the round-trip).

use crate::stats::{ms, Recorder};
use keydrop::providers::{self, live::Checker, live::Upstreams, CheckStatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub async fn run(fake: &str, iterations: usize) -> anyhow::Result<Value> {
    let base: url::Url = fake.parse()?;
    // Every upstream variable pointed at the fake.
    let upstreams = Upstreams::from_lookup(&|_| Some(base.to_string()))?;
    // A registry of its own: the counts are not read here.
    let checker = Checker::new(
        upstreams,
        Duration::from_secs(10),
        Vec::new(),
        keydrop::metrics::Metrics::new(),
    )?;

    // One upstream round-trip: a single Harvest request on a warm connection.
    let http = reqwest::Client::new();
    let probe = format!("{}/v3/candidates?per_page=1", fake.trim_end_matches('/'));
    let mut rtt = Recorder::new();
    for i in 0..=iterations {
        let start = Instant::now();
        http.get(&probe).send().await?.bytes().await?;
        if i > 0 {
            rtt.ok(start.elapsed());
        }
    }
    let rtt_p50 = ms(&rtt.hist, 0.5);

    let mut out = serde_json::Map::new();
    let cases: [(&str, &[(&str, &str)]); 2] = [
        (
            "greenhouse",
            &[("client_id", "bench-id"), ("client_secret", "bench-secret")],
        ),
        ("greenhouse-legacy", &[("api_key", "bench-legacy-key")]),
    ];
    for (id, fields) in cases {
        let provider = providers::find(id).ok_or_else(|| anyhow::anyhow!("no provider {id}"))?;
        let fields: BTreeMap<&str, &str> = fields.iter().copied().collect();
        let mut rec = Recorder::new();
        // The first check opens the connections; it is not counted.
        for i in 0..=iterations {
            let start = Instant::now();
            let result = checker.check(provider, &fields).await;
            if result.status != CheckStatus::Verified {
                rec.error(format!("{:?}: {}", result.status, result.detail));
            } else if i > 0 {
                rec.ok(start.elapsed());
            }
        }
        let p50 = ms(&rec.hist, 0.5);
        out.insert(
            id.to_owned(),
            json!({
                "probes": provider.permissions.len(),
                "p50_ms": p50,
                "p99_ms": ms(&rec.hist, 0.99),
                "ratio_to_round_trip": p50 / rtt_p50,
                "errors": rec.errors,
                "error_samples": rec.samples,
            }),
        );
    }
    Ok(json!({ "mode": "check", "round_trip_p50_ms": rtt_p50, "checks": out }))
}

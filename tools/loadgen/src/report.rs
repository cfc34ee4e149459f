//! Turns the JSON results of one `scripts/bench` run into the Markdown table
//! that is printed and written to BENCHMARKS.md: each figure beside its
//! ceiling or target, and whether the target is met.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

fn load(dir: &Path, name: &str) -> anyhow::Result<Value> {
    let path = dir.join(name);
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// The Markdown section (machine facts are added by the script).
pub fn run(dir: &Path) -> anyhow::Result<String> {
    let submit = load(dir, "submit.json")?;
    let pg_submit = load(dir, "pgbench_submit.json")?;
    let reveal = load(dir, "reveal.json")?;
    let pg_reveal = load(dir, "pgbench_reveal.json")?;
    let check = load(dir, "check.json")?;
    let rotate = load(dir, "rotate.json")?;
    let memory = load(dir, "memory.json")?;

    let mut t = String::new();
    writeln!(t, "| workload | req/s | p50 ms | p90 ms | p99 ms | errors | ceiling (pgbench, same SQL) | ratio | target | |")?;
    writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|")?;
    for (name, run, pg) in [
        ("submissions (public form)", &submit, &pg_submit),
        ("reveals (internal API)", &reveal, &pg_reveal),
    ] {
        let ratio = f(run, "rps") / f(pg, "tps");
        let errors =
            run["errors"].as_u64().unwrap_or(u64::MAX) + pg["failed"].as_u64().unwrap_or(0);
        writeln!(
            t,
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0} tps, {:.2} ms avg | {:.0} % | ≥ 60 %, 0 errors | {} |",
            f(run, "rps"),
            f(run, "p50_ms"),
            f(run, "p90_ms"),
            f(run, "p99_ms"),
            run["errors"],
            f(pg, "tps"),
            f(pg, "latency_ms"),
            ratio * 100.0,
            verdict(ratio >= 0.6 && errors == 0),
        )?;
    }
    let tail = f(&submit, "p99_ms") / f(&submit, "p50_ms");
    writeln!(t)?;
    writeln!(t, "| check | figure | target | |")?;
    writeln!(t, "|---|---:|---|---|")?;
    writeln!(
        t,
        "| submission p99 / p50 | {tail:.2} × | ≤ 3 × | {} |",
        verdict(tail <= 3.0)
    )?;
    let idle = f(&memory, "idle_rss_kib") / 1024.0;
    let peak = f(&memory, "peak_rss_kib") / 1024.0;
    writeln!(
        t,
        "| server RSS idle after start | {idle:.1} MiB | ≤ 24 MiB | {} |",
        verdict(idle <= 24.0)
    )?;
    writeln!(
        t,
        "| server peak RSS (VmHWM) under load | {peak:.1} MiB | ≤ 64 MiB | {} |",
        verdict(peak <= 64.0)
    )?;
    let rtt = f(&check, "round_trip_p50_ms");
    for (id, note) in [
        ("greenhouse", "token, then probes in parallel"),
        ("greenhouse-legacy", "probes in parallel"),
    ] {
        let c = &check["checks"][id];
        let ratio = f(c, "ratio_to_round_trip");
        let errors = c["errors"].as_u64().unwrap_or(u64::MAX);
        writeln!(
            t,
            "| live check `{id}` ({} probes; {note}), p50 | {:.1} ms = {ratio:.2} × one round-trip ({rtt:.1} ms) | ≤ 1.5 × | {} |",
            c["probes"],
            f(c, "p50_ms"),
            verdict(ratio <= 1.5 && errors == 0),
        )?;
    }
    let rot = f(&rotate, "rotate_rows_per_s");
    let upd = f(&rotate, "update_rows_per_s");
    writeln!(
        t,
        "| rotation of {} secrets (`keydrop rotate`) | {rot:.0} rows/s vs plain `UPDATE` {upd:.0} rows/s = {:.0} % | ≥ 50 % | {} |",
        rotate["rows"],
        rot / upd * 100.0,
        verdict(rot / upd >= 0.5 && rotate["failures"].as_u64() == Some(0)),
    )?;
    Ok(t)
}

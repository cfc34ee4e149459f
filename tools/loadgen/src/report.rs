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

/// Server instructions per submission and per reveal before issue 16 (main
/// at 95c08a1, `scripts/bench-instructions baseline-keydrop`; BENCHMARKS.md).
const BEFORE_SUBMIT: f64 = 678_247.0;
const BEFORE_REVEAL: f64 = 351_635.0;

/// `422611` as `422,611`.
fn thousands(n: f64) -> String {
    let digits = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// `0 errors` including the ceiling's failed transactions.
fn errors(run: &Value, pg: &Value) -> u64 {
    run["errors"].as_u64().unwrap_or(u64::MAX) + pg["failed"].as_u64().unwrap_or(0)
}

/// The Markdown section (machine facts are added by the script).
pub fn run(dir: &Path) -> anyhow::Result<String> {
    let submit = load(dir, "submit.json")?;
    let submit_multi = load(dir, "pgbench_submit_multi.json")?;
    let submit_one = load(dir, "pgbench_submit_one.json")?;
    let one_link = load(dir, "submit_one_link.json")?;
    let one_link_multi = load(dir, "pgbench_one_link_multi.json")?;
    let reveal = load(dir, "reveal.json")?;
    let reveal_multi = load(dir, "pgbench_reveal_multi.json")?;
    let reveal_one = load(dir, "pgbench_reveal_one.json")?;
    let snappass = load(dir, "snappass.json")?;
    let check = load(dir, "check.json")?;
    let soak = load(dir, "soak.json")?;
    let rotate = load(dir, "rotate.json")?;
    let memory = load(dir, "memory.json")?;

    let mut t = String::new();
    writeln!(t, "| workload | req/s | p50 ms | p90 ms | p99 ms | errors | ceiling: multi-statement (before) | ratio | ceiling: one statement (now) | ratio | target | |")?;
    writeln!(
        t,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    )?;
    let ceiling =
        |pg: &Value| format!("{:.0} tps, {:.2} ms avg", f(pg, "tps"), f(pg, "latency_ms"));
    for (name, run, multi, one) in [
        (
            "submissions, many links (public form)",
            &submit,
            &submit_multi,
            Some(&submit_one),
        ),
        (
            "reveals, each secret once (internal API)",
            &reveal,
            &reveal_multi,
            Some(&reveal_one),
        ),
        (
            "submissions, one link (the row-lock queue)",
            &one_link,
            &one_link_multi,
            None,
        ),
    ] {
        let ratio = f(run, "rps") / f(multi, "tps");
        let (one_cell, one_ratio) = match one {
            Some(pg) => (
                ceiling(pg),
                format!("{:.0} %", f(run, "rps") / f(pg, "tps") * 100.0),
            ),
            None => ("—".to_owned(), "—".to_owned()),
        };
        let (target, ok) = match one {
            Some(_) => (
                "≥ 80 % of multi-statement, 0 errors",
                ratio >= 0.8 && errors(run, multi) == 0,
            ),
            None => ("(for comparison) 0 errors", errors(run, multi) == 0),
        };
        writeln!(
            t,
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} % | {one_cell} | {one_ratio} | {target} | {} |",
            f(run, "rps"),
            f(run, "p50_ms"),
            f(run, "p90_ms"),
            f(run, "p99_ms"),
            run["errors"],
            ceiling(multi),
            ratio * 100.0,
            verdict(ok),
        )?;
    }
    // A browser's whole exchange (POST, 303, GET of the receipt page): two
    // requests per submission; no ceiling (the receipt read is not in it).
    if let Ok(full) = load(dir, "submit_follow.json") {
        writeln!(
            t,
            "| submissions with their receipt page (a browser's POST, 303, GET), many links | {:.0} | {:.2} | {:.2} | {:.2} | {} | | | | | (for comparison) | |",
            f(&full, "rps"),
            f(&full, "p50_ms"),
            f(&full, "p90_ms"),
            f(&full, "p99_ms"),
            full["errors"],
        )?;
    }
    match snappass["skipped"].as_str() {
        Some(why) => writeln!(t, "| Snappass 1.6.2 (peer; not durable) | skipped: {why} | | | | | | | | | | |")?,
        None => writeln!(
            t,
            "| Snappass 1.6.2 storing secrets (peer; Redis, not durable) | {:.0} | {:.2} | {:.2} | {:.2} | {} | | | | | | |",
            f(&snappass, "rps"),
            f(&snappass, "p50_ms"),
            f(&snappass, "p90_ms"),
            f(&snappass, "p99_ms"),
            snappass["errors"],
        )?,
    }
    writeln!(t)?;
    writeln!(t, "| check | figure | target | |")?;
    writeln!(t, "|---|---:|---|---|")?;
    if snappass["skipped"].is_null() {
        let x = f(&submit, "rps") / f(&snappass, "rps");
        writeln!(
            t,
            "| Keydrop submissions (durable) / Snappass stores | {x:.2} × | ≥ 1.5 × | {} |",
            verdict(x >= 1.5 && snappass["errors"].as_u64() == Some(0))
        )?;
    }
    // The ceiling's own tail (pgbench, the same SQL, the same clients):
    // what of a tail is the database's and the machine's, not the server's.
    for (name, run, multi, one) in [
        ("submission", &submit, &submit_multi, &submit_one),
        ("reveal", &reveal, &reveal_multi, &reveal_one),
    ] {
        let tail = f(run, "p99_ms") / f(run, "p50_ms");
        let pg_tail = |pg: &Value| f(pg, "p99_ms") / f(pg, "p50_ms");
        writeln!(
            t,
            "| {name} p99 / p50 (many links); the ceilings' own (pgbench, same SQL): multi-statement, one statement | {tail:.2} × ({:.2} ms / {:.2} ms); {:.2} ×, {:.2} × | ≤ 3 × | {} |",
            f(run, "p99_ms"),
            f(run, "p50_ms"),
            pg_tail(multi),
            pg_tail(one),
            verdict(tail <= 3.0)
        )?;
    }
    let idle = f(&memory, "idle_rss_kib") / 1024.0;
    let peak = f(&memory, "peak_rss_kib") / 1024.0;
    writeln!(
        t,
        "| server RSS idle after start | {idle:.1} MiB | ≤ 24 MiB | {} |",
        verdict(idle <= 24.0)
    )?;
    writeln!(
        t,
        "| server peak RSS (VmHWM) under the loads above | {peak:.1} MiB | ≤ 64 MiB | {} |",
        verdict(peak <= 64.0)
    )?;
    match soak["skipped"].as_str() {
        Some(why) => writeln!(t, "| soak | skipped ({why}) | | |")?,
        None => {
            let first = f(&soak, "rss_first_kib") / 1024.0;
            let end = f(&soak, "rss_end_kib") / 1024.0;
            let errs = soak["errors"].as_u64().unwrap_or(u64::MAX);
            writeln!(
                t,
                "| soak: {} submissions + {0} reveals; RSS after all vs after the first tenth | {end:.1} MiB vs {first:.1} MiB = {:+.1} %, {errs} errors, peak {:.1} MiB | ≤ +10 %, 0 errors | {} |",
                soak["requests"],
                (end / first - 1.0) * 100.0,
                f(&memory, "peak_rss_end_kib") / 1024.0,
                verdict(end <= first * 1.1 && errs == 0),
            )?;
        }
    }
    // Server instructions per request (scripts/bench-instructions), against
    // the figures of the build before issue 16.
    match load(dir, "instructions.json") {
        Ok(ir) if ir["skipped"].is_null() => {
            for (name, key, before) in [
                ("submission", "submit_per_request", BEFORE_SUBMIT),
                ("reveal", "reveal_per_request", BEFORE_REVEAL),
            ] {
                let after = f(&ir, key);
                let cut = (1.0 - after / before) * 100.0;
                writeln!(
                    t,
                    "| server instructions per {name} (callgrind, {} requests, at {}) | {} → {} ({:+.1} %) | ≥ 40 % fewer | {} |",
                    ir["requests"],
                    ir["tree"].as_str().unwrap_or("?"),
                    thousands(before),
                    thousands(after),
                    -cut,
                    verdict(cut >= 40.0),
                )?;
            }
        }
        Ok(ir) => writeln!(
            t,
            "| server instructions per request | skipped ({}) | ≥ 40 % fewer | |",
            ir["skipped"].as_str().unwrap_or("?")
        )?,
        Err(_) => writeln!(
            t,
            "| server instructions per request | not measured | ≥ 40 % fewer | |"
        )?,
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(422_611.0), "422,611");
        assert_eq!(super::thousands(999.0), "999");
        assert_eq!(super::thousands(1_000.0), "1,000");
    }
}

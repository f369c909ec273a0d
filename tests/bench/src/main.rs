//! `panoptes-bench`: an HTTP load generator for the benchmarks in `tests/bench`.
//!
//! Open loop (`--rate N`): requests are scheduled at fixed times and latency is
//! measured from the *scheduled* time, so a stalled server is charged for the
//! requests it delayed (no coordinated omission). Closed loop (`--rate 0`):
//! each connection sends back to back, for maximum throughput.
//! Prints one JSON line per run.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Target URL.
    #[arg(long)]
    url: String,
    /// Bearer token sent with every request.
    #[arg(long)]
    bearer: Option<String>,
    /// Requests per second (0: as fast as possible).
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Unmeasured seconds before (same load).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: u64,
    /// Name of this run in the output.
    #[arg(long, default_value = "run")]
    label: String,
}

struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: u64,
}

async fn worker(
    args: std::sync::Arc<Args>,
    client: reqwest::Client,
    index: u64,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> WorkerResult {
    let mut out = WorkerResult {
        latencies_us: Vec::new(),
        errors: 0,
    };
    let mut k = index;
    loop {
        let scheduled = match (k * 1_000_000_000).checked_div(args.rate) {
            Some(ns) => start + Duration::from_nanos(ns),
            None => Instant::now(),
        };
        if scheduled >= end {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let mut req = client.get(&args.url);
        if let Some(b) = &args.bearer {
            req = req.bearer_auth(b);
        }
        let ok = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                resp.bytes().await.is_ok() && status.is_success()
            }
            Err(_) => false,
        };
        let done = Instant::now();
        if scheduled >= measure_from {
            if ok {
                out.latencies_us
                    .push(done.duration_since(scheduled).as_micros() as u64);
            } else {
                out.errors += 1;
            }
        }
        k += args.connections;
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = std::sync::Arc::new(Args::parse());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections as usize)
        .tcp_nodelay(true)
        .build()
        .context("http client")?;
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            tokio::spawn(worker(
                args.clone(),
                client.clone(),
                i,
                start,
                measure_from,
                end,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let r = t.await.context("worker panicked")?;
        latencies.extend(r.latencies_us);
        errors += r.errors;
    }
    latencies.sort_unstable();
    let measured = Instant::now()
        .min(end)
        .duration_since(measure_from)
        .as_secs_f64();
    let report = serde_json::json!({
        "label": args.label,
        "targetRate": args.rate,
        "connections": args.connections,
        "requests": latencies.len(),
        "errors": errors,
        "achievedRate": (latencies.len() as f64 / measured).round(),
        "p50ms": percentile(&latencies, 0.50),
        "p90ms": percentile(&latencies, 0.90),
        "p99ms": percentile(&latencies, 0.99),
        "p999ms": percentile(&latencies, 0.999),
        "maxMs": latencies.last().map_or(f64::NAN, |v| *v as f64 / 1000.0),
    });
    println!("{report}");
    Ok(())
}

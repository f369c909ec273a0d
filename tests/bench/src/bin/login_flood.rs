//! Floods a gateway with concurrent anonymous requests (log-ins for unknown
//! emails, or a reference endpoint) from several loopback source addresses,
//! while one owner logs in from another address; samples the gateway's
//! resident memory throughout. Prints one JSON line.
//!
//!   login-flood --base http://127.0.0.1:8080 --pid 1234 --requests 1000 \
//!       --addresses 1 --owner-email E --owner-password P [--path /healthz]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    base: String,
    /// The gateway's process id (its memory is sampled).
    #[arg(long)]
    pid: u32,
    /// Concurrent requests, all sent at once.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Source addresses the flood comes from (127.0.2.1, 127.0.2.2, ...).
    #[arg(long, default_value_t = 1)]
    addresses: usize,
    /// Flood this path instead of log-ins (a reference), with GET.
    #[arg(long)]
    path: Option<String>,
    #[arg(long)]
    owner_email: String,
    #[arg(long)]
    owner_password: String,
    #[arg(long, default_value = "flood")]
    label: String,
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn client(ip: IpAddr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(ip)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let before = rss_kb(args.pid);
    let peak = Arc::new(AtomicU64::new(before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), args.pid);
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let clients: Vec<reqwest::Client> = (0..args.addresses.max(1))
        .map(|i| client(format!("127.0.2.{}", i + 1).parse().expect("an address")))
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    let flood: Vec<_> = (0..args.requests)
        .map(|i| {
            let c = clients[i % clients.len()].clone();
            let (base, path) = (args.base.clone(), args.path.clone());
            tokio::spawn(async move {
                let req = match path {
                    Some(p) => c.get(format!("{base}{p}")),
                    None => c.post(format!("{base}/api/v1/auth/login")).json(
                        &json!({"email": format!("nobody-{i}@example.com"), "password": "guess 123"}),
                    ),
                };
                req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    // The owner, from elsewhere, while the flood is in flight.
    let owner = client("127.0.3.1".parse()?)?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let owner_status = owner
        .post(format!("{}/api/v1/auth/login", args.base))
        .json(&json!({"email": args.owner_email, "password": args.owner_password}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    let owner_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for f in flood {
        *statuses.entry(f.await.unwrap_or(0)).or_default() += 1;
    }
    let flood_s = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    // Memory a few seconds after the burst: does it go back?
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kb(args.pid);
    println!(
        "{}",
        json!({
            "label": args.label,
            "requests": args.requests,
            "addresses": args.addresses,
            "rss_before_mb": before as f64 / 1024.0,
            "rss_peak_mb": peak.load(Ordering::Relaxed) as f64 / 1024.0,
            "rss_after_mb": after as f64 / 1024.0,
            "owner_status": owner_status,
            "owner_ms": owner_ms,
            "flood_seconds": flood_s,
            "statuses": statuses,
        })
    );
    Ok(())
}

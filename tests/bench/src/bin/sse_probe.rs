//! `sse-probe`: opens many SSE streams against a server, optionally publishes
//! timestamped events to them, and reports what arrived: events, gaps (per
//! channel `seq`), publish-to-client latency (from each event's `sentAtUs`)
//! and how long connecting took. Parses SSE across chunk boundaries.
//!
//! Targets: `ours` (the Panoptes gateway; publishes through the Redis event
//! bus; one channel = one user, whose token is given) and `nchan` (publishes
//! with HTTP POST to `/pub/<channel>`, subscribes to `/sub/<channel>`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::{EventBus, Publication};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// `ours` or `nchan`.
    #[arg(long)]
    target: String,
    /// Server base URL.
    #[arg(long)]
    base: String,
    /// For `ours`: lines of `<user id> <token>`, one per channel.
    #[arg(long)]
    users: Option<String>,
    /// Channels (for `nchan`; for `ours`, the number of users read).
    #[arg(long, default_value_t = 10)]
    channels: usize,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Streams opened at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Total publishes per second across channels (0: none, idle hold).
    #[arg(long, default_value_t = 0)]
    publish_rate: u64,
    /// Seconds to publish / hold after every stream is open.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Write `ready` to this file once all streams are open, and hold for `seconds`.
    #[arg(long)]
    ready_file: Option<String>,
    /// Redis URL and key prefix of the gateway (target `ours`).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    #[arg(long, default_value = "panoptes:v1")]
    prefix: String,
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    events: u64,
    gaps: u64,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

struct Channel {
    url: String,
    auth: Option<String>,
    user: Option<UserId>,
}

fn channels(args: &Args) -> anyhow::Result<Vec<Channel>> {
    match args.target.as_str() {
        "ours" => {
            let text = std::fs::read_to_string(
                args.users
                    .as_deref()
                    .context("--users is required for ours")?,
            )?;
            Ok(text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let (user, token) = l.split_once(' ').unwrap_or((l, ""));
                    Channel {
                        url: format!("{}/api/v1/devices/analysis/stream/all", args.base),
                        auth: Some(format!("Bearer {token}")),
                        user: user.parse().ok(),
                    }
                })
                .collect())
        }
        "nchan" => Ok((0..args.channels)
            .map(|c| Channel {
                url: format!("{}/sub/ch{c}", args.base),
                auth: None,
                user: None,
            })
            .collect()),
        other => anyhow::bail!("unknown target {other}"),
    }
}

/// One stream: read, parse, record. Returns when the server closes it.
/// The connect permit is released as soon as the response headers arrive.
async fn stream(
    client: reqwest::Client,
    url: String,
    auth: Option<String>,
    stats: Arc<Mutex<Stats>>,
    opened: Arc<AtomicU64>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut req = client.get(&url).header("accept", "text/event-stream");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await;
    drop(permit);
    let Ok(mut resp) = resp else { return };
    if !resp.status().is_success() {
        return;
    }
    opened.fetch_add(1, Ordering::Relaxed);
    let mut buf = String::new();
    let mut last_seq: Option<u64> = None;
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let Some(data) = block
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
            else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            let (Some(seq), Some(sent)) = (v["seq"].as_u64(), v["sentAtUs"].as_u64()) else {
                continue;
            };
            let latency = now_us().saturating_sub(sent);
            let mut s = stats.lock().await;
            s.events += 1;
            s.latencies_us.push(latency);
            if let Some(prev) = last_seq
                && seq > prev + 1
            {
                s.gaps += seq - prev - 1;
            }
            last_seq = Some(seq);
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let chans = channels(&args)?;
    anyhow::ensure!(!chans.is_empty(), "no channels");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .build()?;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let opened = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let c = &chans[i % chans.len()];
        let permit = gate.clone().acquire_owned().await?;
        let (client, url, auth, stats, opened) = (
            client.clone(),
            c.url.clone(),
            c.auth.clone(),
            stats.clone(),
            opened.clone(),
        );
        tasks.push(tokio::spawn(stream(
            client, url, auth, stats, opened, permit,
        )));
    }
    // Wait (bounded) until every stream is open: the probe's own readiness, not the server's work.
    while (opened.load(Ordering::Relaxed) as usize) < args.connections
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let open_now = opened.load(Ordering::Relaxed);
    if let Some(f) = &args.ready_file {
        std::fs::write(f, "ready")?;
    }
    let publish_started = Instant::now();
    let mut published = 0u64;
    if args.publish_rate > 0 {
        let bus = if args.target == "ours" {
            let rc = redis::Client::open(args.redis.as_str())?;
            let conn = redis::aio::ConnectionManager::new(rc.clone()).await?;
            Some(panoptes_infra::bus::RedisBus::connect(rc, conn, args.prefix.clone()).await?)
        } else {
            None
        };
        let (task, device) = (uuid::Uuid::new_v4(), DeviceId::new());
        let mut seqs = vec![0u64; chans.len()];
        let interval = Duration::from_nanos(
            1_000_000_000u64
                .checked_div(args.publish_rate)
                .unwrap_or(u64::MAX),
        );
        let end = publish_started + Duration::from_secs(args.seconds);
        let mut next = Instant::now();
        while next < end {
            tokio::time::sleep_until(next.into()).await;
            let c = (published as usize) % chans.len();
            let data =
                serde_json::json!({"seq": seqs[c], "sentAtUs": now_us(), "pad": "x".repeat(200)})
                    .to_string();
            seqs[c] += 1;
            match &bus {
                Some(bus) => {
                    let user = chans[c].user.context("user id")?;
                    bus.publish(&Publication {
                        user,
                        device,
                        task,
                        data,
                    })
                    .await?;
                }
                None => {
                    client
                        .post(format!("{}/pub/ch{c}", args.base))
                        .body(data)
                        .send()
                        .await?;
                }
            }
            published += 1;
            next += interval;
        }
        // Let the last events arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
    } else {
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    }
    let streams_per_channel = args.connections as f64 / chans.len() as f64;
    let mut s = stats.lock().await;
    s.latencies_us.sort_unstable();
    let expected = (published as f64 * streams_per_channel).round() as u64;
    // Deliveries per second of publishing (the tail wait only lets the last ones land).
    let secs = if args.publish_rate > 0 {
        args.seconds as f64
    } else {
        publish_started.elapsed().as_secs_f64()
    };
    println!(
        "{}",
        serde_json::json!({
            "target": args.target, "connections": args.connections, "opened": open_now, "connectSeconds": connect_secs,
            "published": published, "expectedDeliveries": expected, "deliveries": s.events, "gaps": s.gaps,
            "deliveriesPerSecond": (s.events as f64 / secs).round(),
            "p50ms": percentile(&s.latencies_us, 0.5), "p99ms": percentile(&s.latencies_us, 0.99), "maxMs": percentile(&s.latencies_us, 1.0),
        })
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

//! `sse-probe`: opens many SSE streams against a server, optionally publishes
//! timestamped events to them, and reports what arrived: events, gaps (per
//! channel `seq`), publish-to-client latency (from each event's `sentAtUs`)
//! and how long connecting took. Optionally drops every stream at once midway
//! and reconnects each with `Last-Event-ID`, reporting how long until all
//! have resumed (and, through the gap count, whether anything was lost).
//!
//! Targets: `ours` (the Panoptes gateway; publishes through the Redis event
//! bus; one channel = one user, whose token is given), `nchan` (publishes with
//! `POST /pub/<channel>`, subscribes to `/sub/<channel>`) and `pushpin`
//! (subscribes to `/sub/<channel>` through the proxy, publishes to the
//! handler's `/publish/`).

mod histogram;
mod parse;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser as _;
use histogram::Histogram;
use panoptes_shared::ids::{DeviceId, TaskId, UserId};
use panoptes_shared::ports::{EventBus, Publication};
use tokio::sync::{Semaphore, watch};

#[derive(clap::Parser)]
struct Args {
    /// `ours`, `nchan` or `pushpin`.
    #[arg(long)]
    target: String,
    /// Server base URL (subscribers).
    #[arg(long)]
    base: String,
    /// For `pushpin`: the handler's publish URL.
    #[arg(long, default_value = "http://127.0.0.1:5561/publish/")]
    publish_url: String,
    /// For `ours`: lines of `<user id> <token>`, one per channel.
    #[arg(long)]
    users: Option<String>,
    /// Channels (for `ours`, the first this many users of `--users`).
    #[arg(long, default_value_t = 10)]
    channels: usize,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Total publishes per second across channels (0: none, idle hold).
    #[arg(long, default_value_t = 0)]
    publish_rate: u64,
    /// Seconds to publish / hold after every stream is open.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Drop every stream at once this many seconds into publishing, and
    /// reconnect each with its `Last-Event-ID`.
    #[arg(long)]
    resume_at: Option<f64>,
    /// Write `ready` to this file once all streams are open, and hold for `seconds`.
    #[arg(long)]
    ready_file: Option<String>,
    /// Redis URL and key prefix of the gateway (target `ours`).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    #[arg(long, default_value = "panoptes:v1")]
    prefix: String,
    /// Server process ids (comma-separated) whose CPU use to report for the
    /// publishing window, beside the probe's own.
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().map(|p| cpu_seconds(&p.to_string())).sum()
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
                .take(args.channels)
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
        "nchan" | "pushpin" => Ok((0..args.channels)
            .map(|c| Channel {
                url: format!("{}/sub/ch{c}", args.base),
                auth: None,
                user: None,
            })
            .collect()),
        other => anyhow::bail!("unknown target {other}"),
    }
}

/// What every stream task shares.
#[derive(Default)]
struct Shared {
    latency: Histogram,
    /// How long each publish call took (the publisher's own share of latency).
    publish: Histogram,
    gaps: AtomicU64,
    duplicates: AtomicU64,
    opened: AtomicU64,
    reopened: AtomicU64,
    resumed: AtomicU64,
    server_closes: AtomicU64,
    connect_errors: AtomicU64,
}

/// One stream: connect (with `Last-Event-ID` after the first time), read,
/// parse, record; reconnect when the server ends the stream or the probe
/// drops them all.
async fn stream(
    client: reqwest::Client,
    channel: Arc<Channel>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut drops: watch::Receiver<u64>,
) {
    let (mut last_id, mut last_seq): (Option<String>, Option<u64>) = (None, None);
    // Our gateway's `Stream-Token`: presented on reconnect, the new stream
    // takes over the old one's slot before the server has noticed it is gone.
    let mut stream_token: Option<String> = None;
    let mut reconnecting = false;
    loop {
        let Ok(permit) = gate.acquire().await else {
            return;
        };
        let mut req = client
            .get(&channel.url)
            .header("accept", "text/event-stream");
        if let Some(a) = &channel.auth {
            req = req.header("authorization", a);
        }
        if let Some(id) = &last_id {
            req = req.header("last-event-id", id);
        }
        if let Some(t) = &stream_token {
            req = req.header("stream-token", t);
        }
        let resp = req.send().await;
        drop(permit);
        let mut resp = match resp {
            Ok(r) if r.status().is_success() => r,
            _ => {
                shared.connect_errors.fetch_add(1, Ordering::Relaxed);
                // Back off a little before trying again, like an EventSource.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        stream_token = resp
            .headers()
            .get("stream-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if reconnecting {
            shared.reopened.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.opened.fetch_add(1, Ordering::Relaxed);
        }
        drops.mark_unchanged();
        let mut parser = parse::Parser::default();
        let mut first_after_reconnect = reconnecting;
        loop {
            tokio::select! {
                chunk = resp.chunk() => {
                    let Ok(Some(chunk)) = chunk else {
                        shared.server_closes.fetch_add(1, Ordering::Relaxed);
                        break;
                    };
                    parser.feed(&chunk);
                    while let Some(e) = parser.next() {
                        shared.latency.record(now_us().saturating_sub(e.sent_at_us));
                        if let Some(prev) = last_seq
                            && e.seq > prev + 1
                        {
                            shared.gaps.fetch_add(e.seq - prev - 1, Ordering::Relaxed);
                        }
                        if last_seq.is_some_and(|prev| e.seq <= prev) {
                            shared.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        last_seq = Some(last_seq.map_or(e.seq, |p| p.max(e.seq)));
                        if e.id.is_some() {
                            last_id = e.id;
                        }
                        if first_after_reconnect {
                            first_after_reconnect = false;
                            shared.resumed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                changed = drops.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        reconnecting = true;
    }
}

/// Publishes to one channel at `rate` per second from `start` until `end`.
async fn publish_channel(
    target: Arc<Target>,
    c: usize,
    rate: f64,
    (start, end): (Instant, Instant),
    published: Arc<AtomicU64>,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (task, device) = (TaskId::new(), DeviceId::new());
    let mut next = start;
    let mut seq = 0u64;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let data = format!(
            "{{\"seq\":{seq},\"sentAtUs\":{},\"pad\":\"{}\"}}",
            now_us(),
            "x".repeat(200)
        );
        let t0 = Instant::now();
        target.publish(c, seq, task, device, data).await?;
        shared.publish.record(t0.elapsed().as_micros() as u64);
        seq += 1;
        published.fetch_add(1, Ordering::Relaxed);
        next += interval;
    }
    Ok(())
}

enum Target {
    Ours {
        bus: panoptes_infra::bus::RedisBus,
        users: Vec<UserId>,
    },
    Nchan {
        client: reqwest::Client,
        base: String,
    },
    Pushpin {
        client: reqwest::Client,
        url: String,
    },
}

impl Target {
    async fn publish(
        &self,
        c: usize,
        seq: u64,
        task: TaskId,
        device: DeviceId,
        data: String,
    ) -> anyhow::Result<()> {
        match self {
            Self::Ours { bus, users } => {
                bus.publish(&Publication {
                    user: users[c],
                    device,
                    task,
                    data,
                })
                .await?;
            }
            Self::Nchan { client, base } => {
                client
                    .post(format!("{base}/pub/ch{c}"))
                    .body(data)
                    .send()
                    .await?
                    .error_for_status()?;
            }
            Self::Pushpin { client, url } => {
                let content = format!("id: {seq}\nevent: message\ndata: {data}\n\n");
                let body = serde_json::json!({"items": [{"channel": format!("ch{c}"), "formats": {"http-stream": {"content": content}}}]});
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let chans: Vec<Arc<Channel>> = channels(&args)?.into_iter().map(Arc::new).collect();
    anyhow::ensure!(!chans.is_empty(), "no channels");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .build()?;
    // Publishers keep their connections (subscribers each have their own).
    let publisher = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let shared = Arc::new(Shared::default());
    let (drop_all, drops) = watch::channel(0u64);
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let started = Instant::now();
    let mut per_channel = vec![0u64; chans.len()];
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let c = i % chans.len();
        per_channel[c] += 1;
        tasks.push(tokio::spawn(stream(
            client.clone(),
            chans[c].clone(),
            shared.clone(),
            gate.clone(),
            drops.clone(),
        )));
    }
    // Wait (bounded) until every stream is open: the probe's own readiness, not the server's work.
    while (shared.opened.load(Ordering::Relaxed) as usize) < args.connections
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let open_now = shared.opened.load(Ordering::Relaxed);
    if let Some(f) = &args.ready_file {
        std::fs::write(f, "ready")?;
    }
    let publish_started = Instant::now();
    let cpu_before = (cpu_seconds("self"), cpu_of(&args.server_pids));
    let published: Vec<Arc<AtomicU64>> = (0..chans.len()).map(|_| Arc::default()).collect();
    let mut resume_secs = None;
    let mut cpu_window = None;
    if args.publish_rate > 0 {
        let target = Arc::new(match args.target.as_str() {
            "ours" => {
                let rc = redis::Client::open(args.redis.as_str())?;
                let conn =
                    panoptes_infra::redis_conn::RedisConn::connect(rc.clone(), Default::default())
                        .await?;
                Target::Ours {
                    bus: panoptes_infra::bus::RedisBus::connect(rc, conn, args.prefix.clone())
                        .await?,
                    users: chans
                        .iter()
                        .map(|c| c.user.context("user id"))
                        .collect::<anyhow::Result<_>>()?,
                }
            }
            "nchan" => Target::Nchan {
                client: publisher.clone(),
                base: args.base.clone(),
            },
            _ => Target::Pushpin {
                client: publisher.clone(),
                url: args.publish_url.clone(),
            },
        });
        let end = publish_started + Duration::from_secs(args.seconds);
        let rate = args.publish_rate as f64 / chans.len() as f64;
        // Channels take turns: publishes are spread evenly over time, not
        // fired together (which would measure a queue of simultaneous publishes).
        let spacing = Duration::from_secs_f64(1.0 / args.publish_rate as f64);
        let publishers: Vec<_> = (0..chans.len())
            .map(|c| {
                tokio::spawn(publish_channel(
                    target.clone(),
                    c,
                    rate,
                    (publish_started + spacing * c as u32, end),
                    published[c].clone(),
                    shared.clone(),
                ))
            })
            .collect();
        if let Some(at) = args.resume_at {
            tokio::time::sleep_until((publish_started + Duration::from_secs_f64(at)).into()).await;
            let dropped = Instant::now();
            drop_all.send_modify(|g| *g += 1);
            while (shared.resumed.load(Ordering::Relaxed) as usize) < args.connections
                && dropped.elapsed() < Duration::from_secs(120)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            resume_secs = Some(dropped.elapsed().as_secs_f64());
        }
        for p in publishers {
            p.await??;
        }
        cpu_window = Some((
            cpu_seconds("self") - cpu_before.0,
            cpu_of(&args.server_pids) - cpu_before.1,
            publish_started.elapsed().as_secs_f64(),
        ));
        // Let the last events arrive.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    } else {
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    }
    let published: Vec<u64> = published
        .iter()
        .map(|p| p.load(Ordering::Relaxed))
        .collect();
    let expected: u64 = published.iter().zip(&per_channel).map(|(p, n)| p * n).sum();
    let deliveries = shared.latency.count();
    let secs = if args.publish_rate > 0 {
        args.seconds as f64
    } else {
        publish_started.elapsed().as_secs_f64()
    };
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "target": args.target, "connections": args.connections, "opened": open_now, "connectSeconds": connect_secs,
            "published": published.iter().sum::<u64>(), "expectedDeliveries": expected, "deliveries": deliveries,
            "gaps": load(&shared.gaps), "duplicates": load(&shared.duplicates), "deliveriesPerSecond": (deliveries as f64 / secs).round(),
            "p50ms": shared.latency.quantile_ms(0.5), "p99ms": shared.latency.quantile_ms(0.99), "maxMs": shared.latency.max_ms(),
            "publishP50ms": shared.publish.quantile_ms(0.5), "publishP99ms": shared.publish.quantile_ms(0.99),
            "resumeSeconds": resume_secs, "reopened": load(&shared.reopened), "resumed": load(&shared.resumed),
            "probeCores": cpu_window.map(|(p, _, s)| p / s), "serverCores": cpu_window.map(|(_, v, s)| v / s),
            "serverCloses": load(&shared.server_closes), "connectErrors": load(&shared.connect_errors),
        })
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

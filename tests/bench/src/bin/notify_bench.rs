//! `notify-bench`: the notify role on PostgreSQL and Redis, delivering to a
//! fast HTTP receiver on loopback (prints one JSON object).
//!
//! 1. Throughput: `--events` platform events of `--users` users go through
//!    the outbox and the deliverer (signed, every attempt logged, one
//!    request at a time per endpoint). Reference, same run, same receiver:
//!    bare POSTs of the same bodies, one connection each, `--users` at a time.
//! 2. Latency: `--devices` devices publish `analysis_result` events at
//!    `--fps`; each device's queue crosses its rule's threshold every
//!    `--cross-every-ms`. Measured: from the capture time of the crossing
//!    result to the `alert_triggered` webhook's arrival. Reference, same run:
//!    the bus alone, publish to a subscriber's receipt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use panoptes_infra::bus::RedisBus;
use panoptes_infra::coord::RedisLeases;
use panoptes_infra::crypto::AesGcmCipher;
use panoptes_infra::jobs::MemoryJobQueue;
use panoptes_infra::store::{SqlStore, StoreOptions};
use panoptes_shared::domain::alert::{AlertRule, MetricPath, Operator, Severity};
use panoptes_shared::domain::device::{Device, DeviceStatus, DeviceType, QuotaLimits, RtspUrl};
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::polygon::Polygon;
use panoptes_shared::domain::queue_metrics::QueueMetrics;
use panoptes_shared::domain::scene::{AnalysisType, Scene, SceneParameters, SceneStatus, Zones};
use panoptes_shared::domain::schedule::UtcOffset;
use panoptes_shared::domain::stream_events::AnalysisResult;
use panoptes_shared::domain::user::{Email, Role, User};
use panoptes_shared::domain::webhook::{SigningSecret, Webhook};
use panoptes_shared::ids::{AlertRuleId, DeviceId, SceneId, TaskId, UserId, WebhookId};
use panoptes_shared::ports::jobs::{InsightJob, JobQueue};
use panoptes_shared::ports::prelude::*;
use panoptes_shared::ports::{EventBus, Publication, SecretCipher};
use panoptes_shared::time::now;
use panoptes_workers::metrics::WorkerMetrics;
use panoptes_workers::notify::{
    DeliverPorts, DeliverSettings, Deliverer, InsightPorts, InsightSettings, InsightWorker,
    Notifier, Outbox, RuleEvaluator, RulesPorts, RulesSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    store_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, default_value_t = 20)]
    users: usize,
    #[arg(long, default_value_t = 4000)]
    events: usize,
    #[arg(long, default_value_t = 100)]
    devices: usize,
    #[arg(long, default_value_t = 5.0)]
    fps: f64,
    #[arg(long, default_value_t = 3000)]
    cross_every_ms: u64,
    /// Measured seconds of the latency phase.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

/// What the receiver saw: arrival wall-clock ms per (type, deviceId, triggeredAt ms).
#[derive(Default)]
struct Seen {
    count: usize,
    alerts: Vec<(String, i64, i64)>,
}

async fn receiver(seen: Arc<Mutex<Seen>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let arrived = now().timestamp_millis();
                    let body: serde_json::Value =
                        serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or_default();
                    buf.drain(..end + 4 + len);
                    {
                        let mut s = seen.lock().unwrap();
                        s.count += 1;
                        if body["type"] == "alert_triggered" {
                            let at = body["data"]["triggeredAt"]
                                .as_str()
                                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                                .map_or(0, |t| t.timestamp_millis());
                            let device = body["data"]["deviceId"].as_str().unwrap_or("").to_owned();
                            s.alerts.push((device, at, arrived));
                        }
                    }
                    let ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if tcp.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn user(store: &SqlStore) -> UserId {
    let u = User {
        id: UserId::new(),
        email: Email::parse(&format!("b-{}@example.com", uuid::Uuid::new_v4())).unwrap(),
        name: None,
        role: Role::User,
        created_at: now(),
    };
    store.create_user(&u, "x").await.unwrap();
    u.id
}

async fn device_and_scene(store: &SqlStore, owner: UserId) -> (DeviceId, SceneId) {
    let t = now();
    let d = Device {
        id: DeviceId::new(),
        user_id: owner,
        name: "cam".into(),
        description: None,
        rtsp_url: RtspUrl::parse("rtsp://127.0.0.1/s").unwrap().0,
        credentials: None,
        location_label: None,
        latitude: None,
        longitude: None,
        geo_source: None,
        device_type: DeviceType::IpCamera,
        plan: Plan::Level01,
        tags: vec![],
        utc_offset: UtcOffset::default(),
        schedule: None,
        status: DeviceStatus::Online,
        quota: QuotaLimits::default(),
        created_at: t,
        updated_at: t,
        push_enabled: false,
        last_seen_at: None,
        allow_plain_basic_auth: false,
    };
    store.insert_device(&d).await.unwrap();
    let zone = Polygon::parse(&[vec![0.0, 0.0], vec![1.0, 0.0], vec![1.0, 1.0]]).unwrap();
    let s = Scene {
        id: SceneId::new(),
        user_id: owner,
        device_id: d.id,
        name: "q".into(),
        description: None,
        analysis_type: AnalysisType::QueueAnalysis,
        zones: Zones::new(Some(zone), None).unwrap(),
        parameters: SceneParameters::default(),
        status: SceneStatus::Active,
        created_at: t,
        updated_at: t,
    };
    store.insert_scene(&s).await.unwrap();
    (d.id, s.id)
}

async fn webhook(store: &SqlStore, cipher: &dyn SecretCipher, owner: UserId, url: &str) {
    let t = now() - chrono::Duration::seconds(1);
    let secret = SigningSecret::generate();
    store
        .create_webhook(&Webhook {
            id: WebhookId::new(),
            user_id: owner,
            url: url.into(),
            name: None,
            secret: cipher.seal(secret.expose().as_bytes()).unwrap(),
            previous_secret: None,
            previous_secret_until: None,
            subscribed_types: vec![],
            timeout_ms: 5_000,
            max_retries: 3,
            enabled: true,
            disabled_reason: None,
            paused_until: None,
            created_at: t,
            updated_at: t,
        })
        .await
        .unwrap();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = Arc::new(
        SqlStore::connect(&StoreOptions {
            url: args.store_url.clone(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(30),
        })
        .await?,
    );
    store.migrate().await?;
    let client = redis::Client::open(args.redis_url.as_str())?;
    let conn =
        panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default()).await?;
    let prefix = format!("panoptes-bench:{}", uuid::Uuid::new_v4());
    let bus: Arc<dyn EventBus> =
        Arc::new(RedisBus::connect(client, conn.clone(), prefix.clone()).await?);
    let leases = Arc::new(RedisLeases::new(conn, prefix));
    let cipher: Arc<dyn SecretCipher> = Arc::new(
        AesGcmCipher::from_base64(&AesGcmCipher::generate_key()).map_err(anyhow::Error::msg)?,
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let addr = receiver(seen.clone()).await;
    let url = format!("http://{addr}/in");
    let metrics = Arc::new(WorkerMetrics::default());
    let sender = panoptes_infra::webhooks::HttpWebhookSender::new(
        Arc::new(panoptes_shared::outbound::OutboundGuard::new(
            Arc::new(panoptes_infra::resolver::SystemResolver),
            true,
        )),
        panoptes_infra::camera::Tls::system(),
        1024,
    );
    let deliverer = Arc::new(Deliverer::new(
        DeliverPorts {
            store: store.clone(),
            sender: Arc::new(sender),
            leases: leases.clone(),
            cipher: cipher.clone(),
            metrics: metrics.clone(),
        },
        DeliverSettings {
            node: "bench".into(),
            retry_schedule: vec![Duration::from_secs(5)],
            jitter: 0.2,
            max_in_flight: 256,
            batch: 50,
            lease_ttl: Duration::from_secs(60),
        },
    ));

    // 1. Throughput.
    let mut users = Vec::new();
    for _ in 0..args.users {
        let u = user(&store).await;
        webhook(&store, cipher.as_ref(), u, &url).await;
        users.push(u);
    }
    let mut bodies = Vec::new();
    for i in 0..args.events {
        let e = PlatformEvent::new(
            users[i % users.len()],
            EventKind::DeviceOnline,
            None,
            None,
            serde_json::json!({"status": "online", "n": i}),
            now(),
        );
        bodies.push(e.payload().to_string());
        store.record_event(&e).await?;
    }
    let outbox = Outbox::new(store.clone());
    let clock = Instant::now();
    while outbox.step().await?.events > 0 {}
    let dispatched = clock.elapsed();
    let clock = Instant::now();
    while seen.lock().unwrap().count < args.events {
        deliverer.step().await?;
        let _ = tokio::time::timeout(Duration::from_millis(50), deliverer.wake.notified()).await;
        anyhow::ensure!(
            clock.elapsed() < Duration::from_secs(600),
            "deliveries stalled"
        );
    }
    let delivered = clock.elapsed();
    // Reference: bare POSTs, a new connection each, `users` at a time.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let per = args.events.div_ceil(args.users);
    let clock = Instant::now();
    let mut lanes = tokio::task::JoinSet::new();
    for lane in bodies.chunks(per).map(<[String]>::to_vec) {
        let (http, url) = (http.clone(), url.clone());
        lanes.spawn(async move {
            for b in lane {
                http.post(&url).body(b).send().await.unwrap();
            }
        });
    }
    lanes.join_all().await;
    let bare = clock.elapsed();

    // 2. Latency, with `devices` devices publishing.
    let owners: Vec<UserId> = {
        let mut v = Vec::new();
        for _ in 0..args.users.min(args.devices).max(1) {
            let u = user(&store).await;
            webhook(&store, cipher.as_ref(), u, &url).await;
            v.push(u);
        }
        v
    };
    let mut fleet = Vec::new();
    for i in 0..args.devices {
        let owner = owners[i % owners.len()];
        let (d, s) = device_and_scene(&store, owner).await;
        let t = now();
        store
            .insert_rule(&AlertRule {
                id: AlertRuleId::new(),
                user_id: owner,
                scene_id: s,
                device_id: d,
                name: "long queue".into(),
                metric_path: MetricPath::parse("current.inQueue")?,
                operator: Operator::Gte,
                threshold: 5.0,
                duration_seconds: 0,
                cooldown_seconds: 0,
                severity: Severity::Warning,
                active_slots: None,
                enabled: true,
                last_fired_at: None,
                breach_open: false,
                created_at: t,
                updated_at: t,
            })
            .await?;
        fleet.push((owner, d, s));
    }
    seen.lock().unwrap().alerts.clear();
    // Level_01 devices: no insight is made; the insight loop idles on its queue.
    let insight_jobs: Arc<dyn JobQueue<InsightJob>> = Arc::new(MemoryJobQueue::<InsightJob>::new(
        panoptes_infra::wiring::insight_queue_policy(&panoptes_shared::config::Config::default()),
    ));
    let notifier = Notifier {
        insights: Arc::new(InsightWorker::new(
            InsightPorts {
                store: store.clone(),
                blobs: Arc::new(panoptes_infra::blobs::LocalBlobs::new(
                    std::env::temp_dir(),
                    "http://127.0.0.1:1",
                    b"notify-bench",
                )),
                queue: insight_jobs.clone(),
                vlm: Arc::new(panoptes_infra::vlm::DisabledVlm),
                metrics: metrics.clone(),
            },
            InsightSettings {
                consumer: "bench".into(),
                batch: 4,
                wait: Duration::from_millis(200),
                max_attempts: 3,
                requeue_after: Duration::from_secs(900),
            },
        )),
        rules: Arc::new(RuleEvaluator::new(
            RulesPorts {
                store: store.clone(),
                insight_queue: insight_jobs.clone(),
                bus: bus.clone(),
                leases: leases.clone(),
                metrics: metrics.clone(),
            },
            RulesSettings {
                node: "bench".into(),
                lease_ttl: Duration::from_secs(15),
                refresh: Duration::from_secs(2),
                read_max: 1_000,
            },
        )),
        outbox: Arc::new(Outbox::new(store.clone())),
        deliverer: deliverer.clone(),
        poll: Duration::from_millis(200),
    };
    let stop = CancellationToken::new();
    let role = tokio::spawn(notifier.run(stop.clone()));
    // The bus alone: one user's subscriber, publish to receipt.
    let mut sub = bus.subscribe(fleet[0].0).await?;
    let bus_latency = Arc::new(Mutex::new(Vec::<f64>::new()));
    let bl = bus_latency.clone();
    let watcher = tokio::spawn(async move {
        while let Some(e) = sub.next().await {
            if let Ok(r) = serde_json::from_str::<AnalysisResult>(&e.data) {
                let ms = (now() - r.timestamp).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                bl.lock().unwrap().push(ms);
            }
        }
    });
    let frame = Duration::from_secs_f64(1.0 / args.fps);
    let frames_per_cross = (args.cross_every_ms as f64 / frame.as_millis() as f64).max(2.0) as u64;
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let mut publishers = tokio::task::JoinSet::new();
    let crossings: Arc<Mutex<HashMap<(String, i64), ()>>> = Arc::default();
    for (i, (owner, device, scene)) in fleet.iter().copied().enumerate() {
        let (bus, crossings) = (bus.clone(), crossings.clone());
        publishers.spawn(async move {
            let task = TaskId::new();
            let mut tick = tokio::time::interval(frame);
            // Stagger the devices over one frame.
            tokio::time::sleep(frame.mul_f64(i as f64 / 100.0 % 1.0)).await;
            let mut n: u64 = i as u64 % frames_per_cross;
            while Instant::now() < end {
                tick.tick().await;
                n += 1;
                let crossing = n.is_multiple_of(frames_per_cross);
                let at = now();
                let result = AnalysisResult {
                    device_id: device,
                    analysis_id: task,
                    scene_id: scene,
                    timestamp: at,
                    detections: vec![],
                    metrics: Some(QueueMetrics::occupancy(if crossing { 6 } else { 1 }, 0)),
                    compute_node_id: "bench".into(),
                    processing_ms: 1.0,
                    snapshot_url: None,
                };
                if crossing {
                    let ms = chrono::DateTime::parse_from_rfc3339(
                        &at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    )
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(0);
                    crossings
                        .lock()
                        .unwrap()
                        .insert((device.to_string(), ms), ());
                }
                let _ = bus
                    .publish(&Publication {
                        user: owner,
                        device,
                        task,
                        data: serde_json::to_string(&result).unwrap(),
                    })
                    .await;
            }
        });
    }
    publishers.join_all().await;
    // Let the last crossings arrive.
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle {
        let (got, want) = (
            seen.lock().unwrap().alerts.len(),
            crossings.lock().unwrap().len(),
        );
        if got >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = role.await;
    watcher.abort();
    let crossings = crossings.lock().unwrap().len();
    let mut lat: Vec<f64> = seen
        .lock()
        .unwrap()
        .alerts
        .iter()
        .map(|(_, at, arrived)| (arrived - at) as f64)
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut bus_lat = bus_latency.lock().unwrap().clone();
    bus_lat.sort_by(f64::total_cmp);
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "throughput": {
                "events": args.events,
                "endpoints": args.users,
                "outbox_events_per_s": rate(args.events, dispatched),
                "deliveries_per_s": rate(args.events, delivered),
                "reference_bare_posts_per_s": rate(args.events, bare),
                "ratio_to_reference": rate(args.events, delivered) / rate(args.events, bare),
            },
            "latency": {
                "devices": args.devices,
                "results_per_s": args.devices as f64 * args.fps,
                "crossings": crossings,
                "webhooks_received": lat.len(),
                "crossing_to_webhook_ms_p50": percentile(&lat, 0.5),
                "crossing_to_webhook_ms_p99": percentile(&lat, 0.99),
                "crossing_to_webhook_ms_max": lat.last().copied().unwrap_or(f64::NAN),
                "reference_bus_publish_to_subscriber_ms_p50": percentile(&bus_lat, 0.5),
                "reference_bus_publish_to_subscriber_ms_p99": percentile(&bus_lat, 0.99),
            },
        })
    );
    Ok(())
}

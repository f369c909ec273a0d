//! The notify role on real PostgreSQL and Redis, delivering to real HTTP(S)
//! receivers on loopback: Standard Webhooks signatures checked by a second
//! implementation and by the `standardwebhooks` package from PyPI, the retry
//! schedule, `Retry-After`, 410, timeouts, redirects, slow receivers, the
//! outbound guard; alert rules on analysis results published on the bus.
//! Workers are driven a step at a time, with the clock passed in where the
//! schedule matters; nothing sleeps to wait for work.

#[path = "../../infra/tests/it/backends.rs"]
#[allow(dead_code)]
mod backends;
mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use panoptes_infra::bus::RedisBus;
use panoptes_infra::camera::Tls;
use panoptes_infra::coord::RedisLeases;
use panoptes_infra::crypto::AesGcmCipher;
use panoptes_infra::jobs::MemoryJobQueue;
use panoptes_infra::resolver::SystemResolver;
use panoptes_infra::store::SqlStore;
use panoptes_infra::webhooks::HttpWebhookSender;
use panoptes_shared::domain::alert::AlertRule;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::schedule::SLOTS_PER_DAY;
use panoptes_shared::domain::webhook::{DeliveryStatus, SigningSecret, Webhook};
use panoptes_shared::ids::{DeviceId, SceneId, TaskId, UserId, WebhookId};
use panoptes_shared::outbound::OutboundGuard;
use panoptes_shared::ports::jobs::{InsightJob, JobQueue};
use panoptes_shared::ports::prelude::*;
use panoptes_shared::ports::{AlertFilter, DeliveryFilter, EventBus, Leases, SecretCipher};
use panoptes_shared::time::now;
use panoptes_workers::metrics::WorkerMetrics;
use panoptes_workers::notify::{
    DeliverPorts, DeliverSettings, Deliverer, InsightPorts, InsightSettings, InsightWorker,
    Notifier, Outbox, RuleEvaluator, RulesPorts, RulesSettings,
};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(10);

struct World {
    store: Arc<SqlStore>,
    insight_jobs: Arc<dyn JobQueue<InsightJob>>,
    bus: Arc<dyn EventBus>,
    leases: Arc<dyn Leases>,
    cipher: Arc<dyn SecretCipher>,
    prefix: String,
    conn: panoptes_infra::redis_conn::RedisConn,
    user: UserId,
    device: DeviceId,
    scene: SceneId,
}

async fn world() -> World {
    let client = redis::Client::open(backends::redis_url()).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let store = backends::postgres().await;
    let (user, device, scene) = common::tenant(&store).await;
    World {
        insight_jobs: Arc::new(MemoryJobQueue::<InsightJob>::new(
            panoptes_infra::wiring::insight_queue_policy(&Default::default()),
        )),
        bus: Arc::new(
            RedisBus::connect(client, conn.clone(), prefix.clone())
                .await
                .unwrap(),
        ),
        leases: Arc::new(RedisLeases::new(conn.clone(), prefix.clone())),
        cipher: Arc::new(AesGcmCipher::from_base64(&AesGcmCipher::generate_key()).unwrap()),
        store: Arc::new(store),
        prefix,
        conn,
        user,
        device,
        scene,
    }
}

fn sender(allow_private: bool, ca_pem: Option<&str>) -> HttpWebhookSender {
    let ca = ca_pem.map(|pem| {
        let path = std::env::temp_dir().join(format!("panoptes-ca-{}.pem", Uuid::new_v4()));
        std::fs::write(&path, pem).unwrap();
        path
    });
    HttpWebhookSender::new(
        Arc::new(OutboundGuard::new(Arc::new(SystemResolver), allow_private)),
        Tls::trusting("webhooks.tls_ca_file", ca.as_deref()).unwrap(),
        1024,
    )
}

fn settings(node: &str, schedule_ms: &[u64]) -> DeliverSettings {
    DeliverSettings {
        node: node.into(),
        retry_schedule: schedule_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        jitter: 0.0,
        max_in_flight: 8,
        batch: 50,
        lease_ttl: Duration::from_secs(60),
    }
}

impl World {
    fn deliverer(&self, sender: HttpWebhookSender, settings: DeliverSettings) -> Arc<Deliverer> {
        Arc::new(Deliverer::new(
            DeliverPorts {
                store: self.store.clone(),
                sender: Arc::new(sender),
                leases: self.leases.clone(),
                cipher: self.cipher.clone(),
                metrics: Arc::new(WorkerMetrics::default()),
            },
            settings,
        ))
    }

    fn rules(&self, node: &str, leases: Arc<dyn Leases>) -> RuleEvaluator {
        RuleEvaluator::new(
            RulesPorts {
                store: self.store.clone(),
                insight_queue: self.insight_jobs.clone(),
                bus: self.bus.clone(),
                leases,
                metrics: Arc::new(WorkerMetrics::default()),
            },
            RulesSettings {
                node: node.into(),
                lease_ttl: Duration::from_secs(15),
                refresh: Duration::ZERO,
                read_max: 1_000,
            },
        )
    }

    /// The user's endpoint at `url`, with a generated secret (returned).
    async fn webhook(
        &self,
        user: UserId,
        url: &str,
        timeout_ms: u32,
        max_retries: u32,
    ) -> SigningSecret {
        let secret = SigningSecret::generate();
        let t = now() - chrono::Duration::seconds(1);
        self.store
            .create_webhook(&Webhook {
                id: WebhookId::new(),
                user_id: user,
                url: url.into(),
                name: None,
                secret: self.cipher.seal(secret.expose().as_bytes()).unwrap(),
                previous_secret: None,
                previous_secret_until: None,
                subscribed_types: vec![],
                timeout_ms,
                max_retries,
                enabled: true,
                disabled_reason: None,
                paused_until: None,
                created_at: t,
                updated_at: t,
            })
            .await
            .unwrap();
        secret
    }

    /// Record a `device_offline` event of `user` and queue its delivery.
    async fn event(&self, user: UserId) -> PlatformEvent {
        let e = PlatformEvent::new(
            user,
            EventKind::DeviceOffline,
            Some(self.device),
            None,
            serde_json::json!({"status": "offline", "detail": "no RTP for 10 s"}),
            now(),
        );
        self.store.record_event(&e).await.unwrap();
        Outbox::new(self.store.clone()).step().await.unwrap();
        e
    }

    async fn delivery(&self, user: UserId) -> panoptes_shared::domain::webhook::Delivery {
        self.store
            .list_deliveries(
                user,
                &DeliveryFilter::default(),
                PageRequest { page: 1, limit: 1 },
            )
            .await
            .unwrap()
            .items
            .remove(0)
    }

    async fn other_user(&self) -> UserId {
        common::tenant(&self.store).await.0
    }
}

/// The signature check of the Standard Webhooks specification, written
/// here from the spec (not the platform's code).
fn verify(secret: &str, r: &receiver::Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let (id, ts) = (&r.headers["webhook-id"], &r.headers["webhook-timestamp"]);
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.headers["webhook-signature"]
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

/// The `standardwebhooks` package (PyPI) verifies the request.
fn python_verifies(secret: &str, r: &receiver::Received) {
    let python = common::root().join(".tools/venv/bin/python");
    let headers: serde_json::Value = r
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("webhook-"))
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let script = "import json,sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        secret, headers, body = sys.argv[1], json.loads(sys.argv[2]), sys.stdin.read()\n\
        print(json.dumps(Webhook(secret).verify(body, headers)))";
    let mut child = std::process::Command::new(&python)
        .args(["-c", script, secret, &headers.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} not found ({e}): run `bash .ci/test.sh`, which installs standardwebhooks",
                python.display()
            )
        });
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks refused the request: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        verified, sent,
        "the library returns the payload it verified"
    );
}

#[tokio::test]
async fn deliveries_are_signed_per_standard_webhooks_and_verify_independently() {
    let w = world().await;
    let mut rx = Receiver::start(vec![]).await;
    let secret = w.webhook(w.user, &rx.url("http"), 5_000, 3).await;
    let e = w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[5_000]));
    assert_eq!(d.deliver_due(w.user, now()).await.unwrap().attempts, 1);
    let r = rx.next(WAIT, "the delivery").await;
    assert_eq!(r.path, "/hooks/panoptes");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["webhook-id"], format!("msg_{}", e.id.simple()));
    let ts: i64 = r.headers["webhook-timestamp"].parse().unwrap();
    assert!((now().timestamp() - ts).abs() <= 5);
    assert!(verify(secret.expose(), &r), "{:?}", r.headers);
    python_verifies(secret.expose(), &r);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "device_offline");
    assert_eq!(body["data"]["eventId"], e.id.to_string());
    assert_eq!(body["data"]["deviceId"], w.device.to_string());
    assert_eq!(body["data"]["detail"], "no RTP for 10 s");
    // A tampered body fails both checks.
    let mut forged = r.clone();
    forged.body = br#"{"type":"device_online"}"#.to_vec();
    assert!(!verify(secret.expose(), &forged));
    let d = w.delivery(w.user).await;
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.attempts, 1);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_on_schedule_with_the_same_webhook_id_then_succeeds() {
    let w = world().await;
    let mut rx = Receiver::start(vec![Reply::status(500), Reply::status(502)]).await;
    w.webhook(w.user, &rx.url("http"), 5_000, 3).await;
    w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[2_000, 30_000]));
    let t0 = now();
    assert_eq!(d.deliver_due(w.user, t0).await.unwrap().attempts, 1);
    let first = rx.next(WAIT, "attempt 1").await;
    let after1 = w.delivery(w.user).await;
    assert_eq!(after1.status, DeliveryStatus::Pending);
    assert_eq!(after1.last_status_code, Some(500));
    let next = after1.next_attempt_at.unwrap();
    let wait = (next - t0).num_milliseconds();
    assert!((2_000..2_500).contains(&wait), "retry 1 after {wait} ms");
    // Not before it is due.
    let early = next - chrono::Duration::milliseconds(1);
    assert_eq!(d.deliver_due(w.user, early).await.unwrap().attempts, 0);
    assert_eq!(d.deliver_due(w.user, next).await.unwrap().attempts, 1);
    let second = rx.next(WAIT, "attempt 2").await;
    let after2 = w.delivery(w.user).await;
    let wait = (after2.next_attempt_at.unwrap() - next).num_milliseconds();
    assert!((30_000..30_500).contains(&wait), "retry 2 after {wait} ms");
    d.deliver_due(w.user, after2.next_attempt_at.unwrap())
        .await
        .unwrap();
    let third = rx.next(WAIT, "attempt 3").await;
    for r in [&second, &third] {
        assert_eq!(r.headers["webhook-id"], first.headers["webhook-id"]);
        assert_eq!(r.body, first.body);
    }
    let done = w.delivery(w.user).await;
    assert_eq!((done.status, done.attempts), (DeliveryStatus::Succeeded, 3));
    // The log has every attempt, with status, latency and body.
    let attempts = w.store.list_attempts(w.user, done.id).await.unwrap();
    let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(502), Some(200)]);
    assert_eq!(attempts[0].response_body.as_deref(), Some("status 500"));
    assert!(attempts.iter().all(|a| a.latency_ms < 5_000));
    assert_eq!(
        attempts.iter().map(|a| a.succeeded).collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[tokio::test]
async fn retries_stop_at_max_retries_and_a_redelivery_starts_a_new_round() {
    let w = world().await;
    let mut rx = Receiver::start(vec![Reply::status(500), Reply::status(500)]).await;
    w.webhook(w.user, &rx.url("http"), 5_000, 1).await;
    w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[1_000]));
    let t0 = now();
    d.deliver_due(w.user, t0).await.unwrap();
    let next = w.delivery(w.user).await.next_attempt_at.unwrap();
    d.deliver_due(w.user, next).await.unwrap();
    rx.next(WAIT, "1").await;
    rx.next(WAIT, "2").await;
    let failed = w.delivery(w.user).await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("the receiver answered 500")
    );
    assert!(
        w.store
            .requeue_delivery(w.user, failed.id, now())
            .await
            .unwrap()
    );
    assert_eq!(d.deliver_due(w.user, now()).await.unwrap().attempts, 1);
    let again = rx.next(WAIT, "redelivery").await;
    assert_eq!(again.headers["webhook-id"], failed.msg_id());
    let done = w.delivery(w.user).await;
    assert_eq!((done.status, done.attempts), (DeliveryStatus::Succeeded, 3));
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_holds_the_rest_back() {
    let w = world().await;
    let mut rx = Receiver::start(vec![Reply::Status(
        429,
        vec![("retry-after", "7".into())],
        "slow down".into(),
    )])
    .await;
    w.webhook(w.user, &rx.url("http"), 5_000, 3).await;
    w.event(w.user).await;
    w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[1_000]));
    let t0 = now();
    let turn = d.deliver_due(w.user, t0).await.unwrap();
    assert_eq!(
        (turn.attempts, turn.stopped),
        (1, true),
        "the second waits too"
    );
    rx.next(WAIT, "attempt 1").await;
    let pending = w
        .store
        .list_deliveries(
            w.user,
            &DeliveryFilter::default(),
            PageRequest { page: 1, limit: 10 },
        )
        .await
        .unwrap();
    let throttled = pending.items.iter().find(|d| d.attempts == 1).unwrap();
    let wait = (throttled.next_attempt_at.unwrap() - t0).num_milliseconds();
    assert!(
        (7_000..7_500).contains(&wait),
        "Retry-After 7 s, got {wait} ms"
    );
    assert_eq!(throttled.last_status_code, Some(429));
    assert!(rx.nothing_yet());
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_nothing_more_is_queued() {
    let w = world().await;
    let mut rx = Receiver::start(vec![Reply::status(410)]).await;
    w.webhook(w.user, &rx.url("http"), 5_000, 3).await;
    w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[1_000]));
    d.deliver_due(w.user, now()).await.unwrap();
    rx.next(WAIT, "attempt").await;
    let gone = w.delivery(w.user).await;
    assert_eq!(gone.status, DeliveryStatus::Failed);
    let hook = w.store.get_webhook(w.user).await.unwrap().unwrap();
    assert!(!hook.enabled);
    assert!(hook.disabled_reason.unwrap().contains("410"));
    w.event(w.user).await;
    let all = w
        .store
        .list_deliveries(
            w.user,
            &DeliveryFilter::default(),
            PageRequest { page: 1, limit: 10 },
        )
        .await
        .unwrap();
    assert_eq!(all.total, 1, "events after the 410 are not queued");
    assert_eq!(d.deliver_due(w.user, now()).await.unwrap().attempts, 0);
}

#[tokio::test]
async fn the_endpoint_timeout_is_respected() {
    let w = world().await;
    let mut rx = Receiver::start(vec![Reply::Hang]).await;
    w.webhook(w.user, &rx.url("http"), 1_000, 3).await;
    w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[60_000]));
    let clock = tokio::time::Instant::now();
    d.deliver_due(w.user, now()).await.unwrap();
    let took = clock.elapsed();
    rx.next(WAIT, "the hanging attempt").await;
    assert!(
        took >= Duration::from_millis(1_000) && took < Duration::from_millis(2_500),
        "{took:?}"
    );
    let d = w.delivery(w.user).await;
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.last_error.as_deref(), Some("no response within 1000 ms"));
    let a = &w.store.list_attempts(w.user, d.id).await.unwrap()[0];
    assert!((1_000..2_500).contains(&a.latency_ms), "{}", a.latency_ms);
    assert_eq!(a.status_code, None);
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_delay_another_users_deliveries() {
    let w = world().await;
    let mut stuck = Receiver::start(vec![Reply::Hang; 4]).await;
    let mut fast = Receiver::start(vec![]).await;
    let other = w.other_user().await;
    w.webhook(w.user, &stuck.url("http"), 30_000, 0).await;
    w.webhook(other, &fast.url("http"), 5_000, 0).await;
    for _ in 0..3 {
        w.event(w.user).await;
    }
    let d = w.deliverer(sender(true, None), settings("n1", &[60_000]));
    assert!(d.step().await.unwrap() >= 1);
    stuck.next(WAIT, "the stuck user's first delivery").await;
    // The stuck receiver holds its endpoint's turn; the other user's events
    // still go out at once.
    for n in 0..3 {
        w.event(other).await;
        // Step as the role's loop does when woken, until the request is in.
        let got = async {
            loop {
                d.step().await.unwrap();
                tokio::select! {
                    r = fast.requests.recv() => break r,
                    _ = d.wake.notified() => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(3), got)
            .await
            .unwrap_or_else(|_| panic!("fast delivery {n} held back"));
    }
    assert!(stuck.nothing_yet(), "one request at a time per endpoint");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let w = world().await;
    let mut elsewhere = Receiver::start(vec![]).await;
    let mut rx = Receiver::start(vec![Reply::Status(
        307,
        vec![("location", elsewhere.url("http"))],
        String::new(),
    )])
    .await;
    w.webhook(w.user, &rx.url("http"), 5_000, 3).await;
    w.event(w.user).await;
    let d = w.deliverer(sender(true, None), settings("n1", &[60_000]));
    d.deliver_due(w.user, now()).await.unwrap();
    rx.next(WAIT, "attempt").await;
    let d = w.delivery(w.user).await;
    assert_eq!(
        d.status,
        DeliveryStatus::Pending,
        "a 3xx is a failure, retried"
    );
    assert_eq!(d.last_status_code, Some(307));
    assert!(elsewhere.nothing_yet());
}

#[tokio::test]
async fn https_receivers_are_verified_against_the_trusted_roots() {
    let w = world().await;
    let (mut rx, ca) = Receiver::start_tls(vec![]).await;
    let secret = w.webhook(w.user, &rx.url("https"), 5_000, 3).await;
    w.event(w.user).await;
    // Without the receiver's CA the handshake fails, and says so.
    let untrusting = w.deliverer(sender(true, None), settings("n1", &[60_000]));
    untrusting.deliver_due(w.user, now()).await.unwrap();
    let d = w.delivery(w.user).await;
    assert!(
        d.last_error
            .as_deref()
            .unwrap()
            .contains("TLS handshake failed"),
        "{:?}",
        d.last_error
    );
    w.store.requeue_delivery(w.user, d.id, now()).await.unwrap();
    let trusting = w.deliverer(sender(true, Some(&ca)), settings("n1", &[60_000]));
    trusting.deliver_due(w.user, now()).await.unwrap();
    let r = rx.next(WAIT, "the delivery over TLS").await;
    assert!(verify(secret.expose(), &r));
    assert_eq!(w.delivery(w.user).await.status, DeliveryStatus::Succeeded);
}

#[tokio::test]
async fn the_guard_refuses_non_public_targets_when_connecting() {
    let w = world().await;
    let mut rx = Receiver::start(vec![]).await;
    // Saved while private targets were allowed (say), delivered by a node that
    // does not allow them: refused at connect time, by address class.
    for (url, class) in [
        (rx.url("http"), "loopback"),
        (
            format!("http://localhost:{}/h", rx.addr.port()),
            "local host name",
        ),
    ] {
        let user = w.other_user().await;
        w.webhook(user, &url, 5_000, 3).await;
        w.event(user).await;
        let d = w.deliverer(sender(false, None), settings("n1", &[60_000]));
        d.deliver_due(user, now()).await.unwrap();
        let d = w.delivery(user).await;
        let err = d.last_error.unwrap();
        assert!(
            err.contains("refused") && err.contains(class),
            "{url}: {err}"
        );
    }
    assert!(rx.nothing_yet());
}

impl World {
    /// Publish an `analysis_result` captured at `at` with `in_queue` people queued.
    async fn publish(&self, task: TaskId, at: DateTime<Utc>, in_queue: u32) {
        let who = (self.user, self.device, self.scene);
        common::publish_queue(self.bus.as_ref(), who, task, at, in_queue).await;
    }

    async fn rule(&self, duration: u32, cooldown: u32, slots: Option<[bool; SLOTS_PER_DAY]>) {
        let rule = AlertRule {
            active_slots: slots,
            ..common::queue_rule(self.user, self.scene, self.device, 5.0, duration, cooldown)
        };
        self.store.insert_rule(&rule).await.unwrap();
    }

    async fn alerts(&self) -> Vec<panoptes_shared::domain::alert::Alert> {
        self.store
            .list_alerts(
                self.user,
                &AlertFilter::default(),
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items
    }
}

#[tokio::test]
async fn rules_fire_after_the_duration_once_per_breach_and_not_inside_the_cooldown() {
    let w = world().await;
    w.rule(10, 60, None).await;
    let rules = w.rules("n1", w.leases.clone());
    let task = TaskId::new();
    let t = DateTime::parse_from_rfc3339("2026-12-07T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let s = |secs: i64| t + chrono::Duration::seconds(secs);
    let expect = |published: &[(i64, u32)], alerts: usize| {
        let (w, rules) = (&w, &rules);
        let published = published.to_vec();
        async move {
            for &(at, q) in &published {
                w.publish(task, s(at), q).await;
            }
            rules.step().await.unwrap();
            assert_eq!(w.alerts().await.len(), alerts, "after {published:?}");
        }
    };
    expect(&[(0, 6), (5, 7)], 0).await; // held 5 s of 10
    expect(&[(10, 6)], 1).await; // held 10 s: fires
    expect(&[(11, 9)], 1).await; // same breach
    expect(&[(12, 2)], 1).await; // cleared
    expect(&[(20, 6), (30, 6)], 1).await; // a new breach held 10 s, inside the cooldown
    expect(&[(69, 6)], 1).await; // 59 s after the firing
    expect(&[(70, 6)], 2).await; // the cooldown is over and it still holds
    let alerts = w.alerts().await;
    let (newest, first) = (&alerts[0], &alerts[1]);
    assert_eq!(first.triggered_at, s(10));
    assert_eq!(first.breach_started_at, s(0));
    assert_eq!(first.value, 6.0);
    assert_eq!(newest.triggered_at, s(70));
    assert_eq!(newest.breach_started_at, s(20));
    assert_eq!(
        first.snapshot_key.as_deref(),
        Some(
            format!(
                "{}/snapshots/{}/{}-x.jpg",
                w.user,
                w.device,
                s(10).timestamp_millis()
            )
            .as_str()
        ),
        "the snapshot at firing time"
    );
    assert_eq!(first.task_id, Some(task));
    // Each firing is an alert_triggered event in the outbox, and counted.
    let events = w
        .store
        .list_events(w.user, Some(w.device), PageRequest { page: 1, limit: 50 })
        .await
        .unwrap();
    assert_eq!(
        events
            .items
            .iter()
            .filter(|e| e.kind == EventKind::AlertTriggered)
            .count(),
        2
    );
    assert_eq!(
        w.store
            .alert_count(w.user, w.device, "2026-12")
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn alerts_beyond_the_quota_are_recorded_suppressed_not_delivered_nor_counted() {
    let w = world().await;
    // A cap of two alerts a month on this device.
    let mut d = w.store.get_device(w.user, w.device).await.unwrap().unwrap();
    d.quota.alert_count = Some(2);
    w.store.update_device(w.user, &d).await.unwrap();
    w.rule(0, 0, None).await;
    let rules = w.rules("n1", w.leases.clone());
    let task = TaskId::new();
    let t = DateTime::parse_from_rfc3339("2026-12-07T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    // Three breaches: fire, fire (the quota is reached), suppressed.
    for (i, secs) in [0i64, 20, 40].into_iter().enumerate() {
        w.publish(task, t + chrono::Duration::seconds(secs), 6)
            .await;
        w.publish(task, t + chrono::Duration::seconds(secs + 5), 2)
            .await;
        rules.step().await.unwrap();
        assert_eq!(w.alerts().await.len(), i + 1);
    }
    let alerts = w.alerts().await;
    assert_eq!(
        alerts.iter().map(|a| a.suppressed).collect::<Vec<_>>(),
        [true, false, false],
        "newest first"
    );
    let events = w
        .store
        .list_events(w.user, Some(w.device), PageRequest { page: 1, limit: 50 })
        .await
        .unwrap()
        .items;
    let of = |k: EventKind| events.iter().filter(|e| e.kind == k).count();
    assert_eq!(
        of(EventKind::AlertTriggered),
        2,
        "the suppressed one is not delivered"
    );
    assert_eq!(
        w.store
            .alert_count(w.user, w.device, "2026-12")
            .await
            .unwrap(),
        2,
        "nor counted"
    );
    // 1 of 2 is 50 %; 2 of 2 crosses 80 % and 100 % at once, each sent once.
    assert_eq!(of(EventKind::QuotaWarning), 1);
    assert_eq!(of(EventKind::QuotaExceeded), 1);
    let exceeded = events
        .iter()
        .find(|e| e.kind == EventKind::QuotaExceeded)
        .unwrap();
    assert_eq!(
        (
            exceeded.data["feature"].as_str(),
            exceeded.data["limit"].as_u64()
        ),
        (Some("alertCount"), Some(2))
    );
}

#[tokio::test]
async fn rules_fire_only_in_active_slots_of_the_device_local_time() {
    let w = world().await;
    // The tenant's device is at UTC+0: move it to UTC+8.
    let mut device = w.store.get_device(w.user, w.device).await.unwrap().unwrap();
    device.utc_offset = panoptes_shared::domain::schedule::UtcOffset::parse("UTC+8").unwrap();
    w.store.update_device(w.user, &device).await.unwrap();
    let mut slots = [false; SLOTS_PER_DAY];
    slots[18] = true; // 09:00-09:30 local
    w.rule(0, 0, Some(slots)).await;
    let rules = w.rules("n1", w.leases.clone());
    let task = TaskId::new();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // 09:10 UTC is 17:10 in UTC+8: outside.
    w.publish(task, at("2026-12-07T09:10:00Z"), 9).await;
    w.publish(task, at("2026-12-07T09:11:00Z"), 2).await;
    rules.step().await.unwrap();
    assert!(w.alerts().await.is_empty());
    // 01:10 UTC is 09:10 there: inside.
    w.publish(task, at("2026-12-08T01:10:00Z"), 9).await;
    rules.step().await.unwrap();
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].triggered_at, at("2026-12-08T01:10:00Z"));
}

#[tokio::test]
async fn a_breach_fires_exactly_once_with_two_notify_replicas() {
    let w = world().await;
    w.rule(0, 0, None).await;
    // Replicas that share the lease see one owner: the other evaluates nothing.
    let (a, b) = (
        w.rules("a", w.leases.clone()),
        w.rules("b", w.leases.clone()),
    );
    // And replicas that each believe they own the user (a lease handed over
    // while the old owner still ran): the store lets one firing through.
    let split = |p: &str| -> Arc<dyn Leases> {
        Arc::new(RedisLeases::new(
            w.conn.clone(),
            format!("{}:{p}", w.prefix),
        ))
    };
    let (c, d) = (w.rules("c", split("c")), w.rules("d", split("d")));
    let task = TaskId::new();
    let t = now();
    w.publish(task, t, 8).await;
    w.publish(task, t + chrono::Duration::seconds(1), 9).await;
    let steps = tokio::join!(a.step(), b.step(), c.step(), d.step());
    let evaluated: Vec<usize> = [steps.0, steps.1, steps.2, steps.3]
        .into_iter()
        .map(|s| s.unwrap().events)
        .collect();
    assert_eq!(
        evaluated.iter().filter(|n| **n == 2).count(),
        3,
        "one of a/b, and both c and d, read the events: {evaluated:?}"
    );
    assert_eq!(w.alerts().await.len(), 1);
    // The breach clears and comes back: once more, once.
    w.publish(task, t + chrono::Duration::seconds(2), 1).await;
    w.publish(task, t + chrono::Duration::seconds(3), 9).await;
    for r in [&a, &b, &c, &d] {
        r.step().await.unwrap();
    }
    assert_eq!(w.alerts().await.len(), 2);
}

#[tokio::test]
async fn an_alert_reaches_the_webhook_through_the_running_role() {
    let w = world().await;
    let mut rx = Receiver::start(vec![]).await;
    let secret = w.webhook(w.user, &rx.url("http"), 5_000, 3).await;
    w.rule(0, 300, None).await;
    let notifier = Notifier {
        rules: Arc::new(w.rules("n1", w.leases.clone())),
        outbox: Arc::new(Outbox::new(w.store.clone())),
        deliverer: w.deliverer(sender(true, None), settings("n1", &[5_000])),
        insights: Arc::new(InsightWorker::new(
            InsightPorts {
                store: w.store.clone(),
                blobs: Arc::new(panoptes_infra::blobs::LocalBlobs::new(
                    std::env::temp_dir(),
                    "http://127.0.0.1:1",
                    b"notify-test",
                )),
                queue: w.insight_jobs.clone(),
                vlm: Arc::new(panoptes_infra::vlm::DisabledVlm),
                metrics: Arc::new(WorkerMetrics::default()),
            },
            InsightSettings {
                consumer: "n1".into(),
                batch: 1,
                wait: Duration::from_millis(50),
                max_attempts: 3,
                requeue_after: Duration::from_secs(900),
            },
        )),
        poll: Duration::from_millis(50),
    };
    let stop = CancellationToken::new();
    let running = tokio::spawn(notifier.run(stop.clone()));
    let task = TaskId::new();
    // Quiet results, then the queue grows past the threshold.
    w.publish(task, now(), 1).await;
    w.publish(task, now(), 6).await;
    let r = rx.next(WAIT, "the alert_triggered webhook").await;
    assert!(verify(secret.expose(), &r));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "alert_triggered");
    let alert = &w.alerts().await[0];
    assert_eq!(body["data"]["alertId"], alert.id.to_string());
    assert_eq!(body["data"]["value"], 6.0);
    assert_eq!(body["data"]["metricPath"], "current.inQueue");
    stop.cancel();
    running.await.unwrap();
}

//! Shared by the worker test binaries (and the launcher's worker process
//! test): the model, the library, the fixtures.

#![allow(dead_code)]

pub mod event_schema;
pub mod promtool;
pub mod rtsp;

#[allow(unused_imports)]
pub use event_schema::documented_event;
#[allow(unused_imports)]
pub use promtool::promtool_check;

use std::path::PathBuf;

use panoptes_shared::domain::device::{Device, DeviceStatus, DeviceType, QuotaLimits, RtspUrl};
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::polygon::Polygon;
use panoptes_shared::domain::scene::{AnalysisType, Scene, SceneParameters, SceneStatus, Zones};
use panoptes_shared::domain::schedule::UtcOffset;
use panoptes_shared::domain::user::{Email, Role, User};
use panoptes_shared::ids::{DeviceId, SceneId, UserId};
use panoptes_shared::ports::{DeviceRepo, SceneRepo, UserRepo};
use panoptes_shared::time::now;
use panoptes_workers::inference::engine::{Engine, EngineOptions, ModelKind, Provider};
use uuid::Uuid;

/// The workspace root, whichever crate's tests include this module.
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .unwrap_or(&here)
        .to_owned()
}

pub fn fixtures() -> PathBuf {
    root().join("workers/tests/fixtures")
}

/// `ORT_DYLIB_PATH`, or the library the test script installs into `.tools/venv`.
pub fn ort_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH").map_or_else(
        || {
            root().join(
                ".tools/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1",
            )
        },
        PathBuf::from,
    )
}

/// Raw scores: what the Python reference pipeline computes.
pub fn engine(model: ModelKind, path: PathBuf) -> Engine {
    load(model, path, false)
}

pub fn load(model: ModelKind, path: PathBuf, calibrated: bool) -> Engine {
    load_sized(model, path, calibrated, None)
}

/// At input `size` (`None`: the model's own).
pub fn load_sized(
    model: ModelKind,
    path: PathBuf,
    calibrated: bool,
    size: Option<panoptes_workers::inference::engine::InputSize>,
) -> Engine {
    Engine::load(&EngineOptions {
        model,
        model_path: path,
        library: Some(ort_library()),
        provider: Provider::Cpu,
        threads: 2,
        iou: 0.5,
        calibrated,
        input_size: size,
    })
    .unwrap_or_else(|e| {
        panic!("{e} (run the tests with `bash .ci/test.sh`, which installs onnxruntime)")
    })
}

/// NanoDet-m with raw scores (as the Python reference computes them).
pub fn nanodet() -> Engine {
    engine(
        ModelKind::NanoDet,
        root().join("workers/models/nanodet-m-416.onnx"),
    )
}

/// NanoDet-m as the service runs it by default (`detector.input_size =
/// "auto"`): scores calibrated.
pub fn nanodet_calibrated() -> Engine {
    load_sized(
        ModelKind::NanoDet,
        root().join("workers/models/nanodet-m-416.onnx"),
        true,
        panoptes_workers::inference::engine::input_size("auto", ModelKind::NanoDet),
    )
}

/// A user with a device and an active queue scene (threshold 0.4).
pub async fn tenant(store: &panoptes_infra::store::SqlStore) -> (UserId, DeviceId, SceneId) {
    let user = User {
        id: UserId::new(),
        email: Email::parse(&format!("w-{}@example.com", Uuid::new_v4())).unwrap(),
        name: None,
        role: Role::User,
        created_at: now(),
    };
    store.create_user(&user, "$argon2id$fake").await.unwrap();
    let t = now();
    let device = Device {
        id: DeviceId::new(),
        user_id: user.id,
        name: "entrance".into(),
        description: None,
        rtsp_url: RtspUrl::parse("rtsp://127.0.0.2/stream").unwrap().0,
        credentials: None,
        location_label: None,
        latitude: None,
        longitude: None,
        geo_source: None,
        device_type: DeviceType::IpCamera,
        plan: Plan::Level01,
        tags: vec![],
        utc_offset: UtcOffset::parse("UTC+0").unwrap(),
        schedule: None,
        status: DeviceStatus::Online,
        quota: QuotaLimits::default(),
        created_at: t,
        updated_at: t,
        push_enabled: false,
        last_seen_at: None,
        allow_plain_basic_auth: false,
    };
    store.insert_device(&device).await.unwrap();
    let zone = Polygon::parse(&[
        vec![0.0, 0.0],
        vec![1.0, 0.0],
        vec![1.0, 1.0],
        vec![0.0, 1.0],
    ])
    .unwrap();
    let scene = Scene {
        id: SceneId::new(),
        user_id: user.id,
        device_id: device.id,
        name: "queue".into(),
        description: None,
        analysis_type: AnalysisType::QueueAnalysis,
        zones: Zones::new(Some(zone), None).unwrap(),
        parameters: SceneParameters {
            confidence_threshold: 0.4,
            ..Default::default()
        },
        status: SceneStatus::Active,
        created_at: t,
        updated_at: t,
    };
    store.insert_scene(&scene).await.unwrap();
    (user.id, device.id, scene.id)
}

/// An environment variable, or `default`.
pub fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// An enabled `current.inQueue >= threshold` rule on `scene` of `device`,
/// firing after `duration` s of breach, at most once per `cooldown` s.
pub fn queue_rule(
    user: UserId,
    scene: SceneId,
    device: DeviceId,
    threshold: f64,
    duration: u32,
    cooldown: u32,
) -> panoptes_shared::domain::alert::AlertRule {
    use panoptes_shared::domain::alert::{AlertRule, MetricPath, Operator, Severity};
    let t = now();
    AlertRule {
        id: panoptes_shared::ids::AlertRuleId::new(),
        user_id: user,
        scene_id: scene,
        device_id: device,
        name: "queue too long".into(),
        metric_path: MetricPath::parse("current.inQueue").unwrap(),
        operator: Operator::Gte,
        threshold,
        duration_seconds: duration,
        cooldown_seconds: cooldown,
        severity: Severity::Critical,
        active_slots: None,
        enabled: true,
        last_fired_at: None,
        breach_open: false,
        created_at: t,
        updated_at: t,
    }
}

/// Publish, on `bus`, an `analysis_result` of `device` captured at `at` with
/// `in_queue` people queued, linking the snapshot key
/// `<user>/snapshots/<device>/<ms>-x.jpg` (as the notify tests expect).
pub async fn publish_queue(
    bus: &dyn panoptes_shared::ports::EventBus,
    (user, device, scene): (UserId, DeviceId, SceneId),
    task: panoptes_shared::ids::TaskId,
    at: chrono::DateTime<chrono::Utc>,
    in_queue: u32,
) {
    use panoptes_shared::domain::queue_metrics::QueueMetrics;
    use panoptes_shared::domain::stream_events::AnalysisResult;
    let result = AnalysisResult {
        device_id: device,
        analysis_id: task,
        scene_id: scene,
        timestamp: at,
        detections: vec![],
        metrics: Some(QueueMetrics::occupancy(in_queue, 0)),
        compute_node_id: "n".into(),
        processing_ms: 1.0,
        snapshot_url: Some(format!(
            "http://127.0.0.1:1/blobs/{user}/snapshots/{device}/{}-x.jpg?sig=1",
            at.timestamp_millis()
        )),
    };
    bus.publish(&panoptes_shared::ports::Publication {
        user,
        device,
        task,
        data: serde_json::to_string(&result).unwrap(),
    })
    .await
    .unwrap();
}

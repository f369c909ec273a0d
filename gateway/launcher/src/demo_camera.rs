//! The demo camera of `panoptes up`: a push device that replays a bundled
//! clip (40 s of OpenCV's `vtest.avi` pedestrians, H.264) through the public
//! edge-push API, so a newcomer sees live counts and wait times without
//! owning a camera.
//!
//! On start it makes sure there is a demo account (`demo@panoptes.local`; its
//! password is written to `<data dir>/demo-account.txt`, never logged), a
//! `usb_camera` device with a queue scene, a fresh device key (earlier demo
//! keys are revoked), and a running analysis task. Then it heartbeats and
//! POSTs JPEG frames to `/api/v1/devices/{id}/frames`, looping the clip.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use openh264::formats::YUVSource;
use panoptes_shared::config::EdgeConfig;
use panoptes_shared::domain::api_key::{ApiKey, GeneratedKey, KeyType};
use panoptes_shared::domain::device::{Device, DeviceStatus, DeviceType, QuotaLimits, RtspUrl};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::polygon::Polygon;
use panoptes_shared::domain::scene::{AnalysisType, Scene, SceneParameters, SceneStatus, Zones};
use panoptes_shared::domain::task::TaskTrigger;
use panoptes_shared::domain::user::{Email, Role, User};
use panoptes_shared::ids::{ApiKeyId, DeviceId, SceneId, UserId};
use panoptes_shared::ports::Store;
use panoptes_shared::time::now;
use panoptes_workers::image::{Rgb, encode_jpeg};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

/// 40 s of vtest.avi, 512x384, 10 fps, H.264 Constrained Baseline (Annex B).
const CLIP: &[u8] = include_bytes!("../assets/demo-vtest.h264");
const CLIP_FPS: f64 = 10.0;
pub const DEMO_EMAIL: &str = "demo@panoptes.local";
const DEVICE_NAME: &str = "Demo camera (replays a bundled clip)";
const KEY_NAME: &str = "demo camera (panoptes up)";

/// What the demo camera pushes with.
struct Demo {
    device: DeviceId,
    key: String,
}

/// Set up the demo account, device, scene, key and task; then push frames
/// until `shutdown`. Errors are logged: the platform runs on without it.
pub async fn run(
    store: std::sync::Arc<dyn Store>,
    addr: SocketAddr,
    data_dir: &Path,
    edge: EdgeConfig,
    shutdown: CancellationToken,
) {
    let demo = match prepare(store.as_ref(), data_dir).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "the demo camera could not be set up"
            );
            return;
        }
    };
    tracing::info!(device = %demo.device, account = DEMO_EMAIL, "demo camera pushing frames; sign in as the demo account (password in demo-account.txt of the data dir)");
    if let Err(e) = push(&demo, addr, &edge, shutdown).await {
        tracing::error!(error = format!("{e:#}"), "the demo camera stopped");
    }
}

async fn prepare(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Demo> {
    let email = Email::parse(DEMO_EMAIL).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = match store.find_user_by_email(&email).await? {
        Some((u, _)) => u,
        None => {
            let password = GeneratedKey::new(KeyType::Personal)
                .secret
                .expose_secret()
                .trim_start_matches("syncai_pat_")
                .chars()
                .take(24)
                .collect::<String>();
            let hash = panoptes_infra::crypto::hash_password(&password)?;
            let user = User {
                id: UserId::new(),
                email: email.clone(),
                name: Some("Demo".into()),
                role: Role::User,
                created_at: now(),
            };
            store.create_user(&user, &hash).await?;
            let file = data_dir.join("demo-account.txt");
            write_private(
                &file,
                &format!(
                    "Panoptes demo account (created by `panoptes up`)\nemail: {DEMO_EMAIL}\npassword: {password}\n"
                ),
            )
            .with_context(|| format!("cannot write {}", file.display()))?;
            user
        }
    };
    let device = demo_device(store, user.id).await?;
    let scene = demo_scene(store, user.id, device).await?;
    // A fresh device key each start; earlier demo keys stop working.
    let mut page = 1;
    loop {
        let keys = store
            .list_api_keys(user.id, PageRequest { page, limit: 100 })
            .await?;
        for mut k in keys.items.iter().cloned() {
            if k.name == KEY_NAME && k.revoked_at.is_none() {
                k.revoked_at = Some(now());
                store.update_api_key(user.id, &k).await?;
            }
        }
        if u64::from(page) >= keys.total_pages() {
            break;
        }
        page += 1;
    }
    let generated = GeneratedKey::new(KeyType::Device);
    let t = now();
    store
        .insert_api_key(
            &ApiKey {
                id: ApiKeyId::new(),
                user_id: user.id,
                name: KEY_NAME.into(),
                key_type: KeyType::Device,
                display_prefix: generated.display_prefix.clone(),
                scopes: KeyType::Device.default_scopes(),
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
                rotated_at: None,
                created_at: t,
                updated_at: t,
                device_id: Some(device),
            },
            &generated.hash,
        )
        .await?;
    if panoptes_shared::lifecycle::running_task(store, user.id, device)
        .await?
        .is_none()
    {
        panoptes_shared::lifecycle::start(
            store,
            user.id,
            device,
            panoptes_shared::lifecycle::StartRequest {
                scene,
                capabilities: vec![],
                trigger: TaskTrigger::Edge,
                require_online: false,
            },
            now(),
        )
        .await?;
    }
    Ok(Demo {
        device,
        key: generated.secret.expose_secret().to_owned(),
    })
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn demo_device(store: &dyn Store, user: UserId) -> anyhow::Result<DeviceId> {
    let existing = store
        .list_devices(
            user,
            PageRequest {
                page: 1,
                limit: 100,
            },
        )
        .await?
        .items
        .into_iter()
        .find(|d| d.name == DEVICE_NAME);
    if let Some(d) = existing {
        return Ok(d.id);
    }
    let t = now();
    let device = Device {
        id: DeviceId::new(),
        user_id: user,
        name: DEVICE_NAME.into(),
        description: Some(
            "Pushes frames of OpenCV's vtest.avi through POST /devices/{id}/frames.".into(),
        ),
        rtsp_url: RtspUrl::parse("rtsp://demo.invalid/replay")?.0,
        credentials: None,
        location_label: Some("Demo plaza".into()),
        latitude: None,
        longitude: None,
        geo_source: None,
        device_type: DeviceType::UsbCamera,
        plan: Plan::Level01,
        tags: vec!["demo".into()],
        utc_offset: Default::default(),
        schedule: None,
        status: DeviceStatus::Offline,
        quota: QuotaLimits::default(),
        created_at: t,
        updated_at: t,
        push_enabled: true,
        last_seen_at: None,
        allow_plain_basic_auth: false,
    };
    store.insert_device(&device).await?;
    Ok(device.id)
}

async fn demo_scene(store: &dyn Store, user: UserId, device: DeviceId) -> anyhow::Result<SceneId> {
    let existing = store
        .list_scenes(user, Some(device), PageRequest::default())
        .await?
        .items
        .into_iter()
        .find(|s| s.status == SceneStatus::Active);
    if let Some(s) = existing {
        return Ok(s.id);
    }
    let rect = |x0: f64, y0: f64, x1: f64, y1: f64| {
        Polygon::parse(&[vec![x0, y0], vec![x1, y0], vec![x1, y1], vec![x0, y1]])
    };
    let t = now();
    let scene = Scene {
        id: SceneId::new(),
        user_id: user,
        device_id: device,
        name: "Demo walkway".into(),
        description: Some("Queue: the walkway right of the sign; checkout: left of it.".into()),
        analysis_type: AnalysisType::QueueAnalysis,
        zones: Zones::new(
            Some(rect(0.60, 0.30, 1.0, 0.80)?),
            Some(rect(0.0, 0.25, 0.55, 0.55)?),
        )?,
        parameters: SceneParameters {
            confidence_threshold: 0.5,
            ..SceneParameters::default()
        },
        status: SceneStatus::Active,
        created_at: t,
        updated_at: t,
    };
    store.insert_scene(&scene).await?;
    Ok(scene.id)
}

/// Decode the clip in a loop and push every `CLIP_FPS / demo_fps`-th frame
/// in real time, with a heartbeat every 10 s.
async fn push(
    demo: &Demo,
    addr: SocketAddr,
    edge: &EdgeConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = format!("http://{addr}/api/v1/devices/{}", demo.device);
    let every = (CLIP_FPS / edge.demo_fps.clamp(0.1, CLIP_FPS))
        .round()
        .max(1.0) as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / CLIP_FPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat: Option<tokio::time::Instant> = None;
    let mut n: u64 = 0;
    while !shutdown.is_cancelled() {
        let mut decoder = openh264::decoder::Decoder::new()?;
        for nal in openh264::nal_units(CLIP) {
            let Ok(Some(yuv)) = decoder.decode(nal) else {
                continue;
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            n += 1;
            if last_beat.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                last_beat = Some(tokio::time::Instant::now());
                if let Err(e) = client
                    .post(format!("{base}/heartbeat"))
                    .bearer_auth(&demo.key)
                    .send()
                    .await
                {
                    tracing::warn!(error = %e, "demo camera heartbeat failed");
                }
            }
            if !n.is_multiple_of(every) {
                continue;
            }
            let (w, h) = yuv.dimensions();
            let mut pixels = vec![0; w * h * 3];
            yuv.write_rgb8(&mut pixels);
            let jpeg = encode_jpeg(
                &Rgb {
                    width: w,
                    height: h,
                    pixels,
                },
                85,
            )?;
            let sent = client
                .post(format!("{base}/frames"))
                .bearer_auth(&demo.key)
                .header("content-type", "image/jpeg")
                .header("x-captured-at", now().timestamp_millis().to_string())
                .body(jpeg)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::debug!(status = %r.status(), "demo frame refused"),
                Err(e) => tracing::warn!(error = %e, "demo frame not sent"),
            }
        }
    }
    Ok(())
}

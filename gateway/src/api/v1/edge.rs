//! Edge push, for devices the cloud cannot reach (`usb_camera`, or any
//! device with `pushEnabled`): the device (a device key) sends JPEG frames
//! and heartbeats. Each frame becomes a frame job of the device's running
//! task, exactly like a frame ingest pulled over RTSP. Contact keeps the
//! device online; silence longer than `edge.offline_after_ms` makes the
//! scheduler mark it offline.

use std::time::Duration;

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::device::{Device, DeviceStatus};
use panoptes_shared::domain::task::Capability;
use panoptes_shared::ids::JobId;
use panoptes_shared::lifecycle::{running_task, set_device_status};
use panoptes_shared::ports::FrameJob;
use panoptes_shared::time::{from_millis, now};
use poem_openapi::param::{Header, Path};
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::schemes::SessionOrKey;
use crate::http::envelope::{Accepted, Reply};
use crate::http::error::{ApiResult, PushErrors};
use crate::http::jpeg::JpegBody;
use crate::state::AppState;

pub struct EdgeApi {
    pub state: AppState,
}

/// A frame queued for analysis.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct FrameAcceptedDto {
    pub job_id: Uuid,
    pub device_id: Uuid,
    /// The running analysis task the frame belongs to.
    pub task_id: Uuid,
    pub scene_id: Uuid,
    pub captured_at: DateTime<Utc>,
    pub bytes: u64,
}

/// What a device learns from its heartbeat.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct HeartbeatDto {
    pub device_id: Uuid,
    pub status: super::enums::DeviceStatus,
    pub server_time: DateTime<Utc>,
    /// Whether analysis runs: push frames only while it does.
    pub analysis_running: bool,
    pub task_id: Option<Uuid>,
    /// Frames per second the device may push.
    pub max_fps: u32,
    pub max_frame_bytes: u64,
}

/// Accepts `X-Captured-At` as RFC 3339 or epoch milliseconds; at most 5 s ahead.
fn captured_at(raw: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(now);
    };
    let t = match raw.parse::<i64>() {
        Ok(ms) => from_millis(ms),
        Err(_) => DateTime::parse_from_rfc3339(raw)
            .map_err(|_| {
                Error::validation(
                    "X-Captured-At",
                    "must be RFC 3339 (2026-01-29T10:00:00.123Z) or epoch milliseconds",
                )
            })?
            .with_timezone(&Utc),
    };
    if t > now + chrono::Duration::seconds(5) {
        return Err(Error::validation(
            "X-Captured-At",
            "is in the future; check the device's clock",
        ));
    }
    Ok(t)
}

impl EdgeApi {
    /// The device was heard from: `lastSeenAt` (throttled) and, for push
    /// devices, online.
    async fn contact(&self, device: &Device, at: DateTime<Utc>) -> Result<(), Error> {
        let store = self.state.store.as_ref();
        if self.state.device_seen.due(device.id) {
            store.touch_device(device.user_id, device.id, at).await?;
        }
        if device.is_push() && device.status != DeviceStatus::Online {
            set_device_status(
                store,
                device.user_id,
                device.id,
                DeviceStatus::Online,
                Some("heard from the device"),
                at,
            )
            .await?;
        }
        Ok(())
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Edge")]
impl EdgeApi {
    /// Push one JPEG frame for analysis (`Content-Type: image/jpeg`). Scope
    /// `device:sync`.
    ///
    /// The device must push (`usb_camera` or `pushEnabled`) and have a running
    /// analysis task (409 otherwise); at most `edge.max_fps` frames per second
    /// (429) of at most `edge.max_frame_bytes` (413). `X-Captured-At` (RFC 3339
    /// or epoch ms) is the capture time; default: arrival.
    #[oai(
        path = "/devices/:id/frames",
        method = "post",
        operation_id = "pushFrame"
    )]
    async fn frame(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        #[oai(name = "X-Captured-At")] captured: Header<Option<String>>,
        body: JpegBody,
    ) -> ApiResult<Accepted<FrameAcceptedDto>, PushErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceSync)?;
        let device = self.state.device(caller, id.0).await?;
        if !device.is_push() {
            return Err(Error::Conflict(
                "this device is pulled over RTSP; set `pushEnabled: true` to push its frames"
                    .into(),
            )
            .into());
        }
        let jpeg = body.check()?;
        let now = now();
        let at = captured_at(captured.0.as_deref(), now)?;
        let edge = &self.state.edge;
        self.state
            .limit(
                &format!("edge:frames:{}", device.id),
                edge.max_fps,
                Duration::from_secs(1),
            )
            .await?;
        self.contact(&device, now).await?;
        let task = running_task(self.state.store.as_ref(), device.user_id, device.id)
            .await?
            .ok_or_else(|| {
                Error::Conflict(
                    "no analysis is running on this device; start it first (POST /api/v1/devices/{id}/analysis/start)".into(),
                )
            })?;
        let job = FrameJob {
            id: JobId::new(),
            user: device.user_id,
            device: device.id,
            scene: task.scene_id,
            task: task.id,
            captured_at_ms: u64::try_from(at.timestamp_millis()).unwrap_or(0),
            jpeg: jpeg.to_vec(),
            // The request's trace (http::middleware): detect and analytics continue it.
            traceparent: Some(
                panoptes_shared::telemetry::traceparent(&tracing::Span::current()).to_string(),
            ),
            attributes: task.runs(Capability::Attributes, device.plan),
        };
        self.state.backends.jobs.enqueue(&job).await?;
        Ok(Accepted::new(
            "Frame queued",
            FrameAcceptedDto {
                job_id: job.id.0,
                device_id: device.id.0,
                task_id: task.id.0,
                scene_id: task.scene_id.0,
                captured_at: at,
                bytes: jpeg.len() as u64,
            },
        ))
    }

    /// Tell the platform the device is alive; learn whether to push frames.
    /// Scope `device:heartbeat`. Keeps a push device online; at most
    /// `edge.heartbeats_per_minute` per device (429).
    #[oai(
        path = "/devices/:id/heartbeat",
        method = "post",
        operation_id = "deviceHeartbeat"
    )]
    async fn heartbeat(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<HeartbeatDto>, PushErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceHeartbeat)?;
        let device = self.state.device(caller, id.0).await?;
        let edge = &self.state.edge;
        self.state
            .limit(
                &format!("edge:heartbeats:{}", device.id),
                edge.heartbeats_per_minute,
                Duration::from_secs(60),
            )
            .await?;
        let now = now();
        self.contact(&device, now).await?;
        let status = if device.is_push() {
            DeviceStatus::Online
        } else {
            device.status
        };
        let task = running_task(self.state.store.as_ref(), device.user_id, device.id).await?;
        Ok(Reply::new(
            "Heartbeat received",
            HeartbeatDto {
                device_id: device.id.0,
                status: status.into(),
                server_time: now,
                analysis_running: task.is_some(),
                task_id: task.map(|t| t.id.0),
                max_fps: edge.max_fps,
                max_frame_bytes: edge.max_frame_bytes as u64,
            },
        ))
    }
}

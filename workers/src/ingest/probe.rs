//! `POST /devices/{id}/probe`: really try the stream (DESCRIBE, SETUP, PLAY
//! and a first decoded frame) within a timeout, and say what was found.

use std::time::{Duration, Instant};

use panoptes_shared::domain::device::DeviceStatus;

use super::camera::Camera;
use super::relay::Dialer;
use super::source::{self, SourceError, StreamInfo};

#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// `online` when a frame was decoded; `offline` when the camera did not
    /// answer; `error` when it answered but cannot be analysed.
    pub status: DeviceStatus,
    pub info: Option<StreamInfo>,
    /// Time to the first decoded frame.
    pub first_frame_ms: Option<u64>,
    /// What failed, as a class with a fixed message (never the camera's bytes).
    pub error: Option<SourceError>,
}

/// Open the stream and decode one frame, all within `timeout`.
pub async fn probe(camera: &Camera, timeout: Duration, dialer: &Dialer) -> ProbeReport {
    let started = Instant::now();
    let failed = |e: SourceError| ProbeReport {
        status: e.status(),
        info: None,
        first_frame_ms: None,
        error: Some(e),
    };
    let mut stream = match source::open(camera, timeout, dialer).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let left = timeout.saturating_sub(started.elapsed());
    match stream.next_frame(left, |_| false).await {
        Ok(_) => ProbeReport {
            status: DeviceStatus::Online,
            info: Some(stream.info().clone()),
            first_frame_ms: Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
            error: None,
        },
        Err(e) => ProbeReport {
            info: Some(stream.info().clone()),
            ..failed(e)
        },
    }
}

//! Probing a camera: connect to a device's stream now, within a deadline,
//! and say what was found (`POST /devices/{id}/probe`, and ingest's periodic
//! health checks). The adapters live with the RTSP client: one that decodes
//! the first frame (the pipeline's), one that stops at the first frame
//! received (a gateway without the video codecs).

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::camera::{CameraError, ProbeReport};
use crate::domain::device::Device;

#[async_trait]
pub trait CameraProbe: Send + Sync {
    /// Try `device`'s stream within `timeout`. A camera that fails is a
    /// report (with its class); `Err` only when the device's stored target
    /// cannot be worked out, so nothing was tried.
    async fn probe(&self, device: &Device, timeout: Duration) -> Result<ProbeReport, CameraError>;
}

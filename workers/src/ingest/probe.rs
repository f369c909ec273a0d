//! The pipeline's camera probe (`POST /devices/{id}/probe` in `panoptes up`
//! and `panoptes gateway`, and ingest's health checks): really try the
//! stream (DESCRIBE, SETUP, PLAY and a first decoded frame) within a
//! timeout, and say what was found.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use panoptes_infra::camera::{Camera, Dialer};
use panoptes_shared::domain::camera::{CameraError, ProbeReport};
use panoptes_shared::domain::device::Device;
use panoptes_shared::ports::{CameraProbe, SecretCipher};

use super::source;

pub struct DecodingProbe {
    cipher: Arc<dyn SecretCipher>,
    dialer: Dialer,
}

impl DecodingProbe {
    pub fn new(cipher: Arc<dyn SecretCipher>, dialer: Dialer) -> Self {
        Self { cipher, dialer }
    }
}

#[async_trait]
impl CameraProbe for DecodingProbe {
    async fn probe(&self, device: &Device, timeout: Duration) -> Result<ProbeReport, CameraError> {
        let camera = Camera::of(self.cipher.as_ref(), device)?;
        Ok(probe(&camera, timeout, &self.dialer).await)
    }
}

/// Open the stream and decode one frame, all within `timeout`.
pub async fn probe(camera: &Camera, timeout: Duration, dialer: &Dialer) -> ProbeReport {
    let started = Instant::now();
    let mut stream = match source::open(camera, timeout, dialer).await {
        Ok(s) => s,
        Err(e) => return ProbeReport::failed(e, None),
    };
    let left = timeout.saturating_sub(started.elapsed());
    match stream.next_frame(left, |_| false).await {
        Ok(_) => ProbeReport::online(
            stream.info().clone(),
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        ),
        Err(e) => ProbeReport::failed(e, Some(stream.info().clone())),
    }
}

//! The probe of a gateway that links no video codec: DESCRIBE, SETUP, PLAY
//! and the first H.264 access unit received, within the timeout. It reports
//! what the stream says (codec, and the size its parameter sets give) but
//! cannot tell a stream that does not decode (`decode_failed`); the
//! pipeline's probe (the `panoptes` launcher's) decodes that first frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use panoptes_shared::domain::camera::{CameraError, ProbeReport};
use panoptes_shared::domain::device::Device;
use panoptes_shared::ports::{CameraProbe, SecretCipher};

use super::relay::Dialer;
use super::session;
use super::target::Camera;

pub struct RtspProbe {
    cipher: Arc<dyn SecretCipher>,
    dialer: Dialer,
}

impl RtspProbe {
    pub fn new(cipher: Arc<dyn SecretCipher>, dialer: Dialer) -> Self {
        Self { cipher, dialer }
    }
}

#[async_trait]
impl CameraProbe for RtspProbe {
    async fn probe(&self, device: &Device, timeout: Duration) -> Result<ProbeReport, CameraError> {
        let camera = Camera::of(self.cipher.as_ref(), device)?;
        let started = Instant::now();
        let mut stream = match session::open(&camera, timeout, &self.dialer).await {
            Ok(s) => s,
            Err(e) => return Ok(ProbeReport::failed(e, None)),
        };
        let left = timeout.saturating_sub(started.elapsed());
        Ok(match stream.next_access_unit(left).await {
            Ok(_) => ProbeReport::online(stream.info().clone(), elapsed_ms(started)),
            Err(e) => ProbeReport::failed(e, Some(stream.info().clone())),
        })
    }
}

/// Milliseconds since `started`.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

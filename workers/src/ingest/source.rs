//! One RTSP camera as a source of decoded frames: the camera session
//! ([`panoptes_infra::camera::session`]: retina through our relay) into
//! OpenH264 (built from its bundled source). Decoding runs on the blocking
//! pool; every access unit is decoded (P frames need their references) but
//! only sampled frames are converted to RGB.

use std::time::Duration;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use panoptes_infra::camera::session::{self, RtspSession};
use panoptes_infra::camera::{Camera, Dialer};
use panoptes_shared::domain::camera::{SourceError, StreamInfo};

use crate::image::Rgb;

/// A decoded frame.
pub struct Frame {
    /// Wall-clock receive time of the access unit (epoch ms).
    pub captured_at_ms: u64,
    /// Pixels, when the caller wanted this frame.
    pub rgb: Option<Rgb>,
}

/// A playing session and its decoder.
pub struct RtspStream {
    session: RtspSession,
    decoder: Option<Decoder>,
}

/// DESCRIBE, SETUP (TCP) and PLAY the first H.264 video stream, within
/// `timeout` ([`session::open`]), with a decoder ready.
pub async fn open(
    camera: &Camera,
    timeout: Duration,
    dialer: &Dialer,
) -> Result<RtspStream, SourceError> {
    let session = session::open(camera, timeout, dialer).await?;
    let decoder = Decoder::new().map_err(|e| {
        tracing::warn!(error = %e, "the H.264 decoder cannot be created");
        SourceError::Decode
    })?;
    Ok(RtspStream {
        session,
        decoder: Some(decoder),
    })
}

impl RtspStream {
    pub fn info(&self) -> &StreamInfo {
        self.session.info()
    }

    /// The next decoded frame; `want(captured_at_ms)` says whether to produce
    /// its pixels. Fails when no frame arrives within `stall`.
    pub async fn next_frame(
        &mut self,
        stall: Duration,
        want: impl Fn(u64) -> bool,
    ) -> Result<Frame, SourceError> {
        let stall_ms = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX);
        let deadline = tokio::time::Instant::now() + stall;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let unit = match self.session.next_access_unit(left).await {
                Err(SourceError::Stalled(_)) => return Err(SourceError::Stalled(stall_ms)),
                other => other?,
            };
            let at = unit.captured_at_ms;
            let wanted = want(at);
            let mut decoder = self.decoder.take().ok_or(SourceError::Decode)?;
            let data = unit.annex_b;
            let (decoder, decoded) = tokio::task::spawn_blocking(move || {
                let out = decode(&mut decoder, &data, wanted);
                (decoder, out)
            })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the H.264 decoder panicked");
                SourceError::Decode
            })?;
            self.decoder = Some(decoder);
            match decoded {
                // The decoder buffers until it has a complete picture.
                Ok(None) => continue,
                Ok(Some((rgb, w, h))) => {
                    self.session.set_dimensions(w, h);
                    return Ok(Frame {
                        captured_at_ms: at,
                        rgb,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
}

type Decoded = Option<(Option<Rgb>, u32, u32)>;

fn decode(decoder: &mut Decoder, annex_b: &[u8], want_rgb: bool) -> Result<Decoded, SourceError> {
    let yuv = match decoder.decode(annex_b) {
        Ok(Some(yuv)) => yuv,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::debug!(error = %e, "access unit not decoded");
            return Err(SourceError::Decode);
        }
    };
    let (w, h) = yuv.dimensions();
    let rgb = want_rgb.then(|| {
        let mut pixels = vec![0; w * h * 3];
        yuv.write_rgb8(&mut pixels);
        Rgb {
            width: w,
            height: h,
            pixels,
        }
    });
    Ok(Some((
        rgb,
        u32::try_from(w).unwrap_or(0),
        u32::try_from(h).unwrap_or(0),
    )))
}

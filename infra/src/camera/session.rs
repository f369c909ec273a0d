//! One RTSP camera as a source of decoded frames: retina (RTSP/RTP over the
//! RTSP TCP connection, H.264 depacketised to Annex B with the parameter sets
//! on every key frame) into OpenH264 (built from its bundled source).
//! Decoding runs on the blocking pool; every access unit is decoded (P frames
//! need their references) but only sampled frames are converted to RGB.
//!
//! retina reaches the camera only through the relay ([`super::relay`]): the
//! outbound guard's connection, TLS for `rtsps://`, and the credential rules.
//! Failures are reported as a [`SourceError`] class with a fixed message;
//! nothing the camera sent (retina's error text quotes it) is kept.

use std::time::Duration;

use futures::StreamExt;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use panoptes_shared::domain::device::DeviceStatus;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    TeardownPolicy, Transport,
};
use retina::codec::{CodecItem, FrameFormat};

use super::camera::Camera;
use super::relay::{Dialer, Relay, Seen};
use crate::detector::image::Rgb;

/// Why a stream could not be opened or stopped: a stable class
/// ([`class`](Self::class)) and a fixed message, never the camera's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the camera's address is not allowed (only public addresses are)")]
    BlockedAddress,
    #[error("the camera could not be reached")]
    Unreachable,
    #[error("the camera did not answer in time")]
    Timeout,
    #[error("the camera did not answer as an RTSP server")]
    NotRtsp,
    #[error("the camera's RTSP session failed")]
    Protocol,
    #[error("the camera refused the credentials")]
    Unauthorized,
    #[error(
        "the camera asked for Basic auth over plain RTSP; the password was not sent \
         (use rtsps:// or set allowPlainBasicAuth)"
    )]
    InsecureAuthRefused,
    #[error("the stream has no H.264 video")]
    UnsupportedCodec,
    #[error("the TLS session with the camera failed")]
    Tls,
    #[error("no frame for {0} ms")]
    Stalled(u64),
    #[error("the stream ended")]
    Ended,
    #[error("the H.264 stream could not be decoded")]
    Decode,
}

impl SourceError {
    /// The stable class name reported by probes (`blocked_address`, ...).
    pub fn class(&self) -> &'static str {
        match self {
            Self::BlockedAddress => "blocked_address",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::NotRtsp => "not_rtsp",
            Self::Protocol => "protocol_error",
            Self::Unauthorized => "unauthorized",
            Self::InsecureAuthRefused => "insecure_auth_refused",
            Self::UnsupportedCodec => "unsupported_codec",
            Self::Tls => "tls_failed",
            Self::Stalled(_) => "stalled",
            Self::Ended => "ended",
            Self::Decode => "decode_failed",
        }
    }

    /// The device status this failure means: the camera is away (`offline`)
    /// or answers but cannot be analysed (`error`).
    pub fn status(&self) -> DeviceStatus {
        match self {
            Self::Unreachable | Self::Timeout | Self::Stalled(_) | Self::Ended => {
                DeviceStatus::Offline
            }
            Self::BlockedAddress
            | Self::NotRtsp
            | Self::Protocol
            | Self::Unauthorized
            | Self::InsecureAuthRefused
            | Self::UnsupportedCodec
            | Self::Tls
            | Self::Decode => DeviceStatus::Error,
        }
    }
}

/// Classify a failed session from what the relay saw. retina's error text
/// quotes the camera's bytes: it is logged at debug level only.
fn classify(e: &retina::Error, seen: &Seen) -> SourceError {
    tracing::debug!(error = %e, "RTSP session failed");
    let s = seen.get();
    if s.refused_insecure_auth {
        SourceError::InsecureAuthRefused
    } else if s.refused_credentials {
        SourceError::Unauthorized
    } else if s.not_rtsp {
        SourceError::NotRtsp
    } else if s.malformed {
        SourceError::Protocol
    } else if s.last_status == Some(401) {
        SourceError::Unauthorized
    } else if s.last_status.is_some_and(|c| !(200..300).contains(&c)) {
        SourceError::Protocol
    } else if s.camera_closed {
        SourceError::Unreachable
    } else {
        SourceError::Protocol
    }
}

/// What DESCRIBE and the first frame told about the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// RFC 6381 codec string (`avc1.42C01E`), or `h264`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
}

/// A decoded frame.
pub struct Frame {
    /// Wall-clock receive time of the access unit (epoch ms).
    pub captured_at_ms: u64,
    /// Pixels, when the caller wanted this frame.
    pub rgb: Option<Rgb>,
}

pub struct RtspStream {
    session: Demuxed,
    decoder: Option<Decoder>,
    info: StreamInfo,
    seen: Seen,
}

pub fn credentials(username: Option<&str>, password: Option<&str>) -> Option<Credentials> {
    username.map(|u| Credentials {
        username: u.to_owned(),
        password: password.unwrap_or_default().to_owned(),
    })
}

/// DESCRIBE, SETUP (TCP) and PLAY the first H.264 video stream, within
/// `timeout`, through the relay `dialer` sets up (see [`super::relay`]).
pub async fn open(
    camera: &Camera,
    timeout: Duration,
    dialer: &Dialer,
) -> Result<RtspStream, SourceError> {
    let connect = async {
        let relay = dialer.dial(&camera.url, camera.auth_rule()).await?;
        open_inner(relay, camera.creds.clone()).await
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| SourceError::Timeout)?
}

async fn open_inner(relay: Relay, creds: Option<Credentials>) -> Result<RtspStream, SourceError> {
    let Relay { url, seen, unused } = relay;
    // No TEARDOWN: closing the TCP connection ends the session, and
    // retina's retries on fresh connections would dial the relay's loopback
    // port after the relay is gone (whatever listens there by then).
    let options = SessionOptions::default()
        .creds(creds)
        .teardown(TeardownPolicy::Never)
        .user_agent(format!("panoptes/{}", env!("CARGO_PKG_VERSION")));
    let mut session = Session::describe(url, options)
        .await
        .map_err(|e| classify(&e, &seen))?;
    drop(unused); // connected by now
    let index = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
        .ok_or(SourceError::UnsupportedCodec)?;
    session
        .setup(
            index,
            SetupOptions::default()
                .transport(Transport::Tcp(TcpTransportOptions::default()))
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(|e| classify(&e, &seen))?;
    let (codec, (width, height)) = match session.streams()[index].parameters() {
        Some(retina::codec::ParametersRef::Video(v)) => {
            (v.rfc6381_codec().to_owned(), v.pixel_dimensions())
        }
        _ => ("h264".to_owned(), (0, 0)),
    };
    let session = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| classify(&e, &seen))?
        .demuxed()
        .map_err(|e| classify(&e, &seen))?;
    let decoder = Decoder::new().map_err(|e| {
        tracing::warn!(error = %e, "the H.264 decoder cannot be created");
        SourceError::Decode
    })?;
    Ok(RtspStream {
        session,
        decoder: Some(decoder),
        info: StreamInfo {
            codec,
            width,
            height,
        },
        seen,
    })
}

impl RtspStream {
    pub fn info(&self) -> &StreamInfo {
        &self.info
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
            let item = tokio::time::timeout_at(deadline, self.session.next())
                .await
                .map_err(|_| SourceError::Stalled(stall_ms))?;
            let frame = match item {
                None => return Err(SourceError::Ended),
                Some(Err(e)) => return Err(classify(&e, &self.seen)),
                Some(Ok(CodecItem::VideoFrame(f))) => f,
                Some(Ok(_)) => continue,
            };
            let at = panoptes_shared::ports::jobs::now_ms();
            let wanted = want(at);
            let mut decoder = self.decoder.take().ok_or(SourceError::Decode)?;
            let data = frame.into_data();
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
                    if self.info.width == 0 {
                        (self.info.width, self.info.height) = (w, h);
                    }
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

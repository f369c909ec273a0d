//! One RTSP camera session: retina (RTSP/RTP over the RTSP TCP connection,
//! H.264 depacketised to Annex B with the parameter sets on every key frame)
//! hands out access units; decoding them is the caller's (ingest decodes
//! with OpenH264; a probe may stop at the first one).
//!
//! retina reaches the camera only through the relay ([`super::relay`]): the
//! outbound guard's connection, TLS for `rtsps://`, and the credential rules.
//! Failures are reported as a [`SourceError`] class with a fixed message;
//! nothing the camera sent (retina's error text quotes it) is kept.

use std::time::Duration;

use futures::StreamExt;
use panoptes_shared::domain::camera::{SourceError, StreamInfo};
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    TeardownPolicy, Transport,
};
use retina::codec::{CodecItem, FrameFormat};

use super::relay::{Dialer, Relay, Seen};
use super::target::Camera;

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

/// One H.264 access unit as it arrived.
pub struct AccessUnit {
    /// Wall-clock receive time (epoch ms).
    pub captured_at_ms: u64,
    /// Annex B, parameter sets included on key frames.
    pub annex_b: Vec<u8>,
}

/// An open RTSP session, playing.
pub struct RtspSession {
    session: Demuxed,
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
) -> Result<RtspSession, SourceError> {
    let connect = async {
        let relay = dialer.dial(&camera.url, camera.auth_rule()).await?;
        open_inner(relay, camera.creds.clone()).await
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| SourceError::Timeout)?
}

async fn open_inner(relay: Relay, creds: Option<Credentials>) -> Result<RtspSession, SourceError> {
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
    Ok(RtspSession {
        session,
        info: StreamInfo {
            codec,
            width,
            height,
        },
        seen,
    })
}

impl RtspSession {
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Record the picture size, when DESCRIBE did not tell it (a decoder does).
    pub fn set_dimensions(&mut self, width: u32, height: u32) {
        if self.info.width == 0 {
            (self.info.width, self.info.height) = (width, height);
        }
    }

    /// The next video access unit; fails when none arrives within `stall`.
    pub async fn next_access_unit(&mut self, stall: Duration) -> Result<AccessUnit, SourceError> {
        let stall_ms = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX);
        let deadline = tokio::time::Instant::now() + stall;
        loop {
            let item = tokio::time::timeout_at(deadline, self.session.next())
                .await
                .map_err(|_| SourceError::Stalled(stall_ms))?;
            match item {
                None => return Err(SourceError::Ended),
                Some(Err(e)) => return Err(classify(&e, &self.seen)),
                Some(Ok(CodecItem::VideoFrame(f))) => {
                    return Ok(AccessUnit {
                        captured_at_ms: panoptes_shared::ports::jobs::now_ms(),
                        annex_b: f.into_data(),
                    });
                }
                Some(Ok(_)) => continue,
            }
        }
    }
}

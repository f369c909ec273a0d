//! What reaching a camera can tell: the stream found ([`StreamInfo`]), a
//! probe's verdict ([`ProbeReport`]), and why it failed, as stable classes
//! with fixed messages ([`SourceError`], [`CameraError`]): never the bytes a
//! camera (or whatever answers at its address) sent. The gateway maps these
//! to its API; ingest records them as device statuses.

use crate::domain::device::DeviceStatus;

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

/// Why a device's connection target cannot be worked out (its stored
/// configuration is broken): nothing was sent to the camera.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("the stored RTSP URL is not valid")]
    InvalidUrl(#[source] url::ParseError),
    #[error("the stored RTSP credentials cannot be opened")]
    Credentials(#[source] crate::Error),
}

/// What DESCRIBE and the first frame told about the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// RFC 6381 codec string (`avc1.42C01E`), or `h264`.
    pub codec: String,
    /// Pixels; 0 when not known (yet).
    pub width: u32,
    pub height: u32,
}

/// What a probe found.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// `online` when a frame came; `offline` when the camera did not
    /// answer; `error` when it answered but cannot be analysed.
    pub status: DeviceStatus,
    pub info: Option<StreamInfo>,
    /// Time to the first frame.
    pub first_frame_ms: Option<u64>,
    /// What failed, as a class with a fixed message (never the camera's bytes).
    pub error: Option<SourceError>,
}

impl ProbeReport {
    /// A probe that got a frame, `first_frame_ms` after it started.
    pub fn online(info: StreamInfo, first_frame_ms: u64) -> Self {
        Self {
            status: DeviceStatus::Online,
            info: Some(info),
            first_frame_ms: Some(first_frame_ms),
            error: None,
        }
    }

    /// A probe that failed with `error`, after learning `info` if it got that far.
    pub fn failed(error: SourceError, info: Option<StreamInfo>) -> Self {
        Self {
            status: error.status(),
            info,
            first_frame_ms: None,
            error: Some(error),
        }
    }

    /// One line for a device's status detail (`<what>: avc1.42C01E 768x576`,
    /// or the failure's fixed message).
    pub fn detail(&self, what: &str) -> String {
        match (&self.error, &self.info) {
            (Some(e), _) => format!("{what}: {e}"),
            (None, Some(i)) => format!("{what}: {} {}x{}", i.codec, i.width, i.height),
            (None, None) => what.to_owned(),
        }
    }
}

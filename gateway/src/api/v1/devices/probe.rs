//! `POST /devices/{id}/probe`: the camera probe ([`CameraProbe`], the
//! adapter the binary chose) tries the stream now, and the device's status
//! follows the outcome. A failure is
//! reported as a stable class and a fixed message: nothing the target sent
//! is echoed (in the response, the logs or the stored status), so a probe
//! tells a tenant what is wrong with its camera and nothing about whatever
//! else answers at that address.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::camera::{CameraError, SourceError};
use panoptes_shared::domain::device::Device;
use panoptes_shared::lifecycle::set_device_status;
#[cfg(doc)]
use panoptes_shared::ports::CameraProbe;
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use crate::api::v1::enums::DeviceStatus;
use crate::state::AppState;

/// What the probe found.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ProbeDto {
    pub device_id: Uuid,
    /// The device's status after the probe.
    pub status: DeviceStatus,
    /// Whether a frame was decoded.
    pub reachable: bool,
    /// RFC 6381 codec string of the video stream (`avc1.42C01E`).
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Time from connecting to the first decoded frame.
    pub first_frame_ms: Option<u64>,
    /// What went wrong, when it did: a stable class.
    pub error: Option<ProbeError>,
    /// A fixed human-readable explanation of `error`.
    pub error_message: Option<String>,
    pub probed_at: DateTime<Utc>,
}

/// Why a probe failed. `blocked_address`: the URL points at a non-public
/// address (loopback, private, link-local...), refused by the platform;
/// `unreachable`: no connection (unknown name, refused, reset);
/// `timeout`: no answer in time; `not_rtsp`: something answered, not an RTSP
/// server; `protocol_error`: the RTSP session failed (e.g. an error status);
/// `unauthorized`: the camera refused the credentials (or wants some);
/// `insecure_auth_refused`: the camera offers only Basic auth on plain
/// `rtsp://` and the password was not sent (use `rtsps://` or set
/// `allowPlainBasicAuth`); `unsupported_codec`: no H.264 video;
/// `tls_failed`: the TLS session failed (e.g. an untrusted certificate);
/// `stalled`, `ended`: no frame came; `decode_failed`: the video could not be
/// decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ProbeError {
    BlockedAddress,
    Unreachable,
    Timeout,
    NotRtsp,
    ProtocolError,
    Unauthorized,
    InsecureAuthRefused,
    UnsupportedCodec,
    TlsFailed,
    Stalled,
    Ended,
    DecodeFailed,
}

impl From<&SourceError> for ProbeError {
    fn from(e: &SourceError) -> Self {
        match e {
            SourceError::BlockedAddress => Self::BlockedAddress,
            SourceError::Unreachable => Self::Unreachable,
            SourceError::Timeout => Self::Timeout,
            SourceError::NotRtsp => Self::NotRtsp,
            SourceError::Protocol => Self::ProtocolError,
            SourceError::Unauthorized => Self::Unauthorized,
            SourceError::InsecureAuthRefused => Self::InsecureAuthRefused,
            SourceError::UnsupportedCodec => Self::UnsupportedCodec,
            SourceError::Tls => Self::TlsFailed,
            SourceError::Stalled(_) => Self::Stalled,
            SourceError::Ended => Self::Ended,
            SourceError::Decode => Self::DecodeFailed,
        }
    }
}

pub async fn run(state: &AppState, device: &Device) -> Result<ProbeDto, Error> {
    let report = state
        .camera_probe
        .probe(device, state.probe_timeout)
        .await
        .map_err(|e| match e {
            CameraError::InvalidUrl(e) => {
                Error::validation("rtspUrl", format!("is not a valid URL ({e})"))
            }
            CameraError::Credentials(e) => e,
        })?;
    let at = panoptes_shared::time::now();
    let error = report.error.as_ref();
    let detail = report.detail("probe");
    // A push device's status is its contact's, not its RTSP URL's.
    if !device.is_push() {
        set_device_status(
            state.store.as_ref(),
            device.user_id,
            device.id,
            report.status,
            Some(&detail),
            at,
        )
        .await?;
    }
    tracing::info!(device = %device.id, status = report.status.as_str(), error = error.map(SourceError::class), "device probed");
    Ok(ProbeDto {
        device_id: device.id.0,
        status: if device.is_push() {
            device.status
        } else {
            report.status
        }
        .into(),
        reachable: report.error.is_none(),
        codec: report.info.as_ref().map(|i| i.codec.clone()),
        width: report.info.as_ref().map(|i| i.width).filter(|w| *w > 0),
        height: report.info.as_ref().map(|i| i.height).filter(|h| *h > 0),
        first_frame_ms: report.first_frame_ms,
        error: error.map(ProbeError::from),
        error_message: error.map(ToString::to_string),
        probed_at: at,
    })
}

//! `POST /devices/{id}/probe`: the ingest role's RTSP client tries the
//! stream now, and the device's status follows the outcome.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::analysis::set_device_status;
use panoptes_shared::domain::device::Device;
use poem_openapi::Object;
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
    /// What went wrong, when it did.
    pub error: Option<String>,
    pub probed_at: DateTime<Utc>,
}

pub async fn run(state: &AppState, device: &Device) -> Result<ProbeDto, Error> {
    let url = url::Url::parse(device.rtsp_url.as_str())
        .map_err(|e| Error::validation("rtspUrl", format!("is not a valid URL ({e})")))?;
    let creds =
        panoptes_workers::ingest::source::device_credentials(state.cipher.as_ref(), device)?;
    let report =
        panoptes_workers::ingest::probe(&url, creds, state.probe_timeout, &state.rtsp_tls).await;
    let at = panoptes_shared::time::now();
    let error = report.error.as_ref().map(ToString::to_string);
    let detail = match (&report.info, &error) {
        (_, Some(e)) => format!("probe: {e}"),
        (Some(i), None) => format!("probe: {} {}x{}", i.codec, i.width, i.height),
        (None, None) => "probe".to_owned(),
    };
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
    tracing::info!(device = %device.id, status = report.status.as_str(), error = error.as_deref(), "device probed");
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
        error,
        probed_at: at,
    })
}

//! One RTSP camera as a source of decoded frames: retina (RTSP/RTP over the
//! RTSP TCP connection, H.264 depacketised to Annex B with the parameter sets
//! on every key frame) into OpenH264 (built from its bundled source).
//! Decoding runs on the blocking pool; every access unit is decoded (P frames
//! need their references) but only sampled frames are converted to RGB.

use std::time::Duration;

use futures::StreamExt;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use panoptes_shared::domain::device::DeviceStatus;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport,
};
use retina::codec::{CodecItem, FrameFormat};
use url::Url;

use crate::detector::image::Rgb;

/// Why a stream could not be opened or stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("the camera did not answer: {0}")]
    Unreachable(String),
    #[error("the camera refused the credentials")]
    Unauthorized,
    #[error("the stream has no H.264 video ({0})")]
    Unsupported(String),
    #[error("no frame for {0} ms")]
    Stalled(u64),
    #[error("the stream ended")]
    Ended,
    #[error("the H.264 stream could not be decoded: {0}")]
    Decode(String),
    #[error("the TLS session with the camera failed: {0}")]
    Tls(String),
}

impl SourceError {
    /// The device status this failure means: the camera is away (`offline`)
    /// or answers but cannot be analysed (`error`).
    pub fn status(&self) -> DeviceStatus {
        match self {
            Self::Unreachable(_) | Self::Stalled(_) | Self::Ended => DeviceStatus::Offline,
            Self::Unauthorized | Self::Unsupported(_) | Self::Decode(_) | Self::Tls(_) => {
                DeviceStatus::Error
            }
        }
    }
}

fn classify(e: &retina::Error) -> SourceError {
    let text = e.to_string();
    if text.contains("401") || text.contains("Unauthorized") {
        SourceError::Unauthorized
    } else {
        SourceError::Unreachable(text)
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
}

pub fn credentials(username: Option<&str>, password: Option<&str>) -> Option<Credentials> {
    username.map(|u| Credentials {
        username: u.to_owned(),
        password: password.unwrap_or_default().to_owned(),
    })
}

/// The device's stored RTSP credentials, opened (Basic/Digest; retina has no
/// Bearer tokens, so `rtspToken` is not sent).
pub fn device_credentials(
    cipher: &dyn panoptes_shared::ports::SecretCipher,
    device: &panoptes_shared::domain::device::Device,
) -> panoptes_shared::Result<Option<Credentials>> {
    use secrecy::ExposeSecret;
    let c = panoptes_shared::ports::cipher::open_credentials(cipher, device.credentials.as_ref())?;
    Ok(credentials(
        c.username.as_deref(),
        c.password.as_ref().map(|p| p.expose_secret()),
    ))
}

/// DESCRIBE, SETUP (TCP) and PLAY the first H.264 video stream, within
/// `timeout`; `rtsps://` goes through a TLS session (see [`super::tls`]).
pub async fn open(
    url: &Url,
    creds: Option<Credentials>,
    timeout: Duration,
    tls: &super::tls::Tls,
) -> Result<RtspStream, SourceError> {
    let connect = async {
        if url.scheme().eq_ignore_ascii_case("rtsps") {
            let plain = tls.tunnel(url).await?;
            open_inner(&plain, creds).await
        } else {
            open_inner(url, creds).await
        }
    };
    tokio::time::timeout(timeout, connect).await.map_err(|_| {
        SourceError::Unreachable(format!("no answer within {} ms", timeout.as_millis()))
    })?
}

async fn open_inner(url: &Url, creds: Option<Credentials>) -> Result<RtspStream, SourceError> {
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("panoptes/{}", env!("CARGO_PKG_VERSION")));
    let mut session = Session::describe(url.clone(), options)
        .await
        .map_err(|e| classify(&e))?;
    let found: Vec<String> = session
        .streams()
        .iter()
        .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
        .collect();
    let index = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
        .ok_or_else(|| SourceError::Unsupported(found.join(", ")))?;
    session
        .setup(
            index,
            SetupOptions::default()
                .transport(Transport::Tcp(TcpTransportOptions::default()))
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(|e| classify(&e))?;
    let (codec, (width, height)) = match session.streams()[index].parameters() {
        Some(retina::codec::ParametersRef::Video(v)) => {
            (v.rfc6381_codec().to_owned(), v.pixel_dimensions())
        }
        _ => ("h264".to_owned(), (0, 0)),
    };
    let session = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| classify(&e))?
        .demuxed()
        .map_err(|e| classify(&e))?;
    let decoder = Decoder::new().map_err(|e| SourceError::Decode(e.to_string()))?;
    Ok(RtspStream {
        session,
        decoder: Some(decoder),
        info: StreamInfo {
            codec,
            width,
            height,
        },
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
                Some(Err(e)) => return Err(classify(&e)),
                Some(Ok(CodecItem::VideoFrame(f))) => f,
                Some(Ok(_)) => continue,
            };
            let at = panoptes_shared::ports::jobs::now_ms();
            let wanted = want(at);
            let mut decoder = self
                .decoder
                .take()
                .ok_or_else(|| SourceError::Decode("decoder lost".into()))?;
            let data = frame.into_data();
            let (decoder, decoded) = tokio::task::spawn_blocking(move || {
                let out = decode(&mut decoder, &data, wanted);
                (decoder, out)
            })
            .await
            .map_err(|e| SourceError::Decode(e.to_string()))?;
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
        Err(e) => return Err(SourceError::Decode(e.to_string())),
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

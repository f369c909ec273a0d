//! One device as ingest and probes reach it: its URL, the credentials that
//! may be sent to it, and how they may be sent. The one place a device's
//! connection target is worked out, so probes, health checks and streams
//! cannot disagree.

use panoptes_shared::domain::camera::CameraError;
use panoptes_shared::domain::device::Device;
use panoptes_shared::ports::SecretCipher;
use panoptes_shared::ports::cipher::open_credentials;
use retina::client::Credentials;
use secrecy::ExposeSecret;
use url::Url;

use super::relay::AuthRule;

/// A camera to connect to.
#[derive(Clone)]
pub struct Camera {
    pub url: Url,
    /// Basic/Digest credentials (retina has no Bearer tokens, so
    /// `rtspToken` is not sent); `None` when the device has none, or has
    /// some bound to another `host:port`.
    pub creds: Option<Credentials>,
    /// The device opted in to Basic auth over plain `rtsp://`.
    pub allow_plain_basic_auth: bool,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("url", &self.url.as_str())
            .field("has_credentials", &self.creds.is_some())
            .field("allow_plain_basic_auth", &self.allow_plain_basic_auth)
            .finish()
    }
}

impl Camera {
    /// The device's target. Stored credentials are opened and kept only if
    /// they were given for the URL's `host:port`: credentials never follow
    /// a URL to another host (the API drops them on such a change; this is
    /// the check at connect time).
    pub fn of(cipher: &dyn SecretCipher, device: &Device) -> Result<Self, CameraError> {
        let url = Url::parse(device.rtsp_url.as_str()).map_err(CameraError::InvalidUrl)?;
        let stored = open_credentials(cipher, device.credentials.as_ref())
            .map_err(CameraError::Credentials)?;
        let creds = if stored.may_be_sent_to(&device.rtsp_url) {
            super::session::credentials(
                stored.username.as_deref(),
                stored.password.as_ref().map(|p| p.expose_secret()),
            )
        } else {
            tracing::warn!(device = %device.id, "stored RTSP credentials were given for another host or port; not sent");
            None
        };
        Ok(Self {
            url,
            creds,
            allow_plain_basic_auth: device.allow_plain_basic_auth,
        })
    }

    /// A camera reached without credentials (benchmarks, tools).
    pub fn without_credentials(url: Url) -> Self {
        Self {
            url,
            creds: None,
            allow_plain_basic_auth: false,
        }
    }

    /// What the relay lets requests carry: nothing without credentials;
    /// Digest only on plain RTSP unless the device opted in to Basic.
    pub(crate) fn auth_rule(&self) -> AuthRule {
        if self.creds.is_none() {
            AuthRule::Nothing
        } else if self.url.scheme().eq_ignore_ascii_case("rtsps") || self.allow_plain_basic_auth {
            AuthRule::Any
        } else {
            AuthRule::DigestOnly
        }
    }
}

//! Devices: cameras and frame sources a tenant registers.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::domain::plan::{Plan, PlanLimits};
use crate::domain::schedule::{Schedule, UtcOffset};
use crate::error::FieldError;
use crate::ids::{DeviceId, UserId};

pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 50;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_CREDENTIAL_LEN: usize = 512;

macro_rules! string_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$variant),)+ _ => None }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&s, &[$($s),+])
                })
            }
        }

        /// A string enum named after the type (a shared schema in documents).
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let doc: Vec<&str> = [$($doc),*].iter().map(|l| l.trim()).collect();
                schemars::json_schema!({
                    "type": "string",
                    "description": doc.join(" "),
                    "enum": [$($s),+]
                })
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Where the coordinates came from.
    GeoSource { Manual = "manual", Address = "address", Device = "device", Ip = "ip" }
);
string_enum!(
    /// The kind of source (`ip_camera` by default).
    DeviceType { IpCamera = "ip_camera", RtspSource = "rtsp_source", UsbCamera = "usb_camera" }
);
string_enum!(
    /// Connection state; ingest drives it, new devices start `offline`.
    DeviceStatus { Online = "online", Offline = "offline", Error = "error" }
);

/// An `rtsp://` or `rtsps://` URL with any user-info removed (credentials are
/// kept apart, encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspUrl(String);

impl RtspUrl {
    /// Parse; credentials embedded as `rtsp://user:pass@host/...` are split off.
    pub fn parse(raw: &str) -> Result<(Self, Option<(String, String)>), FieldError> {
        let field = "rtspUrl";
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_URL_LEN} characters"),
            ));
        }
        let lower = raw.to_ascii_lowercase();
        if !(lower.starts_with("rtsp://") || lower.starts_with("rtsps://")) {
            return Err(FieldError::new(
                field,
                "must start with rtsp:// or rtsps://",
            ));
        }
        let mut url = url::Url::parse(raw)
            .map_err(|e| FieldError::new(field, format!("is not a valid URL ({e})")))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(FieldError::new(field, "must name a host"));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .next()
                .unwrap_or_default()
        };
        let creds = (!url.username().is_empty() || url.password().is_some()).then(|| {
            (
                decode(url.username()),
                url.password().map(decode).unwrap_or_default(),
            )
        });
        if creds.is_some() {
            // Infallible for URLs with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        Ok((Self(url.to_string()), creds))
    }

    /// Wrap a URL read back from the store (validated when it was written).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The port a scheme defaults to: 554 for `rtsp`, 322 for `rtsps` (RFC 7826).
    pub fn default_port(scheme: &str) -> u16 {
        if scheme.eq_ignore_ascii_case("rtsps") {
            322
        } else {
            554
        }
    }

    /// `host:port` (lower-case host, the scheme's default port when none is
    /// given): what stored credentials are bound to. `None` for a URL that
    /// does not parse (never one written through [`parse`](Self::parse)).
    pub fn endpoint(&self) -> Option<String> {
        let url = url::Url::parse(&self.0).ok()?;
        let host = url.host_str().filter(|h| !h.is_empty())?;
        let port = url.port().unwrap_or(Self::default_port(url.scheme()));
        Some(format!("{}:{port}", host.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// RTSP credentials in clear; only ever held in memory. The store keeps them
/// sealed (AES-GCM) and the API only says whether a device has any.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RtspCredentials {
    pub username: Option<String>,
    #[serde(serialize_with = "expose")]
    pub password: Option<SecretString>,
    #[serde(serialize_with = "expose")]
    pub token: Option<SecretString>,
    /// The `host:port` ([`RtspUrl::endpoint`]) these credentials were given
    /// for; they are never sent anywhere else. `None` in credentials sealed
    /// before it was recorded: those are used for the device's current URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Serialises a secret in clear: used only to produce the plaintext that is sealed.
fn expose<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    v.as_ref().map(|v| v.expose_secret()).serialize(s)
}

impl RtspCredentials {
    /// No username, password or token (whatever `endpoint` says).
    pub fn is_empty(&self) -> bool {
        self.username.is_none() && self.password.is_none() && self.token.is_none()
    }

    /// Whether these credentials may be sent to `url`: they were given for
    /// its `host:port`, or were sealed before the binding was recorded.
    pub fn may_be_sent_to(&self, url: &RtspUrl) -> bool {
        match &self.endpoint {
            None => true,
            Some(e) => url.endpoint().as_deref() == Some(e.as_str()),
        }
    }

    pub fn check_len(field: &str, v: &str) -> Result<(), FieldError> {
        if v.len() > MAX_CREDENTIAL_LEN {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_CREDENTIAL_LEN} bytes"),
            ));
        }
        Ok(())
    }
}

/// Ciphertext of [`RtspCredentials`], as produced by a `SecretCipher`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// Per-device caps a customer sets below the plan's allowance (`None` = plan value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLimits {
    pub analysis_seconds: Option<u64>,
    pub alert_count: Option<u64>,
    pub attribute_count: Option<u64>,
    pub vlm_tokens: Option<u64>,
    #[serde(default)]
    pub disabled: bool,
    /// Set by an admin: no monthly limit on any feature.
    #[serde(default)]
    pub unlimited: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub rtsp_url: RtspUrl,
    pub credentials: Option<Sealed>,
    pub location_label: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub geo_source: Option<GeoSource>,
    pub device_type: DeviceType,
    pub plan: Plan,
    pub tags: Vec<String>,
    pub utc_offset: UtcOffset,
    pub schedule: Option<Schedule>,
    pub status: DeviceStatus,
    pub quota: QuotaLimits,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Frames arrive by edge push instead of being pulled over RTSP.
    pub push_enabled: bool,
    /// Last frame or heartbeat pushed, or last frame pulled (throttled).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Basic auth may be sent over plain `rtsp://` (in clear). Off by
    /// default: without it only Digest is answered on plain RTSP (Basic is
    /// fine over `rtsps://`).
    pub allow_plain_basic_auth: bool,
}

impl Device {
    /// This month's allowance: the plan's, each feature capped lower where
    /// the device's quota says (a cap set under a bigger plan never exceeds
    /// the current one).
    pub fn allowance(&self) -> PlanLimits {
        let plan = self.plan.limits();
        let q = &self.quota;
        let capped = |cap: Option<u64>, plan: u64| cap.map_or(plan, |c| c.min(plan));
        PlanLimits {
            analysis_seconds: capped(q.analysis_seconds, plan.analysis_seconds),
            alert_count: capped(q.alert_count, plan.alert_count),
            attribute_count: capped(q.attribute_count, plan.attribute_count),
            vlm_tokens: capped(q.vlm_tokens, plan.vlm_tokens),
        }
    }

    /// Whether the device pushes its frames (`usb_camera`, or push enabled):
    /// ingest never pulls such a device, and silence makes it offline.
    pub fn is_push(&self) -> bool {
        self.push_enabled || self.device_type == DeviceType::UsbCamera
    }

    pub fn next_scheduled_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .as_ref()
            .and_then(|s| s.next_start_after(now, self.utc_offset))
    }
}

/// Tags: at most 20, each 1-50 characters, duplicates removed, order kept.
pub fn parse_tags(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.len() > MAX_TAGS {
        return Err(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let t = crate::domain::validate::text(&format!("tags[{i}]"), t, 1, MAX_TAG_LEN)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_credentials_are_split_off_the_url() {
        let (url, creds) =
            RtspUrl::parse("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/Channels/101").unwrap();
        assert_eq!(url.as_str(), "rtsp://10.0.0.5:554/Streaming/Channels/101");
        assert_eq!(creds, Some(("admin".into(), "p@ss".into())));
    }

    #[test]
    fn non_rtsp_and_hostless_urls_are_rejected() {
        for bad in ["http://cam/stream", "rtsp://", "ftp://x", "rtsp//x"] {
            assert_eq!(RtspUrl::parse(bad).unwrap_err().field, "rtspUrl", "{bad}");
        }
        assert!(RtspUrl::parse("RTSPS://cam.example.com/live").is_ok());
    }

    #[test]
    fn the_endpoint_is_the_lower_case_host_and_the_effective_port() {
        let ep = |u: &str| RtspUrl::parse(u).unwrap().0.endpoint().unwrap();
        assert_eq!(ep("rtsp://Cam.Example.com/live"), "cam.example.com:554");
        assert_eq!(ep("rtsps://cam.example.com/live"), "cam.example.com:322");
        assert_eq!(ep("rtsp://u:p@10.0.0.5:8554/a"), "10.0.0.5:8554");
        assert_eq!(ep("rtsp://[::1]:8554/"), "[::1]:8554");
    }

    #[test]
    fn credentials_are_sent_only_to_the_endpoint_they_were_given_for() {
        let url = |u: &str| RtspUrl::parse(u).unwrap().0;
        let mut creds = RtspCredentials {
            username: Some("admin".into()),
            ..Default::default()
        };
        assert!(creds.may_be_sent_to(&url("rtsp://cam.example.com/")));
        creds.endpoint = Some("cam.example.com:554".into());
        assert!(creds.may_be_sent_to(&url("rtsp://CAM.example.com:554/other")));
        assert!(!creds.may_be_sent_to(&url("rtsp://cam.example.com:8554/")));
        assert!(!creds.may_be_sent_to(&url("rtsp://evil.example.com/")));
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        let tags = parse_tags(&[" a ".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(tags, vec!["a", "b"]);
        assert_eq!(parse_tags(&["".into()]).unwrap_err().field, "tags[0]");
    }
}

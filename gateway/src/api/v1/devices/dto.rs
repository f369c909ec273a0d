//! Device request and response bodies, and their conversion to domain values.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::device::{
    self as domain, RtspCredentials, RtspUrl, Sealed, parse_tags,
};
use panoptes_shared::domain::schedule::{DaySlots, Schedule, UtcOffset, WEEKDAYS};
use panoptes_shared::domain::validate::{optional_multiline, optional_text, range, text};
use panoptes_shared::error::FieldError;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::SecretCipher;
use panoptes_shared::time::now;
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::{DeviceStatus, DeviceType, GeoSource, Plan};

/// Analysis schedule in device local time (`utcOffset`): 48 half-hour slots a
/// day, slot `i` covering `[i*30min, (i+1)*30min)`. A weekday present in
/// `weeklySlots` overrides `dailySlots`; a weekday left out uses `dailySlots`.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ScheduleDto {
    #[oai(rename = "dailySlots", validator(min_items = 48, max_items = 48))]
    #[serde(rename = "dailySlots")]
    pub daily_slots: Option<Vec<bool>>,
    #[oai(rename = "weeklySlots")]
    #[serde(rename = "weeklySlots")]
    pub weekly_slots: Option<WeeklySlotsDto>,
}

#[derive(Debug, Clone, Default, Object, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct WeeklySlotsDto {
    #[oai(validator(min_items = 48, max_items = 48))]
    pub mon: Option<Vec<bool>>,
    #[oai(validator(min_items = 48, max_items = 48))]
    pub tue: Option<Vec<bool>>,
    #[oai(validator(min_items = 48, max_items = 48))]
    pub wed: Option<Vec<bool>>,
    #[oai(validator(min_items = 48, max_items = 48))]
    pub thu: Option<Vec<bool>>,
    #[oai(validator(min_items = 48, max_items = 48))]
    pub fri: Option<Vec<bool>>,
    #[oai(validator(min_items = 48, max_items = 48))]
    pub sat: Option<Vec<bool>>,
    #[oai(validator(min_items = 48, max_items = 48))]
    pub sun: Option<Vec<bool>>,
}

impl WeeklySlotsDto {
    fn days(&self) -> [&Option<Vec<bool>>; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }
}

impl ScheduleDto {
    pub fn into_domain(self) -> Result<Schedule, FieldError> {
        let daily = self
            .daily_slots
            .map(|d| Schedule::slots("schedule.dailySlots", &d))
            .transpose()?;
        let mut weekly: [Option<DaySlots>; 7] = Default::default();
        if let Some(w) = &self.weekly_slots {
            for (i, day) in w.days().into_iter().enumerate() {
                if let Some(d) = day {
                    weekly[i] = Some(Schedule::slots(
                        &format!("schedule.weeklySlots.{}", WEEKDAYS[i]),
                        d,
                    )?);
                }
            }
        }
        let schedule = Schedule { daily, weekly };
        if schedule.is_empty() {
            return Err(FieldError::new(
                "schedule",
                "give dailySlots and/or weeklySlots (or null to remove the schedule)",
            ));
        }
        Ok(schedule)
    }

    pub fn from_domain(s: &Schedule) -> Self {
        let day = |i: usize| s.weekly[i].map(|d| d.to_vec());
        let weekly = s
            .weekly
            .iter()
            .any(Option::is_some)
            .then(|| WeeklySlotsDto {
                mon: day(0),
                tue: day(1),
                wed: day(2),
                thu: day(3),
                fri: day(4),
                sat: day(5),
                sun: day(6),
            });
        Self {
            daily_slots: s.daily.map(|d| d.to_vec()),
            weekly_slots: weekly,
        }
    }
}

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct CreateDeviceRequest {
    /// 1-200 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// `rtsp://` or `rtsps://`. Credentials embedded as `user:pass@` are moved to the encrypted store.
    #[oai(validator(max_length = 2048, pattern = r"^[rR][tT][sS][pP][sS]?://[^\s/@]+"))]
    pub rtsp_url: String,
    pub rtsp_username: Option<String>,
    /// Stored encrypted; never returned.
    pub rtsp_password: Option<String>,
    /// Bearer token for the stream; stored encrypted, never returned.
    pub rtsp_token: Option<String>,
    #[oai(validator(max_length = 200))]
    pub location_label: Option<String>,
    #[oai(validator(minimum(value = "-90"), maximum(value = "90")))]
    pub latitude: Option<f64>,
    #[oai(validator(minimum(value = "-180"), maximum(value = "180")))]
    pub longitude: Option<f64>,
    pub geo_source: Option<GeoSource>,
    /// Default `ip_camera`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub device_type: Option<DeviceType>,
    /// Default `level_01`.
    pub plan: Option<Plan>,
    /// Up to 20 tags of 1-50 characters.
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<String>>,
    /// Device local time, e.g. `UTC+8`, `UTC-03:30`. Default `UTC+0`.
    #[oai(validator(pattern = r"^\s*(UTC|GMT)?([+-][0-9]{1,2}(:[0-9]{1,2})?)?\s*$"))]
    pub utc_offset: Option<String>,
    pub schedule: Option<ScheduleDto>,
    /// The device pushes its frames (`POST /devices/{id}/frames`) instead of
    /// being pulled over RTSP. Always true for `usb_camera`. Default false.
    pub push_enabled: Option<bool>,
    /// Allow answering a Basic auth challenge over plain `rtsp://`, which
    /// sends the password in clear. Default false: on plain RTSP only Digest
    /// is answered (Basic over `rtsps://` needs no opt-in).
    pub allow_plain_basic_auth: Option<bool>,
}

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UpdateDeviceRequest {
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    #[serde(default)]
    #[oai(validator(max_length = 500))]
    pub description: MaybeUndefined<String>,
    /// A new host or port drops the stored credentials unless new ones are
    /// given in the same request: credentials are never sent to another
    /// address than the one they were given for.
    #[oai(validator(max_length = 2048, pattern = r"^[rR][tT][sS][pP][sS]?://[^\s/@]+"))]
    pub rtsp_url: Option<String>,
    /// `null` removes it.
    #[serde(default)]
    pub rtsp_username: MaybeUndefined<String>,
    /// `null` removes it.
    #[serde(default)]
    pub rtsp_password: MaybeUndefined<String>,
    /// `null` removes it.
    #[serde(default)]
    pub rtsp_token: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(validator(max_length = 200))]
    pub location_label: MaybeUndefined<String>,
    #[serde(default)]
    #[oai(validator(minimum(value = "-90"), maximum(value = "90")))]
    pub latitude: MaybeUndefined<f64>,
    #[serde(default)]
    #[oai(validator(minimum(value = "-180"), maximum(value = "180")))]
    pub longitude: MaybeUndefined<f64>,
    #[serde(default)]
    pub geo_source: MaybeUndefined<GeoSource>,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub device_type: Option<DeviceType>,
    pub plan: Option<Plan>,
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<String>>,
    #[oai(validator(pattern = r"^\s*(UTC|GMT)?([+-][0-9]{1,2}(:[0-9]{1,2})?)?\s*$"))]
    pub utc_offset: Option<String>,
    /// `null` removes the schedule.
    #[serde(default)]
    pub schedule: MaybeUndefined<ScheduleDto>,
    pub push_enabled: Option<bool>,
    /// See `allowPlainBasicAuth` of device creation.
    pub allow_plain_basic_auth: Option<bool>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeviceDto {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// Without credentials.
    pub rtsp_url: String,
    /// Whether RTSP credentials are stored (they are never returned).
    pub has_credentials: bool,
    pub location_label: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub geo_source: Option<GeoSource>,
    #[oai(rename = "type")]
    pub device_type: DeviceType,
    pub plan: Plan,
    pub tags: Vec<String>,
    pub utc_offset: String,
    pub schedule: Option<ScheduleDto>,
    pub status: DeviceStatus,
    /// Frames arrive by edge push (true for `usb_camera`).
    pub push_enabled: bool,
    /// Basic auth may be answered over plain `rtsp://` (password in clear).
    pub allow_plain_basic_auth: bool,
    /// Last frame or heartbeat received from the device.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Next scheduled analysis start, UTC (null without a schedule).
    pub next_scheduled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&domain::Device> for DeviceDto {
    fn from(d: &domain::Device) -> Self {
        Self {
            id: d.id.0,
            name: d.name.clone(),
            description: d.description.clone(),
            rtsp_url: d.rtsp_url.as_str().to_owned(),
            has_credentials: d.credentials.is_some(),
            location_label: d.location_label.clone(),
            latitude: d.latitude,
            longitude: d.longitude,
            geo_source: d.geo_source.map(Into::into),
            device_type: d.device_type.into(),
            plan: d.plan.into(),
            tags: d.tags.clone(),
            utc_offset: d.utc_offset.to_string(),
            schedule: d.schedule.as_ref().map(ScheduleDto::from_domain),
            status: d.status.into(),
            push_enabled: d.is_push(),
            allow_plain_basic_auth: d.allow_plain_basic_auth,
            last_seen_at: d.last_seen_at,
            next_scheduled_at: d.next_scheduled_at(now()),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

pub fn latitude(v: f64) -> Result<f64, FieldError> {
    range("latitude", v, -90.0, 90.0)
}

pub fn longitude(v: f64) -> Result<f64, FieldError> {
    range("longitude", v, -180.0, 180.0)
}

/// Merge explicit credential fields over those embedded in the URL.
pub fn credentials(
    embedded: Option<(String, String)>,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
) -> Result<RtspCredentials, FieldError> {
    for (field, v) in [
        ("rtspUsername", &username),
        ("rtspPassword", &password),
        ("rtspToken", &token),
    ] {
        if let Some(v) = v {
            RtspCredentials::check_len(field, v)?;
        }
    }
    let (eu, ep) = embedded.map_or((None, None), |(u, p)| {
        (
            Some(u).filter(|u| !u.is_empty()),
            Some(p).filter(|p| !p.is_empty()),
        )
    });
    Ok(RtspCredentials {
        username: username.filter(|u| !u.is_empty()).or(eu),
        password: password.filter(|p| !p.is_empty()).or(ep).map(Into::into),
        token: token.filter(|t| !t.is_empty()).map(Into::into),
        endpoint: None,
    })
}

/// Seal credentials for the store (`None` when there are none), bound to
/// the `host:port` of `url`: they are only ever sent there.
pub fn seal(
    cipher: &dyn SecretCipher,
    creds: &mut RtspCredentials,
    url: &RtspUrl,
) -> Result<Option<Sealed>, Error> {
    if creds.is_empty() {
        return Ok(None);
    }
    creds.endpoint = url.endpoint();
    let plain = serde_json::to_vec(creds).map_err(Error::internal)?;
    cipher.seal(&plain).map(Some)
}

/// Open stored credentials (empty when there are none).
pub fn open(cipher: &dyn SecretCipher, sealed: Option<&Sealed>) -> Result<RtspCredentials, Error> {
    panoptes_shared::ports::cipher::open_credentials(cipher, sealed)
}

impl CreateDeviceRequest {
    pub fn into_device(
        self,
        owner: UserId,
        cipher: &dyn SecretCipher,
    ) -> Result<domain::Device, Error> {
        let r = self;
        let (rtsp_url, embedded) = RtspUrl::parse(&r.rtsp_url)?;
        let mut creds = credentials(embedded, r.rtsp_username, r.rtsp_password, r.rtsp_token)?;
        let sealed = seal(cipher, &mut creds, &rtsp_url)?;
        let t = now();
        Ok(domain::Device {
            id: DeviceId::new(),
            user_id: owner,
            name: text("name", &r.name, 1, 200)?,
            description: optional_multiline("description", r.description.as_deref(), 500)?,
            rtsp_url,
            credentials: sealed,
            location_label: optional_text("locationLabel", r.location_label.as_deref(), 200)?,
            latitude: r.latitude.map(latitude).transpose()?,
            longitude: r.longitude.map(longitude).transpose()?,
            geo_source: r.geo_source.map(Into::into),
            device_type: r
                .device_type
                .map_or(domain::DeviceType::IpCamera, Into::into),
            plan: r
                .plan
                .map_or(panoptes_shared::domain::plan::Plan::Level01, Into::into),
            tags: parse_tags(&r.tags.unwrap_or_default())?,
            utc_offset: r
                .utc_offset
                .as_deref()
                .map(UtcOffset::parse)
                .transpose()?
                .unwrap_or_default(),
            schedule: r.schedule.map(ScheduleDto::into_domain).transpose()?,
            status: domain::DeviceStatus::Offline,
            quota: domain::QuotaLimits::default(),
            created_at: t,
            updated_at: t,
            push_enabled: r.push_enabled.unwrap_or(false),
            last_seen_at: None,
            allow_plain_basic_auth: r.allow_plain_basic_auth.unwrap_or(false),
        })
    }
}

/// `Some(v)` / `None` for a value or `null`; `Err` when the field was absent.
fn given<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl UpdateDeviceRequest {
    /// Apply the fields present in the request to `d` (absent = unchanged, `null` = cleared).
    pub fn apply(self, d: &mut domain::Device, cipher: &dyn SecretCipher) -> Result<(), Error> {
        let r = self;
        if let Some(name) = r.name {
            d.name = text("name", &name, 1, 200)?;
        }
        if let Some(v) = given(r.description) {
            d.description = optional_multiline("description", v.as_deref(), 500)?;
        }
        let mut embedded = None;
        let mut moved = false;
        if let Some(url) = r.rtsp_url {
            let (url, creds) = RtspUrl::parse(&url)?;
            moved = url.endpoint() != d.rtsp_url.endpoint();
            d.rtsp_url = url;
            embedded = creds;
        }
        let (user, pass, token) = (
            given(r.rtsp_username),
            given(r.rtsp_password),
            given(r.rtsp_token),
        );
        if moved || embedded.is_some() || user.is_some() || pass.is_some() || token.is_some() {
            // A new host or port starts without the stored credentials: only
            // those given with the change go there.
            let mut creds = if moved {
                RtspCredentials::default()
            } else {
                open(cipher, d.credentials.as_ref())?
            };
            let (embedded_user, embedded_pass) = embedded.unzip();
            let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
            // An explicit field wins (null clears it); otherwise a credential embedded in the new URL.
            match user {
                Some(v) => creds.username = non_empty(v),
                None if embedded_user.as_deref().is_some_and(|u| !u.is_empty()) => {
                    creds.username = embedded_user
                }
                None => {}
            }
            match pass {
                Some(v) => creds.password = non_empty(v).map(Into::into),
                None if embedded_pass.as_deref().is_some_and(|p| !p.is_empty()) => {
                    creds.password = embedded_pass.map(Into::into)
                }
                None => {}
            }
            if let Some(v) = token {
                creds.token = non_empty(v).map(Into::into);
            }
            for (field, v) in [("rtspUsername", creds.username.as_deref())] {
                if let Some(v) = v {
                    RtspCredentials::check_len(field, v)?;
                }
            }
            use secrecy::ExposeSecret;
            for (field, v) in [
                ("rtspPassword", &creds.password),
                ("rtspToken", &creds.token),
            ] {
                if let Some(v) = v {
                    RtspCredentials::check_len(field, v.expose_secret())?;
                }
            }
            d.credentials = seal(cipher, &mut creds, &d.rtsp_url)?;
        }
        if let Some(v) = given(r.location_label) {
            d.location_label = optional_text("locationLabel", v.as_deref(), 200)?;
        }
        if let Some(v) = given(r.latitude) {
            d.latitude = v.map(latitude).transpose()?;
        }
        if let Some(v) = given(r.longitude) {
            d.longitude = v.map(longitude).transpose()?;
        }
        if let Some(v) = given(r.geo_source) {
            d.geo_source = v.map(Into::into);
        }
        if let Some(t) = r.device_type {
            d.device_type = t.into();
        }
        if let Some(p) = r.plan {
            d.plan = p.into();
        }
        if let Some(p) = r.push_enabled {
            d.push_enabled = p;
        }
        if let Some(v) = r.allow_plain_basic_auth {
            d.allow_plain_basic_auth = v;
        }
        if let Some(tags) = r.tags {
            d.tags = parse_tags(&tags)?;
        }
        if let Some(o) = r.utc_offset {
            d.utc_offset = UtcOffset::parse(&o)?;
        }
        if let Some(s) = given(r.schedule) {
            d.schedule = s.map(ScheduleDto::into_domain).transpose()?;
        }
        d.updated_at = now();
        Ok(())
    }
}

//! `/api/v1/devices`: cameras and frame sources. RTSP credentials are sealed
//! with AES-GCM before they reach the store and are never returned or logged.
//! Camera URLs must point at public addresses (the outbound guard; see
//! `panoptes_shared::outbound`) unless `outbound.allow_private` is set.

mod analysis;
mod dto;
mod probe;
mod quota;

use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::device::{Device, RtspUrl};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::quota::{ChangeKind, QuotaChange};
use panoptes_shared::ids::DeviceId;
use panoptes_shared::outbound::OutboundError;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use uuid::Uuid;

pub use analysis::{AnalysisStatusDto, AnalysisTaskDto, StartAnalysisRequest};
pub use dto::{CreateDeviceRequest, DeviceDto, ScheduleDto, UpdateDeviceRequest, WeeklySlotsDto};
pub use probe::ProbeDto;
pub use quota::{DeviceQuotaDto, UpdateQuotaRequest};

use super::ApiTags;
use super::scenes::SceneDto;
use crate::auth::Caller;
use crate::auth::schemes::SessionOrKey;
use crate::http::body::JsonBody;
use crate::http::envelope::{Created, Empty, Reply};
use crate::http::error::{ApiResult, ControlErrors, KeyErrors, ReadErrors, WriteErrors};
use crate::state::AppState;

pub struct DevicesApi {
    pub state: AppState,
}

impl AppState {
    /// The device's analysis seconds used this month.
    pub async fn analysis_seconds_used(&self, device: &Device) -> Result<u64, Error> {
        panoptes_shared::lifecycle::analysis_seconds_used(
            self.store.as_ref(),
            device.user_id,
            device.id,
            panoptes_shared::time::now(),
        )
        .await
    }

    /// The device's allowance this billing period (plan, caps, grants).
    pub async fn allowance_now(
        &self,
        device: &Device,
    ) -> Result<panoptes_shared::domain::quota::Allowance, Error> {
        let (period, _) =
            panoptes_shared::domain::plan::billing_period(panoptes_shared::time::now());
        panoptes_shared::metering::allowance(self.store.as_ref(), device, &period).await
    }

    /// Alerts the device's rules fired this billing period.
    pub async fn alerts_used(&self, device: &Device) -> Result<u64, Error> {
        let month = panoptes_shared::domain::alert::month_of(panoptes_shared::time::now());
        self.store
            .alert_count(device.user_id, device.id, &month)
            .await
    }

    /// Refuse a camera URL aimed at a non-public address (400 naming
    /// `rtspUrl`). A name that does not resolve now (or within the guard's
    /// short deadline) is accepted: every connection is checked again.
    pub async fn vet_camera_url(&self, url: &RtspUrl) -> Result<(), Error> {
        let parsed = url::Url::parse(url.as_str())
            .map_err(|e| Error::validation("rtspUrl", format!("is not a valid URL ({e})")))?;
        let port = parsed
            .port()
            .unwrap_or(RtspUrl::default_port(parsed.scheme()));
        match self.outbound.check_url(&parsed, port).await {
            Ok(()) | Err(OutboundError::Unresolvable(_) | OutboundError::Connect(_)) => Ok(()),
            Err(OutboundError::Blocked(why)) => Err(Error::validation(
                "rtspUrl",
                format!("points at a {why} address; only public addresses are allowed"),
            )),
            Err(OutboundError::InvalidHost) => Err(Error::validation(
                "rtspUrl",
                "must name an IP address or a DNS name",
            )),
        }
    }

    /// The caller's device, or 404 (also for another tenant's device, and
    /// for any device but its own to a device key).
    pub async fn device(&self, caller: &Caller, id: Uuid) -> Result<Device, Error> {
        if !caller.may_reach(DeviceId(id)) {
            return Err(Error::NotFound("device"));
        }
        self.store
            .get_device(caller.user_id, DeviceId(id))
            .await?
            .ok_or(Error::NotFound("device"))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Devices")]
impl DevicesApi {
    /// Register a device. Scope `device:write`.
    #[oai(path = "/devices", method = "post", operation_id = "createDevice")]
    async fn create(
        &self,
        auth: SessionOrKey,
        body: JsonBody<CreateDeviceRequest>,
    ) -> ApiResult<Created<DeviceDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceWrite)?;
        let device = body
            .parse()?
            .into_device(caller.user_id, self.state.cipher.as_ref())?;
        self.state.vet_camera_url(&device.rtsp_url).await?;
        let cap = self.state.max_devices_per_user;
        if !self.state.store.insert_device_capped(&device, cap).await? {
            return Err(Error::LimitReached {
                what: "devices",
                limit: cap,
            }
            .into());
        }
        Ok(Created::new("Device created", (&device).into()))
    }

    /// Your devices, newest first. Scope `device:read`.
    #[oai(path = "/devices", method = "get", operation_id = "listDevices")]
    async fn list(
        &self,
        auth: SessionOrKey,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<DeviceDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceRead)?;
        let request = super::page(page.0, limit.0)?;
        let devices = match caller.device_binding() {
            // A device key sees its own device only.
            Some(own) => {
                let found = self.state.store.get_device(caller.user_id, own).await?;
                let total = u64::from(found.is_some());
                let items = found.into_iter().filter(|_| request.page == 1).collect();
                panoptes_shared::domain::page::Page {
                    items,
                    total,
                    request,
                }
            }
            None => {
                self.state
                    .store
                    .list_devices(caller.user_id, request)
                    .await?
            }
        };
        Ok(Reply::page("Devices", devices.map(|d| DeviceDto::from(&d))))
    }

    /// One device. Scope `device:read`.
    #[oai(path = "/devices/:id", method = "get", operation_id = "getDevice")]
    async fn get(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<DeviceDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceRead)?;
        let device = self.state.device(caller, id.0).await?;
        Ok(Reply::new("Device", (&device).into()))
    }

    /// Change a device; absent fields stay, `null` clears. Scope `device:write`.
    #[oai(path = "/devices/:id", method = "patch", operation_id = "updateDevice")]
    async fn update(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: JsonBody<UpdateDeviceRequest>,
    ) -> ApiResult<Reply<DeviceDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceWrite)?;
        let mut device = self.state.device(caller, id.0).await?;
        let change = body.parse()?;
        let new_url = change.rtsp_url.is_some();
        change.apply(&mut device, self.state.cipher.as_ref())?;
        if new_url {
            self.state.vet_camera_url(&device.rtsp_url).await?;
        }
        if !self
            .state
            .store
            .update_device(caller.user_id, &device)
            .await?
        {
            return Err(Error::NotFound("device").into());
        }
        Ok(Reply::new("Device updated", (&device).into()))
    }

    /// Delete a device and its scenes. Scope `device:write`.
    #[oai(
        path = "/devices/:id",
        method = "delete",
        operation_id = "deleteDevice"
    )]
    async fn delete(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<Empty>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceWrite)?;
        // A running analysis ends first (recorded, and its time metered:
        // usage outlives the device).
        let store = self.state.store.as_ref();
        if let Some(task) =
            panoptes_shared::lifecycle::running_task(store, caller.user_id, DeviceId(id.0)).await?
        {
            panoptes_shared::lifecycle::end(
                store,
                &task,
                panoptes_shared::domain::task::TaskEnd::stopped(
                    panoptes_shared::domain::task::StopReason::User,
                    panoptes_shared::time::now(),
                ),
            )
            .await?;
        }
        if !self
            .state
            .store
            .delete_device(caller.user_id, DeviceId(id.0))
            .await?
        {
            return Err(Error::NotFound("device").into());
        }
        Ok(Reply::new("Device deleted", Empty {}))
    }

    /// The device's scenes, newest first. Scope `scene:read` or `device:read`.
    #[oai(
        path = "/devices/:id/scenes",
        method = "get",
        operation_id = "listDeviceScenes"
    )]
    async fn scenes(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<SceneDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require_any(&[Scope::SceneRead, Scope::DeviceRead])?;
        let device = self.state.device(caller, id.0).await?;
        let scenes = self
            .state
            .store
            .list_scenes(
                caller.user_id,
                Some(device.id),
                super::page(page.0, limit.0)?,
            )
            .await?;
        Ok(Reply::page("Scenes", scenes.map(|s| SceneDto::from(&s))))
    }

    /// Try the device's RTSP stream now: DESCRIBE, SETUP, PLAY and a first
    /// decoded frame within `ingest.connect_timeout_ms`. Reports the codec and
    /// resolution, or what failed as a stable class (`error`) with a fixed
    /// message, never what the target sent; and sets the device's status
    /// from the outcome (`online`, `offline`: no answer, `error`: answers but
    /// cannot be analysed, or the address is refused). Non-public addresses
    /// are refused (`blocked_address`), checked on every resolved address at
    /// connect time. At most 10 probes a minute per user. Scope `device:write`.
    #[oai(
        path = "/devices/:id/probe",
        method = "post",
        operation_id = "probeDevice"
    )]
    async fn probe(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<ProbeDto>, KeyErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceWrite)?;
        let device = self.state.device(caller, id.0).await?;
        self.state
            .rate_limit(&caller.user_id.to_string(), crate::limits::Bucket::Probe)
            .await?;
        let report = probe::run(&self.state, &device).await?;
        Ok(Reply::new("Probe finished", report))
    }

    /// This month's quota of the device. Scope `device:read` or `billing:read`.
    #[oai(
        path = "/devices/:id/quota",
        method = "get",
        operation_id = "getDeviceQuota"
    )]
    async fn quota(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<DeviceQuotaDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require_any(&[Scope::DeviceRead, Scope::BillingRead])?;
        let device = self.state.device(caller, id.0).await?;
        Ok(Reply::new(
            "Device quota",
            DeviceQuotaDto::of(
                &device,
                &self.state.allowance_now(&device).await?,
                self.state.analysis_seconds_used(&device).await?,
                self.state.alerts_used(&device).await?,
            ),
        ))
    }

    /// Cap the device below its plan's allowance, or disable it. Scope `device:write`.
    #[oai(
        path = "/devices/:id/quota",
        method = "patch",
        operation_id = "updateDeviceQuota"
    )]
    async fn update_quota(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: JsonBody<UpdateQuotaRequest>,
    ) -> ApiResult<Reply<DeviceQuotaDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceWrite)?;
        let mut device = self.state.device(caller, id.0).await?;
        let before = device.quota.clone();
        let req = body.parse()?;
        let reason = req
            .reason
            .clone()
            .map(|r| panoptes_shared::domain::validate::multiline_text("reason", &r, 1, 500))
            .transpose()?
            .unwrap_or_else(|| "set by the owner".into());
        req.apply(&mut device)?;
        if before.disabled && !device.quota.disabled {
            // An admin's disabling is the admin's to lift.
            let ledger = self
                .state
                .store
                .list_quota_changes(
                    caller.user_id,
                    Some(device.id),
                    PageRequest {
                        page: 1,
                        limit: 100,
                    },
                )
                .await?;
            let last = ledger.items.iter().find(|c| c.kind == ChangeKind::Disabled);
            if last.is_some_and(|c| c.actor.starts_with("admin:")) {
                return Err(Error::Forbidden(
                    "this device was disabled by an administrator; only an administrator can enable it",
                )
                .into());
            }
        }
        let changes =
            QuotaChange::between(&before, &device, &super::alerts::actor(caller), &reason);
        if !self
            .state
            .store
            .record_quota_changes(&changes, Some(&device))
            .await?
        {
            return Err(Error::NotFound("device").into());
        }
        Ok(Reply::new(
            "Device quota updated",
            DeviceQuotaDto::of(
                &device,
                &self.state.allowance_now(&device).await?,
                self.state.analysis_seconds_used(&device).await?,
                self.state.alerts_used(&device).await?,
            ),
        ))
    }

    /// Start analysing a scene on the device. Scope `task:write`.
    ///
    /// Checks, in order: the scene is this device's (400) and active
    /// (409 SCENE_INACTIVE), the device is online (409 DEVICE_OFFLINE), the plan
    /// allows the capabilities (403 PLAN_REQUIRED), analysis seconds are left
    /// this month (429 QUOTA_EXCEEDED), no task runs yet (409 CONFLICT).
    #[oai(
        path = "/devices/:id/analysis/start",
        method = "post",
        operation_id = "startAnalysis"
    )]
    async fn start_analysis(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: JsonBody<StartAnalysisRequest>,
    ) -> ApiResult<Created<AnalysisTaskDto>, ControlErrors> {
        let caller = auth.caller();
        caller.require(Scope::TaskWrite)?;
        let req = body.parse()?.into_request();
        let device = self.state.device(caller, id.0).await?;
        let task = panoptes_shared::lifecycle::start(
            self.state.store.as_ref(),
            caller.user_id,
            device.id,
            req,
            panoptes_shared::time::now(),
        )
        .await?;
        Ok(Created::new("Analysis started", (&task).into()))
    }

    /// Stop the device's running analysis. Scope `task:write`.
    #[oai(
        path = "/devices/:id/analysis/stop",
        method = "post",
        operation_id = "stopAnalysis"
    )]
    async fn stop_analysis(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<AnalysisTaskDto>, WriteErrors> {
        use panoptes_shared::domain::task::{StopReason, TaskEnd};
        let caller = auth.caller();
        caller.require(Scope::TaskWrite)?;
        let device = self.state.device(caller, id.0).await?;
        let store = self.state.store.as_ref();
        let task = panoptes_shared::lifecycle::running_task(store, caller.user_id, device.id)
            .await?
            .ok_or_else(|| Error::Conflict("no analysis is running on this device".into()))?;
        let ended = panoptes_shared::lifecycle::end(
            store,
            &task,
            TaskEnd::stopped(StopReason::User, panoptes_shared::time::now()),
        )
        .await?
        .ok_or_else(|| Error::Conflict("the analysis stopped meanwhile".into()))?;
        Ok(Reply::new("Analysis stopped", (&ended).into()))
    }

    /// The device's analysis: running or not, the current or last task,
    /// usage this month and the next scheduled start. Scope `task:read`.
    #[oai(
        path = "/devices/:id/analysis/status",
        method = "get",
        operation_id = "getAnalysisStatus"
    )]
    async fn analysis_status(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<AnalysisStatusDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::TaskRead)?;
        let device = self.state.device(caller, id.0).await?;
        let status = AnalysisStatusDto::of(
            self.state.store.as_ref(),
            &device,
            panoptes_shared::time::now(),
        )
        .await?;
        Ok(Reply::new("Analysis status", status))
    }
}

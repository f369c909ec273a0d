//! `/api/v1/devices`: cameras and frame sources. RTSP credentials are sealed
//! with AES-GCM before they reach the store and are never returned or logged.

mod dto;
mod quota;

use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::device::Device;
use panoptes_shared::ids::{DeviceId, UserId};
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use uuid::Uuid;

pub use dto::{CreateDeviceRequest, DeviceDto, ScheduleDto, UpdateDeviceRequest, WeeklySlotsDto};
pub use quota::{DeviceQuotaDto, UpdateQuotaRequest};

use super::ApiTags;
use super::scenes::SceneDto;
use crate::auth::schemes::SessionOrKey;
use crate::http::body::JsonBody;
use crate::http::envelope::{Created, Empty, Reply};
use crate::http::error::{ApiResult, PendingErrors, ReadErrors, WriteErrors};
use crate::state::AppState;

pub struct DevicesApi {
    pub state: AppState,
}

impl AppState {
    /// The caller's device, or 404 (also for another tenant's device).
    pub async fn device(&self, user: UserId, id: Uuid) -> Result<Device, Error> {
        self.store
            .get_device(user, DeviceId(id))
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
        self.state.store.insert_device(&device).await?;
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
        let devices = self
            .state
            .store
            .list_devices(caller.user_id, super::page(page.0, limit.0)?)
            .await?;
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
        let device = self.state.device(caller.user_id, id.0).await?;
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
        let mut device = self.state.device(caller.user_id, id.0).await?;
        body.parse()?
            .apply(&mut device, self.state.cipher.as_ref())?;
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
        let device = self.state.device(caller.user_id, id.0).await?;
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

    /// Try the device's RTSP stream now. Scope `device:write`.
    ///
    /// The real check (DESCRIBE and a first decoded frame) ships with RTSP
    /// ingest; until then this answers 501 NOT_IMPLEMENTED for your devices.
    #[oai(
        path = "/devices/:id/probe",
        method = "post",
        operation_id = "probeDevice"
    )]
    async fn probe(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<Empty>, PendingErrors> {
        let caller = auth.caller();
        caller.require(Scope::DeviceWrite)?;
        self.state.device(caller.user_id, id.0).await?;
        Err(Error::NotImplemented("probing the RTSP stream").into())
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
        let device = self.state.device(caller.user_id, id.0).await?;
        Ok(Reply::new("Device quota", DeviceQuotaDto::of(&device)))
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
        let mut device = self.state.device(caller.user_id, id.0).await?;
        body.parse()?.apply(&mut device)?;
        if !self
            .state
            .store
            .update_device(caller.user_id, &device)
            .await?
        {
            return Err(Error::NotFound("device").into());
        }
        Ok(Reply::new(
            "Device quota updated",
            DeviceQuotaDto::of(&device),
        ))
    }
}

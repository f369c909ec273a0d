//! `/api/v1/scenes`: queue-analysis scenes (zones + parameters) on a device.

mod dto;

use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::scene::{Scene, SceneStatus};
use panoptes_shared::domain::task::{StopReason, TaskEnd};
use panoptes_shared::ids::{DeviceId, SceneId, UserId};
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use uuid::Uuid;

pub use dto::{
    CreateSceneRequest, ParametersDto, SceneConfigDto, SceneDto, UpdateSceneRequest, ZoneDto,
    ZonesDto,
};

use super::ApiTags;
use crate::auth::schemes::SessionOrKey;
use crate::http::body::JsonBody;
use crate::http::envelope::{Created, Empty, Reply};
use crate::http::error::{ApiResult, ReadErrors, WriteErrors};
use crate::state::AppState;

pub struct ScenesApi {
    pub state: AppState,
}

impl ScenesApi {
    /// A scene that is deleted or deactivated stops being analysed.
    async fn stop_analysis_of(&self, scene: &Scene) -> Result<(), Error> {
        let store = self.state.store.as_ref();
        if let Some(task) =
            panoptes_shared::lifecycle::running_task(store, scene.user_id, scene.device_id).await?
            && task.scene_id == scene.id
        {
            panoptes_shared::lifecycle::end(
                store,
                &task,
                TaskEnd::stopped(StopReason::SceneUnavailable, panoptes_shared::time::now()),
            )
            .await?;
        }
        Ok(())
    }

    async fn find(&self, user: UserId, id: Uuid) -> Result<Scene, Error> {
        self.state
            .store
            .get_scene(user, SceneId(id))
            .await?
            .ok_or(Error::NotFound("scene"))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Scenes")]
impl ScenesApi {
    /// Create a scene on one of your devices. Scope `scene:write`.
    #[oai(path = "/scenes", method = "post", operation_id = "createScene")]
    async fn create(
        &self,
        auth: SessionOrKey,
        body: JsonBody<CreateSceneRequest>,
    ) -> ApiResult<Created<SceneDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::SceneWrite)?;
        let req = body.parse()?;
        let device = self.state.device(caller, req.device_id).await?;
        let scene = req.into_scene(caller.user_id, device.id)?;
        self.state.store.insert_scene(&scene).await?;
        Ok(Created::new("Scene created", (&scene).into()))
    }

    /// Your scenes, newest first, optionally of one device. Scope `scene:read`.
    #[oai(path = "/scenes", method = "get", operation_id = "listScenes")]
    async fn list(
        &self,
        auth: SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<SceneDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::SceneRead)?;
        let page = super::page(page.0, limit.0)?;
        let scenes = self
            .state
            .store
            .list_scenes(caller.user_id, device_id.0.map(DeviceId), page)
            .await?;
        Ok(Reply::page("Scenes", scenes.map(|s| SceneDto::from(&s))))
    }

    /// One scene. Scope `scene:read`.
    #[oai(path = "/scenes/:id", method = "get", operation_id = "getScene")]
    async fn get(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<SceneDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::SceneRead)?;
        Ok(Reply::new(
            "Scene",
            (&self.find(caller.user_id, id.0).await?).into(),
        ))
    }

    /// Change a scene. Scope `scene:write`.
    #[oai(path = "/scenes/:id", method = "patch", operation_id = "updateScene")]
    async fn update(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: JsonBody<UpdateSceneRequest>,
    ) -> ApiResult<Reply<SceneDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::SceneWrite)?;
        let mut scene = self.find(caller.user_id, id.0).await?;
        body.parse()?.apply(&mut scene)?;
        if !self
            .state
            .store
            .update_scene(caller.user_id, &scene)
            .await?
        {
            return Err(Error::NotFound("scene").into());
        }
        if scene.status != SceneStatus::Active {
            self.stop_analysis_of(&scene).await?;
        }
        Ok(Reply::new("Scene updated", (&scene).into()))
    }

    /// Delete a scene. Scope `scene:write`.
    #[oai(path = "/scenes/:id", method = "delete", operation_id = "deleteScene")]
    async fn delete(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<Empty>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::SceneWrite)?;
        let scene = self.find(caller.user_id, id.0).await?;
        self.stop_analysis_of(&scene).await?;
        if !self
            .state
            .store
            .delete_scene(caller.user_id, SceneId(id.0))
            .await?
        {
            return Err(Error::NotFound("scene").into());
        }
        Ok(Reply::new("Scene deleted", Empty {}))
    }
}

//! `/api/v1/analytics`: stored queue metrics of a scene. Snapshots (counts at
//! the end of each stored window, with the window's average and maximum) and
//! rolling rows (`rolling5Min`, `rolling30Min`, `total`), written by the
//! analytics role every `analytics.persist_interval_ms` while a task runs.
//! Times are UTC; history is newest first.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::metrics_history::{
    CurrentMetrics, RollingRow, RollingWindow as DomainWindow, SceneSnapshot, TimeRange,
};
use panoptes_shared::domain::queue_metrics::WindowMetrics;
use panoptes_shared::domain::scene::Scene;
use panoptes_shared::ids::{SceneId, UserId};
use poem_openapi::param::{Path, Query};
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::devices::AnalysisTaskDto;
use super::enums::{AnalysisType, RollingWindow};
use crate::auth::schemes::SessionOrKey;
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, ReadErrors};
use crate::state::AppState;

pub struct AnalyticsApi {
    pub state: AppState,
}

/// Counts at `windowEnd`, and over the window.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CurrentMetricsDto {
    pub in_queue: u32,
    pub in_service: u32,
    pub avg_in_queue: f64,
    pub max_in_queue: u32,
    pub avg_in_service: f64,
    pub max_in_service: u32,
}

impl From<CurrentMetrics> for CurrentMetricsDto {
    fn from(c: CurrentMetrics) -> Self {
        Self {
            in_queue: c.in_queue,
            in_service: c.in_service,
            avg_in_queue: c.avg_in_queue,
            max_in_queue: c.max_in_queue,
            avg_in_service: c.avg_in_service,
            max_in_service: c.max_in_service,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SnapshotDto {
    pub id: Uuid,
    pub scene_id: Uuid,
    pub device_id: Uuid,
    /// The analysis task that produced it.
    pub task_id: Uuid,
    pub scene_type: AnalysisType,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub duration_seconds: f64,
    pub current_metrics: CurrentMetricsDto,
    /// The analytics node that computed it.
    pub compute_node_id: String,
    pub created_at: DateTime<Utc>,
}

impl From<&SceneSnapshot> for SnapshotDto {
    fn from(s: &SceneSnapshot) -> Self {
        Self {
            id: s.id,
            scene_id: s.scene_id.0,
            device_id: s.device_id.0,
            task_id: s.task_id.0,
            scene_type: AnalysisType::QueueAnalysis,
            window_start: s.window_start,
            window_end: s.window_end,
            duration_seconds: seconds(s.window_start, s.window_end),
            current_metrics: s.current.into(),
            compute_node_id: s.compute_node_id.clone(),
            created_at: s.created_at,
        }
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// One window's queue metrics (the metric paths under `rolling5Min`, ...).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WindowMetricsDto {
    pub avg_in_queue: f64,
    pub max_in_queue: u32,
    pub avg_in_service: f64,
    pub arrivals: u64,
    pub departures: u64,
    pub avg_wait_seconds: Option<f64>,
    pub median_wait_seconds: Option<f64>,
    pub p90_wait_seconds: Option<f64>,
    /// Completed queue visits behind the observed waits.
    pub wait_samples: u64,
    /// Little's law: people queueing / departures per second.
    pub estimated_wait_seconds: Option<f64>,
}

impl From<&WindowMetrics> for WindowMetricsDto {
    fn from(m: &WindowMetrics) -> Self {
        Self {
            avg_in_queue: m.avg_in_queue,
            max_in_queue: m.max_in_queue,
            avg_in_service: m.avg_in_service,
            arrivals: m.arrivals,
            departures: m.departures,
            avg_wait_seconds: m.avg_wait_seconds,
            median_wait_seconds: m.median_wait_seconds,
            p90_wait_seconds: m.p90_wait_seconds,
            wait_samples: m.wait_samples,
            estimated_wait_seconds: m.estimated_wait_seconds,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RollingDto {
    pub id: Uuid,
    pub scene_id: Uuid,
    pub device_id: Uuid,
    pub task_id: Uuid,
    pub scene_type: AnalysisType,
    /// `rolling5Min`, `rolling30Min` or `total`.
    pub window: RollingWindow,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub duration_seconds: f64,
    pub metrics: WindowMetricsDto,
    pub compute_node_id: String,
    pub created_at: DateTime<Utc>,
}

impl From<&RollingRow> for RollingDto {
    fn from(r: &RollingRow) -> Self {
        Self {
            id: r.id,
            scene_id: r.scene_id.0,
            device_id: r.device_id.0,
            task_id: r.task_id.0,
            scene_type: AnalysisType::QueueAnalysis,
            window: r.window.into(),
            window_start: r.window_start,
            window_end: r.window_end,
            duration_seconds: seconds(r.window_start, r.window_end),
            metrics: (&r.metrics).into(),
            compute_node_id: r.compute_node_id.clone(),
            created_at: r.created_at,
        }
    }
}

/// The scene's latest snapshot; `snapshot` is absent before the first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct LatestSnapshotDto {
    pub scene_id: Uuid,
    pub snapshot: Option<SnapshotDto>,
}

/// The latest row of each rolling window (absent before the first).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct LatestRollingDto {
    pub scene_id: Uuid,
    pub rolling5_min: Option<RollingDto>,
    pub rolling30_min: Option<RollingDto>,
    pub total: Option<RollingDto>,
}

impl LatestRollingDto {
    fn of(scene: SceneId, rows: &[RollingRow]) -> Self {
        let pick = |w: DomainWindow| rows.iter().find(|r| r.window == w).map(RollingDto::from);
        Self {
            scene_id: scene.0,
            rolling5_min: pick(DomainWindow::FiveMinutes),
            rolling30_min: pick(DomainWindow::ThirtyMinutes),
            total: pick(DomainWindow::Total),
        }
    }
}

/// Everything stored about a scene's latest state, in one call.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SceneLatestDto {
    pub scene_id: Uuid,
    pub device_id: Uuid,
    pub scene_type: AnalysisType,
    /// Whether the scene is being analysed now.
    pub analyzing: bool,
    /// The device's running task when it analyses this scene.
    pub task: Option<AnalysisTaskDto>,
    pub snapshot: Option<SnapshotDto>,
    pub rolling: LatestRollingDto,
}

impl AnalyticsApi {
    async fn scene(&self, user: UserId, id: Uuid) -> Result<Scene, Error> {
        self.state
            .store
            .get_scene(user, SceneId(id))
            .await?
            .ok_or(Error::NotFound("scene"))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Analytics")]
impl AnalyticsApi {
    /// Snapshot history of a scene, newest first, optionally between
    /// `startDate` and `endDate` (UTC, inclusive, on `windowEnd`).
    /// Scope `analytics:read`.
    #[oai(
        path = "/analytics/snapshots",
        method = "get",
        operation_id = "listSnapshots"
    )]
    async fn snapshots(
        &self,
        auth: SessionOrKey,
        /// The scene whose metrics to read.
        #[oai(name = "sceneId")]
        scene_id: Query<Uuid>,
        #[oai(name = "startDate")] start_date: Query<Option<DateTime<Utc>>>,
        #[oai(name = "endDate")] end_date: Query<Option<DateTime<Utc>>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<SnapshotDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let range = TimeRange::new(start_date.0, end_date.0)?;
        let page = super::page(page.0, limit.0)?;
        let scene = self.scene(caller.user_id, scene_id.0).await?;
        let rows = self
            .state
            .store
            .list_snapshots(caller.user_id, scene.id, range, page)
            .await?;
        Ok(Reply::page(
            "Snapshots",
            rows.map(|s| SnapshotDto::from(&s)),
        ))
    }

    /// The scene's latest snapshot (absent before the first). Scope `analytics:read`.
    #[oai(
        path = "/analytics/snapshots/latest",
        method = "get",
        operation_id = "getLatestSnapshot"
    )]
    async fn latest_snapshot(
        &self,
        auth: SessionOrKey,
        /// The scene whose metrics to read.
        #[oai(name = "sceneId")]
        scene_id: Query<Uuid>,
    ) -> ApiResult<Reply<LatestSnapshotDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let scene = self.scene(caller.user_id, scene_id.0).await?;
        let latest = self
            .state
            .store
            .latest_snapshot(caller.user_id, scene.id)
            .await?;
        Ok(Reply::new(
            "Latest snapshot",
            LatestSnapshotDto {
                scene_id: scene.id.0,
                snapshot: latest.as_ref().map(SnapshotDto::from),
            },
        ))
    }

    /// Rolling-metrics history of a scene, newest first: one `window` or all,
    /// optionally between `startDate` and `endDate` (UTC, inclusive, on
    /// `windowEnd`). Scope `analytics:read`.
    #[oai(
        path = "/analytics/rolling",
        method = "get",
        operation_id = "listRolling"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "one per documented query parameter"
    )]
    async fn rolling(
        &self,
        auth: SessionOrKey,
        /// The scene whose metrics to read.
        #[oai(name = "sceneId")]
        scene_id: Query<Uuid>,
        window: Query<Option<RollingWindow>>,
        #[oai(name = "startDate")] start_date: Query<Option<DateTime<Utc>>>,
        #[oai(name = "endDate")] end_date: Query<Option<DateTime<Utc>>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<RollingDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let range = TimeRange::new(start_date.0, end_date.0)?;
        let page = super::page(page.0, limit.0)?;
        let scene = self.scene(caller.user_id, scene_id.0).await?;
        let rows = self
            .state
            .store
            .list_rolling(
                caller.user_id,
                scene.id,
                window.0.map(Into::into),
                range,
                page,
            )
            .await?;
        Ok(Reply::page(
            "Rolling metrics",
            rows.map(|r| RollingDto::from(&r)),
        ))
    }

    /// The latest row of each rolling window of a scene. Scope `analytics:read`.
    #[oai(
        path = "/analytics/rolling/latest",
        method = "get",
        operation_id = "getLatestRolling"
    )]
    async fn latest_rolling(
        &self,
        auth: SessionOrKey,
        /// The scene whose metrics to read.
        #[oai(name = "sceneId")]
        scene_id: Query<Uuid>,
    ) -> ApiResult<Reply<LatestRollingDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let scene = self.scene(caller.user_id, scene_id.0).await?;
        let rows = self
            .state
            .store
            .latest_rolling(caller.user_id, scene.id)
            .await?;
        Ok(Reply::new(
            "Latest rolling metrics",
            LatestRollingDto::of(scene.id, &rows),
        ))
    }

    /// A scene's latest snapshot and rolling metrics, and whether it is being
    /// analysed now. Scope `analytics:read`.
    #[oai(
        path = "/analytics/scenes/:id/latest",
        method = "get",
        operation_id = "getSceneLatest"
    )]
    async fn scene_latest(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<SceneLatestDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let scene = self.scene(caller.user_id, id.0).await?;
        let store = self.state.store.as_ref();
        let snapshot = store.latest_snapshot(caller.user_id, scene.id).await?;
        let rolling = store.latest_rolling(caller.user_id, scene.id).await?;
        let task = panoptes_shared::lifecycle::running_task(store, caller.user_id, scene.device_id)
            .await?
            .filter(|t| t.scene_id == scene.id);
        Ok(Reply::new(
            "Scene latest metrics",
            SceneLatestDto {
                scene_id: scene.id.0,
                device_id: scene.device_id.0,
                scene_type: AnalysisType::QueueAnalysis,
                analyzing: task.is_some(),
                task: task.as_ref().map(Into::into),
                snapshot: snapshot.as_ref().map(SnapshotDto::from),
                rolling: LatestRollingDto::of(scene.id, &rolling),
            },
        ))
    }
}

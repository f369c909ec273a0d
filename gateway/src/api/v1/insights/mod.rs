//! `/api/v1/analysis/insights` and `/api/v1/analysis/attributes`: the VLM's
//! readings of alerts (one insight per alert, made by the notify role), the
//! person attributes of level_02 tasks, and plain-language search over both.
//! Scope `analytics:read`; attribute endpoints need a level_02 device.

mod dto;
mod search;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::attribute::AttributeRecord;
use panoptes_shared::domain::insight::Insight;
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::ids::{AttributeId, DeviceId, InsightId, SceneId, UserId};
use panoptes_shared::insights::attributes_in_view;
use panoptes_shared::ports::{AttributeFilter, InsightFilter};
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use uuid::Uuid;

pub use dto::{
    AttributeDto, AttributeStatsDto, InsightDto, InsightSnapshotDto, SearchRequest,
    SearchResultDto, VlmSummaryDto,
};

use super::ApiTags;
use super::enums::{ColorName, Severity, VlmStatus};
use crate::auth::Caller;
use crate::http::body::JsonBody;
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, QueryErrors, ReadErrors};
use crate::state::AppState;

/// How long a snapshot link stays valid.
const SNAPSHOT_URL_TTL: Duration = Duration::from_secs(3_600);

pub struct InsightsApi {
    pub state: AppState,
}

impl InsightsApi {
    async fn insight(&self, caller: &Caller, id: Uuid) -> Result<Insight, Error> {
        let found = self
            .state
            .store
            .get_insight(caller.user_id, InsightId(id))
            .await?;
        caller.reachable(found, |i| i.device_id, "insight")
    }

    /// The names of the devices of `insights` (absent for deleted ones).
    async fn device_names(
        &self,
        user: UserId,
        devices: Vec<DeviceId>,
    ) -> Result<HashMap<DeviceId, String>, Error> {
        let mut names = HashMap::new();
        for d in devices {
            if names.contains_key(&d) {
                continue;
            }
            if let Some(device) = self.state.store.get_device(user, d).await? {
                names.insert(d, device.name);
            }
        }
        Ok(names)
    }

    async fn dtos(&self, user: UserId, page: Page<Insight>) -> Result<Page<InsightDto>, Error> {
        let names = self
            .device_names(user, page.items.iter().map(|i| i.device_id).collect())
            .await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|i| InsightDto::new(i, names.get(&i.device_id).cloned(), false))
                .collect(),
            total: page.total,
            request: page.request,
        })
    }

    /// Attribute data is a level_02 feature: the device asked about must be
    /// on level_02, or (no device named) one of the caller's devices must.
    async fn require_attributes_plan(
        &self,
        caller: &Caller,
        device: Option<DeviceId>,
    ) -> Result<(), Error> {
        if let Some(d) = device {
            return match self.state.store.get_device(caller.user_id, d).await? {
                Some(dev) if dev.plan == Plan::Level02 => Ok(()),
                Some(_) => Err(plan_refused()),
                None => Err(Error::NotFound("device")),
            };
        }
        let mut page = PageRequest {
            page: 1,
            limit: 100,
        };
        loop {
            let devices = self.state.store.list_devices(caller.user_id, page).await?;
            if devices.items.iter().any(|d| d.plan == Plan::Level02) {
                return Ok(());
            }
            if u64::from(page.page) * u64::from(page.limit) >= devices.total {
                return Err(plan_refused());
            }
            page.page += 1;
        }
    }

    /// Records made on `device`: readable while it is on level_02, and
    /// after it was deleted (as they were made); 403 once it moved to
    /// level_01.
    async fn require_plan_of_records(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<(), Error> {
        match self.state.store.get_device(caller.user_id, device).await? {
            Some(d) if d.plan != Plan::Level02 => Err(plan_refused()),
            _ => Ok(()),
        }
    }

    async fn attribute(&self, caller: &Caller, id: Uuid) -> Result<AttributeRecord, Error> {
        let found = self
            .state
            .store
            .get_attribute(caller.user_id, AttributeId(id))
            .await?;
        caller.reachable(found, |a| a.device_id, "attribute")
    }
}

/// 403 `PLAN_REQUIRED` for attribute data without a level_02 device.
fn plan_refused() -> Error {
    Error::PlanRequired(
        "attribute data needs a device on plan level_02 (with the `attributes` capability \
         enabled on its analysis)"
            .into(),
    )
}

/// The attribute list filters shared by the attribute endpoints.
#[allow(clippy::too_many_arguments)]
fn attribute_filter(
    caller: &Caller,
    device_id: Option<Uuid>,
    scene_id: Option<Uuid>,
    task_id: Option<Uuid>,
    track_id: Option<String>,
    upper: Option<ColorName>,
    lower: Option<ColorName>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<AttributeFilter, Error> {
    Ok(AttributeFilter {
        device: caller.device_filter(device_id)?,
        scene: scene_id.map(SceneId),
        task: task_id.map(panoptes_shared::ids::TaskId),
        track: track_id,
        upper_color: upper.map(Into::into),
        lower_color: lower.map(Into::into),
        range: TimeRange::new(start, end)?,
    })
}

fn attribute_page(page: Page<AttributeRecord>) -> Page<AttributeDto> {
    Page {
        items: page.items.iter().map(AttributeDto::from).collect(),
        total: page.total,
        request: page.request,
    }
}

#[OpenApi(prefix_path = "/api/v1/analysis", tag = "ApiTags::Insights")]
impl InsightsApi {
    /// Insights, newest firing first: the VLM's reading of each alert fired
    /// on a level_02 device whose analysis enabled `vlm`. `q` matches whole
    /// words (case ignored, no stemming) in the VLM summary and in the
    /// clothing colours of the people in view (e.g. `red`). Scope
    /// `analytics:read`.
    #[oai(path = "/insights", method = "get", operation_id = "listInsights")]
    #[allow(clippy::too_many_arguments)]
    async fn list_insights(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        /// Words that must all appear (1-200 characters).
        #[oai(validator(min_length = 1, max_length = 200))]
        q: Query<Option<String>>,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(name = "sceneId")] scene_id: Query<Option<Uuid>>,
        severity: Query<Option<Severity>>,
        #[oai(name = "vlmStatus")] vlm_status: Query<Option<VlmStatus>>,
        /// Alerts fired at or after (ISO 8601).
        #[oai(name = "startDate")]
        start_date: Query<Option<DateTime<Utc>>>,
        /// Alerts fired at or before (ISO 8601).
        #[oai(name = "endDate")]
        end_date: Query<Option<DateTime<Utc>>>,
        /// Only insights with (`true`) or without (`false`) a VLM summary.
        #[oai(name = "hasVlmSummary")]
        has_vlm_summary: Query<Option<bool>>,
        /// Only insights with (`true`) or without (`false`) attributes of
        /// the people in view.
        #[oai(name = "hasAttributes")]
        has_attributes: Query<Option<bool>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<InsightDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let page = super::page(page.0, limit.0)?;
        let filter = InsightFilter {
            q: q.0,
            any_word: false,
            device: caller.device_filter(device_id.0)?,
            scene: scene_id.0.map(SceneId),
            severity: severity.0.map(Into::into),
            vlm_status: vlm_status.0.map(Into::into),
            range: TimeRange::new(start_date.0, end_date.0)?,
            has_vlm_summary: has_vlm_summary.0,
            has_attributes: has_attributes.0,
        };
        let found = self
            .state
            .store
            .list_insights(caller.user_id, &filter, page)
            .await?;
        Ok(Reply::page(
            "Insights",
            self.dtos(caller.user_id, found).await?,
        ))
    }

    /// The VLM summaries, newest firing first: the completed insights'
    /// summaries as a feed. Scope `analytics:read`.
    #[oai(
        path = "/insights/vlm-summaries",
        method = "get",
        operation_id = "listVlmSummaries"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_vlm_summaries(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(name = "sceneId")] scene_id: Query<Option<Uuid>>,
        severity: Query<Option<Severity>>,
        #[oai(name = "startDate")] start_date: Query<Option<DateTime<Utc>>>,
        #[oai(name = "endDate")] end_date: Query<Option<DateTime<Utc>>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<VlmSummaryDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let page = super::page(page.0, limit.0)?;
        let filter = InsightFilter {
            device: caller.device_filter(device_id.0)?,
            scene: scene_id.0.map(SceneId),
            severity: severity.0.map(Into::into),
            range: TimeRange::new(start_date.0, end_date.0)?,
            has_vlm_summary: Some(true),
            ..InsightFilter::default()
        };
        let found = self
            .state
            .store
            .list_insights(caller.user_id, &filter, page)
            .await?;
        let names = self
            .device_names(
                caller.user_id,
                found.items.iter().map(|i| i.device_id).collect(),
            )
            .await?;
        let items = found
            .items
            .iter()
            .map(|i| VlmSummaryDto {
                insight_id: i.id.0,
                alert_id: i.alert_id.0,
                device_id: i.device_id.0,
                device_name: names.get(&i.device_id).cloned(),
                scene_id: i.scene_id.0,
                severity: i.severity.into(),
                summary: i.vlm_summary.clone().unwrap_or_default(),
                model: i.model.clone(),
                total_tokens: i.total_tokens,
                triggered_at: i.triggered_at,
                completed_at: i.completed_at,
            })
            .collect();
        Ok(Reply::page(
            "VLM summaries",
            Page {
                items,
                total: found.total,
                request: found.request,
            },
        ))
    }

    /// Attribute records counted per clothing colour (level_02). Scope
    /// `analytics:read`.
    #[oai(
        path = "/insights/attributes/stats",
        method = "get",
        operation_id = "getAttributeStats"
    )]
    async fn attribute_stats(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(name = "sceneId")] scene_id: Query<Option<Uuid>>,
        #[oai(name = "startDate")] start_date: Query<Option<DateTime<Utc>>>,
        #[oai(name = "endDate")] end_date: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<Reply<AttributeStatsDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let filter = attribute_filter(
            caller,
            device_id.0,
            scene_id.0,
            None,
            None,
            None,
            None,
            start_date.0,
            end_date.0,
        )?;
        self.require_attributes_plan(caller, filter.device).await?;
        let stats = self
            .state
            .store
            .attribute_stats(caller.user_id, &filter)
            .await?;
        Ok(Reply::new("Attribute statistics", stats.into()))
    }

    /// Ask about your insights in plain language. With a VLM provider
    /// configured, the model reads the question as filters (severity,
    /// status, camera, time range, clothing colours) plus words to match,
    /// all shown back in `interpretation`; without one (or when it fails),
    /// the question's words are matched against summaries and attribute
    /// words, any of them sufficing. Scope `analytics:read`.
    #[oai(
        path = "/insights/search",
        method = "post",
        operation_id = "searchInsights"
    )]
    async fn search(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        body: JsonBody<SearchRequest>,
    ) -> ApiResult<Reply<SearchResultDto>, QueryErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let body = body.parse()?;
        let page = super::page(body.page, body.limit)?;
        let result = search::run(self, caller, &body.query, page).await?;
        Ok(Reply::new("Search results", result))
    }

    /// One insight, with the VLM's structured answer. Scope `analytics:read`.
    #[oai(path = "/insights/:id", method = "get", operation_id = "getInsight")]
    async fn get_insight(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<InsightDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let insight = self.insight(caller, id.0).await?;
        let name = self
            .state
            .store
            .get_device(caller.user_id, insight.device_id)
            .await?
            .map(|d| d.name);
        Ok(Reply::new("Insight", InsightDto::new(&insight, name, true)))
    }

    /// The frames the VLM was shown, as presigned links (empty when the
    /// alert had no snapshot). Scope `analytics:read`.
    #[oai(
        path = "/insights/:id/snapshots",
        method = "get",
        operation_id = "listInsightSnapshots"
    )]
    async fn insight_snapshots(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<Vec<InsightSnapshotDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let insight = self.insight(caller, id.0).await?;
        let mut out = Vec::new();
        if let Some(key) = &insight.snapshot_key {
            let url = self
                .state
                .blobs
                .store
                .presign_get(key, SNAPSHOT_URL_TTL)
                .await?;
            out.push(InsightSnapshotDto {
                url,
                source: "alert".into(),
                taken_at: insight.triggered_at,
            });
        }
        Ok(Reply::new("Insight snapshots", out))
    }

    /// The attributes of the people in view when the insight's alert fired:
    /// its task's records from the minute before (level_02). Scope
    /// `analytics:read`.
    #[oai(
        path = "/insights/:id/attributes",
        method = "get",
        operation_id = "listInsightAttributes"
    )]
    async fn insight_attributes(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<AttributeDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let page = super::page(page.0, limit.0)?;
        let insight = self.insight(caller, id.0).await?;
        self.require_plan_of_records(caller, insight.device_id)
            .await?;
        let records = self
            .state
            .store
            .list_attributes(caller.user_id, &attributes_in_view(&insight), page)
            .await?;
        Ok(Reply::page("Insight attributes", attribute_page(records)))
    }

    /// Person attributes, newest observation first (level_02): one record
    /// per description of a tracked person (when first seen, then at most
    /// every refresh interval). Scope `analytics:read`.
    #[oai(path = "/attributes", method = "get", operation_id = "listAttributes")]
    #[allow(clippy::too_many_arguments)]
    async fn list_attributes(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(name = "sceneId")] scene_id: Query<Option<Uuid>>,
        /// The analysis task.
        #[oai(name = "taskId")]
        task_id: Query<Option<Uuid>>,
        /// The track (`t<n>`, as on the live stream).
        #[oai(name = "trackId", validator(min_length = 1, max_length = 32))]
        track_id: Query<Option<String>>,
        #[oai(name = "upperColor")] upper_color: Query<Option<ColorName>>,
        #[oai(name = "lowerColor")] lower_color: Query<Option<ColorName>>,
        /// Observed at or after (ISO 8601).
        #[oai(name = "startDate")]
        start_date: Query<Option<DateTime<Utc>>>,
        /// Observed at or before (ISO 8601).
        #[oai(name = "endDate")]
        end_date: Query<Option<DateTime<Utc>>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<AttributeDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let page = super::page(page.0, limit.0)?;
        let filter = attribute_filter(
            caller,
            device_id.0,
            scene_id.0,
            task_id.0,
            track_id.0,
            upper_color.0,
            lower_color.0,
            start_date.0,
            end_date.0,
        )?;
        self.require_attributes_plan(caller, filter.device).await?;
        let records = self
            .state
            .store
            .list_attributes(caller.user_id, &filter, page)
            .await?;
        Ok(Reply::page("Attributes", attribute_page(records)))
    }

    /// One attribute record (level_02). Scope `analytics:read`.
    #[oai(
        path = "/attributes/:id",
        method = "get",
        operation_id = "getAttribute"
    )]
    async fn get_attribute(
        &self,
        auth: crate::auth::schemes::SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<AttributeDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AnalyticsRead)?;
        let record = self.attribute(caller, id.0).await?;
        self.require_plan_of_records(caller, record.device_id)
            .await?;
        Ok(Reply::new("Attribute", AttributeDto::from(&record)))
    }
}

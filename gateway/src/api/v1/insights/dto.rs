//! Insight and attribute bodies.

use chrono::{DateTime, Utc};
use panoptes_shared::domain::attribute::{AttributeRecord, AttributeStats};
use panoptes_shared::domain::insight::Insight;
use panoptes_shared::insights::SearchPlan;
use poem_openapi::Object;
use poem_openapi::types::Any;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::{ColorName, Severity, VlmStatus};

/// One insight: the VLM's reading of one alert's snapshot.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InsightDto {
    pub id: Uuid,
    /// The alert it reads (one insight per alert).
    pub alert_id: Uuid,
    pub device_id: Uuid,
    /// The device's name; absent when the device has been deleted.
    pub device_name: Option<String>,
    pub scene_id: Uuid,
    /// The analysis task the alert fired in.
    pub task_id: Option<Uuid>,
    /// The alert's.
    pub severity: Severity,
    pub vlm_status: VlmStatus,
    /// The VLM's summary (`completed` only).
    pub vlm_summary: Option<String>,
    /// The VLM's whole structured answer (`completed` only): `summary`,
    /// `peopleInQueue`, `queueCondition`, `observations`,
    /// `recommendedAction`, and `people` (each visible person's
    /// `zone`, `upperClothing`, `lowerClothing`, `carrying`, `activity`: the
    /// VLM's richer attributes). Detail only, not in lists.
    pub vlm_structured_result: Option<Any<serde_json::Value>>,
    /// Why there is no summary (`failed` only).
    pub failure_reason: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Tokens the answer cost (metered as `vlmTokens`).
    pub total_tokens: Option<u64>,
    /// VLM requests made for it.
    pub attempts: u32,
    /// Whether attributes of the people in view were linked to it.
    pub has_attributes: bool,
    /// Attribute records of the people in view (`/insights/{id}/attributes`).
    pub attribute_count: u64,
    /// When the alert fired.
    pub triggered_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it became `completed` or `failed`.
    pub completed_at: Option<DateTime<Utc>>,
}

impl InsightDto {
    pub fn new(i: &Insight, device_name: Option<String>, detail: bool) -> Self {
        Self {
            id: i.id.0,
            alert_id: i.alert_id.0,
            device_id: i.device_id.0,
            device_name,
            scene_id: i.scene_id.0,
            task_id: i.task_id.map(|t| t.0),
            severity: i.severity.into(),
            vlm_status: i.vlm_status.into(),
            vlm_summary: i.vlm_summary.clone(),
            vlm_structured_result: if detail {
                i.vlm_structured_result.clone().map(Any)
            } else {
                None
            },
            failure_reason: i.failure_reason.clone(),
            model: i.model.clone(),
            prompt_tokens: i.prompt_tokens,
            completion_tokens: i.completion_tokens,
            total_tokens: i.total_tokens,
            attempts: i.attempts,
            has_attributes: i.attribute_count > 0,
            attribute_count: i.attribute_count,
            triggered_at: i.triggered_at,
            created_at: i.created_at,
            updated_at: i.updated_at,
            completed_at: i.completed_at,
        }
    }
}

/// One entry of the VLM summary feed.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct VlmSummaryDto {
    pub insight_id: Uuid,
    pub alert_id: Uuid,
    pub device_id: Uuid,
    pub device_name: Option<String>,
    pub scene_id: Uuid,
    pub severity: Severity,
    pub summary: String,
    pub model: Option<String>,
    pub total_tokens: Option<u64>,
    pub triggered_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A snapshot of an insight: the frame the VLM was shown.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct InsightSnapshotDto {
    /// A presigned link, valid for an hour.
    pub url: String,
    /// `alert`: the latest stored frame of the device when the alert fired.
    pub source: String,
    /// When the alert fired.
    pub taken_at: DateTime<Utc>,
}

/// A box in fractions of the frame (0-1, origin top-left).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct BoxDto {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// One description of one tracked person.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AttributeDto {
    pub id: Uuid,
    pub device_id: Uuid,
    pub scene_id: Uuid,
    pub task_id: Uuid,
    /// The track (`t<n>`), as on the live stream.
    pub track_id: String,
    pub upper_color: ColorName,
    pub lower_color: ColorName,
    /// Share (0-1) of the upper region's pixels of that colour.
    pub upper_color_share: f32,
    /// Share (0-1) of the lower region's pixels of that colour.
    pub lower_color_share: f32,
    /// The detector's confidence in the person.
    pub confidence: f32,
    pub bounding_box: BoxDto,
    /// The frame's capture time.
    pub observed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<&AttributeRecord> for AttributeDto {
    fn from(a: &AttributeRecord) -> Self {
        Self {
            id: a.id.0,
            device_id: a.device_id.0,
            scene_id: a.scene_id.0,
            task_id: a.task_id.0,
            track_id: a.track_id.clone(),
            upper_color: a.attributes.upper_color.into(),
            lower_color: a.attributes.lower_color.into(),
            upper_color_share: a.attributes.upper_color_share,
            lower_color_share: a.attributes.lower_color_share,
            confidence: a.confidence,
            bounding_box: BoxDto {
                x: a.bounding_box.x,
                y: a.bounding_box.y,
                width: a.bounding_box.width,
                height: a.bounding_box.height,
            },
            observed_at: a.observed_at,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ColorCountDto {
    pub color: ColorName,
    pub count: u64,
}

/// Attribute records counted per colour.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AttributeStatsDto {
    /// Attribute records.
    pub total: u64,
    /// Distinct tracks (people) described.
    pub tracks: u64,
    /// Upper-body colours, most frequent first.
    pub upper_colors: Vec<ColorCountDto>,
    /// Lower-body colours, most frequent first.
    pub lower_colors: Vec<ColorCountDto>,
}

impl From<AttributeStats> for AttributeStatsDto {
    fn from(s: AttributeStats) -> Self {
        let counts = |v: Vec<(panoptes_shared::domain::attribute::ColorName, u64)>| {
            v.into_iter()
                .map(|(c, n)| ColorCountDto {
                    color: c.into(),
                    count: n,
                })
                .collect()
        };
        Self {
            total: s.total,
            tracks: s.tracks,
            upper_colors: counts(s.upper_colors),
            lower_colors: counts(s.lower_colors),
        }
    }
}

/// A question about your insights, in plain language.
#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct SearchRequest {
    /// For example "critical alerts yesterday where someone in a red top
    /// waited at the counter". 1-500 characters.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub query: String,
    /// Page of results (default 1).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub page: Option<u32>,
    /// Results per page, 1-100 (default 20).
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    pub limit: Option<u32>,
}

/// The filters a question was read as.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SearchFiltersDto {
    pub device_id: Option<Uuid>,
    /// The camera the question named, as written.
    pub device_name: Option<String>,
    pub severity: Option<Severity>,
    pub vlm_status: Option<VlmStatus>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub has_attributes: Option<bool>,
    pub upper_color: Option<ColorName>,
    pub lower_color: Option<ColorName>,
}

/// How the question was read.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SearchInterpretationDto {
    /// `llm`: the configured model turned the question into filters and
    /// terms; `fulltext`: the question's words were searched as they are
    /// (no model configured, or it failed: see `fallbackReason`).
    pub mode: String,
    /// Words matched against summaries and attribute words.
    pub terms: Vec<String>,
    /// `all` terms must match (`llm`), or `any` of them (`fulltext`).
    pub term_match: String,
    pub filters: SearchFiltersDto,
    /// The model that read the question (`llm`).
    pub model: Option<String>,
    /// Why the model was not used, when one is configured.
    pub fallback_reason: Option<String>,
}

impl SearchInterpretationDto {
    pub fn new(
        plan: &SearchPlan,
        device_id: Option<Uuid>,
        model: Option<String>,
        fallback_reason: Option<String>,
    ) -> Self {
        Self {
            mode: if model.is_some() { "llm" } else { "fulltext" }.into(),
            terms: plan.terms.clone(),
            term_match: if plan.any_term { "any" } else { "all" }.into(),
            filters: SearchFiltersDto {
                device_id,
                device_name: plan.device_name.clone(),
                severity: plan.severity.map(Into::into),
                vlm_status: plan.vlm_status.map(Into::into),
                start_date: plan.start,
                end_date: plan.end,
                has_attributes: plan.has_attributes,
                upper_color: plan.upper_color.map(Into::into),
                lower_color: plan.lower_color.map(Into::into),
            },
            model,
            fallback_reason,
        }
    }
}

/// The answer to a search: how it was read, and the insights found.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SearchResultDto {
    /// The question, as asked.
    pub query: String,
    pub interpretation: SearchInterpretationDto,
    /// Newest firing first.
    pub insights: Vec<InsightDto>,
    /// Insights matching, across all pages.
    pub total: u64,
    pub page: u32,
    pub limit: u32,
}

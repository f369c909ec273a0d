//! Billing dashboard bodies: the four metered features by their names
//! (`analysisSeconds`, `alertCount`, `attributeCount`, `vlmTokens`).

use chrono::{DateTime, NaiveDate, Utc};
use panoptes_shared::domain::billing::{Change, Projection, Totals};
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use crate::api::v1::enums::Plan;
use crate::api::v1::usage::FeatureUsageDto;

/// A metered feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub enum FeatureName {
    AnalysisSeconds,
    AlertCount,
    AttributeCount,
    VlmTokens,
}

impl From<Feature> for FeatureName {
    fn from(f: Feature) -> Self {
        match f {
            Feature::AnalysisSeconds => Self::AnalysisSeconds,
            Feature::AlertCount => Self::AlertCount,
            Feature::AttributeCount => Self::AttributeCount,
            Feature::VlmTokens => Self::VlmTokens,
        }
    }
}

impl From<FeatureName> for Feature {
    fn from(f: FeatureName) -> Self {
        match f {
            FeatureName::AnalysisSeconds => Self::AnalysisSeconds,
            FeatureName::AlertCount => Self::AlertCount,
            FeatureName::AttributeCount => Self::AttributeCount,
            FeatureName::VlmTokens => Self::VlmTokens,
        }
    }
}

/// One number per feature.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase")]
pub struct FeatureTotalsDto {
    pub analysis_seconds: u64,
    pub alert_count: u64,
    pub attribute_count: u64,
    pub vlm_tokens: u64,
}

impl From<&Totals> for FeatureTotalsDto {
    fn from(t: &Totals) -> Self {
        let of = |f| t.get(&f).copied().unwrap_or(0);
        Self {
            analysis_seconds: of(Feature::AnalysisSeconds),
            alert_count: of(Feature::AlertCount),
            attribute_count: of(Feature::AttributeCount),
            vlm_tokens: of(Feature::VlmTokens),
        }
    }
}

/// This month's quota state over all your devices (UserQuotaDto).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserQuotaDto {
    pub user_id: Uuid,
    /// `YYYY-MM` (UTC).
    pub period: String,
    /// When usage resets (the 1st, 00:00 UTC); nothing carries over.
    pub resets_at: DateTime<Utc>,
    /// Devices whose allowances make up the limits.
    pub devices: u64,
    pub analysis_seconds: FeatureUsageDto,
    pub alert_count: FeatureUsageDto,
    pub attribute_count: FeatureUsageDto,
    pub vlm_tokens: FeatureUsageDto,
}

/// Limits and usage this month, flat (the legacy shape).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LegacyQuotaDto {
    pub period: String,
    pub limits: FeatureTotalsDto,
    pub usage: FeatureTotalsDto,
}

/// One feature's share of a period's usage.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UsageByTypeDto {
    #[oai(rename = "type")]
    pub kind: FeatureName,
    pub used: u64,
    /// This month's allowance over your current devices.
    pub limit: u64,
    /// `used` as a percent of `limit` (100 when there is no allowance and
    /// something was used, 0 when neither).
    pub percentage: f64,
}

/// A billing period's usage.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SummaryDto {
    pub billing_period: String,
    pub analysis_seconds: u64,
    pub alert_count: u64,
    pub attribute_count: u64,
    pub vlm_tokens: u64,
    pub usage_by_type: Vec<UsageByTypeDto>,
    /// Devices with any usage in the period (deleted ones included).
    pub devices_with_usage: u64,
}

/// One device's usage in a billing period.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeviceSummaryDto {
    pub device_id: Uuid,
    /// Absent once the device is deleted (its usage stays).
    pub device_name: Option<String>,
    pub plan: Option<Plan>,
    pub deleted: bool,
    pub analysis_seconds: u64,
    pub alert_count: u64,
    pub attribute_count: u64,
    pub vlm_tokens: u64,
}

/// One ledger event.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UsageEventDto {
    /// Derived from the action metered (`analysis:<taskId>:<minute>`,
    /// `alert:<alertId>`, ...): the same action is never counted twice.
    pub id: String,
    pub device_id: Uuid,
    pub feature: FeatureName,
    pub quantity: u64,
    pub occurred_at: DateTime<Utc>,
    /// `YYYY-MM` it counts in.
    pub billing_period: String,
    /// What was metered (task and interval, alert, request).
    pub source: serde_json::Value,
}

impl From<&UsageEvent> for UsageEventDto {
    fn from(e: &UsageEvent) -> Self {
        Self {
            id: e.id.clone(),
            device_id: e.device_id.0,
            feature: e.feature.into(),
            quantity: e.quantity,
            occurred_at: e.occurred_at,
            billing_period: e.period(),
            source: e.source.clone(),
        }
    }
}

/// Trend bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum GranularityDto {
    Day,
    Week,
    Month,
}

/// One bucket of a trend.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct TrendPointDto {
    /// First day of the bucket (weeks start on Monday, months on the 1st).
    pub start: NaiveDate,
    pub analysis_seconds: u64,
    pub alert_count: u64,
    pub attribute_count: u64,
    pub vlm_tokens: u64,
}

impl TrendPointDto {
    pub fn new(start: NaiveDate, t: &Totals) -> Self {
        let f = FeatureTotalsDto::from(t);
        Self {
            start,
            analysis_seconds: f.analysis_seconds,
            alert_count: f.alert_count,
            attribute_count: f.attribute_count,
            vlm_tokens: f.vlm_tokens,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TrendDto {
    pub granularity: GranularityDto,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub device_id: Option<Uuid>,
    /// Every bucket of the range, oldest first (empty ones are zeros).
    pub points: Vec<TrendPointDto>,
}

/// The days one side of a comparison covers.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ComparedPeriodDto {
    pub billing_period: String,
    /// First and last day counted (UTC, inclusive).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub usage: FeatureTotalsDto,
}

/// One feature, this period against the previous.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ChangeDto {
    pub feature: FeatureName,
    pub current: u64,
    pub previous: u64,
    pub difference: i64,
    /// Percent change; absent when the previous period had none.
    pub percent: Option<f64>,
}

impl ChangeDto {
    pub fn new(f: Feature, c: &Change) -> Self {
        Self {
            feature: f.into(),
            current: c.current,
            previous: c.previous,
            difference: c.difference,
            percent: c.percent,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ComparisonDto {
    /// How the two sides were chosen.
    pub method: String,
    pub current: ComparedPeriodDto,
    pub previous: ComparedPeriodDto,
    pub changes: Vec<ChangeDto>,
}

/// One feature's month-end projection.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ProjectionDto {
    pub feature: FeatureName,
    pub used: u64,
    pub projected: u64,
    pub limit: u64,
    pub projected_exceeded: bool,
    /// The day the limit would be reached at this rate (absent: not within
    /// the month, or reached already).
    pub exhausted_on: Option<NaiveDate>,
}

impl ProjectionDto {
    pub fn new(f: Feature, p: &Projection) -> Self {
        Self {
            feature: f.into(),
            used: p.used,
            projected: p.projected,
            limit: p.limit,
            projected_exceeded: p.projected_exceeded,
            exhausted_on: p.exhausted_on,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ForecastDto {
    pub billing_period: String,
    /// How the projection is made.
    pub method: String,
    pub days_elapsed: u32,
    pub days_in_month: u32,
    pub features: Vec<ProjectionDto>,
}

/// What a quota change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ChangeKindDto {
    /// Extra allowance for one month (admin).
    Grant,
    /// No monthly limit on or off (admin).
    Unlimited,
    /// Analysis disabled or enabled (admin or owner).
    Disabled,
    /// A cap below the plan set or removed (owner).
    Cap,
}

/// One row of the quota ledger: what changed, who, when and why.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct QuotaChangeDto {
    pub id: Uuid,
    pub device_id: Uuid,
    /// `YYYY-MM` a grant applies to, or in which the change was made.
    pub billing_period: String,
    pub kind: ChangeKindDto,
    pub feature: Option<FeatureName>,
    /// Grants: the extra allowance; caps: the new cap (absent: back to the plan).
    pub amount: Option<u64>,
    /// Unlimited / disabled: the new value.
    pub value: Option<bool>,
    pub reason: String,
    /// `admin:<userId>`, `user:<userId>` or `key:<keyId>`.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl From<&panoptes_shared::domain::quota::QuotaChange> for QuotaChangeDto {
    fn from(c: &panoptes_shared::domain::quota::QuotaChange) -> Self {
        use panoptes_shared::domain::quota::ChangeKind;
        Self {
            id: c.id,
            device_id: c.device_id.0,
            billing_period: c.period.clone(),
            kind: match c.kind {
                ChangeKind::Grant => ChangeKindDto::Grant,
                ChangeKind::Unlimited => ChangeKindDto::Unlimited,
                ChangeKind::Disabled => ChangeKindDto::Disabled,
                ChangeKind::Cap => ChangeKindDto::Cap,
            },
            feature: c.feature.map(Into::into),
            amount: c.amount,
            value: c.flag,
            reason: c.reason.clone(),
            actor: c.actor.clone(),
            created_at: c.created_at,
        }
    }
}

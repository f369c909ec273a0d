//! `/api/v1/usage`: what a user and each device used of their monthly
//! allowance in a billing period, read from the usage ledger's monthly
//! aggregates. Usage of deleted devices still counts in the user's totals;
//! limits are those of the user's current devices (plan, capped per device).

use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::device::Device;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::{PlanLimits, billing_period, parse_period};
use panoptes_shared::domain::usage::Feature;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::metering::{self, unmetered_analysis_seconds};
use panoptes_shared::ports::UsageTotals;
use poem_openapi::param::{Path, Query};
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::enums::Plan;
use crate::auth::Caller;
use crate::auth::schemes::SessionOrKey;
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, ReadErrors};
use crate::state::AppState;

pub struct UsageApi {
    pub state: AppState,
}

/// One feature's use of its allowance.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FeatureUsageDto {
    pub used: u64,
    /// The allowance this period (0: the plan has none).
    pub limit: u64,
    /// `limit - used`, never below 0.
    pub balance: u64,
    /// `used >= limit` (a feature with no allowance is exceeded at once).
    pub is_exceeded: bool,
}

impl FeatureUsageDto {
    pub fn of(used: u64, limit: u64) -> Self {
        Self {
            used,
            limit,
            balance: limit.saturating_sub(used),
            is_exceeded: used >= limit,
        }
    }
}

/// A user's usage in a billing period, per feature, over all their devices.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserUsageDto {
    pub user_id: Uuid,
    /// `YYYY-MM` (UTC).
    pub period: String,
    /// Analysis seconds.
    pub analysis: FeatureUsageDto,
    /// Alerts fired.
    pub alert: FeatureUsageDto,
    /// Person attributes computed.
    pub attribute: FeatureUsageDto,
    /// VLM tokens.
    pub vlm: FeatureUsageDto,
}

/// One device's usage in a billing period.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeviceUsageDto {
    pub device_id: Uuid,
    /// `YYYY-MM` (UTC).
    pub period: String,
    pub plan: Plan,
    /// Analysis seconds allowed, used and left this period.
    pub quota_seconds: u64,
    pub used_seconds: u64,
    pub remaining_seconds: u64,
    pub alert_quota: FeatureUsageDto,
    pub attribute_quota: FeatureUsageDto,
    pub vlm_quota: FeatureUsageDto,
    /// Analysis cannot start on a disabled device.
    pub is_disabled: bool,
    pub is_unlimited: bool,
    /// Analysis seconds used, percent of `quotaSeconds` (100 when there is none).
    pub usage_percentage: f64,
}

fn used(totals: &UsageTotals, f: Feature) -> u64 {
    totals.get(&f).copied().unwrap_or(0)
}

/// The period parameter `name`, checked (400 naming it), or the current one.
pub(crate) fn checked_period_named(name: &str, raw: Option<String>) -> Result<String, Error> {
    match raw {
        Some(p) => parse_period(p.trim()).map_err(|m| Error::validation(name, m)),
        None => Ok(billing_period(panoptes_shared::time::now()).0),
    }
}

fn checked_period(raw: Option<String>) -> Result<String, Error> {
    checked_period_named("period", raw)
}

/// Every device of the caller (a device-bound key: its own).
pub(crate) async fn caller_devices(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<Device>, Error> {
    let mut all = user_devices(state, caller.user_id).await?;
    all.retain(|d| caller.may_reach(d.id));
    Ok(all)
}

/// Every device of `user`, page by page.
pub(crate) async fn user_devices(state: &AppState, user: UserId) -> Result<Vec<Device>, Error> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let batch = state
            .store
            .list_devices(user, PageRequest::parse(Some(page), Some(100))?)
            .await?;
        let n = batch.items.len();
        out.extend(batch.items);
        if n < 100 {
            return Ok(out);
        }
        page += 1;
    }
}

/// The caller's allowance in `period`: the sum over their devices (plan,
/// caps, grants; an unlimited device adds its plan's allowance).
pub(crate) async fn allowance(
    state: &AppState,
    devices: &[Device],
    period: &str,
) -> Result<PlanLimits, Error> {
    let mut sum = PlanLimits::ZERO;
    for d in devices {
        sum = sum.plus(
            metering::allowance(state.store.as_ref(), d, period)
                .await?
                .limits,
        );
    }
    Ok(sum)
}

/// Analysis seconds of `device` in `period`: for the current period the
/// running task's not-yet-metered time too.
async fn analysis_used(
    state: &AppState,
    device: &Device,
    period: &str,
    totals: &UsageTotals,
) -> Result<u64, Error> {
    let now = panoptes_shared::time::now();
    let metered = used(totals, Feature::AnalysisSeconds);
    if billing_period(now).0 == period {
        Ok(metered
            + unmetered_analysis_seconds(state.store.as_ref(), device.user_id, device.id, now)
                .await?)
    } else {
        Ok(metered)
    }
}

/// `user`'s usage in `period` over `devices` (their allowances summed), or
/// over one device (`only`: a device-bound key).
pub(crate) async fn user_usage(
    state: &AppState,
    user: UserId,
    devices: &[Device],
    only: Option<DeviceId>,
    period: String,
) -> Result<UserUsageDto, Error> {
    let limits = allowance(state, devices, &period).await?;
    let totals = state.store.usage_totals(user, only, &period).await?;
    // The running tasks' time not metered yet.
    let mut analysis = used(&totals, Feature::AnalysisSeconds);
    let now = panoptes_shared::time::now();
    if billing_period(now).0 == period {
        for d in devices {
            analysis += unmetered_analysis_seconds(state.store.as_ref(), user, d.id, now).await?;
        }
    }
    Ok(UserUsageDto {
        user_id: user.0,
        period,
        analysis: FeatureUsageDto::of(analysis, limits.analysis_seconds),
        alert: FeatureUsageDto::of(used(&totals, Feature::AlertCount), limits.alert_count),
        attribute: FeatureUsageDto::of(
            used(&totals, Feature::AttributeCount),
            limits.attribute_count,
        ),
        vlm: FeatureUsageDto::of(used(&totals, Feature::VlmTokens), limits.vlm_tokens),
    })
}

/// `device`'s usage in `period` against its allowance.
pub(crate) async fn device_usage(
    state: &AppState,
    device: &Device,
    period: String,
) -> Result<DeviceUsageDto, Error> {
    let totals = state
        .store
        .usage_totals(device.user_id, Some(device.id), &period)
        .await?;
    let allowed = metering::allowance(state.store.as_ref(), device, &period).await?;
    let limits = allowed.limits;
    let used_seconds = analysis_used(state, device, &period, &totals).await?;
    let quota_seconds = limits.analysis_seconds;
    Ok(DeviceUsageDto {
        device_id: device.id.0,
        period,
        plan: device.plan.into(),
        quota_seconds,
        used_seconds,
        remaining_seconds: quota_seconds.saturating_sub(used_seconds),
        alert_quota: FeatureUsageDto::of(used(&totals, Feature::AlertCount), limits.alert_count),
        attribute_quota: FeatureUsageDto::of(
            used(&totals, Feature::AttributeCount),
            limits.attribute_count,
        ),
        vlm_quota: FeatureUsageDto::of(used(&totals, Feature::VlmTokens), limits.vlm_tokens),
        is_disabled: device.quota.disabled,
        is_unlimited: allowed.unlimited,
        usage_percentage: if quota_seconds == 0 {
            100.0
        } else {
            used_seconds as f64 * 100.0 / quota_seconds as f64
        },
    })
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Usage")]
impl UsageApi {
    /// Usage of every feature over all your devices in a billing period
    /// (`period=YYYY-MM`, default the current one), against the sum of your
    /// devices' allowances. Scope `billing:read`.
    #[oai(
        path = "/usage/user/summary",
        method = "get",
        operation_id = "getUserUsageSummary"
    )]
    async fn user_summary(
        &self,
        auth: SessionOrKey,
        /// `YYYY-MM` (UTC); default the current period.
        period: Query<Option<String>>,
    ) -> ApiResult<Reply<UserUsageDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let period = checked_period(period.0)?;
        let devices = caller_devices(&self.state, caller).await?;
        Ok(Reply::new(
            "Usage summary",
            user_usage(
                &self.state,
                caller.user_id,
                &devices,
                caller.device_binding(),
                period,
            )
            .await?,
        ))
    }

    /// One device's usage in a billing period (`period=YYYY-MM`, default the
    /// current one) against its allowance. 404 for a device that is not
    /// yours. Scope `billing:read` or `device:read`.
    #[oai(
        path = "/usage/devices/:id",
        method = "get",
        operation_id = "getDeviceUsage"
    )]
    async fn device(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        /// `YYYY-MM` (UTC); default the current period.
        period: Query<Option<String>>,
    ) -> ApiResult<Reply<DeviceUsageDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require_any(&[Scope::BillingRead, Scope::DeviceRead])?;
        let period = checked_period(period.0)?;
        if !caller.may_reach(DeviceId(id.0)) {
            return Err(Error::NotFound("device").into());
        }
        let device = self
            .state
            .store
            .get_device(caller.user_id, DeviceId(id.0))
            .await?
            .ok_or(Error::NotFound("device"))?;
        Ok(Reply::new(
            "Device usage",
            device_usage(&self.state, &device, period).await?,
        ))
    }
}

//! Device quota: the plan's monthly allowance, optionally capped lower per
//! device by the customer. Analysis seconds are metered as the running time
//! of the device's tasks this period, alerts as the alerts its rules fired
//! this period; attributes and VLM tokens are metered by the features that
//! spend them (0 until those exist).

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::device::Device;
use panoptes_shared::domain::plan::billing_period;
use panoptes_shared::domain::quota::Allowance;
use panoptes_shared::time::now;
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::Plan;

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeviceQuotaDto {
    pub device_id: Uuid,
    pub plan: Plan,
    /// Billing period, `YYYY-MM` (UTC).
    pub period: String,
    /// When the period ends and usage resets (1st of the month, 00:00 UTC).
    pub resets_at: DateTime<Utc>,
    pub quota_seconds: u64,
    pub used_seconds: u64,
    pub remaining_seconds: u64,
    pub alert_quota: u64,
    pub alert_used: u64,
    pub attribute_quota: u64,
    pub attribute_used: u64,
    pub vlm_quota: u64,
    pub vlm_used: u64,
    pub is_disabled: bool,
    pub is_unlimited: bool,
    /// Analysis seconds used, percent of `quotaSeconds`.
    pub usage_percentage: f64,
}

impl DeviceQuotaDto {
    /// `allowed`: this period's allowance (plan, caps, grants).
    pub fn of(d: &Device, allowed: &Allowance, used_seconds: u64, alerts_used: u64) -> Self {
        let q = &d.quota;
        let (period, resets_at) = billing_period(now());
        let quota_seconds = allowed.limits.analysis_seconds;
        Self {
            device_id: d.id.0,
            plan: d.plan.into(),
            period,
            resets_at,
            quota_seconds,
            used_seconds,
            remaining_seconds: quota_seconds.saturating_sub(used_seconds),
            alert_quota: allowed.limits.alert_count,
            alert_used: alerts_used,
            attribute_quota: allowed.limits.attribute_count,
            attribute_used: 0,
            vlm_quota: allowed.limits.vlm_tokens,
            vlm_used: 0,
            is_disabled: q.disabled,
            is_unlimited: allowed.unlimited,
            usage_percentage: if quota_seconds == 0 {
                100.0
            } else {
                used_seconds as f64 * 100.0 / quota_seconds as f64
            },
        }
    }
}

/// Each cap must not exceed the plan's allowance; `null` returns to the plan's value.
#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UpdateQuotaRequest {
    #[serde(default)]
    pub quota_seconds: MaybeUndefined<u64>,
    #[serde(default)]
    pub alert_quota: MaybeUndefined<u64>,
    #[serde(default)]
    pub attribute_quota: MaybeUndefined<u64>,
    #[serde(default)]
    pub vlm_quota: MaybeUndefined<u64>,
    /// A disabled device cannot start analysis.
    pub is_disabled: Option<bool>,
    /// Why, 1-500 characters, for the quota ledger (default "set by the owner").
    #[serde(default)]
    pub reason: Option<String>,
}

fn cap(
    field: &str,
    v: MaybeUndefined<u64>,
    plan_max: u64,
    plan: &str,
    current: &mut Option<u64>,
) -> Result<(), Error> {
    match v {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => *current = None,
        MaybeUndefined::Value(n) if n > plan_max => {
            return Err(Error::validation(
                field,
                format!("must be at most {plan_max}, the {plan} plan's monthly allowance"),
            ));
        }
        MaybeUndefined::Value(n) => *current = Some(n),
    }
    Ok(())
}

impl UpdateQuotaRequest {
    pub fn apply(self, d: &mut Device) -> Result<(), Error> {
        let plan = d.plan.limits();
        let name = d.plan.as_str();
        let q = &mut d.quota;
        cap(
            "quotaSeconds",
            self.quota_seconds,
            plan.analysis_seconds,
            name,
            &mut q.analysis_seconds,
        )?;
        cap(
            "alertQuota",
            self.alert_quota,
            plan.alert_count,
            name,
            &mut q.alert_count,
        )?;
        cap(
            "attributeQuota",
            self.attribute_quota,
            plan.attribute_count,
            name,
            &mut q.attribute_count,
        )?;
        cap(
            "vlmQuota",
            self.vlm_quota,
            plan.vlm_tokens,
            name,
            &mut q.vlm_tokens,
        )?;
        if let Some(disabled) = self.is_disabled {
            q.disabled = disabled;
        }
        d.updated_at = now();
        Ok(())
    }
}

//! `/api/v1/admin`: platform administration, admin sessions only: users,
//! maintenance announcements, and quotas (view any user's or device's usage,
//! grant extra allowance for a month, set a device unlimited or disabled;
//! every change is a row of the quota ledger with who, when and why).

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::device::Device;
use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::plan::{billing_period, parse_period};
use panoptes_shared::domain::quota::{ChangeKind, QuotaChange};
use panoptes_shared::domain::validate::multiline_text;
use panoptes_shared::ids::{DeviceId, UserId};
use poem_openapi::param::{Path, Query};
use uuid::Uuid;

use super::billing::{FeatureName, QuotaChangeDto};
use super::usage::{
    DeviceUsageDto, UserUsageDto, checked_period_named, device_usage, user_devices, user_usage,
};
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use crate::http::body::JsonBody;
use crate::http::envelope::Created;
use crate::http::error::WriteErrors;

use super::ApiTags;
use super::auth::UserDto;
use crate::auth::schemes::SessionToken;
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, ReadErrors};
use crate::state::AppState;

pub struct AdminApi {
    pub state: AppState,
}

/// A maintenance window to announce.
#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct MaintenanceRequest {
    /// When it starts (UTC, in the future).
    pub starts_at: DateTime<Utc>,
    /// When it ends (after `startsAt`).
    pub ends_at: DateTime<Utc>,
    /// What users should know, 1-1000 characters.
    #[oai(validator(min_length = 1, max_length = 1000))]
    pub message: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct MaintenanceDto {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub message: String,
    /// Users the `maintenance_scheduled` event was recorded for.
    pub users_notified: u64,
}

/// Extra allowance of one feature for one month.
#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct GrantRequest {
    pub feature: FeatureName,
    /// How much more (seconds, alerts, attributes or tokens), 1 to 10^12.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000")))]
    pub amount: u64,
    /// Why, 1-500 characters (kept in the quota ledger).
    #[oai(validator(min_length = 1, max_length = 500))]
    pub reason: String,
    /// `YYYY-MM` the grant counts in (default the current month; not a past
    /// one). Grants do not carry over.
    pub billing_period: Option<String>,
}

/// Set a device unlimited or disabled.
#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct AdminQuotaRequest {
    /// No monthly limit on any feature.
    pub is_unlimited: Option<bool>,
    /// Analysis cannot start (a running one stops at the next quota check).
    pub is_disabled: Option<bool>,
    /// Why, 1-500 characters (kept in the quota ledger).
    #[oai(validator(min_length = 1, max_length = 500))]
    pub reason: String,
}

impl AdminApi {
    async fn device(&self, id: Uuid) -> Result<Device, Error> {
        self.state
            .store
            .find_device_for_admin(DeviceId(id))
            .await?
            .ok_or(Error::NotFound("device"))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Any user's usage and allowance in a billing period (`period`,
    /// default the current one). Admin session only.
    #[oai(
        path = "/admin/users/:id/quota",
        method = "get",
        operation_id = "adminGetUserQuota"
    )]
    async fn user_quota(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
        period: Query<Option<String>>,
    ) -> ApiResult<Reply<UserUsageDto>, ReadErrors> {
        self.state.require_admin(&auth.0).await?;
        let period = checked_period_named("period", period.0)?;
        let user = UserId(id.0);
        self.state
            .store
            .get_user(user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let devices = user_devices(&self.state, user).await?;
        Ok(Reply::new(
            "User quota",
            user_usage(&self.state, user, &devices, None, period).await?,
        ))
    }

    /// Any device's usage and allowance in a billing period (`period`,
    /// default the current one). Admin session only.
    #[oai(
        path = "/admin/devices/:id/quota",
        method = "get",
        operation_id = "adminGetDeviceQuota"
    )]
    async fn device_quota(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
        period: Query<Option<String>>,
    ) -> ApiResult<Reply<DeviceUsageDto>, ReadErrors> {
        self.state.require_admin(&auth.0).await?;
        let period = checked_period_named("period", period.0)?;
        let device = self.device(id.0).await?;
        Ok(Reply::new(
            "Device quota",
            device_usage(&self.state, &device, period).await?,
        ))
    }

    /// Grant a device extra allowance of one feature for one month (no
    /// carry-over), with a reason; recorded in the quota ledger. Admin
    /// session only.
    #[oai(
        path = "/admin/devices/:id/quota/grants",
        method = "post",
        operation_id = "adminGrantQuota"
    )]
    async fn grant(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
        body: JsonBody<GrantRequest>,
    ) -> ApiResult<Created<QuotaChangeDto>, WriteErrors> {
        self.state.require_admin(&auth.0).await?;
        let req = body.parse()?;
        let reason = multiline_text("reason", &req.reason, 1, 500)?;
        let now = panoptes_shared::time::now();
        let current = billing_period(now).0;
        let period = match req.billing_period {
            Some(p) => parse_period(p.trim()).map_err(|m| Error::validation("billingPeriod", m))?,
            None => current.clone(),
        };
        if period < current {
            return Err(Error::validation("billingPeriod", "must not be a past month").into());
        }
        let device = self.device(id.0).await?;
        let c = QuotaChange {
            feature: Some(req.feature.into()),
            amount: Some(req.amount),
            ..QuotaChange::new(
                &device,
                period,
                ChangeKind::Grant,
                &format!("admin:{}", auth.0.user_id),
                &reason,
                panoptes_shared::time::now(),
            )
        };
        if !self
            .state
            .store
            .record_quota_changes(std::slice::from_ref(&c), None)
            .await?
        {
            return Err(Error::NotFound("device").into());
        }
        tracing::info!(admin = %auth.0.user_id, device = %device.id, amount = req.amount, "quota granted");
        Ok(Created::new("Quota granted", QuotaChangeDto::from(&c)))
    }

    /// Set a device unlimited (no monthly limit) or disabled, with a reason;
    /// each change is a row of the quota ledger. Admin session only.
    #[oai(
        path = "/admin/devices/:id/quota",
        method = "patch",
        operation_id = "adminUpdateDeviceQuota"
    )]
    async fn update_device_quota(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
        body: JsonBody<AdminQuotaRequest>,
    ) -> ApiResult<Reply<DeviceUsageDto>, WriteErrors> {
        self.state.require_admin(&auth.0).await?;
        let req = body.parse()?;
        let reason = multiline_text("reason", &req.reason, 1, 500)?;
        let mut device = self.device(id.0).await?;
        let before = device.quota.clone();
        if let Some(v) = req.is_unlimited {
            device.quota.unlimited = v;
        }
        if let Some(v) = req.is_disabled {
            device.quota.disabled = v;
        }
        device.updated_at = panoptes_shared::time::now();
        let actor = format!("admin:{}", auth.0.user_id);
        let changes = QuotaChange::between(&before, &device, &actor, &reason);
        if !changes.is_empty()
            && !self
                .state
                .store
                .record_quota_changes(&changes, Some(&device))
                .await?
        {
            return Err(Error::NotFound("device").into());
        }
        let period = billing_period(device.updated_at).0;
        Ok(Reply::new(
            "Device quota updated",
            device_usage(&self.state, &device, period).await?,
        ))
    }

    /// Every user, newest first. Admin session only.
    #[oai(path = "/admin/users", method = "get", operation_id = "adminListUsers")]
    async fn users(
        &self,
        auth: SessionToken,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<UserDto>>, ReadErrors> {
        self.state.require_admin(&auth.0).await?;
        let users = self
            .state
            .store
            .list_users(super::page(page.0, limit.0)?)
            .await?;
        Ok(Reply::page("Users", users.map(UserDto::from)))
    }

    /// Announce a maintenance window: a `maintenance_scheduled` event for
    /// every user (delivered to their webhooks). Admin session only.
    #[oai(
        path = "/admin/maintenance",
        method = "post",
        operation_id = "adminScheduleMaintenance"
    )]
    async fn maintenance(
        &self,
        auth: SessionToken,
        body: JsonBody<MaintenanceRequest>,
    ) -> ApiResult<Created<MaintenanceDto>, WriteErrors> {
        self.state.require_admin(&auth.0).await?;
        let req = body.parse()?;
        let now = panoptes_shared::time::now();
        if req.starts_at <= now {
            return Err(Error::validation("startsAt", "must be in the future").into());
        }
        if req.ends_at <= req.starts_at {
            return Err(Error::validation("endsAt", "must be after startsAt").into());
        }
        let message = multiline_text("message", &req.message, 1, 1000)?;
        let data = serde_json::json!({
            "startsAt": req.starts_at,
            "endsAt": req.ends_at,
            "message": message,
        });
        let users_notified = self
            .state
            .store
            .record_for_all_users(EventKind::MaintenanceScheduled, &data, now)
            .await?;
        Ok(Created::new(
            "Maintenance announced",
            MaintenanceDto {
                starts_at: req.starts_at,
                ends_at: req.ends_at,
                message,
                users_notified,
            },
        ))
    }
}

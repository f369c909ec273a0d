//! `/api/v1/admin`: platform administration, admin sessions only. (Quota
//! grants arrive with metering.)

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::validate::multiline_text;
use poem_openapi::param::Query;
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

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminApi {
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

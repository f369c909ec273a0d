//! `/api/v1/alerts`: alert rules on a scene's queue metrics (`/alerts/rules`)
//! and the alerts they fire (list, get, acknowledge, resolve). The notify
//! role evaluates the rules; see `panoptes_shared::domain::alert` for when a
//! rule fires.

mod dto;

use std::time::Duration;

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::alert::{Alert, AlertRule, AlertStatus as DomainStatus};
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::validate::optional_multiline;
use panoptes_shared::ids::{AlertId, AlertRuleId, SceneId};
use panoptes_shared::ports::{AlertFilter, RuleFilter};
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use uuid::Uuid;

pub use dto::{
    AlertActionRequest, AlertDto, CreateRuleRequest, RuleDto, StatusChangeDto, UpdateRuleRequest,
};

use super::ApiTags;
use super::enums::{AlertStatus, Severity};
use crate::auth::Caller;
use crate::auth::Credential;
use crate::auth::schemes::SessionOrKey;
use crate::http::body::{JsonBody, OptionalJsonBody};
use crate::http::envelope::{Created, Empty, Reply};
use crate::http::error::{ApiResult, ReadErrors, WriteErrors};
use crate::state::AppState;

/// How long the snapshot URL of an alert stays valid.
const SNAPSHOT_URL_TTL: Duration = Duration::from_secs(3_600);

pub struct AlertsApi {
    pub state: AppState,
}

/// Who made a change, as alert histories and the quota ledger record it.
pub(crate) fn actor(caller: &Caller) -> String {
    match &caller.credential {
        Credential::ApiKey { id, .. } => format!("key:{id}"),
        _ => format!("user:{}", caller.user_id),
    }
}

impl AlertsApi {
    async fn rule(&self, caller: &Caller, id: Uuid) -> Result<AlertRule, Error> {
        let found = self
            .state
            .store
            .get_rule(caller.user_id, AlertRuleId(id))
            .await?;
        caller.reachable(found, |r| r.device_id, "alert rule")
    }

    async fn alert(&self, caller: &Caller, id: Uuid) -> Result<Alert, Error> {
        let found = self
            .state
            .store
            .get_alert(caller.user_id, AlertId(id))
            .await?;
        caller.reachable(found, |a| a.device_id, "alert")
    }

    async fn dto(&self, a: &Alert) -> AlertDto {
        let url = match &a.snapshot_key {
            Some(key) => match self
                .state
                .blobs
                .store
                .presign_get(key, SNAPSHOT_URL_TTL)
                .await
            {
                Ok(url) => Some(url),
                Err(e) => {
                    tracing::warn!(alert = %a.id, error = %e, "snapshot URL not signed");
                    None
                }
            },
            None => None,
        };
        AlertDto::new(a, url)
    }

    /// Acknowledge or resolve: scope `alert:write`, the optional note, the change.
    async fn act(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: OptionalJsonBody<AlertActionRequest>,
        to: DomainStatus,
        message: &str,
    ) -> ApiResult<Reply<AlertDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertWrite)?;
        let note = body.parse()?.and_then(|b| b.note);
        let alert = self.change(caller, id.0, to, note).await?;
        Ok(Reply::new(message, self.dto(&alert).await))
    }

    async fn change(
        &self,
        caller: &Caller,
        id: Uuid,
        to: DomainStatus,
        note: Option<String>,
    ) -> Result<Alert, Error> {
        let note = optional_multiline("note", note.as_deref(), 500)?;
        let mut alert = self.alert(caller, id).await?;
        let expected = alert.status;
        alert
            .transition(to, actor(caller), note, panoptes_shared::time::now())
            .map_err(|why| Error::Conflict(why.into()))?;
        if !self
            .state
            .store
            .update_alert_status(caller.user_id, &alert, expected)
            .await?
        {
            return Err(Error::Conflict(
                "the alert changed meanwhile; read it again".into(),
            ));
        }
        Ok(alert)
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Alerts")]
impl AlertsApi {
    /// Create an alert rule on one of your scenes. Scope `alert:write`.
    ///
    /// The rule fires once per breach: when the metric has met the condition
    /// on every result for `durationSeconds`, inside an active slot, and at
    /// least `cooldownSeconds` after it last fired. It fires again only after
    /// the condition has stopped holding and held again.
    #[oai(
        path = "/alerts/rules",
        method = "post",
        operation_id = "createAlertRule"
    )]
    async fn create_rule(
        &self,
        auth: SessionOrKey,
        body: JsonBody<CreateRuleRequest>,
    ) -> ApiResult<Created<RuleDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertWrite)?;
        let req = body.parse()?;
        let scene = self
            .state
            .store
            .get_scene(caller.user_id, SceneId(req.scene_id))
            .await?
            .filter(|s| caller.may_reach(s.device_id))
            .ok_or(Error::NotFound("scene"))?;
        let rule = req.into_rule(caller.user_id, scene.id, scene.device_id)?;
        self.state.store.insert_rule(&rule).await?;
        Ok(Created::new("Alert rule created", (&rule).into()))
    }

    /// Your alert rules, newest first. Scope `alert:read`.
    #[oai(
        path = "/alerts/rules",
        method = "get",
        operation_id = "listAlertRules"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_rules(
        &self,
        auth: SessionOrKey,
        #[oai(name = "sceneId")] scene_id: Query<Option<Uuid>>,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        severity: Query<Option<Severity>>,
        enabled: Query<Option<bool>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<RuleDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertRead)?;
        let page = super::page(page.0, limit.0)?;
        let filter = RuleFilter {
            scene: scene_id.0.map(SceneId),
            device: caller.device_filter(device_id.0)?,
            severity: severity.0.map(Into::into),
            enabled: enabled.0,
        };
        let rules = self
            .state
            .store
            .list_rules(caller.user_id, &filter, page)
            .await?;
        Ok(Reply::page("Alert rules", rules.map(|r| RuleDto::from(&r))))
    }

    /// One alert rule. Scope `alert:read`.
    #[oai(
        path = "/alerts/rules/:id",
        method = "get",
        operation_id = "getAlertRule"
    )]
    async fn get_rule(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<RuleDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertRead)?;
        Ok(Reply::new(
            "Alert rule",
            (&self.rule(caller, id.0).await?).into(),
        ))
    }

    /// Change an alert rule; a changed rule starts its evaluation afresh.
    /// Scope `alert:write`.
    #[oai(
        path = "/alerts/rules/:id",
        method = "patch",
        operation_id = "updateAlertRule"
    )]
    async fn update_rule(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: JsonBody<UpdateRuleRequest>,
    ) -> ApiResult<Reply<RuleDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertWrite)?;
        let mut rule = self.rule(caller, id.0).await?;
        body.parse()?.apply(&mut rule)?;
        if !self.state.store.update_rule(caller.user_id, &rule).await? {
            return Err(Error::NotFound("alert rule").into());
        }
        Ok(Reply::new("Alert rule updated", (&rule).into()))
    }

    /// Delete an alert rule (its alerts stay). Scope `alert:write`.
    #[oai(
        path = "/alerts/rules/:id",
        method = "delete",
        operation_id = "deleteAlertRule"
    )]
    async fn delete_rule(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<Empty>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertWrite)?;
        let rule = self.rule(caller, id.0).await?;
        if !self
            .state
            .store
            .delete_rule(caller.user_id, rule.id)
            .await?
        {
            return Err(Error::NotFound("alert rule").into());
        }
        Ok(Reply::new("Alert rule deleted", Empty {}))
    }

    /// Your alerts, newest first, filtered by device, scene, severity,
    /// status and firing time (`startDate`/`endDate`, UTC, inclusive).
    /// Scope `alert:read`.
    #[oai(path = "/alerts", method = "get", operation_id = "listAlerts")]
    #[allow(clippy::too_many_arguments)]
    async fn list_alerts(
        &self,
        auth: SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(name = "sceneId")] scene_id: Query<Option<Uuid>>,
        severity: Query<Option<Severity>>,
        status: Query<Option<AlertStatus>>,
        #[oai(name = "startDate")] start_date: Query<Option<DateTime<Utc>>>,
        #[oai(name = "endDate")] end_date: Query<Option<DateTime<Utc>>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<AlertDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertRead)?;
        let page = super::page(page.0, limit.0)?;
        let filter = AlertFilter {
            device: caller.device_filter(device_id.0)?,
            scene: scene_id.0.map(SceneId),
            severity: severity.0.map(Into::into),
            status: status.0.map(Into::into),
            range: TimeRange::new(start_date.0, end_date.0)?,
        };
        let alerts = self
            .state
            .store
            .list_alerts(caller.user_id, &filter, page)
            .await?;
        let mut dtos = Vec::with_capacity(alerts.items.len());
        for a in &alerts.items {
            dtos.push(self.dto(a).await);
        }
        let page = panoptes_shared::domain::page::Page {
            items: dtos,
            total: alerts.total,
            request: alerts.request,
        };
        Ok(Reply::page("Alerts", page))
    }

    /// One alert, with its status history and a fresh snapshot URL.
    /// Scope `alert:read`.
    #[oai(path = "/alerts/:id", method = "get", operation_id = "getAlert")]
    async fn get_alert(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<AlertDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::AlertRead)?;
        let alert = self.alert(caller, id.0).await?;
        Ok(Reply::new("Alert", self.dto(&alert).await))
    }

    /// Acknowledge an active alert (409 when it is already acknowledged or
    /// resolved). Scope `alert:write`.
    #[oai(
        path = "/alerts/:id/acknowledge",
        method = "post",
        operation_id = "acknowledgeAlert"
    )]
    async fn acknowledge(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: OptionalJsonBody<AlertActionRequest>,
    ) -> ApiResult<Reply<AlertDto>, WriteErrors> {
        self.act(
            auth,
            id,
            body,
            DomainStatus::Acknowledged,
            "Alert acknowledged",
        )
        .await
    }

    /// Resolve an alert (final; 409 when it is already resolved). Scope `alert:write`.
    #[oai(
        path = "/alerts/:id/resolve",
        method = "post",
        operation_id = "resolveAlert"
    )]
    async fn resolve(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
        body: OptionalJsonBody<AlertActionRequest>,
    ) -> ApiResult<Reply<AlertDto>, WriteErrors> {
        self.act(auth, id, body, DomainStatus::Resolved, "Alert resolved")
            .await
    }
}

//! The relational store. Every tenant-owned read or write takes the owner's
//! `UserId` first, so an unscoped query cannot be written by accident: another
//! tenant's row is simply not found.
//!
//! Updates replace the whole row (read, change, write): the last writer wins.
//! Methods returning `bool` report whether a row matched.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::alert::{Alert, AlertRule, AlertStatus, Severity};
use crate::domain::api_key::{ApiKey, KeyHash};
use crate::domain::attribute::{AttributeRecord, AttributeStats, ColorName};
use crate::domain::device::{Device, DeviceStatus};
use crate::domain::event::PlatformEvent;
use crate::domain::insight::{Insight, VlmResult, VlmStatus};
use crate::domain::metrics_history::{RollingRow, RollingWindow, SceneSnapshot, TimeRange};
use crate::domain::page::{Page, PageRequest};
use crate::domain::quota::QuotaChange;
use crate::domain::scene::Scene;
use crate::domain::schedule::UtcOffset;
use crate::domain::task::{AnalysisTask, TaskEnd};
use crate::domain::usage::{Feature, UsageEvent};
use crate::domain::user::{Email, Role, Session, User};
use crate::domain::webhook::{Attempt, Delivery, DeliveryStatus, Webhook};
use crate::error::Result;
use crate::ids::{
    AlertId, AlertRuleId, ApiKeyId, AttributeId, DeliveryId, DeviceId, InsightId, SceneId,
    SessionId, TaskId, UserId, WebhookId,
};

#[async_trait]
pub trait UserRepo {
    /// Fails with `Conflict` when the email is taken.
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<()>;
    /// The user and their password hash, for login.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<(User, String)>>;
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;
    async fn set_user_role(&self, id: UserId, role: Role) -> Result<bool>;
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>>;
}

#[async_trait]
pub trait SessionRepo {
    async fn create_session(&self, session: &Session) -> Result<()>;
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>>;
    async fn revoke_session(&self, user: UserId, id: SessionId, at: DateTime<Utc>) -> Result<bool>;
}

#[async_trait]
pub trait ApiKeyRepo {
    async fn insert_api_key(&self, key: &ApiKey, hash: &KeyHash) -> Result<()>;
    /// The key with this hash and its stored hash (compare it in constant time).
    async fn find_api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<(ApiKey, KeyHash)>>;
    async fn get_api_key(&self, user: UserId, id: ApiKeyId) -> Result<Option<ApiKey>>;
    /// Newest first.
    async fn list_api_keys(&self, user: UserId, page: PageRequest) -> Result<Page<ApiKey>>;
    /// Writes name, scopes, expiry, revocation and rotation fields.
    async fn update_api_key(&self, user: UserId, key: &ApiKey) -> Result<bool>;
    /// Replaces the secret's hash: the old secret stops working at once.
    async fn rotate_api_key(&self, user: UserId, key: &ApiKey, new_hash: &KeyHash) -> Result<bool>;
    /// Records use; callers throttle it, it is not on every request.
    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<()>;
}

#[async_trait]
pub trait DeviceRepo {
    async fn insert_device(&self, device: &Device) -> Result<()>;
    /// Insert unless the owner already has `cap` devices (0 = no cap);
    /// `false` when refused. Concurrent creates of one user never exceed the cap.
    async fn insert_device_capped(&self, device: &Device, cap: u32) -> Result<bool>;
    async fn get_device(&self, user: UserId, id: DeviceId) -> Result<Option<Device>>;
    /// Newest first.
    async fn list_devices(&self, user: UserId, page: PageRequest) -> Result<Page<Device>>;
    async fn update_device(&self, user: UserId, device: &Device) -> Result<bool>;
    async fn set_device_status(
        &self,
        user: UserId,
        id: DeviceId,
        status: DeviceStatus,
    ) -> Result<bool>;
    /// Sets the status only if it differs and, in the same transaction,
    /// records `event`; `true` when this call changed it, so exactly one of
    /// several racing callers records the transition.
    async fn transition_device_status(
        &self,
        user: UserId,
        id: DeviceId,
        to: DeviceStatus,
        event: &PlatformEvent,
    ) -> Result<bool>;
    /// Records contact from the device (`lastSeenAt`), never moving it back.
    async fn touch_device(&self, user: UserId, id: DeviceId, at: DateTime<Utc>) -> Result<bool>;
    /// Every tenant's online push devices not heard from since `before`.
    async fn silent_push_devices(&self, before: DateTime<Utc>) -> Result<Vec<Device>>;
    /// Every tenant's pulled (RTSP) devices without a running task, least
    /// recently heard from first, at most `limit` (ingest checks their health).
    async fn idle_pull_devices(&self, limit: u32) -> Result<Vec<Device>>;
    /// Every tenant's devices that have a schedule (for the scheduler role).
    async fn scheduled_devices(&self) -> Result<Vec<Device>>;
    /// Any tenant's device by id (admin endpoints only: every other read
    /// names the owner).
    async fn find_device_for_admin(&self, id: DeviceId) -> Result<Option<Device>>;
    /// Deletes the device and its scenes.
    async fn delete_device(&self, user: UserId, id: DeviceId) -> Result<bool>;
}

#[async_trait]
pub trait TaskRepo {
    /// Inserts the task and records `event` in one transaction. Fails with
    /// `Conflict` (and records nothing) when the device already has a running task.
    async fn insert_task(&self, task: &AnalysisTask, event: &PlatformEvent) -> Result<()>;
    async fn get_task(&self, user: UserId, id: TaskId) -> Result<Option<AnalysisTask>>;
    /// The device's most recently started task (running or not).
    async fn latest_task(&self, user: UserId, device: DeviceId) -> Result<Option<AnalysisTask>>;
    /// Ends the task if it is still running and, in the same transaction,
    /// records `event`; `true` when this call ended it.
    async fn end_task(
        &self,
        user: UserId,
        id: TaskId,
        end: &TaskEnd,
        event: &PlatformEvent,
    ) -> Result<bool>;
    /// Every tenant's running tasks, oldest first (ingest, scheduler).
    async fn running_tasks(&self) -> Result<Vec<AnalysisTask>>;
}

#[async_trait]
pub trait MetricsHistoryRepo {
    async fn insert_snapshot(&self, snapshot: &SceneSnapshot) -> Result<()>;
    async fn insert_rolling(&self, rows: &[RollingRow]) -> Result<()>;
    /// Newest `windowEnd` first.
    async fn list_snapshots(
        &self,
        user: UserId,
        scene: SceneId,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Page<SceneSnapshot>>;
    async fn latest_snapshot(&self, user: UserId, scene: SceneId) -> Result<Option<SceneSnapshot>>;
    /// Newest `windowEnd` first; one window or all of them.
    async fn list_rolling(
        &self,
        user: UserId,
        scene: SceneId,
        window: Option<RollingWindow>,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Page<RollingRow>>;
    /// The latest row of each window that has one.
    async fn latest_rolling(&self, user: UserId, scene: SceneId) -> Result<Vec<RollingRow>>;
    /// Deletes snapshots and rolling rows whose window ended before `before`;
    /// returns how many rows went.
    async fn prune_analytics(&self, before: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait EventRepo {
    async fn record_event(&self, event: &PlatformEvent) -> Result<()>;
    /// Record one event per user who has a running analysis task (compute
    /// node events: the pool serves every running task); returns how many.
    async fn record_for_running_users(
        &self,
        kind: crate::domain::event::EventKind,
        data: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// Record one event per user (announcements); returns how many.
    async fn record_for_all_users(
        &self,
        kind: crate::domain::event::EventKind,
        data: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// Newest first; one device's events when `device` is given.
    async fn list_events(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<PlatformEvent>>;
}

/// Which rules a list returns.
#[derive(Debug, Clone, Default)]
pub struct RuleFilter {
    pub scene: Option<SceneId>,
    pub device: Option<DeviceId>,
    pub severity: Option<Severity>,
    pub enabled: Option<bool>,
}

/// Which alerts a list returns (`range` on the firing time).
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub device: Option<DeviceId>,
    pub scene: Option<SceneId>,
    pub severity: Option<Severity>,
    pub status: Option<AlertStatus>,
    pub range: TimeRange,
}

#[async_trait]
pub trait AlertRepo {
    async fn insert_rule(&self, rule: &AlertRule) -> Result<()>;
    async fn get_rule(&self, user: UserId, id: AlertRuleId) -> Result<Option<AlertRule>>;
    /// Newest first.
    async fn list_rules(
        &self,
        user: UserId,
        filter: &RuleFilter,
        page: PageRequest,
    ) -> Result<Page<AlertRule>>;
    /// Writes the configurable fields (not the firing state).
    async fn update_rule(&self, user: UserId, rule: &AlertRule) -> Result<bool>;
    async fn delete_rule(&self, user: UserId, id: AlertRuleId) -> Result<bool>;
    /// Every tenant's enabled rules with their device's UTC offset (notify).
    async fn enabled_rules(&self) -> Result<Vec<(AlertRule, UtcOffset)>>;
    /// Fire `alert` for its rule if the breach is not already fired and the
    /// cooldown has passed (`last_fired_at + cooldown <= triggered_at`); in
    /// one transaction: the rule's firing state, the alert, its `alertCount`
    /// usage event and `event` (`alert_triggered`); a suppressed alert
    /// (beyond the quota) gets neither of the last two. `false` (and nothing
    /// written) when another firing won, or the rule is gone or disabled.
    async fn fire_alert(&self, alert: &Alert, event: &PlatformEvent) -> Result<bool>;
    /// The condition stopped holding at `cleared_at` (capture time): the
    /// rule may fire for the next breach. A firing after `cleared_at` (by an
    /// evaluator further ahead) keeps its breach open.
    async fn close_breach(&self, rule: AlertRuleId, cleared_at: DateTime<Utc>) -> Result<()>;
    async fn get_alert(&self, user: UserId, id: AlertId) -> Result<Option<Alert>>;
    /// Newest firing first.
    async fn list_alerts(
        &self,
        user: UserId,
        filter: &AlertFilter,
        page: PageRequest,
    ) -> Result<Page<Alert>>;
    /// Writes status and history, if the stored status is still `expected`
    /// (two concurrent changes do not both apply).
    async fn update_alert_status(
        &self,
        user: UserId,
        alert: &Alert,
        expected: AlertStatus,
    ) -> Result<bool>;
    /// Alerts fired for the device in the month (`YYYY-MM`, UTC).
    async fn alert_count(&self, user: UserId, device: DeviceId, month: &str) -> Result<u64>;
}

/// Which deliveries a list returns.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub event_type: Option<String>,
    pub status: Option<DeliveryStatus>,
}

#[async_trait]
pub trait WebhookRepo {
    /// `Conflict` when the user already has one.
    async fn create_webhook(&self, webhook: &Webhook) -> Result<()>;
    async fn get_webhook(&self, user: UserId) -> Result<Option<Webhook>>;
    /// Writes the configuration if the stored row is still the one read
    /// (`updated_at == read_at`): a change made meanwhile (a secret
    /// regenerated, the endpoint disabled by a 410) is not overwritten.
    async fn update_webhook(
        &self,
        user: UserId,
        webhook: &Webhook,
        read_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Hold the endpoint's deliveries until `until`.
    async fn pause_webhook(&self, id: WebhookId, until: DateTime<Utc>) -> Result<()>;
    /// Deletes it with its deliveries and their attempts.
    async fn delete_webhook(&self, user: UserId) -> Result<bool>;
    /// Disable the endpoint (`410 Gone`) with the reason shown to the user.
    async fn disable_webhook(&self, user: UserId, id: WebhookId, reason: &str) -> Result<bool>;
    /// Outbox events not yet turned into deliveries, oldest first. A row that
    /// cannot be read is logged and marked dispatched (it would block the rest).
    async fn undispatched_events(&self, limit: u32) -> Result<Vec<PlatformEvent>>;
    /// Mark the event dispatched and, in the same transaction, insert its
    /// delivery (when the user's endpoint subscribes to it); `false` when
    /// another dispatcher took the event first.
    async fn dispatch_event(
        &self,
        event: &PlatformEvent,
        delivery: Option<&Delivery>,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    async fn insert_delivery(&self, delivery: &Delivery) -> Result<()>;
    /// Users with a pending delivery due at `now` on an enabled endpoint that
    /// is not paused, the longest-waiting first.
    async fn users_with_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<UserId>>;
    /// The user's pending deliveries due at `now`, oldest event first.
    async fn due_deliveries(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Record `attempt` and the delivery's new state in one transaction, if
    /// the stored delivery still has `attempt.number - 1` attempts (another
    /// sender did not record one meanwhile; `false` then, nothing written);
    /// `disable` also disables the endpoint with that reason (410 Gone).
    async fn record_attempt(
        &self,
        delivery: &Delivery,
        attempt: &Attempt,
        disable: Option<&str>,
    ) -> Result<bool>;
    /// A test send: the delivery and its one attempt, together.
    async fn record_test_delivery(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()>;
    /// Newest first.
    async fn list_deliveries(
        &self,
        user: UserId,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>>;
    async fn get_delivery(&self, user: UserId, id: DeliveryId) -> Result<Option<Delivery>>;
    /// Oldest first.
    async fn list_attempts(&self, user: UserId, id: DeliveryId) -> Result<Vec<Attempt>>;
    /// Queue a delivery again for `at` with a fresh retry budget.
    async fn requeue_delivery(
        &self,
        user: UserId,
        id: DeliveryId,
        at: DateTime<Utc>,
    ) -> Result<bool>;
}

#[async_trait]
pub trait SceneRepo {
    async fn insert_scene(&self, scene: &Scene) -> Result<()>;
    async fn get_scene(&self, user: UserId, id: SceneId) -> Result<Option<Scene>>;
    /// Newest first; only one device's scenes when `device` is given.
    async fn list_scenes(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<Scene>>;
    async fn update_scene(&self, user: UserId, scene: &Scene) -> Result<bool>;
    async fn delete_scene(&self, user: UserId, id: SceneId) -> Result<bool>;
}

/// Usage per feature in one period (features with none are absent).
pub type UsageTotals = std::collections::BTreeMap<Feature, u64>;

#[async_trait]
pub trait UsageRepo {
    /// Appends the events whose id is not in the ledger yet and adds them to
    /// the daily and monthly aggregates, in one transaction; how many were new.
    async fn record_usage(&self, events: &[UsageEvent]) -> Result<u64>;
    /// Records the pieces of `task`'s running time in `[from, until)` and
    /// moves how far it is metered from `from` to `until`, in one
    /// transaction, only if it is metered exactly to `from` and has not
    /// stopped before `until` (otherwise nothing: another meterer got there,
    /// or this view of the task is stale); the seconds newly recorded.
    async fn meter_task(
        &self,
        task: &AnalysisTask,
        from: DateTime<Utc>,
        events: &[UsageEvent],
        until: DateTime<Utc>,
    ) -> Result<u64>;
    /// Every tenant's tasks with running time not metered yet (running, or
    /// ended and not metered to their end), with how far they are metered.
    async fn tasks_to_meter(&self) -> Result<Vec<(AnalysisTask, Option<DateTime<Utc>>)>>;
    /// How far the task's running time is metered (`None`: not at all).
    async fn task_metered_until(&self, user: UserId, task: TaskId)
    -> Result<Option<DateTime<Utc>>>;
    /// Records that `device` crossed `level` percent (80, 100) of its
    /// `feature` allowance in `period`, with `event` (the webhook), in one
    /// transaction; `false` (and nothing recorded) when it was recorded before.
    async fn record_quota_notice(
        &self,
        device: DeviceId,
        period: &str,
        feature: Feature,
        level: u8,
        event: &PlatformEvent,
    ) -> Result<bool>;
    /// Usage in `period` (`YYYY-MM`) of one device, or of all the user's
    /// devices (deleted ones included).
    async fn usage_totals(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        period: &str,
    ) -> Result<UsageTotals>;
    /// Usage in `period` per device that used anything (deleted ones
    /// included), by device id.
    async fn usage_by_device(
        &self,
        user: UserId,
        period: &str,
    ) -> Result<Vec<(DeviceId, UsageTotals)>>;
    /// Daily usage (UTC days) in `[from, to]`, of one device or all.
    async fn usage_daily(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<std::collections::BTreeMap<chrono::NaiveDate, UsageTotals>>;
    /// Monthly usage in periods `[from, to]` (`YYYY-MM`), of one device or all.
    async fn usage_monthly(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        from: &str,
        to: &str,
    ) -> Result<std::collections::BTreeMap<String, UsageTotals>>;
    /// Records quota changes and, when given, the device with its quota as
    /// changed, in one transaction; `false` (nothing written) when the
    /// device is gone.
    async fn record_quota_changes(
        &self,
        changes: &[QuotaChange],
        device: Option<&Device>,
    ) -> Result<bool>;
    /// Every user with any usage in `period`.
    async fn users_with_usage(&self, period: &str) -> Result<Vec<UserId>>;
    /// Records that `period` is closed for the event's user, with `event`
    /// (`billing_cycle_completed`), in one transaction; `false` (nothing
    /// written) when it was recorded before.
    async fn record_billing_cycle(&self, period: &str, event: &PlatformEvent) -> Result<bool>;
    /// Extra allowance granted to `device` for `period`, per feature.
    async fn quota_grants(
        &self,
        user: UserId,
        device: DeviceId,
        period: &str,
    ) -> Result<UsageTotals>;
    /// The quota ledger, newest first; one device's when given.
    async fn list_quota_changes(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<QuotaChange>>;
    /// The ledger's events, newest first.
    async fn list_usage_events(
        &self,
        user: UserId,
        filter: &UsageFilter,
        page: PageRequest,
    ) -> Result<Page<UsageEvent>>;
}

/// Which usage events a list returns (`range` on when they happened).
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub device: Option<DeviceId>,
    pub feature: Option<Feature>,
    pub range: TimeRange,
}

/// Which insights a list returns (`range` on the alert's firing time).
#[derive(Debug, Clone, Default)]
pub struct InsightFilter {
    /// Full-text terms over the VLM summary and the attribute words: every word must appear, as a
    /// whole word, case ignored (no stemming, no diacritic folding);
    /// punctuation and operators in the input are plain separators. Terms
    /// without a single word match nothing.
    pub q: Option<String>,
    pub device: Option<DeviceId>,
    pub scene: Option<SceneId>,
    pub severity: Option<Severity>,
    pub vlm_status: Option<VlmStatus>,
    pub range: TimeRange,
    pub has_vlm_summary: Option<bool>,
    /// Whether attributes of the people in view were linked to it.
    pub has_attributes: Option<bool>,
}

#[async_trait]
pub trait InsightRepo {
    /// Inserts the alert's insight unless it already has one; `false` (and
    /// nothing written) when it has: a redelivered job creates nothing.
    async fn insert_insight_for_alert(&self, insight: &Insight) -> Result<bool>;
    async fn get_insight(&self, user: UserId, id: InsightId) -> Result<Option<Insight>>;
    /// Pending → completed with the VLM's answer after `attempts` requests;
    /// `false` (and nothing changed) unless it is still pending.
    async fn complete_insight(
        &self,
        user: UserId,
        id: InsightId,
        result: &VlmResult,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Pending → failed with `reason`; `false` (and nothing changed) unless
    /// it is still pending.
    async fn fail_insight(
        &self,
        user: UserId,
        id: InsightId,
        reason: &str,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Links the attributes of the people in view when the alert fired:
    /// `count` records, whose words (`text`) full-text search matches too.
    async fn attach_insight_attributes(
        &self,
        user: UserId,
        id: InsightId,
        count: u64,
        text: &str,
    ) -> Result<bool>;
    /// Newest firing first.
    async fn list_insights(
        &self,
        user: UserId,
        filter: &InsightFilter,
        page: PageRequest,
    ) -> Result<Page<Insight>>;
}

/// Which attribute records a list or a count covers (`range` on
/// `observed_at`, inclusive).
#[derive(Debug, Clone, Default)]
pub struct AttributeFilter {
    pub device: Option<DeviceId>,
    pub scene: Option<SceneId>,
    pub task: Option<TaskId>,
    pub track: Option<String>,
    pub upper_color: Option<ColorName>,
    pub lower_color: Option<ColorName>,
    pub range: TimeRange,
}

#[async_trait]
pub trait AttributeRepo {
    /// Stores the records; one already stored (same id) is skipped, so a
    /// redelivered frame writes nothing twice. Returns how many were new.
    async fn insert_attributes(&self, records: &[AttributeRecord]) -> Result<u64>;
    async fn get_attribute(&self, user: UserId, id: AttributeId)
    -> Result<Option<AttributeRecord>>;
    /// Newest observation first.
    async fn list_attributes(
        &self,
        user: UserId,
        filter: &AttributeFilter,
        page: PageRequest,
    ) -> Result<Page<AttributeRecord>>;
    /// Counts per colour over the filtered records.
    async fn attribute_stats(
        &self,
        user: UserId,
        filter: &AttributeFilter,
    ) -> Result<AttributeStats>;
}

#[async_trait]
pub trait Store:
    UserRepo
    + SessionRepo
    + ApiKeyRepo
    + DeviceRepo
    + SceneRepo
    + TaskRepo
    + MetricsHistoryRepo
    + EventRepo
    + AlertRepo
    + WebhookRepo
    + UsageRepo
    + InsightRepo
    + AttributeRepo
    + Send
    + Sync
    + 'static
{
    /// Which backend this is (`sqlite`, `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// A trivial round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
}

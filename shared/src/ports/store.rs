//! The relational store. Every tenant-owned read or write takes the owner's
//! `UserId` first, so an unscoped query cannot be written by accident: another
//! tenant's row is simply not found.
//!
//! Updates replace the whole row (read, change, write): the last writer wins.
//! Methods returning `bool` report whether a row matched.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::api_key::{ApiKey, KeyHash};
use crate::domain::device::{Device, DeviceStatus};
use crate::domain::event::PlatformEvent;
use crate::domain::metrics_history::{RollingRow, RollingWindow, SceneSnapshot, TimeRange};
use crate::domain::page::{Page, PageRequest};
use crate::domain::scene::Scene;
use crate::domain::task::{AnalysisTask, TaskEnd};
use crate::domain::user::{Email, Role, Session, User};
use crate::error::Result;
use crate::ids::{ApiKeyId, DeviceId, SceneId, SessionId, TaskId, UserId};

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
    /// The device's tasks that ran at some point at or after `since` (usage metering).
    async fn device_tasks_since(
        &self,
        user: UserId,
        device: DeviceId,
        since: DateTime<Utc>,
    ) -> Result<Vec<AnalysisTask>>;
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
    /// Newest first; one device's events when `device` is given.
    async fn list_events(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<PlatformEvent>>;
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
    + Send
    + Sync
    + 'static
{
    /// Which backend this is (`sqlite`, `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// A trivial round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
}

//! The scheduler role: device schedules, usage metering and quota
//! enforcement, push-device liveness and analytics retention, one pass at a time (`step_at` takes the
//! clock, so tests move time by hand).
//!
//! Schedules are level-triggered and idempotent through the store, so any
//! number of replicas can run this role:
//! - **Start**: the schedule is on, no task runs, and no task has started
//!   since this run of "on" slots began (a user who stopped analysis mid-run
//!   is not overridden). Two replicas racing both pass the check; the store's
//!   one-running-task-per-device index lets exactly one insert win.
//! - **Stop**: the schedule is off and the running task was started by the
//!   schedule (a task a user started runs on). `end_task` succeeds once.
//!
//! The scene of a scheduled start is the device's newest active scene.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use panoptes_shared::domain::device::{Device, DeviceStatus};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::{billing_period, period_start};
use panoptes_shared::domain::scene::SceneStatus;
use panoptes_shared::domain::task::{AnalysisTask, StopReason, TaskEnd, TaskTrigger};
use panoptes_shared::domain::usage::Feature;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::lifecycle::{StartRequest, end, set_device_status, start};
use panoptes_shared::metering::{check_analysis_quota, close_previous_period, meter_all};
use panoptes_shared::ports::Store;
use panoptes_shared::{Error, Result};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Push devices silent this long go offline.
    pub offline_after: Duration,
    /// Stored analytics older than this are deleted.
    pub retention: Duration,
    /// How often running tasks are checked against their quota.
    pub quota_every: Duration,
    /// How often retention runs.
    pub prune_every: Duration,
}

/// What one pass did (tests assert on it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub started: Vec<DeviceId>,
    pub stopped: Vec<DeviceId>,
    pub quota_stopped: Vec<DeviceId>,
    pub went_offline: Vec<DeviceId>,
    pub pruned: u64,
    /// Analysis seconds written to the usage ledger (not a change: metering
    /// runs every pass while tasks run).
    pub metered_seconds: u64,
    /// `billing_cycle_completed` events sent (the first passes of a month).
    pub cycles_closed: u64,
}

impl Pass {
    pub fn changes(&self) -> usize {
        self.started.len()
            + self.stopped.len()
            + self.quota_stopped.len()
            + self.went_offline.len()
            + usize::from(self.pruned > 0)
    }
}

#[derive(Default)]
struct Memory {
    last_quota: Option<DateTime<Utc>>,
    /// The billing period this process last closed the one before of.
    closed_before: Option<String>,
    last_prune: Option<DateTime<Utc>>,
    /// Scheduled starts that failed (no active scene, quota, ...), by the
    /// run they were for: retried at most once a minute, warned once.
    failed: HashMap<DeviceId, (DateTime<Utc>, DateTime<Utc>)>,
}

pub struct Scheduler {
    store: Arc<dyn Store>,
    settings: SchedulerSettings,
    memory: Mutex<Memory>,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Scheduler {
    pub fn new(store: Arc<dyn Store>, settings: SchedulerSettings) -> Self {
        Self {
            store,
            settings,
            memory: Mutex::new(Memory::default()),
        }
    }

    pub async fn step(&self) -> Result<usize> {
        Ok(self.step_at(panoptes_shared::time::now()).await?.changes())
    }

    /// One pass at `now`.
    pub async fn step_at(&self, now: DateTime<Utc>) -> Result<Pass> {
        let mut memory = self.memory.lock().await;
        let mut pass = Pass::default();
        let running: HashMap<DeviceId, AnalysisTask> = self
            .store
            .running_tasks()
            .await?
            .into_iter()
            .map(|t| (t.device_id, t))
            .collect();
        for device in self.store.scheduled_devices().await? {
            if let Err(e) = self
                .schedule(
                    &device,
                    running.get(&device.id),
                    now,
                    &mut memory,
                    &mut pass,
                )
                .await
            {
                tracing::warn!(device = %device.id, error = %e, "schedule pass failed for a device");
            }
        }
        if memory
            .last_quota
            .is_none_or(|t| now - t >= chrono(self.settings.quota_every))
        {
            memory.last_quota = Some(now);
            pass.metered_seconds = meter_all(self.store.as_ref(), now).await?;
            // Once the month has turned (and metering wrote its last minutes),
            // close the previous one: once per process, once per user overall.
            let current = billing_period(now).0;
            if memory.closed_before.as_deref() != Some(current.as_str())
                && now - period_start(now) >= chrono::Duration::minutes(2)
            {
                pass.cycles_closed = close_previous_period(self.store.as_ref(), now).await?;
                memory.closed_before = Some(current);
            }
            self.enforce_quota(running.values(), now, &mut pass).await?;
        }
        let silent_since = now - chrono(self.settings.offline_after);
        for device in self.store.silent_push_devices(silent_since).await? {
            if set_device_status(
                self.store.as_ref(),
                device.user_id,
                device.id,
                DeviceStatus::Offline,
                Some("no frame or heartbeat"),
                now,
            )
            .await?
            {
                pass.went_offline.push(device.id);
            }
        }
        if memory
            .last_prune
            .is_none_or(|t| now - t >= chrono(self.settings.prune_every))
        {
            memory.last_prune = Some(now);
            pass.pruned = self
                .store
                .prune_analytics(now - chrono(self.settings.retention))
                .await?;
            if pass.pruned > 0 {
                tracing::info!(rows = pass.pruned, "old analytics rows pruned");
            }
        }
        Ok(pass)
    }

    async fn schedule(
        &self,
        device: &Device,
        running: Option<&AnalysisTask>,
        now: DateTime<Utc>,
        memory: &mut Memory,
        pass: &mut Pass,
    ) -> Result<()> {
        let Some(schedule) = &device.schedule else {
            return Ok(());
        };
        let store = self.store.as_ref();
        match (schedule.run_started(now, device.utc_offset), running) {
            (Some(run), None) => {
                let latest = store.latest_task(device.user_id, device.id).await?;
                if latest.is_some_and(|t| t.started_at >= run) {
                    return Ok(()); // started (and stopped) already in this run
                }
                if let Some((failed_run, at)) = memory.failed.get(&device.id)
                    && *failed_run == run
                    && now - *at < chrono::Duration::minutes(1)
                {
                    return Ok(());
                }
                match self.start(device, now).await {
                    Ok(()) => {
                        memory.failed.remove(&device.id);
                        pass.started.push(device.id);
                    }
                    Err(Error::Conflict(_)) => {} // another replica won
                    Err(e) => {
                        if memory.failed.get(&device.id).is_none_or(|(r, _)| *r != run) {
                            tracing::warn!(device = %device.id, error = %e, "scheduled analysis could not start");
                        }
                        memory.failed.insert(device.id, (run, now));
                    }
                }
            }
            (None, Some(task)) if task.trigger == TaskTrigger::Schedule => {
                let ended = end(store, task, TaskEnd::stopped(StopReason::Schedule, now)).await?;
                if ended.is_some() {
                    pass.stopped.push(device.id);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn start(&self, device: &Device, now: DateTime<Utc>) -> Result<()> {
        let scene = self
            .store
            .list_scenes(
                device.user_id,
                Some(device.id),
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await?
            .items
            .into_iter()
            .find(|s| s.status == SceneStatus::Active)
            .ok_or_else(|| Error::validation("schedule", "the device has no active scene"))?;
        start(
            self.store.as_ref(),
            device.user_id,
            device.id,
            StartRequest {
                scene: scene.id,
                capabilities: Vec::new(),
                trigger: TaskTrigger::Schedule,
                require_online: false,
            },
            now,
        )
        .await?;
        Ok(())
    }

    /// Stops tasks whose device has used its analysis seconds this month.
    async fn enforce_quota(
        &self,
        running: impl Iterator<Item = &AnalysisTask>,
        now: DateTime<Utc>,
        pass: &mut Pass,
    ) -> Result<()> {
        let store = self.store.as_ref();
        for task in running {
            let Some(device) = store.get_device(task.user_id, task.device_id).await? else {
                continue;
            };
            let (used, allowed) = check_analysis_quota(store, &device, now).await?;
            if !allowed.exhausted(Feature::AnalysisSeconds, used) && !device.quota.disabled {
                continue;
            }
            let ended = end(
                store,
                task,
                TaskEnd::stopped(StopReason::QuotaExhausted, now),
            )
            .await?;
            if ended.is_some() {
                tracing::info!(device = %device.id, used, "analysis stopped: quota used up");
                pass.quota_stopped.push(device.id);
            }
        }
        Ok(())
    }
}

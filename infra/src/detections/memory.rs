//! The in-process detection log: a bounded list of results per device.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::ids::{DeviceId, JobId};
use panoptes_shared::ports::bus::Offset;
use panoptes_shared::ports::detections::DetectionLog;
use tokio::time::Instant;

/// Results kept per device (the oldest go first).
const KEPT_PER_DEVICE: usize = 10_000;
/// Job ids remembered for idempotency.
const JOBS_REMEMBERED: usize = 200_000;

#[derive(Default)]
struct DeviceLog {
    entries: VecDeque<(Offset, DetectionResult)>,
    next: u64,
    cursor: Offset,
    last_append: Option<Instant>,
}

#[derive(Default)]
struct State {
    devices: HashMap<DeviceId, DeviceLog>,
    seen: HashSet<JobId>,
    seen_order: VecDeque<JobId>,
}

#[derive(Default)]
pub struct MemoryDetectionLog {
    state: Mutex<State>,
}

impl MemoryDetectionLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl DetectionLog for MemoryDetectionLog {
    async fn append(&self, result: &DetectionResult) -> Result<bool> {
        let mut s = self.lock();
        if !s.seen.insert(result.job_id) {
            return Ok(false);
        }
        s.seen_order.push_back(result.job_id);
        if s.seen_order.len() > JOBS_REMEMBERED
            && let Some(old) = s.seen_order.pop_front()
        {
            s.seen.remove(&old);
        }
        let log = s.devices.entry(result.device_id).or_default();
        log.next += 1;
        log.entries.push_back((
            Offset {
                ms: log.next,
                seq: 0,
            },
            result.clone(),
        ));
        if log.entries.len() > KEPT_PER_DEVICE {
            log.entries.pop_front();
        }
        log.last_append = Some(Instant::now());
        Ok(true)
    }

    async fn active_devices(&self, within: Duration) -> Result<Vec<DeviceId>> {
        let now = Instant::now();
        Ok(self
            .lock()
            .devices
            .iter()
            .filter(|(_, l)| l.last_append.is_some_and(|t| now - t <= within))
            .map(|(d, _)| *d)
            .collect())
    }

    async fn read(
        &self,
        device: DeviceId,
        after: Offset,
        max: usize,
    ) -> Result<Vec<(Offset, DetectionResult)>> {
        let s = self.lock();
        Ok(s.devices.get(&device).map_or_else(Vec::new, |l| {
            l.entries
                .iter()
                .filter(|(o, _)| *o > after)
                .take(max)
                .cloned()
                .collect()
        }))
    }

    async fn checkpoint(&self, device: DeviceId) -> Result<Offset> {
        Ok(self
            .lock()
            .devices
            .get(&device)
            .map_or(Offset::START, |l| l.cursor))
    }

    async fn commit(&self, device: DeviceId, offset: Offset) -> Result<()> {
        self.lock().devices.entry(device).or_default().cursor = offset;
        Ok(())
    }
}

//! Detection results, one stream per device: detectors append (any frame on
//! any worker), the analytics owner of the device reads them in arrival order
//! and keeps its own checkpoint.
//!
//! Guarantees every adapter gives (one behaviour suite checks them):
//! - `append` records a job's result at most once: a job reclaimed after its
//!   worker died and processed again does not produce a second result.
//! - `read` returns a device's results after an offset in append order, with
//!   strictly increasing offsets.
//! - `commit` / `checkpoint` survive the reader: a new owner continues where
//!   the last one committed.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::domain::detection::DetectionResult;
use crate::ids::DeviceId;
use crate::ports::bus::Offset;

#[async_trait]
pub trait DetectionLog: Send + Sync {
    /// Record `result`; `false` when a result of the same job id is already there.
    async fn append(&self, result: &DetectionResult) -> Result<bool>;

    /// Devices with a result appended within the last `within`.
    async fn active_devices(&self, within: Duration) -> Result<Vec<DeviceId>>;

    /// Up to `max` results of `device` strictly after `after`, oldest first.
    async fn read(
        &self,
        device: DeviceId,
        after: Offset,
        max: usize,
    ) -> Result<Vec<(Offset, DetectionResult)>>;

    /// Where the device's reader last committed (`Offset::START` if never).
    async fn checkpoint(&self, device: DeviceId) -> Result<Offset>;

    async fn commit(&self, device: DeviceId, offset: Offset) -> Result<()>;
}

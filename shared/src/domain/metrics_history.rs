//! Stored analytics: what the analytics role writes at a fixed cadence per
//! running task and the data query API reads back.
//!
//! - A **snapshot** (`scene_analytics_snapshots`): the current counts at the
//!   end of a window, with the average and maximum over that window (the
//!   time since the previous snapshot) and the node that computed it.
//! - **Rolling rows** (`scene_analytics_rolling`): the `rolling5Min`,
//!   `rolling30Min` and `total` metrics at the same instant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::device::string_enum;
use crate::domain::queue_metrics::WindowMetrics;
use crate::error::FieldError;
use crate::ids::{DeviceId, SceneId, TaskId, UserId};

string_enum!(
    /// The rolling windows, named as the metric paths.
    RollingWindow { FiveMinutes = "rolling5Min", ThirtyMinutes = "rolling30Min", Total = "total" }
);

/// Counts at the end of a snapshot's window, and over it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentMetrics {
    pub in_queue: u32,
    pub in_service: u32,
    pub avg_in_queue: f64,
    pub max_in_queue: u32,
    pub avg_in_service: f64,
    pub max_in_service: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SceneSnapshot {
    pub id: Uuid,
    pub user_id: UserId,
    pub scene_id: SceneId,
    pub device_id: DeviceId,
    pub task_id: TaskId,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub current: CurrentMetrics,
    pub compute_node_id: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RollingRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub scene_id: SceneId,
    pub device_id: DeviceId,
    pub task_id: TaskId,
    pub window: RollingWindow,
    /// Where the window starts (`total`: the task's first frame).
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub metrics: WindowMetrics,
    pub compute_node_id: String,
    pub created_at: DateTime<Utc>,
}

/// `startDate` / `endDate` of a history query (UTC, inclusive, on `windowEnd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn new(
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Self, FieldError> {
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(FieldError::new("endDate", "must not be before startDate"));
        }
        Ok(Self { start, end })
    }

    /// Bounds in epoch milliseconds, open ends as the extremes.
    pub fn millis(&self) -> (i64, i64) {
        (
            self.start.map_or(i64::MIN, |t| t.timestamp_millis()),
            self.end.map_or(i64::MAX, |t| t.timestamp_millis()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_that_ends_before_it_starts_is_refused() {
        let t = Utc::now();
        let earlier = t - chrono::Duration::seconds(1);
        assert_eq!(
            TimeRange::new(Some(t), Some(earlier)).unwrap_err().field,
            "endDate"
        );
        assert_eq!(
            TimeRange::default().millis(),
            (i64::MIN, i64::MAX),
            "open on both ends"
        );
        assert_eq!(
            RollingWindow::parse("rolling5Min"),
            Some(RollingWindow::FiveMinutes)
        );
    }
}

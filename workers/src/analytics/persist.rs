//! What the analytics role stores per device at a fixed cadence (capture
//! time): a snapshot (counts now, average and maximum since the previous
//! one) and the three rolling rows, from the queue metrics of the frame that
//! closes the window.

use chrono::DateTime;
use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::domain::metrics_history::{
    CurrentMetrics, RollingRow, RollingWindow, SceneSnapshot,
};
use panoptes_shared::domain::queue_metrics::{Occupancy, Window};
use uuid::Uuid;

use super::queue::{FIVE_MINUTES, QueueMetrics, THIRTY_MINUTES};

/// Rows to store for one closed window.
#[derive(Debug, Clone)]
pub struct Stored {
    pub snapshot: SceneSnapshot,
    pub rolling: Vec<RollingRow>,
}

pub struct Persister {
    every_ms: u64,
    /// Where the open window started.
    since_ms: Option<u64>,
    window: Window,
    max_in_service: u32,
}

fn time(ms: u64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default()
}

impl Persister {
    pub fn new(every_ms: u64) -> Self {
        Self {
            every_ms: every_ms.max(1),
            since_ms: None,
            window: Window::total(),
            max_in_service: 0,
        }
    }

    /// Feed one frame (in capture order); the rows to store once the window
    /// has lasted `every_ms`.
    pub fn observe(&mut self, r: &DetectionResult, m: &QueueMetrics, node: &str) -> Option<Stored> {
        let at = r.captured_at_ms;
        let now = Occupancy {
            at_ms: at,
            in_queue: m.in_queue,
            in_service: m.in_service,
        };
        self.window.observe(now);
        self.max_in_service = self.max_in_service.max(m.in_service);
        let since = *self.since_ms.get_or_insert(at);
        if at.saturating_sub(since) < self.every_ms {
            return None;
        }
        let w = self.window.metrics(at);
        let created = panoptes_shared::time::now();
        let snapshot = SceneSnapshot {
            id: Uuid::now_v7(),
            user_id: r.user_id,
            scene_id: r.scene_id,
            device_id: r.device_id,
            task_id: r.task_id,
            window_start: time(since),
            window_end: time(at),
            current: CurrentMetrics {
                in_queue: m.in_queue,
                in_service: m.in_service,
                avg_in_queue: w.avg_in_queue,
                max_in_queue: w.max_in_queue,
                avg_in_service: w.avg_in_service,
                max_in_service: self.max_in_service,
            },
            compute_node_id: node.to_owned(),
            created_at: created,
        };
        let row = |window, span: Option<u64>, metrics| RollingRow {
            id: Uuid::now_v7(),
            user_id: r.user_id,
            scene_id: r.scene_id,
            device_id: r.device_id,
            task_id: r.task_id,
            window,
            window_start: time(span.map_or(m.first_ms, |s| at.saturating_sub(s).max(m.first_ms))),
            window_end: time(at),
            metrics,
            compute_node_id: node.to_owned(),
            created_at: created,
        };
        let rolling = vec![
            row(
                RollingWindow::FiveMinutes,
                Some(FIVE_MINUTES),
                m.rolling5_min.clone(),
            ),
            row(
                RollingWindow::ThirtyMinutes,
                Some(THIRTY_MINUTES),
                m.rolling30_min.clone(),
            ),
            row(RollingWindow::Total, None, m.total.clone()),
        ];
        // The next window starts where this one ends, with the same counts.
        self.window = Window::total();
        self.window.observe(now);
        self.max_in_service = m.in_service;
        self.since_ms = Some(at);
        Some(Stored { snapshot, rolling })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(in_queue: u32, in_service: u32) -> QueueMetrics {
        let empty = Window::total().metrics(0);
        QueueMetrics {
            in_queue,
            in_service,
            rolling5_min: empty.clone(),
            rolling30_min: empty.clone(),
            total: empty,
            first_ms: 1_000,
        }
    }

    #[test]
    fn a_window_closes_every_interval_with_its_average_and_maximum() {
        let mut p = Persister::new(10_000);
        // 2 in the queue for 5 s, then 4 for 5 s; 1 then 3 in service.
        for (at, q, s) in [(1_000, 2, 1), (6_000, 4, 3), (10_000, 4, 3)] {
            let r = crate::analytics::test_result(at, vec![]);
            assert!(p.observe(&r, &metrics(q, s), "n1").is_none(), "{at}");
        }
        let r = crate::analytics::test_result(11_000, vec![]);
        let stored = p.observe(&r, &metrics(0, 3), "n1").expect("10 s passed");
        let c = stored.snapshot.current;
        assert_eq!((c.in_queue, c.in_service), (0, 3), "counts at the end");
        assert_eq!((c.max_in_queue, c.max_in_service), (4, 3));
        assert!((c.avg_in_queue - 3.0).abs() < 1e-9, "{}", c.avg_in_queue);
        assert_eq!(stored.snapshot.window_start.timestamp_millis(), 1_000);
        assert_eq!(stored.snapshot.window_end.timestamp_millis(), 11_000);
        assert_eq!(stored.snapshot.compute_node_id, "n1");
        let windows: Vec<_> = stored.rolling.iter().map(|r| r.window).collect();
        assert_eq!(
            windows,
            [
                RollingWindow::FiveMinutes,
                RollingWindow::ThirtyMinutes,
                RollingWindow::Total
            ]
        );
        // Less than 5 minutes in: every window starts at the first frame.
        assert!(
            stored
                .rolling
                .iter()
                .all(|r| r.window_start.timestamp_millis() == 1_000)
        );
        // The next window starts where this one ended.
        let r = crate::analytics::test_result(15_000, vec![]);
        assert!(p.observe(&r, &metrics(0, 0), "n1").is_none());
        let r = crate::analytics::test_result(21_000, vec![]);
        let next = p.observe(&r, &metrics(0, 0), "n1").unwrap();
        assert_eq!(next.snapshot.window_start.timestamp_millis(), 11_000);
        assert_eq!(next.snapshot.current.max_in_service, 3, "3 until 15 s");
    }
}

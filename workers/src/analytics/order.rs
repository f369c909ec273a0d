//! Capture order within a window: results of one device arrive in the order
//! detectors finish, not the order frames were captured. Each result waits up
//! to `window` after its arrival for earlier captures; then it is released with
//! every earlier capture still waiting. A result captured before one already
//! released is late and dropped.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::ports::bus::Offset;
use tokio::time::Instant;

/// What one pass released, in capture order, and what it dropped as late.
#[derive(Debug, Default)]
pub struct Released {
    pub results: Vec<DetectionResult>,
    pub late: usize,
}

pub struct Reorder {
    window: Duration,
    /// Waiting results by (capture time, log offset).
    waiting: BTreeMap<(u64, Offset), (DetectionResult, Instant)>,
    /// Log offsets in read order, with whether they are done (released or dropped).
    read: VecDeque<(Offset, bool)>,
    last_released: Option<u64>,
    committed: Offset,
}

impl Reorder {
    /// Continue after the log offset `committed`.
    pub fn new(window: Duration, committed: Offset) -> Self {
        Self {
            window,
            waiting: BTreeMap::new(),
            read: VecDeque::new(),
            last_released: None,
            committed,
        }
    }

    /// The last offset read (where the next read continues).
    pub fn read_up_to(&self) -> Offset {
        self.read.back().map_or(self.committed, |(o, _)| *o)
    }

    /// Every result up to here is released or dropped: safe to commit.
    pub fn committable(&self) -> Offset {
        self.committed
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Take a result read from the log at `offset` at time `now`; `false` when
    /// it is late (dropped).
    pub fn push(&mut self, offset: Offset, result: DetectionResult, now: Instant) -> bool {
        let late = self
            .last_released
            .is_some_and(|last| result.captured_at_ms < last);
        self.read.push_back((offset, late));
        if !late {
            self.waiting
                .insert((result.captured_at_ms, offset), (result, now));
        }
        self.advance_commit();
        !late
    }

    /// Release what has waited long enough (and everything captured before it).
    pub fn release(&mut self, now: Instant) -> Vec<DetectionResult> {
        let due = self
            .waiting
            .iter()
            .filter(|(_, (_, arrived))| now.duration_since(*arrived) >= self.window)
            .map(|(k, _)| *k)
            .max();
        let Some(due) = due else {
            return Vec::new();
        };
        let rest = self.waiting.split_off(&(
            due.0,
            Offset {
                ms: due.1.ms,
                seq: due.1.seq + 1,
            },
        ));
        let released = std::mem::replace(&mut self.waiting, rest);
        let mut out = Vec::with_capacity(released.len());
        for ((captured, offset), (result, _)) in released {
            self.last_released = Some(captured);
            if let Some(r) = self.read.iter_mut().find(|(o, _)| *o == offset) {
                r.1 = true;
            }
            out.push(result);
        }
        self.advance_commit();
        out
    }

    fn advance_commit(&mut self) {
        while let Some((offset, true)) = self.read.front().copied() {
            self.committed = offset;
            self.read.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(captured: u64) -> DetectionResult {
        crate::analytics::test_result(captured, vec![])
    }

    fn off(n: u64) -> Offset {
        Offset { ms: n, seq: 0 }
    }

    #[test]
    fn out_of_order_arrivals_within_the_window_come_out_in_capture_order() {
        let t0 = Instant::now();
        let w = Duration::from_millis(500);
        let mut r = Reorder::new(w, Offset::START);
        assert!(r.push(off(1), result(300), t0));
        assert!(r.push(off(2), result(100), t0 + Duration::from_millis(100)));
        assert!(r.push(off(3), result(200), t0 + Duration::from_millis(200)));
        assert!(
            r.release(t0 + Duration::from_millis(499)).is_empty(),
            "nothing has waited the window"
        );
        assert_eq!(r.committable(), Offset::START);
        // 300 is due: it goes with the earlier captures 100 and 200.
        let out: Vec<u64> = r.release(t0 + w).iter().map(|x| x.captured_at_ms).collect();
        assert_eq!(out, vec![100, 200, 300]);
        assert_eq!(r.committable(), off(3));
        assert!(r.is_idle());
    }

    #[test]
    fn a_result_captured_before_one_released_is_late() {
        let t0 = Instant::now();
        let w = Duration::from_millis(100);
        let mut r = Reorder::new(w, Offset::START);
        r.push(off(1), result(500), t0);
        assert_eq!(r.release(t0 + w).len(), 1);
        assert!(!r.push(off(2), result(400), t0 + w), "late");
        assert_eq!(r.committable(), off(2), "a dropped result is done too");
        assert!(
            r.push(off(3), result(500), t0 + w),
            "same capture time is not late"
        );
    }

    #[test]
    fn the_commit_point_stops_before_the_first_waiting_result() {
        let t0 = Instant::now();
        let w = Duration::from_millis(100);
        let mut r = Reorder::new(w, off(7));
        r.push(off(8), result(10), t0);
        r.push(off(9), result(5), t0 + Duration::from_millis(90));
        // Only 10 (offset 8) is due, but 5 was captured earlier: both go.
        assert_eq!(r.release(t0 + w).len(), 2);
        r.push(off(10), result(20), t0 + w);
        r.push(off(11), result(30), t0 + w);
        assert_eq!(r.committable(), off(9));
        assert_eq!(r.read_up_to(), off(11));
    }
}

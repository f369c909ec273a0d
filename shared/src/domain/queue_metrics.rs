//! Queue metrics over a window (DESIGN 6): occupancy of the queue and
//! checkout zones (time-weighted average and maximum), arrivals and
//! departures, observed waits (median, p90 and mean of completed queue
//! visits) and the estimated wait by Little's law (people in the queue now /
//! departures per second), each with its sample size.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// What the analytics stage knows at one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    pub at_ms: u64,
    pub in_queue: u32,
    pub in_service: u32,
}

/// The queue metrics of one frame: `metrics` of its `analysis_result`
/// event, and what the analytics role stores at its cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueMetrics {
    /// People in the queue zone now (past the entry threshold).
    pub in_queue: u32,
    /// People in the checkout zone now.
    pub in_service: u32,
    /// The last 5 minutes.
    pub rolling5_min: WindowMetrics,
    /// The last 30 minutes.
    pub rolling30_min: WindowMetrics,
    /// Since the task started.
    pub total: WindowMetrics,
    /// Capture time of the first frame analysed (where `total` starts).
    #[serde(skip)]
    #[schemars(skip)]
    pub first_ms: u64,
}

/// The metrics of one window, named as the metric paths
/// (`rolling5Min.avgInQueue`, ...). Wait fields are `null` while the window
/// has no completed queue visit (or, for the estimate, no departure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowMetrics {
    /// Time-weighted average of people in the queue zone.
    pub avg_in_queue: f64,
    /// Most people in the queue zone at once.
    pub max_in_queue: u32,
    /// Time-weighted average of people in the checkout zone.
    pub avg_in_service: f64,
    /// People who entered the queue.
    pub arrivals: u64,
    /// People who left the queue.
    pub departures: u64,
    /// Mean observed wait of completed queue visits, in seconds.
    #[schemars(required, extend("nullable" = true))]
    pub avg_wait_seconds: Option<f64>,
    /// Median observed wait, in seconds.
    #[schemars(required, extend("nullable" = true))]
    pub median_wait_seconds: Option<f64>,
    /// 90th-percentile observed wait, in seconds.
    #[schemars(required, extend("nullable" = true))]
    pub p90_wait_seconds: Option<f64>,
    /// Completed queue visits behind the observed waits.
    pub wait_samples: u64,
    /// `inQueue / (departures / window)` (Little's law), in seconds; `null` without departures.
    #[schemars(required, extend("nullable" = true))]
    pub estimated_wait_seconds: Option<f64>,
}

impl WindowMetrics {
    /// A window that has seen nothing.
    pub fn empty() -> Self {
        Self {
            avg_in_queue: 0.0,
            max_in_queue: 0,
            avg_in_service: 0.0,
            arrivals: 0,
            departures: 0,
            avg_wait_seconds: None,
            median_wait_seconds: None,
            p90_wait_seconds: None,
            wait_samples: 0,
            estimated_wait_seconds: None,
        }
    }
}

impl QueueMetrics {
    /// Occupancy now, with windows that have seen nothing (tests, demos).
    pub fn occupancy(in_queue: u32, in_service: u32) -> Self {
        Self {
            in_queue,
            in_service,
            rolling5_min: WindowMetrics::empty(),
            rolling30_min: WindowMetrics::empty(),
            total: WindowMetrics::empty(),
            first_ms: 0,
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// One sliding window (`span_ms`) or, with `None`, everything since the start.
pub struct Window {
    span_ms: Option<u64>,
    started_ms: Option<u64>,
    occupancy: VecDeque<Occupancy>,
    arrivals: VecDeque<u64>,
    /// (left_ms, wait_ms) of completed visits.
    visits: VecDeque<(u64, u64)>,
}

impl Window {
    pub fn sliding(span_ms: u64) -> Self {
        Self::new(Some(span_ms))
    }

    pub fn total() -> Self {
        Self::new(None)
    }

    fn new(span_ms: Option<u64>) -> Self {
        Self {
            span_ms,
            started_ms: None,
            occupancy: VecDeque::new(),
            arrivals: VecDeque::new(),
            visits: VecDeque::new(),
        }
    }

    pub fn observe(&mut self, o: Occupancy) {
        self.started_ms.get_or_insert(o.at_ms);
        self.occupancy.push_back(o);
        self.evict(o.at_ms);
    }

    pub fn arrival(&mut self, at_ms: u64) {
        self.arrivals.push_back(at_ms);
    }

    /// Someone left the queue zone after waiting since `entered_ms`.
    pub fn departure(&mut self, entered_ms: u64, left_ms: u64) {
        self.visits
            .push_back((left_ms, left_ms.saturating_sub(entered_ms)));
    }

    fn window_start(&self, now_ms: u64) -> u64 {
        match self.span_ms {
            Some(span) => now_ms.saturating_sub(span),
            None => self.started_ms.unwrap_or(now_ms),
        }
    }

    fn evict(&mut self, now_ms: u64) {
        let from = self.window_start(now_ms);
        // Keep the last sample before the window: it holds at the window's start.
        while self.occupancy.len() > 1 && self.occupancy[1].at_ms <= from {
            self.occupancy.pop_front();
        }
        while self.arrivals.front().is_some_and(|t| *t < from) {
            self.arrivals.pop_front();
        }
        while self.visits.front().is_some_and(|(t, _)| *t < from) {
            self.visits.pop_front();
        }
    }

    /// The window's metrics at `now_ms`; the latest queue count feeds Little's law.
    pub fn metrics(&self, now_ms: u64) -> WindowMetrics {
        let from = self.window_start(now_ms);
        let (mut queue_area, mut service_area, mut covered, mut max_in_queue) = (0.0, 0.0, 0.0, 0);
        for (i, o) in self.occupancy.iter().enumerate() {
            let start = o.at_ms.max(from);
            let end = self
                .occupancy
                .get(i + 1)
                .map_or(now_ms, |n| n.at_ms)
                .min(now_ms);
            if end > start {
                let d = (end - start) as f64;
                queue_area += f64::from(o.in_queue) * d;
                service_area += f64::from(o.in_service) * d;
                covered += d;
            }
            if o.at_ms >= from || end > start {
                max_in_queue = max_in_queue.max(o.in_queue);
            }
        }
        let avg = |area: f64| if covered > 0.0 { area / covered } else { 0.0 };
        let in_view = |t: u64| t >= from && t <= now_ms;
        let mut waits: Vec<u64> = self
            .visits
            .iter()
            .filter(|(t, _)| in_view(*t))
            .map(|(_, w)| *w)
            .collect();
        waits.sort_unstable();
        let seconds = |ms: u64| ms as f64 / 1000.0;
        let departures = waits.len() as u64;
        // The service rate is over the time actually observed: a 30-minute
        // window one minute into a task has seen one minute of departures.
        let observed_from = self.started_ms.map_or(from, |s| s.max(from));
        let span_s = seconds(now_ms.saturating_sub(observed_from));
        let in_queue_now = self.occupancy.back().map_or(0, |o| o.in_queue);
        WindowMetrics {
            avg_in_queue: avg(queue_area),
            max_in_queue,
            avg_in_service: avg(service_area),
            arrivals: self.arrivals.iter().filter(|t| in_view(**t)).count() as u64,
            departures,
            avg_wait_seconds: (!waits.is_empty())
                .then(|| seconds(waits.iter().sum::<u64>()) / waits.len() as f64),
            median_wait_seconds: percentile(&waits, 0.5).map(seconds),
            p90_wait_seconds: percentile(&waits, 0.9).map(seconds),
            wait_samples: departures,
            estimated_wait_seconds: (departures > 0 && span_s > 0.0)
                .then(|| f64::from(in_queue_now) / (departures as f64 / span_s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(at_ms: u64, in_queue: u32, in_service: u32) -> Occupancy {
        Occupancy {
            at_ms,
            in_queue,
            in_service,
        }
    }

    #[test]
    fn occupancy_is_time_weighted_and_the_max_is_over_the_window() {
        let mut w = Window::sliding(60_000);
        w.observe(occ(0, 2, 1)); // 2 for 30 s
        w.observe(occ(30_000, 4, 1)); // 4 for 10 s
        w.observe(occ(40_000, 0, 0)); // 0 for 20 s
        let m = w.metrics(60_000);
        assert!(
            (m.avg_in_queue - (2.0 * 30.0 + 4.0 * 10.0) / 60.0).abs() < 1e-9,
            "{m:?}"
        );
        assert!((m.avg_in_service - 40.0 / 60.0).abs() < 1e-9);
        assert_eq!(m.max_in_queue, 4);
        // A minute later the window holds only the last 60 s: all zero.
        w.observe(occ(120_000, 0, 0));
        let later = w.metrics(120_000);
        assert_eq!((later.avg_in_queue, later.max_in_queue), (0.0, 0));
    }

    #[test]
    fn observed_waits_are_median_p90_and_mean_of_completed_visits() {
        let mut w = Window::total();
        w.observe(occ(0, 0, 0));
        // Ten visits waiting 10, 20, ..., 100 s.
        for i in 1..=10u64 {
            w.arrival(i * 1_000);
            w.departure(i * 1_000, i * 1_000 + i * 10_000);
        }
        w.observe(occ(200_000, 0, 0));
        let m = w.metrics(200_000);
        assert_eq!((m.arrivals, m.departures, m.wait_samples), (10, 10, 10));
        assert_eq!(m.median_wait_seconds, Some(50.0));
        assert_eq!(m.p90_wait_seconds, Some(90.0));
        assert_eq!(m.avg_wait_seconds, Some(55.0));
    }

    #[test]
    fn littles_law_estimates_the_wait_from_the_queue_and_the_service_rate() {
        // 6 departures in 5 minutes = one every 50 s; 4 people queueing now
        // wait about 4 x 50 = 200 s.
        let mut w = Window::sliding(300_000);
        w.observe(occ(0, 3, 1));
        for i in 0..6u64 {
            w.departure(i * 40_000, i * 40_000 + 60_000);
        }
        w.observe(occ(300_000, 4, 1));
        let m = w.metrics(300_000);
        assert_eq!(m.departures, 6);
        assert!(
            (m.estimated_wait_seconds.unwrap() - 200.0).abs() < 1e-9,
            "{m:?}"
        );
        // Nobody served yet: no estimate rather than infinity.
        let mut idle = Window::sliding(300_000);
        idle.observe(occ(0, 5, 0));
        assert_eq!(idle.metrics(10_000).estimated_wait_seconds, None);
        assert_eq!(idle.metrics(10_000).median_wait_seconds, None);
    }

    #[test]
    fn visits_leave_a_sliding_window_with_their_departure() {
        let mut w = Window::sliding(300_000);
        w.observe(occ(0, 1, 0));
        w.departure(0, 10_000);
        w.observe(occ(400_000, 0, 0));
        let m = w.metrics(400_000);
        assert_eq!((m.departures, m.wait_samples), (0, 0));
        let json = serde_json::to_value(&m).unwrap();
        assert!(json.get("avgInQueue").is_some() && json.get("p90WaitSeconds").is_some());
    }

    #[test]
    fn a_window_not_yet_full_rates_departures_over_the_time_observed() {
        // A 30-minute window, one minute into the task: 6 departures in 60 s
        // is 0.1 per second, so 2 people queueing wait about 20 s (not 200 s).
        let mut w = Window::sliding(30 * 60 * 1000);
        w.observe(Occupancy {
            at_ms: 100_000,
            in_queue: 2,
            in_service: 0,
        });
        for i in 0..6 {
            w.departure(100_000, 110_000 + i * 10_000);
        }
        let m = w.metrics(160_000);
        assert_eq!(m.departures, 6);
        let est = m.estimated_wait_seconds.unwrap();
        assert!((est - 20.0).abs() < 1e-9, "{est}");
    }
}

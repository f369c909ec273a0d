//! Queue analytics for one device and scene, frame by frame in capture
//! order: tracks, zone membership (queue and checkout), and the windowed
//! metrics that ride on every `analysis_result` event (`metrics.inQueue`,
//! `metrics.inService`, `metrics.rolling5Min`, `metrics.rolling30Min`,
//! `metrics.total`).

use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::domain::queue_metrics::{Occupancy, Window};
use panoptes_shared::domain::scene::Scene;
use panoptes_shared::domain::stream_events::Zone;

use super::dwell::{Dwell, ZoneEvent};
use super::event::{Analysis, FrameAnalysis};
use super::tracker::Tracker;

const FIVE_MINUTES_MS: u64 = 5 * 60 * 1000;
const THIRTY_MINUTES_MS: u64 = 30 * 60 * 1000;

pub use panoptes_shared::domain::queue_metrics::QueueMetrics;

pub const FIVE_MINUTES: u64 = FIVE_MINUTES_MS;
pub const THIRTY_MINUTES: u64 = THIRTY_MINUTES_MS;

pub struct QueueAnalysis {
    first_ms: Option<u64>,
    tracker: Tracker,
    max_age_ms: u64,
    queue: Option<Dwell>,
    checkout: Option<Dwell>,
    rolling5: Window,
    rolling30: Window,
    total: Window,
}

fn ms(seconds: f64) -> u64 {
    (seconds * 1000.0).round().max(0.0) as u64
}

impl QueueAnalysis {
    pub fn new(scene: &Scene) -> Self {
        let p = &scene.parameters;
        let dwell = |zone: &Option<_>| {
            zone.clone().map(|z| {
                Dwell::new(
                    z,
                    ms(p.entry_threshold_seconds),
                    ms(p.exit_threshold_seconds),
                )
            })
        };
        let max_age_ms = ms(p.tracking_max_age_seconds);
        Self {
            first_ms: None,
            tracker: Tracker::new(max_age_ms),
            max_age_ms,
            queue: dwell(&scene.zones.queue),
            checkout: dwell(&scene.zones.checkout),
            rolling5: Window::sliding(FIVE_MINUTES_MS),
            rolling30: Window::sliding(THIRTY_MINUTES_MS),
            total: Window::total(),
        }
    }

    fn windows(&mut self) -> [&mut Window; 3] {
        [&mut self.rolling5, &mut self.rolling30, &mut self.total]
    }
}

impl FrameAnalysis for QueueAnalysis {
    fn analyze(&mut self, r: &DetectionResult) -> Analysis {
        let at = r.captured_at_ms;
        let boxes: Vec<_> = r.detections.iter().map(|d| d.bounding_box).collect();
        let ids = self.tracker.update(&boxes, at);
        let seen: Vec<_> = ids.iter().copied().zip(boxes.iter().copied()).collect();
        let max_age = self.max_age_ms;
        let queue_events = self
            .queue
            .as_mut()
            .map(|d| d.update(&seen, at, max_age))
            .unwrap_or_default();
        if let Some(d) = self.checkout.as_mut() {
            d.update(&seen, at, max_age);
        }
        for e in queue_events {
            for w in self.windows() {
                match e {
                    ZoneEvent::Entered { at_ms, .. } => w.arrival(at_ms),
                    ZoneEvent::Left {
                        entered_ms,
                        left_ms,
                        ..
                    } => w.departure(entered_ms, left_ms),
                }
            }
        }
        let members = |d: &Option<Dwell>| d.as_ref().map_or(0, |d| d.members() as u32);
        let (in_queue, in_service) = (members(&self.queue), members(&self.checkout));
        for w in self.windows() {
            w.observe(Occupancy {
                at_ms: at,
                in_queue,
                in_service,
            });
        }
        let zone_of = |track: u64| {
            if self.queue.as_ref().is_some_and(|d| d.is_member(track)) {
                Some(Zone::Queue)
            } else if self.checkout.as_ref().is_some_and(|d| d.is_member(track)) {
                Some(Zone::Checkout)
            } else {
                None
            }
        };
        Analysis {
            per_detection: ids
                .iter()
                .map(|id| (Some(format!("t{id}")), zone_of(*id)))
                .collect(),
            metrics: Some(QueueMetrics {
                in_queue,
                in_service,
                rolling5_min: self.rolling5.metrics(at),
                rolling30_min: self.rolling30.metrics(at),
                total: self.total.metrics(at),
                first_ms: *self.first_ms.get_or_insert(at),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use panoptes_shared::domain::detection::{BoundingBox, Detection};
    use panoptes_shared::domain::polygon::Polygon;
    use panoptes_shared::domain::scene::{
        AnalysisType, DetectClass, SceneParameters, SceneStatus, Zones,
    };
    use panoptes_shared::ids::{DeviceId, SceneId, UserId};

    fn scene() -> Scene {
        let half = |x0: f64, x1: f64| {
            Polygon::parse(&[vec![x0, 0.0], vec![x1, 0.0], vec![x1, 1.0], vec![x0, 1.0]]).unwrap()
        };
        let t = chrono::Utc::now();
        Scene {
            id: SceneId::new(),
            user_id: UserId::new(),
            device_id: DeviceId::new(),
            name: "line".into(),
            description: None,
            analysis_type: AnalysisType::QueueAnalysis,
            // Queue on the left half, checkout on the right.
            zones: Zones::new(Some(half(0.0, 0.5)), Some(half(0.5, 1.0))).unwrap(),
            parameters: SceneParameters {
                entry_threshold_seconds: 2.0,
                exit_threshold_seconds: 1.0,
                ..SceneParameters::default()
            },
            status: SceneStatus::Active,
            created_at: t,
            updated_at: t,
        }
    }

    fn frame(at_ms: u64, xs: &[f32]) -> DetectionResult {
        let people = xs
            .iter()
            .map(|x| Detection {
                class: DetectClass::Person,
                confidence: 0.9,
                bounding_box: BoundingBox {
                    x: x - 0.03,
                    y: 0.5,
                    width: 0.06,
                    height: 0.3,
                },
                attributes: None,
            })
            .collect();
        crate::analytics::test_result(at_ms, people)
    }

    #[test]
    fn a_person_queues_then_is_served_and_the_metrics_follow() {
        let mut q = QueueAnalysis::new(&scene());
        // One frame a second: in the queue (x = 0.2, creeping) until 9 s, then at the checkout (x = 0.7).
        let mut last = Analysis::default();
        for s in 0..=20u64 {
            // The jump to the checkout is too far for the tracker to follow: a
            // new track there, and the queue visit ends when its track was last
            // seen inside (9 s), once the tracker forgets it (5 s later).
            let x = if s < 10 { 0.2 + 0.001 * s as f32 } else { 0.7 };
            last = q.analyze(&frame(s * 1_000, &[x]));
            let m = serde_json::to_value(last.metrics.as_ref().unwrap()).unwrap();
            if s == 5 {
                assert_eq!(
                    m["inQueue"], 1,
                    "queueing since 0 s, past the 2 s threshold"
                );
                assert_eq!(last.per_detection[0].1, Some(Zone::Queue));
            }
        }
        let m = serde_json::to_value(last.metrics.unwrap()).unwrap();
        assert_eq!(
            (m["inQueue"].as_u64(), m["inService"].as_u64()),
            (Some(0), Some(1)),
            "{m}"
        );
        assert_eq!(last.per_detection[0].1, Some(Zone::Checkout));
        let total = &m["total"];
        assert_eq!(
            (total["arrivals"].as_u64(), total["departures"].as_u64()),
            (Some(1), Some(1)),
            "{total}"
        );
        let wait = total["medianWaitSeconds"].as_f64().unwrap();
        assert_eq!(
            wait, 9.0,
            "from the first frame inside to the last one seen there"
        );
        assert_eq!(m["rolling5Min"]["waitSamples"], 1);
        assert_eq!(m["rolling5Min"]["maxInQueue"], 1);
    }
}

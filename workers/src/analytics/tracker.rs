//! A multi-object tracker for one device's detections, in capture order:
//! constant-velocity prediction plus greedy IoU association (the SORT /
//! ByteTrack family without the Kalman filter), so a person keeps one id
//! across frames, through occlusions shorter than the scene's
//! `trackingMaxAgeSeconds`, and when two people cross.

use panoptes_shared::domain::detection::BoundingBox;

/// Below this overlap with its prediction a detection starts a new track.
const MIN_IOU: f32 = 0.2;
/// Weight of the newest displacement in the smoothed velocity.
const VELOCITY_GAIN: f32 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u64,
    pub bbox: BoundingBox,
    /// Box units per millisecond (x, y).
    velocity: (f32, f32),
    pub last_seen_ms: u64,
    pub first_seen_ms: u64,
}

impl Track {
    fn predict(&self, at_ms: u64) -> BoundingBox {
        let dt = at_ms.saturating_sub(self.last_seen_ms) as f32;
        BoundingBox {
            x: self.bbox.x + self.velocity.0 * dt,
            y: self.bbox.y + self.velocity.1 * dt,
            ..self.bbox
        }
    }
}

fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let w = ((a.x + a.width).min(b.x + b.width) - a.x.max(b.x)).max(0.0);
    let h = ((a.y + a.height).min(b.y + b.height) - a.y.max(b.y)).max(0.0);
    let inter = w * h;
    inter / (a.width * a.height + b.width * b.height - inter + 1e-9)
}

pub struct Tracker {
    max_age_ms: u64,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(max_age_ms: u64) -> Self {
        Self {
            max_age_ms,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Live tracks (seen within the max age of the last update).
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Associate one frame's boxes; returns each box's track id, in order.
    pub fn update(&mut self, boxes: &[BoundingBox], at_ms: u64) -> Vec<u64> {
        self.tracks
            .retain(|t| at_ms.saturating_sub(t.last_seen_ms) <= self.max_age_ms);
        let predicted: Vec<BoundingBox> = self.tracks.iter().map(|t| t.predict(at_ms)).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, p) in predicted.iter().enumerate() {
            for (bi, b) in boxes.iter().enumerate() {
                let o = iou(p, b);
                if o >= MIN_IOU {
                    pairs.push((o, ti, bi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_taken = vec![false; self.tracks.len()];
        let mut ids: Vec<Option<u64>> = vec![None; boxes.len()];
        for (_, ti, bi) in pairs {
            if track_taken[ti] || ids[bi].is_some() {
                continue;
            }
            track_taken[ti] = true;
            let t = &mut self.tracks[ti];
            let dt = at_ms.saturating_sub(t.last_seen_ms).max(1) as f32;
            let b = boxes[bi];
            let (vx, vy) = ((b.x - t.bbox.x) / dt, (b.y - t.bbox.y) / dt);
            t.velocity = (
                t.velocity.0 + VELOCITY_GAIN * (vx - t.velocity.0),
                t.velocity.1 + VELOCITY_GAIN * (vy - t.velocity.1),
            );
            t.bbox = b;
            t.last_seen_ms = at_ms;
            ids[bi] = Some(t.id);
        }
        ids.iter()
            .zip(boxes)
            .map(|(id, b)| {
                id.unwrap_or_else(|| {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        bbox: *b,
                        velocity: (0.0, 0.0),
                        last_seen_ms: at_ms,
                        first_seen_ms: at_ms,
                    });
                    id
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(x: f32, y: f32) -> BoundingBox {
        BoundingBox {
            x,
            y,
            width: 0.06,
            height: 0.2,
        }
    }

    #[test]
    fn a_walking_person_keeps_one_id() {
        let mut t = Tracker::new(5_000);
        let ids: Vec<u64> = (0..20)
            .map(|i| t.update(&[person(0.1 + 0.01 * i as f32, 0.4)], i * 200)[0])
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn someone_new_gets_a_new_id_and_someone_gone_is_forgotten_after_the_max_age() {
        let mut t = Tracker::new(1_000);
        let a = t.update(&[person(0.1, 0.4)], 0)[0];
        let both = t.update(&[person(0.1, 0.4), person(0.7, 0.4)], 200);
        assert_eq!(both[0], a);
        assert_ne!(both[1], a, "a second person");
        t.update(&[person(0.7, 0.4)], 400);
        assert_eq!(t.tracks().len(), 2, "the first is still within the max age");
        t.update(&[person(0.7, 0.4)], 1_500);
        assert_eq!(t.tracks().len(), 1, "and forgotten after it");
        assert_ne!(
            t.update(&[person(0.1, 0.4)], 1_700)[0],
            a,
            "coming back later is a new track"
        );
    }

    #[test]
    fn an_occlusion_shorter_than_the_max_age_keeps_the_id() {
        let mut t = Tracker::new(2_000);
        let mut id = 0;
        for i in 0..5u64 {
            id = t.update(&[person(0.1 + 0.02 * i as f32, 0.4)], i * 200)[0];
        }
        // Hidden for 1.2 s (behind a pillar), still walking at the same pace.
        for i in 5..11u64 {
            t.update(&[], i * 200);
        }
        let back = t.update(&[person(0.1 + 0.02 * 11.0, 0.4)], 11 * 200)[0];
        assert_eq!(back, id, "prediction carried the track through the gap");
    }

    #[test]
    fn two_people_crossing_keep_their_ids() {
        let mut t = Tracker::new(5_000);
        let (mut left, mut right) = (0, 0);
        for i in 0..30u64 {
            let f = i as f32;
            // One walks right, one walks left, crossing in the middle at i = 15.
            let ids = t.update(
                &[person(0.2 + 0.02 * f, 0.40), person(0.8 - 0.02 * f, 0.42)],
                i * 200,
            );
            if i == 0 {
                (left, right) = (ids[0], ids[1]);
            }
            assert_eq!(ids, vec![left, right], "frame {i}");
        }
    }
}

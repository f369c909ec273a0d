//! Greedy non-maximum suppression, per class.

/// A candidate box in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Index into the caller's class list.
    pub class: usize,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Candidate {
    fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    fn iou(&self, o: &Candidate) -> f32 {
        let w = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let h = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = w * h;
        inter / (self.area() + o.area() - inter + 1e-9)
    }
}

/// Keep the best box of each cluster overlapping by `iou` or more, per class;
/// the result is sorted by score, best first (ties keep their input order).
pub fn nms(mut candidates: Vec<Candidate>, iou: f32) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Candidate> = Vec::new();
    for c in candidates {
        if keep.iter().all(|k| k.class != c.class || k.iou(&c) < iou) {
            keep.push(c);
        }
    }
    keep
}

/// The candidates left after suppression, as found boxes of `class`.
pub fn suppress(
    candidates: Vec<Candidate>,
    iou: f32,
    class: panoptes_shared::domain::scene::DetectClass,
) -> Vec<super::Found> {
    nms(candidates, iou)
        .into_iter()
        .map(|c| super::Found {
            class,
            score: c.score,
            x1: c.x1,
            y1: c.y1,
            x2: c.x2,
            y2: c.y2,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(class: usize, score: f32, x1: f32) -> Candidate {
        Candidate {
            class,
            score,
            x1,
            y1: 0.0,
            x2: x1 + 10.0,
            y2: 10.0,
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_collapse_to_the_best() {
        let kept = nms(
            vec![cand(0, 0.5, 1.0), cand(0, 0.9, 0.0), cand(0, 0.7, 30.0)],
            0.5,
        );
        assert_eq!(kept, vec![cand(0, 0.9, 0.0), cand(0, 0.7, 30.0)]);
    }

    #[test]
    fn other_classes_are_not_suppressed() {
        let kept = nms(vec![cand(0, 0.9, 0.0), cand(1, 0.8, 0.0)], 0.5);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn boxes_just_below_the_threshold_both_stay() {
        // Overlap 5 of 10 px: IoU = 50 / 150 = 0.33.
        assert_eq!(
            nms(vec![cand(0, 0.9, 0.0), cand(0, 0.8, 5.0)], 0.34).len(),
            2
        );
        assert_eq!(
            nms(vec![cand(0, 0.9, 0.0), cand(0, 0.8, 5.0)], 0.33).len(),
            1
        );
    }
}

//! Detector accuracy against hand-labelled boxes: matching at IoU 0.5,
//! precision, recall and average precision, and the per-frame counting error
//! (people in the frame, people in a zone) at a confidence threshold. Used by
//! the accuracy test and the `accuracy-report` benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::polygon::Polygon;
use serde::Deserialize;

use super::Found;
use crate::analytics::dwell::footpoint;

/// `[x1, y1, x2, y2]` in frame pixels.
pub type Rect = [f32; 4];

/// Overlap at which a detection matches a labelled person.
pub const MATCH_IOU: f32 = 0.5;

pub fn iou(a: &Rect, b: &Rect) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &Rect| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    inter / (area(a) + area(b) - inter + 1e-9)
}

/// One frame: the labelled people and what the detector found (with scores).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub truth: Vec<Rect>,
    pub found: Vec<(f32, Rect)>,
    /// The zone whose people are counted too (normalised points), if any.
    pub zone: Option<Polygon>,
}

impl Frame {
    /// What a detector `found` on a labelled `image` of `set` (`width` x
    /// `height` pixels), against its labels and its source's zone. Where the
    /// source's people were labelled down to a height only (`minHeight`),
    /// shorter detections are left out, as the Caltech pedestrian benchmark
    /// does: a figure too small to be labelled is neither a hit nor a false
    /// alarm, and is not counted.
    pub fn of(
        image: &Labelled,
        set: &LabelledSet,
        width: u32,
        height: u32,
        found: &[Found],
    ) -> Self {
        Self {
            width,
            height,
            truth: image.people.clone(),
            found: found
                .iter()
                .filter(|f| f.y2 - f.y1 >= set.min_height(&image.source))
                .map(|f| (f.score, [f.x1, f.y1, f.x2, f.y2]))
                .collect(),
            zone: set.zones.get(&image.source).cloned(),
        }
    }
}

/// Whether each detection (in the given order) is a true positive: greedy
/// matching by descending score, each labelled person matched at most once,
/// as VOC and COCO do. A detection's match does not depend on the
/// lower-scored ones, so thresholding afterwards is consistent.
pub fn true_positives(found: &[(f32, Rect)], truth: &[Rect]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by(|&a, &b| found[b].0.total_cmp(&found[a].0));
    let mut taken = vec![false; truth.len()];
    let mut tp = vec![false; found.len()];
    for i in order {
        let best = truth
            .iter()
            .enumerate()
            .filter(|(t, _)| !taken[*t])
            .map(|(t, r)| (t, iou(&found[i].1, r)))
            .filter(|(_, o)| *o >= MATCH_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((t, _)) = best {
            taken[t] = true;
            tp[i] = true;
        }
    }
    tp
}

/// Every detection of `frames` as `(score, is a labelled person)`: what
/// precision-recall curves and calibration fits rank.
pub fn ranked(frames: &[Frame]) -> Vec<(f32, bool)> {
    frames
        .iter()
        .flat_map(|f| {
            let tp = true_positives(&f.found, &f.truth);
            f.found
                .iter()
                .zip(tp)
                .map(|(d, t)| (d.0, t))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Scores at one threshold over a set of frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtThreshold {
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
    /// Mean absolute and mean signed error of the people counted per frame.
    pub count_mae: f64,
    pub count_bias: f64,
    /// The same for the people standing in the zone.
    pub zone_mae: f64,
    pub zone_bias: f64,
}

/// Everything the report gives for one model on one set of frames.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub frames: usize,
    pub people: usize,
    pub people_in_zone: usize,
    /// Average precision at IoU 0.5 (all-point interpolation), over every
    /// detection the model returned.
    pub average_precision: f64,
    pub by_threshold: Vec<AtThreshold>,
}

pub fn evaluate(frames: &[Frame], thresholds: &[f32]) -> Evaluation {
    let matched: Vec<Vec<bool>> = frames
        .iter()
        .map(|f| true_positives(&f.found, &f.truth))
        .collect();
    let people: usize = frames.iter().map(|f| f.truth.len()).sum();
    // Where a person stands, normalised as the detect role does: the zone
    // test the analytics role makes.
    let in_zone = |f: &Frame, r: &Rect| {
        f.zone.as_ref().is_some_and(|z| {
            z.contains(footpoint(&BoundingBox::from_corners(
                r[0], r[1], r[2], r[3], f.width, f.height,
            )))
        })
    };
    let truth_in_zone: Vec<usize> = frames
        .iter()
        .map(|f| f.truth.iter().filter(|r| in_zone(f, r)).count())
        .collect();
    let people_in_zone = truth_in_zone.iter().sum();
    let by_threshold = thresholds
        .iter()
        .map(|&t| {
            let (mut tp, mut kept) = (0usize, 0usize);
            let (mut abs, mut signed, mut zabs, mut zsigned) = (0.0, 0.0, 0.0, 0.0);
            for ((f, m), &theirs) in frames.iter().zip(&matched).zip(&truth_in_zone) {
                let above: Vec<usize> = (0..f.found.len()).filter(|&i| f.found[i].0 >= t).collect();
                kept += above.len();
                tp += above.iter().filter(|&&i| m[i]).count();
                let err = above.len() as f64 - f.truth.len() as f64;
                abs += err.abs();
                signed += err;
                let ours = above.iter().filter(|&&i| in_zone(f, &f.found[i].1)).count();
                let zerr = ours as f64 - theirs as f64;
                zabs += zerr.abs();
                zsigned += zerr;
            }
            let n = frames.len().max(1) as f64;
            AtThreshold {
                threshold: t,
                precision: if kept == 0 {
                    1.0
                } else {
                    tp as f64 / kept as f64
                },
                recall: tp as f64 / people.max(1) as f64,
                count_mae: abs / n,
                count_bias: signed / n,
                zone_mae: zabs / n,
                zone_bias: zsigned / n,
            }
        })
        .collect();
    let mut scored: Vec<(f32, bool)> = frames
        .iter()
        .zip(&matched)
        .flat_map(|(f, m)| f.found.iter().zip(m).map(|(d, &tp)| (d.0, tp)))
        .collect();
    Evaluation {
        frames: frames.len(),
        people,
        people_in_zone,
        average_precision: average_precision(&mut scored, people),
        by_threshold,
    }
}

/// Area under the precision-recall curve with precision made monotone
/// (the VOC 2010+ all-point interpolation).
pub fn average_precision(scored: &mut [(f32, bool)], positives: usize) -> f64 {
    if positives == 0 {
        return 0.0;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = Vec::with_capacity(scored.len());
    let mut tp = 0usize;
    for (i, (_, hit)) in scored.iter().enumerate() {
        tp += usize::from(*hit);
        points.push((tp as f64 / positives as f64, tp as f64 / (i + 1) as f64));
    }
    let mut ap = 0.0;
    let mut best = 0.0f64;
    let mut prev_recall = points.last().map_or(0.0, |p| p.0);
    for &(recall, precision) in points.iter().rev() {
        ap += (prev_recall - recall) * best;
        best = best.max(precision);
        prev_recall = recall;
    }
    ap + prev_recall * best
}

/// Which part of the labelled set an image belongs to: calibration is
/// fitted on `fit`; the accuracy check reports `test` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Fit,
    Test,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelFile {
    zones: BTreeMap<String, Vec<Vec<f64>>>,
    /// Per source: people shorter than this (pixels) were not labelled.
    #[serde(default)]
    min_height: BTreeMap<String, f32>,
    images: BTreeMap<String, LabelledImage>,
}

#[derive(Deserialize)]
struct LabelledImage {
    split: Split,
    people: Vec<Rect>,
}

/// One labelled image of the evaluation set (`tests/accuracy`).
#[derive(Debug, Clone)]
pub struct Labelled {
    /// `<source>/<file>`, relative to the set's `images/`.
    pub name: String,
    pub path: PathBuf,
    pub source: String,
    pub split: Split,
    pub people: Vec<Rect>,
}

/// The evaluation set: labelled images and each source's zone.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    pub images: Vec<Labelled>,
    pub zones: BTreeMap<String, Polygon>,
    /// Per source: the height (pixels) people were labelled down to.
    pub min_heights: BTreeMap<String, f32>,
}

impl LabelledSet {
    /// `dir/labels.json` and the images under `dir/images/`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("labels.json");
        let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: LabelFile =
            serde_json::from_slice(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        let zones = file
            .zones
            .iter()
            .map(|(source, points)| {
                Polygon::parse(points)
                    .map(|p| (source.clone(), p))
                    .map_err(|e| format!("zone of {source}: {e:?}"))
            })
            .collect::<Result<_, _>>()?;
        let images = file
            .images
            .into_iter()
            .map(|(name, image)| Labelled {
                path: dir.join("images").join(&name),
                source: name.split('/').next().unwrap_or_default().to_owned(),
                name,
                split: image.split,
                people: image.people,
            })
            .collect();
        Ok(Self {
            images,
            zones,
            min_heights: file.min_height,
        })
    }

    /// The height people of `source` were labelled down to (0: all).
    pub fn min_height(&self, source: &str) -> f32 {
        self.min_heights.get(source).copied().unwrap_or(0.0)
    }

    /// The images of one split.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &Labelled> {
        self.images.iter().filter(move |i| i.split == split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: f32) -> Rect {
        [x, 0.0, x + 10.0, 20.0]
    }

    #[test]
    fn a_duplicate_is_a_false_positive_and_the_better_score_takes_the_match() {
        let found = [(0.5, r(0.0)), (0.9, r(1.0)), (0.8, r(40.0))];
        assert_eq!(true_positives(&found, &[r(0.0)]), [false, true, false]);
    }

    #[test]
    fn average_precision_of_known_rankings() {
        assert_eq!(average_precision(&mut [(0.9, true), (0.8, true)], 2), 1.0);
        // hit, miss, hit of 2: precision 1 up to recall 0.5, then 2/3.
        let ap = average_precision(&mut [(0.9, true), (0.8, false), (0.7, true)], 2);
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-9, "{ap}");
        // Half the people never found: recall stops at 0.5.
        assert_eq!(average_precision(&mut [(0.9, true)], 2), 0.5);
    }

    #[test]
    fn counts_in_the_frame_and_in_the_zone_by_threshold() {
        let zone = Polygon::parse(&[
            vec![0.0, 0.0],
            vec![0.5, 0.0],
            vec![0.5, 1.0],
            vec![0.0, 1.0],
        ])
        .unwrap();
        let frame = Frame {
            width: 100,
            height: 100,
            truth: vec![r(0.0), r(60.0)],
            found: vec![(0.9, r(0.0)), (0.3, r(60.0)), (0.7, r(30.0))],
            zone: Some(zone),
        };
        let e = evaluate(&[frame], &[0.2, 0.5]);
        assert_eq!((e.people, e.people_in_zone), (2, 1));
        let [low, high] = [e.by_threshold[0], e.by_threshold[1]];
        assert_eq!((low.precision, low.recall), (2.0 / 3.0, 1.0));
        assert_eq!((low.count_bias, low.zone_bias), (1.0, 1.0));
        assert_eq!((high.precision, high.recall), (0.5, 0.5));
        assert_eq!((high.count_mae, high.count_bias), (0.0, 0.0));
    }
}

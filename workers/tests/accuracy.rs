//! Counting accuracy of the shipped detector as the service runs it
//! (calibrated scores, the scenes' default `confidenceThreshold` 0.6) on the
//! held-out part of the labelled evaluation set (`tests/accuracy`, split
//! `test`; the calibrations are fitted on the `fit` split only): NanoDet-m at
//! the default input size (`detector.input_size = "auto"`: 448x576) and at
//! its fastest (416x416). The full table by model, size and threshold:
//! `bash tests/bench/accuracy.sh`.

mod common;

use panoptes_shared::domain::scene::DetectClass;
use panoptes_workers::image::decode_jpeg;
use panoptes_workers::inference::Wanted;
use panoptes_workers::inference::engine::{Engine, FrameIn, InputSize, ModelKind};
use panoptes_workers::inference::evaluate::{Frame, LabelledSet, Split, evaluate};

/// What the held-out frames must keep to (counts in people per frame).
struct Bounds {
    max_count_bias: f64,
    max_count_mae: f64,
    max_zone_mae: f64,
    min_precision: f64,
    min_recall: f64,
    min_average_precision: f64,
    /// On the `vtest` frames alone (the pedestrian clip).
    min_vtest_precision: f64,
    max_vtest_count_bias: f64,
}

/// Held-out frames of `source` (all when `None`), as `engine` sees them.
fn held_out(engine: &Engine, set: &LabelledSet, source: Option<&str>) -> Vec<Frame> {
    set.split(Split::Test)
        .filter(|image| source.is_none_or(|s| image.source == s))
        .map(|image| {
            let rgb = decode_jpeg(&std::fs::read(&image.path).unwrap()).unwrap();
            let (mut results, _) = engine
                .detect(&[FrameIn {
                    frame: &rgb,
                    wanted: Wanted {
                        class: DetectClass::Person,
                        min_confidence: 0.01,
                    },
                }])
                .unwrap();
            let found = results.pop().unwrap().unwrap();
            Frame::of(image, set, rgb.width as u32, rgb.height as u32, &found)
        })
        .collect()
}

fn check(engine: &Engine, bounds: &Bounds) {
    let set = LabelledSet::load(&common::root().join("tests/accuracy")).unwrap();
    let size = engine.input_size();
    let frames = held_out(engine, &set, None);
    assert!(frames.len() >= 60, "held-out frames: {}", frames.len());
    let e = evaluate(&frames, &[0.6]);
    let a = e.by_threshold[0];
    let v = evaluate(&held_out(engine, &set, Some("vtest")), &[0.6]).by_threshold[0];
    println!(
        "{size}: held out: {} frames, {} people ({} in zones); AP@0.5 {:.3}; at 0.6: precision {:.3}, recall {:.3}, count MAE {:.2} bias {:+.2}, zone MAE {:.2} bias {:+.2}; vtest alone: precision {:.3}, recall {:.3}, count bias {:+.2}",
        e.frames,
        e.people,
        e.people_in_zone,
        e.average_precision,
        a.precision,
        a.recall,
        a.count_mae,
        a.count_bias,
        a.zone_mae,
        a.zone_bias,
        v.precision,
        v.recall,
        v.count_bias,
    );
    assert!(
        a.count_bias.abs() <= bounds.max_count_bias,
        "{size}: count bias {:+.3}",
        a.count_bias
    );
    assert!(
        a.count_mae <= bounds.max_count_mae,
        "{size}: count MAE {:.3}",
        a.count_mae
    );
    assert!(
        a.zone_mae <= bounds.max_zone_mae,
        "{size}: zone MAE {:.3}",
        a.zone_mae
    );
    assert!(
        a.precision >= bounds.min_precision,
        "{size}: precision {:.3}",
        a.precision
    );
    assert!(
        a.recall >= bounds.min_recall,
        "{size}: recall {:.3}",
        a.recall
    );
    assert!(
        e.average_precision >= bounds.min_average_precision,
        "{size}: AP {:.3}",
        e.average_precision
    );
    assert!(
        v.precision >= bounds.min_vtest_precision,
        "{size}: vtest precision {:.3}",
        v.precision
    );
    assert!(
        v.count_bias.abs() <= bounds.max_vtest_count_bias,
        "{size}: vtest count bias {:+.3}",
        v.count_bias
    );
}

/// The default. Measured 2026-12-07 on the 80 held-out images: count bias
/// +0.04, MAE 0.86, zone MAE 0.24, precision 0.855, recall 0.860, AP 0.905;
/// vtest alone precision 0.898, recall 0.908, bias +0.08. A miscalibrated
/// model (raw scores at 0.6: bias -2.27), the wrong calibration file for the
/// size, or a regression in decoding, boxes or zones leaves these bounds.
#[test]
fn held_out_counts_are_unbiased_at_the_default_threshold_and_input_size() {
    let engine = common::nanodet_calibrated();
    assert_eq!(engine.input_size(), InputSize::ACCURATE);
    check(
        &engine,
        &Bounds {
            max_count_bias: 0.15,
            max_count_mae: 1.0,
            max_zone_mae: 0.35,
            min_precision: 0.83,
            min_recall: 0.83,
            min_average_precision: 0.89,
            min_vtest_precision: 0.88,
            max_vtest_count_bias: 0.15,
        },
    );
}

/// The fastest size (`detector.input_size = "416x416"`). Measured: count
/// bias -0.12, MAE 1.05, zone MAE 0.30, precision 0.840, recall 0.825, AP
/// 0.889; vtest alone precision 0.875, bias +0.15.
#[test]
fn held_out_counts_are_unbiased_at_the_fastest_input_size() {
    let engine = common::load_sized(
        ModelKind::NanoDet,
        common::root().join("workers/models/nanodet-m-416.onnx"),
        true,
        Some(InputSize::parse("416x416").unwrap()),
    );
    check(
        &engine,
        &Bounds {
            max_count_bias: 0.25,
            max_count_mae: 1.2,
            max_zone_mae: 0.45,
            min_precision: 0.8,
            min_recall: 0.78,
            min_average_precision: 0.85,
            min_vtest_precision: 0.85,
            max_vtest_count_bias: 0.3,
        },
    );
}

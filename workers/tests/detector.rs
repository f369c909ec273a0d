//! The detector against the Python onnxruntime reference pipeline
//! (`fixtures/reference.py`) on frames of the pedestrian clip, and the YOLO
//! adapter against a model with known outputs.

mod common;

use panoptes_shared::domain::scene::DetectClass;
use panoptes_workers::image::decode_jpeg;
use panoptes_workers::inference::engine::{FrameIn, ModelKind, Provider};
use panoptes_workers::inference::{Found, Wanted};
use serde_json::Value;

const PEOPLE: Wanted = Wanted {
    class: DetectClass::Person,
    min_confidence: 0.4,
};

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("reference.json")).unwrap(),
    )
    .unwrap()
}

fn assert_matches(name: &str, ours: &[Found], theirs: &[Value]) {
    assert_eq!(ours.len(), theirs.len(), "{name}: {ours:?} vs {theirs:?}");
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        let score = t["score"].as_f64().unwrap() as f32;
        assert!(
            (o.score - score).abs() <= 1e-3,
            "{name} #{i}: score {} vs {score}",
            o.score
        );
        let b: Vec<f32> = t["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        for (mine, ref_) in [o.x1, o.y1, o.x2, o.y2].iter().zip(&b) {
            assert!(
                (mine - ref_).abs() <= 1.0,
                "{name} #{i}: box {o:?} vs {b:?}"
            );
        }
        assert_eq!(o.class, DetectClass::Person);
    }
}

#[test]
fn nanodet_finds_the_people_the_python_reference_finds_one_frame_at_a_time() {
    let engine = common::nanodet();
    assert_eq!(engine.provider(), Provider::Cpu);
    let reference = reference();
    let frames = reference["frames"].as_object().unwrap();
    assert_eq!(frames.len(), 6);
    let mut people = 0;
    for (name, expected) in frames {
        let jpeg = std::fs::read(common::fixtures().join("frames").join(name)).unwrap();
        let frame = decode_jpeg(&jpeg).unwrap();
        assert_eq!((frame.width, frame.height), (768, 576));
        let (results, timings) = engine
            .detect(&[FrameIn {
                frame: &frame,
                wanted: PEOPLE,
            }])
            .unwrap();
        assert!(timings.inference_ms > 0.0);
        let found = results.into_iter().next().unwrap().unwrap();
        assert_matches(name, &found, expected.as_array().unwrap());
        people += found.len();
    }
    assert!(people >= 30, "the clip's walkers are found: {people}");
}

#[test]
fn a_batch_gives_what_single_frames_give() {
    let engine = common::nanodet();
    let reference = reference();
    let frames = reference["frames"].as_object().unwrap();
    let decoded: Vec<_> = frames
        .keys()
        .map(|n| {
            decode_jpeg(&std::fs::read(common::fixtures().join("frames").join(n)).unwrap()).unwrap()
        })
        .collect();
    let batch: Vec<FrameIn<'_>> = decoded
        .iter()
        .map(|f| FrameIn {
            frame: f,
            wanted: PEOPLE,
        })
        .collect();
    let (results, _) = engine.detect(&batch).unwrap();
    for ((name, expected), found) in frames.iter().zip(results) {
        assert_matches(name, &found.unwrap(), expected.as_array().unwrap());
    }
}

#[test]
fn the_scene_threshold_and_class_filter_what_is_returned() {
    let engine = common::nanodet();
    let jpeg = std::fs::read(common::fixtures().join("frames/vtest-200.jpg")).unwrap();
    let frame = decode_jpeg(&jpeg).unwrap();
    let run = |wanted| {
        engine
            .detect(&[FrameIn {
                frame: &frame,
                wanted,
            }])
            .unwrap()
            .0
            .remove(0)
            .unwrap()
    };
    let loose = run(PEOPLE);
    let strict = run(Wanted {
        class: DetectClass::Person,
        min_confidence: 0.7,
    });
    assert!(strict.len() < loose.len() && !strict.is_empty());
    assert!(strict.iter().all(|f| f.score >= 0.7));
    let vehicles = run(Wanted {
        class: DetectClass::Vehicle,
        min_confidence: 0.4,
    });
    assert!(vehicles.iter().all(|f| f.class == DetectClass::Vehicle));
    assert!(
        vehicles
            .iter()
            .all(|v| loose.iter().all(|p| (p.x1, p.y1) != (v.x1, v.y1))),
        "vehicle boxes come from vehicle scores, not the people's"
    );
}

/// Calibration maps scores, never boxes: the calibrated engine at a scene
/// threshold returns exactly the raw engine's boxes above the raw score that
/// threshold stands for, with calibrated confidences; the shipped SSD option
/// loads through its adapter and finds the walkers too.
#[test]
fn calibrated_confidences_keep_the_boxes_and_the_ssd_option_finds_people() {
    let jpeg = std::fs::read(common::fixtures().join("frames/vtest-200.jpg")).unwrap();
    let frame = decode_jpeg(&jpeg).unwrap();
    let run = |engine: &panoptes_workers::inference::engine::Engine, min_confidence| {
        engine
            .detect(&[FrameIn {
                frame: &frame,
                wanted: Wanted {
                    class: DetectClass::Person,
                    min_confidence,
                },
            }])
            .unwrap()
            .0
            .remove(0)
            .unwrap()
    };
    for (kind, file) in [
        (ModelKind::NanoDet, "nanodet-m-416.onnx"),
        (ModelKind::Ssd, "ssdlite-mobilenet-v2-coco.onnx"),
    ] {
        let path = common::root().join("workers/models").join(file);
        let raw = common::load(kind, path.clone(), false);
        let calibrated = common::load(kind, path, true);
        let c = calibrated.calibration().clone();
        assert!(
            c.unbiased_raw.is_some(),
            "{file} ships a fitted calibration"
        );
        let ours = run(&calibrated, 0.6);
        let theirs = run(&raw, c.raw_threshold(0.6));
        assert_eq!(ours.len(), theirs.len(), "{file}");
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!((o.x1, o.y1, o.x2, o.y2), (t.x1, t.y1, t.x2, t.y2));
            assert!((o.score - c.confidence(t.score)).abs() < 1e-6);
            assert!(o.score >= 0.6);
            assert!(o.x1 >= 0.0 && o.x2 <= 768.5 && o.y1 >= 0.0 && o.y2 <= 576.5 && o.x1 < o.x2);
        }
        // Frame 200 has 7 walkers (at this threshold NanoDet adds a cone and
        // a duplicate on the tight pair at the top right).
        assert!(
            (5..=10).contains(&ours.len()),
            "{file}: {} people at the default threshold",
            ours.len()
        );
    }
}

#[test]
fn nanodet_runs_at_another_input_size_with_its_own_calibration() {
    use panoptes_workers::inference::engine::{InputSize, input_size};
    let jpeg = std::fs::read(common::fixtures().join("frames/vtest-200.jpg")).unwrap();
    let frame = decode_jpeg(&jpeg).unwrap();
    let path = common::root().join("workers/models/nanodet-m-416.onnx");
    let own = common::load_sized(ModelKind::NanoDet, path.clone(), true, None);
    let accurate = common::load_sized(
        ModelKind::NanoDet,
        path.clone(),
        true,
        Some(InputSize::ACCURATE),
    );
    assert_eq!(own.input_size().to_string(), "416x416");
    assert_eq!(accurate.input_size(), InputSize::ACCURATE);
    assert!(
        own.calibration_file()
            .ends_with("nanodet-m-416.calibration.json")
    );
    assert!(
        accurate
            .calibration_file()
            .ends_with("nanodet-m-416.448x576.calibration.json")
    );
    // Each size has its own fitted calibration (scores shift with the size).
    let (a, b) = (own.calibration(), accurate.calibration());
    assert!(a.unbiased_raw.is_some() && b.unbiased_raw.is_some());
    assert_ne!(a, b);
    let wanted = Wanted {
        class: DetectClass::Person,
        min_confidence: 0.6,
    };
    let found = accurate
        .detect(&[FrameIn {
            frame: &frame,
            wanted,
        }])
        .unwrap()
        .0
        .remove(0)
        .unwrap();
    // Frame 200 has 7 walkers; boxes come back in frame pixels.
    assert!((6..=9).contains(&found.len()), "{} people", found.len());
    for f in &found {
        assert!(f.x1 >= 0.0 && f.x2 <= 768.5 && f.y1 >= 0.0 && f.y2 <= 576.5 && f.x1 < f.x2);
        assert!(f.score >= 0.6);
    }
    // `auto`: the accurate size for NanoDet, the model's own for the others.
    assert_eq!(
        input_size("auto", ModelKind::NanoDet),
        Some(InputSize::ACCURATE)
    );
    assert_eq!(input_size("auto", ModelKind::Ssd), None);
    assert_eq!(
        input_size("416x416", ModelKind::NanoDet).map(|s| s.to_string()),
        Some("416x416".into())
    );
}

#[test]
fn a_model_with_a_fixed_input_refuses_another_size() {
    use panoptes_workers::inference::engine::{Engine, EngineOptions, InputSize};
    let err = Engine::load(&EngineOptions {
        model: ModelKind::Ssd,
        model_path: common::root().join("workers/models/ssdlite-mobilenet-v2-coco.onnx"),
        library: Some(common::ort_library()),
        provider: Provider::Cpu,
        threads: 1,
        iou: 0.5,
        calibrated: true,
        input_size: Some(InputSize::ACCURATE),
    })
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("fixed at 300x300") && err.contains("448x576"),
        "{err}"
    );
}

#[test]
fn the_yolo_adapter_maps_letterboxed_boxes_back_to_the_frame() {
    let engine = common::engine(
        ModelKind::Yolo,
        common::fixtures().join("yolo-format-test.onnx"),
    );
    assert_eq!(engine.adapter().input_size(), (640, 640));
    let frame = panoptes_workers::image::Rgb {
        width: 1280,
        height: 720,
        pixels: vec![90; 1280 * 720 * 3],
    };
    let frames = [
        FrameIn {
            frame: &frame,
            wanted: Wanted {
                class: DetectClass::Person,
                min_confidence: 0.5,
            },
        },
        FrameIn {
            frame: &frame,
            wanted: Wanted {
                class: DetectClass::Vehicle,
                min_confidence: 0.5,
            },
        },
    ];
    let (results, _) = engine.detect(&frames).unwrap();
    let people = results[0].as_ref().unwrap();
    // (320, 320, 100, 200) in the 640 input: scale 0.5, 140 px of padding on top.
    assert_eq!(
        people.len(),
        1,
        "duplicate suppressed, low score and dog dropped: {people:?}"
    );
    let p = people[0];
    assert!((p.score - 0.9).abs() < 1e-6);
    for (got, want) in [(p.x1, 540.0), (p.y1, 160.0), (p.x2, 740.0), (p.y2, 560.0)] {
        assert!((got - want).abs() < 1e-3, "{p:?}");
    }
    let vehicles = results[1].as_ref().unwrap();
    assert_eq!(
        vehicles.len(),
        1,
        "car and truck boxes of one vehicle merge: {vehicles:?}"
    );
    assert!((vehicles[0].score - 0.7).abs() < 1e-6 && vehicles[0].class == DetectClass::Vehicle);
}

#[test]
fn a_missing_model_or_library_is_a_clear_error() {
    use panoptes_workers::inference::engine::{Engine, EngineOptions};
    let err = Engine::load(&EngineOptions {
        model: ModelKind::NanoDet,
        model_path: "/nonexistent/model.onnx".into(),
        library: Some(common::ort_library()),
        provider: Provider::Cpu,
        threads: 1,
        iou: 0.5,
        calibrated: true,
        input_size: None,
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
}

#[test]
fn cuda_falls_back_to_cpu_where_there_is_no_gpu() {
    // The CPU wheel has no CUDA provider: registering it fails, the engine warns
    // and runs on CPU. (On a GPU machine, tests/bench/detect_gpu.sh checks CUDA.)
    let engine = panoptes_workers::inference::engine::Engine::load(
        &panoptes_workers::inference::engine::EngineOptions {
            model: ModelKind::NanoDet,
            model_path: common::root().join("workers/models/nanodet-m-416.onnx"),
            library: Some(common::ort_library()),
            provider: Provider::Cuda { device: 0 },
            threads: 1,
            iou: 0.5,
            calibrated: true,
            input_size: None,
        },
    )
    .unwrap();
    assert_eq!(engine.provider(), Provider::Cpu);
}

#[test]
fn people_keep_their_track_ids_over_consecutive_frames() {
    use panoptes_shared::domain::detection::BoundingBox;
    use panoptes_workers::analytics::tracker::Tracker;
    // Frames 200..=205 of vtest.avi, 100 ms apart.
    let engine = common::nanodet();
    let mut paths = vec![common::fixtures().join("frames/vtest-200.jpg")];
    paths.extend((201..=205).map(|n| common::fixtures().join(format!("sequence/vtest-{n}.jpg"))));
    let mut tracker = Tracker::new(5_000);
    let (mut previous, mut kept, mut later, mut most) = (Vec::new(), 0, 0, 0);
    let mut all = std::collections::BTreeSet::new();
    for (i, path) in paths.iter().enumerate() {
        let frame = decode_jpeg(&std::fs::read(path).unwrap()).unwrap();
        let found = engine
            .detect(&[FrameIn {
                frame: &frame,
                wanted: PEOPLE,
            }])
            .unwrap()
            .0
            .remove(0)
            .unwrap();
        let boxes: Vec<BoundingBox> = found
            .iter()
            .map(|f| BoundingBox::from_corners(f.x1, f.y1, f.x2, f.y2, 768, 576))
            .collect();
        let ids = tracker.update(&boxes, i as u64 * 100);
        if i > 0 {
            later += ids.len();
            kept += ids.iter().filter(|id| previous.contains(*id)).count();
        }
        most = most.max(ids.len());
        all.extend(ids.iter().copied());
        previous = ids;
    }
    assert!(later >= 25, "people in frames 201-205: {later}");
    assert!(
        kept * 10 >= later * 8,
        "{kept} of {later} detections kept the previous frame's id"
    );
    assert!(
        all.len() <= most + 3,
        "{} ids for at most {most} people a frame",
        all.len()
    );
}

//! Detector accuracy on the labelled evaluation set (`tests/accuracy`):
//! precision, recall, AP@0.5 and the per-frame counting error (people in the
//! frame, people in the zone) by confidence threshold, per model, with raw
//! and calibrated scores, and frames/s on the same frames. `--fit` first fits
//! each model's calibration on the `fit` split and writes it beside the model.
//!   accuracy-report [--model nanodet=workers/models/nanodet-m-416.onnx ...]
//!                   [--model nanodet@448x576=workers/models/nanodet-m-416.onnx]
//!                   [--split test|fit|all] [--fit] [--json OUT]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use panoptes_shared::domain::scene::DetectClass;
use panoptes_workers::image::decode_jpeg;
use panoptes_workers::inference::Wanted;
use panoptes_workers::inference::calibration::Calibration;
use panoptes_workers::inference::engine::{
    Engine, EngineOptions, FrameIn, InputSize, ModelKind, Provider,
};
use panoptes_workers::inference::evaluate::{
    Evaluation, Frame, LabelledSet, Split, evaluate, ranked,
};
use serde_json::json;

mod sequence;

#[derive(Parser)]
struct Args {
    /// The evaluation set: `labels.json` and `images/`.
    #[arg(long, default_value = "tests/accuracy")]
    set: PathBuf,
    /// `kind[@HxW]=path` of a model to evaluate (repeat for several); `kind`
    /// is a `detector.model` value, `HxW` a `detector.input_size` (default:
    /// the model's own).
    #[arg(long = "model", default_values_t = ["nanodet=workers/models/nanodet-m-416.onnx".to_string()])]
    models: Vec<String>,
    /// Which images to report: `test` (held out), `fit` or `all`.
    #[arg(long, default_value = "test")]
    split: String,
    /// Fit each model's calibration on the `fit` split and store it beside the model.
    #[arg(long)]
    fit: bool,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// libonnxruntime; default ORT_DYLIB_PATH.
    #[arg(long)]
    library: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// vtest.avi: also run the first model on every frame of the clip and
    /// compare counting boxes with counting confirmed tracks at the
    /// labelled frames (the scenes' default threshold).
    #[arg(long)]
    sequence: Option<PathBuf>,
}

const THRESHOLDS: [f32; 7] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/// Every candidate down to this raw score is kept, for AP and re-thresholding.
const FLOOR: f32 = 0.05;

struct Detected {
    split: Split,
    source: String,
    frame: Frame,
    ms: f64,
}

fn detect_all(engine: &Engine, set: &LabelledSet) -> anyhow::Result<Vec<Detected>> {
    let mut out = Vec::with_capacity(set.images.len());
    for image in &set.images {
        let jpeg = std::fs::read(&image.path).with_context(|| image.path.display().to_string())?;
        let started = Instant::now();
        let rgb = decode_jpeg(&jpeg).map_err(|e| anyhow::anyhow!("{}: {e}", image.name))?;
        let (mut results, _) = engine.detect(&[FrameIn {
            frame: &rgb,
            wanted: Wanted {
                class: DetectClass::Person,
                min_confidence: FLOOR,
            },
        }])?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let found = results
            .pop()
            .expect("one result per frame")
            .map_err(|e| anyhow::anyhow!("{}: {e}", image.name))?;
        out.push(Detected {
            split: image.split,
            source: image.source.clone(),
            frame: Frame::of(image, set, rgb.width as u32, rgb.height as u32, &found),
            ms,
        });
    }
    Ok(out)
}

fn calibrated(frames: &[&Detected], c: &Calibration) -> Vec<Frame> {
    frames
        .iter()
        .map(|d| Frame {
            found: d
                .frame
                .found
                .iter()
                .map(|(s, r)| (c.confidence(*s), *r))
                .collect(),
            ..d.frame.clone()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn print_rows(model: &str, scores: &str, e: &Evaluation) {
    for a in &e.by_threshold {
        println!(
            "| {model} | {scores} | {:.1} | {:.3} | {:.3} | {:.2} | {:+.2} | {:.2} | {:+.2} |",
            a.threshold, a.precision, a.recall, a.count_mae, a.count_bias, a.zone_mae, a.zone_bias
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let set = LabelledSet::load(&args.set).map_err(anyhow::Error::msg)?;
    let wanted: Vec<Split> = match args.split.as_str() {
        "test" => vec![Split::Test],
        "fit" => vec![Split::Fit],
        "all" => vec![Split::Fit, Split::Test],
        other => bail!("--split is test, fit or all, not {other}"),
    };
    let mut report = Vec::new();
    let mut speed = Vec::new();
    println!(
        "| model | scores | threshold | precision | recall | count MAE | count bias | zone MAE | zone bias |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for spec in &args.models {
        let model = ModelSpec::parse(spec)?;
        let engine = model.load(&args, false)?;
        let name = model.name();
        let detected = detect_all(&engine, &set)?;
        let calibration = if args.fit {
            let fit: Vec<&Detected> = detected.iter().filter(|d| d.split == Split::Fit).collect();
            let frames: Vec<Frame> = fit.iter().map(|d| d.frame.clone()).collect();
            let scored = ranked(&frames);
            let people = fit.iter().map(|d| d.frame.truth.len()).sum();
            let c = Calibration::fit(
                &scored,
                people,
                format!(
                    "tests/accuracy fit split: {} images, {people} people",
                    fit.len()
                ),
            );
            let out = engine.calibration_file();
            std::fs::write(out, serde_json::to_string_pretty(&c)? + "\n")?;
            eprintln!(
                "wrote {} (slope {:.3}, offset {:.3})",
                out.display(),
                c.slope,
                c.offset
            );
            c
        } else {
            Calibration::load(engine.calibration_file())?.unwrap_or_else(Calibration::identity)
        };
        let chosen: Vec<&Detected> = detected
            .iter()
            .filter(|d| wanted.contains(&d.split))
            .collect();
        let raw = evaluate(&calibrated(&chosen, &Calibration::identity()), &THRESHOLDS);
        let cal = evaluate(&calibrated(&chosen, &calibration), &THRESHOLDS);
        print_rows(&name, "raw", &raw);
        print_rows(&name, "calibrated", &cal);
        for source in set.zones.keys() {
            let part: Vec<&Detected> = chosen
                .iter()
                .copied()
                .filter(|d| &d.source == source)
                .collect();
            if part.is_empty() {
                continue;
            }
            let e = evaluate(&calibrated(&part, &calibration), &THRESHOLDS);
            print_rows(
                &format!(
                    "{name} ({source}, {} images, AP {:.3})",
                    e.frames, e.average_precision
                ),
                "calibrated",
                &e,
            );
        }
        let ms = median(detected.iter().map(|d| d.ms).collect());
        speed.push(format!(
            "{name}: AP@0.5 {:.3} on {} images ({} people, {} in zones); {ms:.1} ms/frame median, {:.1} frames/s (decode + detect, batch 1, {} threads, CPU)",
            raw.average_precision,
            raw.frames,
            raw.people,
            raw.people_in_zone,
            1000.0 / ms.max(1e-9),
            args.threads
        ));
        report.push(json!({
            "model": name,
            "averagePrecision": raw.average_precision,
            "frames": raw.frames,
            "people": raw.people,
            "msPerFrame": ms,
            "calibration": calibration,
            "raw": raw.by_threshold.iter().map(row).collect::<Vec<_>>(),
            "calibrated": cal.by_threshold.iter().map(row).collect::<Vec<_>>(),
        }));
    }
    println!();
    for line in &speed {
        println!("{line}");
    }
    if let Some(avi) = &args.sequence {
        let engine = ModelSpec::parse(&args.models[0])?.load(&args, true)?;
        println!();
        sequence::report(&engine, avi, &set, &wanted)?;
    }
    if let Some(out) = args.json {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// A `--model kind[@HxW]=path`.
struct ModelSpec {
    kind: ModelKind,
    size: Option<InputSize>,
    path: PathBuf,
}

impl ModelSpec {
    fn parse(spec: &str) -> anyhow::Result<Self> {
        let (kind, path) = spec
            .split_once('=')
            .with_context(|| format!("--model {spec}: expected kind[@HxW]=path"))?;
        let (kind, size) = match kind.split_once('@') {
            Some((kind, size)) => (
                kind,
                Some(InputSize::parse(size).map_err(anyhow::Error::msg)?),
            ),
            None => (kind, None),
        };
        Ok(Self {
            kind: kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            size,
            path: PathBuf::from(path),
        })
    }

    fn name(&self) -> String {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.size {
            Some(size) => format!("{stem} @{size}"),
            None => stem,
        }
    }

    fn load(&self, args: &Args, calibrated: bool) -> anyhow::Result<Engine> {
        Ok(Engine::load(&EngineOptions {
            model: self.kind,
            model_path: self.path.clone(),
            library: args.library.clone(),
            provider: Provider::Cpu,
            threads: args.threads,
            iou: 0.5,
            calibrated,
            input_size: self.size,
        })?)
    }
}

fn row(a: &panoptes_workers::inference::evaluate::AtThreshold) -> serde_json::Value {
    json!({
        "threshold": a.threshold,
        "precision": a.precision,
        "recall": a.recall,
        "countMae": a.count_mae,
        "countBias": a.count_bias,
        "zoneMae": a.zone_mae,
        "zoneBias": a.zone_bias,
    })
}

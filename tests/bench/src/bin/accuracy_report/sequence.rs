//! Counting from tracks instead of raw boxes, on the whole clip: every frame
//! of vtest.avi through the detector (calibrated, default threshold) and the
//! service's tracker; at each labelled frame, the count of boxes against the
//! count of confirmed tracks (seen in two frames or more) that were seen
//! within a coasting window, so a person missed for a frame still counts.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::polygon::{Point, Polygon};
use panoptes_shared::domain::scene::DetectClass;
use panoptes_workers::analytics::tracker::Tracker;
use panoptes_workers::image::Rgb;
use panoptes_workers::inference::Wanted;
use panoptes_workers::inference::engine::{Engine, FrameIn};
use panoptes_workers::inference::evaluate::{LabelledSet, Split};

const THRESHOLD: f32 = 0.6;
const FRAME_MS: u64 = 100;
const COASTS_MS: [u64; 4] = [0, 200, 500, 1000];

fn footpoint_in(zone: Option<&Polygon>, b: &BoundingBox) -> bool {
    zone.is_some_and(|z| {
        z.contains(Point {
            x: f64::from(b.x + b.width / 2.0),
            y: f64::from(b.y + b.height),
        })
    })
}

#[derive(Default)]
struct Errors {
    abs: f64,
    signed: f64,
    zabs: f64,
    zsigned: f64,
}

impl Errors {
    fn add(&mut self, ours: usize, truth: usize, zours: usize, ztruth: usize) {
        let (e, z) = (ours as f64 - truth as f64, zours as f64 - ztruth as f64);
        self.abs += e.abs();
        self.signed += e;
        self.zabs += z.abs();
        self.zsigned += z;
    }
}

pub fn report(
    engine: &Engine,
    avi: &Path,
    set: &LabelledSet,
    splits: &[Split],
) -> anyhow::Result<()> {
    let labelled: BTreeMap<u64, _> = set
        .images
        .iter()
        .filter(|i| i.source == "vtest" && splits.contains(&i.split))
        .filter_map(|i| {
            let n = i.name.strip_prefix("vtest/vtest-")?.strip_suffix(".jpg")?;
            Some((n.parse::<u64>().ok()?, i))
        })
        .collect();
    let zone = set.zones.get("vtest");
    let (w, h) = (768usize, 576usize);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(avi)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .context("ffmpeg (apt-get install ffmpeg)")?;
    let mut out = ffmpeg.stdout.take().context("ffmpeg stdout")?;
    let mut tracker = Tracker::new(5_000);
    let mut boxes_err = Errors::default();
    let mut tracks_err: Vec<Errors> = COASTS_MS.iter().map(|_| Errors::default()).collect();
    let mut buf = vec![0u8; w * h * 3];
    let mut n = 0u64;
    let mut counted = 0usize;
    while out.read_exact(&mut buf).is_ok() {
        let frame = Rgb {
            width: w,
            height: h,
            pixels: buf.clone(),
        };
        let (mut results, _) = engine.detect(&[FrameIn {
            frame: &frame,
            wanted: Wanted {
                class: DetectClass::Person,
                min_confidence: THRESHOLD,
            },
        }])?;
        let found = results
            .pop()
            .context("a result")?
            .map_err(anyhow::Error::msg)?;
        let boxes: Vec<BoundingBox> = found
            .iter()
            .map(|f| BoundingBox {
                x: f.x1 / w as f32,
                y: f.y1 / h as f32,
                width: (f.x2 - f.x1) / w as f32,
                height: (f.y2 - f.y1) / h as f32,
            })
            .collect();
        let at = n * FRAME_MS;
        tracker.update(&boxes, at);
        if let Some(image) = labelled.get(&n) {
            counted += 1;
            let truth = image.people.len();
            let ztruth = image
                .people
                .iter()
                .filter(|r| {
                    footpoint_in(
                        zone,
                        &BoundingBox {
                            x: r[0] / w as f32,
                            y: r[1] / h as f32,
                            width: (r[2] - r[0]) / w as f32,
                            height: (r[3] - r[1]) / h as f32,
                        },
                    )
                })
                .count();
            let zboxes = boxes.iter().filter(|b| footpoint_in(zone, b)).count();
            boxes_err.add(boxes.len(), truth, zboxes, ztruth);
            for (coast, errors) in COASTS_MS.iter().zip(&mut tracks_err) {
                let live: Vec<_> = tracker
                    .tracks()
                    .iter()
                    .filter(|t| t.last_seen_ms > t.first_seen_ms && at - t.last_seen_ms <= *coast)
                    .collect();
                let zlive = live.iter().filter(|t| footpoint_in(zone, &t.bbox)).count();
                errors.add(live.len(), truth, zlive, ztruth);
            }
        }
        n += 1;
    }
    ffmpeg.wait()?;
    let k = counted.max(1) as f64;
    println!(
        "Counting from tracks ({n} frames of {}, {counted} labelled, calibrated threshold {THRESHOLD}):",
        avi.display()
    );
    println!("| count | frame MAE | frame bias | zone MAE | zone bias |");
    println!("|---|---|---|---|---|");
    let row = |name: String, e: &Errors| {
        println!(
            "| {name} | {:.3} | {:+.3} | {:.3} | {:+.3} |",
            e.abs / k,
            e.signed / k,
            e.zabs / k,
            e.zsigned / k
        )
    };
    row("boxes in the frame".into(), &boxes_err);
    for (coast, e) in COASTS_MS.iter().zip(&tracks_err) {
        row(format!("confirmed tracks seen in the last {coast} ms"), e);
    }
    Ok(())
}

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
use panoptes_shared::domain::scene::DetectClass;
use panoptes_workers::analytics::tracker::Tracker;
use panoptes_workers::image::Rgb;
use panoptes_workers::inference::Wanted;
use panoptes_workers::inference::engine::{Engine, FrameIn};
use panoptes_workers::inference::evaluate::{Frame, LabelledSet, Rect, Split, evaluate};

const THRESHOLD: f32 = 0.6;
const FRAME_MS: u64 = 100;
const COASTS_MS: [u64; 4] = [0, 200, 500, 1000];

/// A normalised box back in frame pixels, as a counted detection.
fn counted(b: &BoundingBox, w: usize, h: usize) -> (f32, Rect) {
    let (w, h) = (w as f32, h as f32);
    (
        1.0,
        [b.x * w, b.y * h, (b.x + b.width) * w, (b.y + b.height) * h],
    )
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
    // Per counting method, the labelled frames with what it counted.
    let mut by_boxes = Vec::new();
    let mut by_tracks: Vec<Vec<Frame>> = COASTS_MS.iter().map(|_| Vec::new()).collect();
    let mut frame = Rgb {
        width: w,
        height: h,
        pixels: vec![0u8; w * h * 3],
    };
    let mut n = 0u64;
    while out.read_exact(&mut frame.pixels).is_ok() {
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
            .map(|f| BoundingBox::from_corners(f.x1, f.y1, f.x2, f.y2, w as u32, h as u32))
            .collect();
        let at = n * FRAME_MS;
        tracker.update(&boxes, at);
        if let Some(image) = labelled.get(&n) {
            let base = Frame::of(image, set, w as u32, h as u32, &[]);
            by_boxes.push(Frame {
                found: boxes.iter().map(|b| counted(b, w, h)).collect(),
                ..base.clone()
            });
            for (coast, frames) in COASTS_MS.iter().zip(&mut by_tracks) {
                let live = tracker
                    .tracks()
                    .iter()
                    .filter(|t| t.last_seen_ms > t.first_seen_ms && at - t.last_seen_ms <= *coast);
                frames.push(Frame {
                    found: live.map(|t| counted(&t.bbox, w, h)).collect(),
                    ..base.clone()
                });
            }
        }
        n += 1;
    }
    ffmpeg.wait()?;
    println!(
        "Counting from tracks ({n} frames of {}, {} labelled, calibrated threshold {THRESHOLD}):",
        avi.display(),
        by_boxes.len()
    );
    println!("| count | frame MAE | frame bias | zone MAE | zone bias |");
    println!("|---|---|---|---|---|");
    let row = |name: String, frames: &[Frame]| {
        // Everything counted carries score 1: one threshold counts it all.
        let a = evaluate(frames, &[0.5]).by_threshold[0];
        println!(
            "| {name} | {:.3} | {:+.3} | {:.3} | {:+.3} |",
            a.count_mae, a.count_bias, a.zone_mae, a.zone_bias
        )
    };
    row("boxes in the frame".into(), &by_boxes);
    for (coast, frames) in COASTS_MS.iter().zip(&by_tracks) {
        row(
            format!("confirmed tracks seen in the last {coast} ms"),
            frames,
        );
    }
    Ok(())
}

//! NanoDet-m (416, COCO-80, GFL head): the shipped default model.
//!
//! Input: BGR, `(pixel - mean) / std`, plain resize to 416x416 (the model was
//! trained without letterboxing), or to another size in multiples of 32 (the
//! network is fully convolutional; the shipped file leaves the picture size
//! free). Outputs, found by shape: per stride 8/16/32, class scores
//! `[cells, 80]` (already sigmoid) and box distributions `[cells, 44]` (left,
//! top, right, bottom x 11 bins), cells row by row; a side's distance is the
//! expectation of the softmax over its bins, times the stride.

use super::nms::{Candidate, suppress};
use super::{Fit, Found, ModelAdapter, Output, Wanted, coco_indices};
use crate::image::{Rgb, resize};

/// The size it was trained at.
pub const SIZE: usize = 416;
/// Sides must be multiples of the coarsest stride.
pub const STRIDE: usize = 32;
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
const STRIDES: [usize; 3] = [8, 16, 32];
const CLASSES: usize = 80;
const BINS: usize = 11;

pub struct NanoDet {
    input: String,
    height: usize,
    width: usize,
}

impl NanoDet {
    /// At its own 416x416.
    pub fn new(input: impl Into<String>) -> Self {
        Self::sized(input, SIZE, SIZE)
    }

    /// At `height` x `width` input pixels (multiples of [`STRIDE`]).
    pub fn sized(input: impl Into<String>, height: usize, width: usize) -> Self {
        debug_assert!(height.is_multiple_of(STRIDE) && width.is_multiple_of(STRIDE));
        Self {
            input: input.into(),
            height,
            width,
        }
    }
}

fn find<'a>(
    outputs: &'a [Output<'a>],
    cells: usize,
    width: usize,
) -> Result<&'a Output<'a>, String> {
    outputs
        .iter()
        .find(|o| o.dims() == [cells as i64, width as i64])
        .ok_or_else(|| {
            format!("the model has no output of shape [N, {cells}, {width}]: not NanoDet-m at this input size")
        })
}

/// Expected distance of one side from its 11-bin distribution.
fn side(bins: &[f32]) -> f32 {
    let max = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut e = [0f32; BINS];
    let mut sum = 0f32;
    for (ek, b) in e.iter_mut().zip(bins) {
        *ek = (b - max).exp();
        sum += *ek;
    }
    e.iter()
        .enumerate()
        .map(|(k, ek)| ek / sum * k as f32)
        .sum()
}

impl ModelAdapter for NanoDet {
    fn name(&self) -> &'static str {
        "nanodet"
    }

    fn input_name(&self) -> &str {
        &self.input
    }

    fn input_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    fn preprocess(&self, frame: &Rgb, out: &mut [f32]) -> Fit {
        let small = resize(frame, self.width, self.height);
        let plane = self.width * self.height;
        let (b, rest) = out.split_at_mut(plane);
        let (g, r) = rest.split_at_mut(plane);
        // (v - mean) / std for every byte value, per channel: the same f32
        // arithmetic as computing it per pixel, done 3 x 256 times.
        let lut = |c: usize| -> [f32; 256] {
            std::array::from_fn(|v| (v as f32 - MEAN_BGR[c]) / STD_BGR[c])
        };
        let (lb, lg, lr) = (lut(0), lut(1), lut(2));
        for (i, px) in small.pixels.chunks_exact(3).enumerate() {
            b[i] = lb[usize::from(px[2])];
            g[i] = lg[usize::from(px[1])];
            r[i] = lr[usize::from(px[0])];
        }
        Fit::stretch(frame, self.width, self.height)
    }

    fn postprocess(
        &self,
        outputs: &[Output<'_>],
        index: usize,
        fit: &Fit,
        wanted: Wanted,
        iou: f32,
    ) -> Result<Vec<Found>, String> {
        let classes = coco_indices(wanted.class);
        let mut candidates = Vec::new();
        for stride in STRIDES {
            let columns = self.width / stride;
            let cells = columns * (self.height / stride);
            let stride = stride as f32;
            let scores = find(outputs, cells, CLASSES)?.frame(index);
            let dists = find(outputs, cells, 4 * BINS)?.frame(index);
            for cell in 0..cells {
                let row = &scores[cell * CLASSES..(cell + 1) * CLASSES];
                let best = classes
                    .iter()
                    .map(|&c| row[c])
                    .fold(f32::NEG_INFINITY, f32::max);
                if best < wanted.min_confidence {
                    continue;
                }
                let d = &dists[cell * 4 * BINS..(cell + 1) * 4 * BINS];
                let (cx, cy) = (
                    ((cell % columns) as f32 + 0.5) * stride,
                    ((cell / columns) as f32 + 0.5) * stride,
                );
                let [l, t, r, b] =
                    [0, 1, 2, 3].map(|s| side(&d[s * BINS..(s + 1) * BINS]) * stride);
                candidates.push(Candidate {
                    class: 0,
                    score: best,
                    x1: fit.x(cx - l),
                    y1: fit.y(cy - t),
                    x2: fit.x(cx + r),
                    y2: fit.y(cy + b),
                });
            }
        }
        Ok(suppress(candidates, iou, wanted.class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peaked_distribution_gives_its_bin() {
        let mut bins = [-50f32; BINS];
        bins[3] = 50.0;
        assert!((side(&bins) - 3.0).abs() < 1e-4);
        assert!(
            (side(&[0.0; BINS]) - 5.0).abs() < 1e-4,
            "uniform: the mean bin"
        );
    }
}

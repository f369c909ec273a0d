//! SSD models of the TensorFlow Object Detection API with the box decoding
//! inside the graph, such as the shipped SSDLite-MobileNetV2 COCO
//! (`ssdlite-mobilenet-v2-coco.onnx`): input RGB 0..255, plain resize to the
//! input size (the graph normalises); outputs, found by shape, class scores
//! `[anchors, 90]` (already sigmoid, background removed: column `j` is COCO
//! category `j + 1`) and boxes `[anchors, 1, 4]` as normalised
//! `[ymin, xmin, ymax, xmax]`.

use super::nms::{Candidate, suppress};
use super::{Fit, Found, ModelAdapter, Output, Wanted, coco_indices};
use crate::image::{Rgb, resize};

pub struct Ssd {
    input: String,
    height: usize,
    width: usize,
}

impl Ssd {
    pub fn new(input: impl Into<String>, height: usize, width: usize) -> Self {
        Self {
            input: input.into(),
            height,
            width,
        }
    }
}

/// The score and box outputs: `[N, anchors, classes]` and `[N, anchors, 1, 4]`.
fn outputs<'a>(outputs: &'a [Output<'a>]) -> Result<(&'a Output<'a>, &'a Output<'a>), String> {
    let boxes = outputs
        .iter()
        .find(|o| o.dims().len() == 3 && o.dims()[1..] == [1, 4])
        .ok_or("the model has no [N, anchors, 1, 4] box output: not a TF SSD export")?;
    let anchors = boxes.dims()[0];
    let scores = outputs
        .iter()
        .find(|o| o.dims().len() == 2 && o.dims()[0] == anchors && o.dims()[1] > 0)
        .ok_or("the model has no [N, anchors, classes] score output: not a TF SSD export")?;
    Ok((scores, boxes))
}

impl ModelAdapter for Ssd {
    fn name(&self) -> &'static str {
        "ssd"
    }

    fn input_name(&self) -> &str {
        &self.input
    }

    fn input_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    fn preprocess(&self, frame: &Rgb, out: &mut [f32]) -> Fit {
        let (h, w) = (self.height, self.width);
        let small = resize(frame, w, h);
        let plane = h * w;
        for (i, px) in small.pixels.chunks_exact(3).enumerate() {
            for (c, v) in px.iter().enumerate() {
                out[c * plane + i] = f32::from(*v);
            }
        }
        Fit::stretch(frame, w, h)
    }

    fn postprocess(
        &self,
        outputs_: &[Output<'_>],
        index: usize,
        fit: &Fit,
        wanted: Wanted,
        iou: f32,
    ) -> Result<Vec<Found>, String> {
        let (scores, boxes) = outputs(outputs_)?;
        let classes = scores.dims()[1] as usize;
        let (scores, boxes) = (scores.frame(index), boxes.frame(index));
        let wanted_columns = coco_indices(wanted.class);
        let (fw, fh) = (fit.frame_width as f32, fit.frame_height as f32);
        let mut candidates = Vec::new();
        for (anchor, row) in scores.chunks_exact(classes).enumerate() {
            let best = wanted_columns
                .iter()
                .filter_map(|&c| row.get(c).copied())
                .fold(f32::NEG_INFINITY, f32::max);
            if best < wanted.min_confidence {
                continue;
            }
            let b = &boxes[anchor * 4..anchor * 4 + 4];
            let [y1, x1, y2, x2] = [b[0], b[1], b[2], b[3]].map(|v| v.clamp(0.0, 1.0));
            candidates.push(Candidate {
                class: 0,
                score: best,
                x1: x1 * fw,
                y1: y1 * fh,
                x2: x2 * fw,
                y2: y2 * fh,
            });
        }
        Ok(suppress(candidates, iou, wanted.class))
    }
}

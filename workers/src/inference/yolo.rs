//! Ultralytics YOLOv8 / YOLO11 ONNX exports (without embedded NMS), the format
//! customers usually bring: RGB / 255, letterboxed with grey 114 to the input
//! size; output `[N, 4 + classes, anchors]` (cx, cy, w, h in input pixels,
//! then class scores). Class indices are COCO-80.

use super::nms::{Candidate, nms};
use super::{Fit, Found, ModelAdapter, Output, Wanted, coco_indices};
use crate::image::{Rgb, resize};

const PAD: f32 = 114.0 / 255.0;

pub struct Yolo {
    input: String,
    height: usize,
    width: usize,
}

impl Yolo {
    pub fn new(input: impl Into<String>, height: usize, width: usize) -> Self {
        Self {
            input: input.into(),
            height,
            width,
        }
    }
}

impl ModelAdapter for Yolo {
    fn name(&self) -> &'static str {
        "yolo"
    }

    fn input_name(&self) -> &str {
        &self.input
    }

    fn input_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    fn preprocess(&self, frame: &Rgb, out: &mut [f32]) -> Fit {
        let (h, w) = (self.height, self.width);
        let r = (h as f32 / frame.height as f32).min(w as f32 / frame.width as f32);
        let nw = ((frame.width as f32 * r).round() as usize).clamp(1, w);
        let nh = ((frame.height as f32 * r).round() as usize).clamp(1, h);
        let (left, top) = (
            ((w - nw) as f32 / 2.0 - 0.1).round() as usize,
            ((h - nh) as f32 / 2.0 - 0.1).round() as usize,
        );
        let small = resize(frame, nw, nh);
        out.fill(PAD);
        let plane = h * w;
        for y in 0..nh {
            for x in 0..nw {
                let px = &small.pixels[(y * nw + x) * 3..(y * nw + x) * 3 + 3];
                let at = (y + top) * w + x + left;
                for (c, v) in px.iter().enumerate() {
                    out[c * plane + at] = f32::from(*v) / 255.0;
                }
            }
        }
        Fit {
            frame_width: frame.width as u32,
            frame_height: frame.height as u32,
            scale_x: nw as f32 / frame.width as f32,
            scale_y: nh as f32 / frame.height as f32,
            pad_x: left as f32,
            pad_y: top as f32,
        }
    }

    fn postprocess(
        &self,
        outputs: &[Output<'_>],
        index: usize,
        fit: &Fit,
        wanted: Wanted,
        iou: f32,
    ) -> Result<Vec<Found>, String> {
        let out = outputs.iter().find(|o| o.dims().len() == 2).ok_or(
            "the model has no [N, 4 + classes, anchors] output: not a YOLOv8/YOLO11 export",
        )?;
        let (channels, anchors) = (out.dims()[0] as usize, out.dims()[1] as usize);
        if channels < 5 {
            return Err(format!(
                "YOLO output has {channels} channels, need 4 + classes"
            ));
        }
        let data = out.frame(index);
        let at = |c: usize, i: usize| data[c * anchors + i];
        let classes: Vec<usize> = coco_indices(wanted.class)
            .iter()
            .copied()
            .filter(|c| 4 + c < channels)
            .collect();
        let mut candidates = Vec::new();
        for i in 0..anchors {
            let best = classes
                .iter()
                .map(|&c| at(4 + c, i))
                .fold(f32::NEG_INFINITY, f32::max);
            if best < wanted.min_confidence {
                continue;
            }
            let (cx, cy, bw, bh) = (at(0, i), at(1, i), at(2, i), at(3, i));
            candidates.push(Candidate {
                class: 0,
                score: best,
                x1: fit.x(cx - bw / 2.0),
                y1: fit.y(cy - bh / 2.0),
                x2: fit.x(cx + bw / 2.0),
                y2: fit.y(cy + bh / 2.0),
            });
        }
        Ok(nms(candidates, iou)
            .into_iter()
            .map(|c| Found {
                class: wanted.class,
                score: c.score,
                x1: c.x1.max(0.0),
                y1: c.y1.max(0.0),
                x2: c.x2.min(fit.frame_width as f32),
                y2: c.y2.min(fit.frame_height as f32),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_frame_is_letterboxed_top_and_bottom() {
        let y = Yolo::new("images", 640, 640);
        let frame = Rgb {
            width: 1280,
            height: 720,
            pixels: vec![255; 1280 * 720 * 3],
        };
        let mut input = vec![0f32; 3 * 640 * 640];
        let fit = y.preprocess(&frame, &mut input);
        assert_eq!((fit.pad_x, fit.pad_y), (0.0, 140.0));
        assert!((fit.scale_x - 0.5).abs() < 1e-6 && (fit.scale_y - 0.5).abs() < 1e-6);
        assert_eq!(input[0], PAD, "top band is grey");
        assert_eq!(input[140 * 640], 1.0, "first frame row is white");
        assert_eq!(input[500 * 640], PAD, "bottom band is grey");
        assert!((fit.x(320.0) - 640.0).abs() < 1e-3 && (fit.y(320.0) - 360.0).abs() < 1e-3);
    }
}

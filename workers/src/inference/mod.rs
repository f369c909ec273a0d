//! Person (and vehicle) detection: model adapters behind one trait, run by an
//! ONNX Runtime session ([`engine::Engine`]) on CPU or CUDA.
//!
//! A model adapter owns what is specific to a model family: how a frame
//! becomes its slice of the input tensor (resize, letterbox, channel order,
//! normalisation) and how the output tensors become boxes. The engine owns
//! the session, batching and the execution provider.

pub mod calibration;
pub mod engine;
pub mod evaluate;
pub mod nanodet;
pub mod nms;
pub mod ssd;
pub mod yolo;

use panoptes_shared::domain::scene::DetectClass;

use crate::image::Rgb;

/// An output tensor of one batch run.
pub struct Output<'a> {
    pub name: &'a str,
    /// Dimensions, batch first.
    pub shape: &'a [i64],
    pub data: &'a [f32],
}

impl Output<'_> {
    /// The slice of frame `index` of the batch.
    pub fn frame(&self, index: usize) -> &[f32] {
        let per = self.data.len() / (self.shape.first().copied().unwrap_or(1).max(1) as usize);
        &self.data[index * per..(index + 1) * per]
    }

    /// Dimensions after the batch.
    pub fn dims(&self) -> &[i64] {
        self.shape.get(1..).unwrap_or(&[])
    }
}

/// How a frame was fitted into the model input, to map boxes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub frame_width: u32,
    pub frame_height: u32,
    /// Input pixels per frame pixel, horizontally and vertically.
    pub scale_x: f32,
    pub scale_y: f32,
    /// Padding added before the frame (letterbox), in input pixels.
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Fit {
    /// A plain resize of `frame` to `width` x `height` input pixels (no letterbox).
    pub fn stretch(frame: &Rgb, width: usize, height: usize) -> Self {
        Self {
            frame_width: frame.width as u32,
            frame_height: frame.height as u32,
            scale_x: width as f32 / frame.width as f32,
            scale_y: height as f32 / frame.height as f32,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }

    /// Input-space x back to frame pixels.
    pub fn x(&self, x: f32) -> f32 {
        (x - self.pad_x) / self.scale_x
    }

    pub fn y(&self, y: f32) -> f32 {
        (y - self.pad_y) / self.scale_y
    }
}

/// What to look for in a frame: the scene's class and confidence threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wanted {
    pub class: DetectClass,
    pub min_confidence: f32,
}

/// A box found in a frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub class: DetectClass,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// A model family's pre- and post-processing.
pub trait ModelAdapter: Send + Sync {
    /// `nanodet`, `yolo`.
    fn name(&self) -> &'static str;
    /// Input tensor name.
    fn input_name(&self) -> &str;
    /// Input height and width.
    fn input_size(&self) -> (usize, usize);
    /// Write `frame` as one batch item (`3 * h * w` floats, CHW) into `out`.
    fn preprocess(&self, frame: &Rgb, out: &mut [f32]) -> Fit;
    /// Boxes of batch item `index`, suppressed and above the threshold.
    fn postprocess(
        &self,
        outputs: &[Output<'_>],
        index: usize,
        fit: &Fit,
        wanted: Wanted,
        iou: f32,
    ) -> Result<Vec<Found>, String>;
}

/// COCO-80 indices counted as `class`.
pub fn coco_indices(class: DetectClass) -> &'static [usize] {
    match class {
        DetectClass::Person => &[0],
        DetectClass::Vehicle => &[1, 2, 3, 5, 7],
    }
}

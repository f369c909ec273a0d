//! The inference engine: ONNX Runtime loaded from a shared library at run time
//! (the `onnxruntime==1.31.1` wheel's `libonnxruntime.so.1.31.1`, or the GPU
//! wheel's), one warm session, batches of frames through a model adapter.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::TensorRef;

use super::calibration::{Calibration, CalibrationError};
use super::nanodet::NanoDet;
use super::ssd::Ssd;
use super::yolo::Yolo;
use super::{Fit, Found, ModelAdapter, Output, Wanted};
use crate::image::Rgb;

pub use panoptes_shared::config::{ExecutionProvider, InputSize, ModelKind};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda { device: i32 },
}

impl Provider {
    /// `execution_provider`, on CUDA device `cuda_device`.
    pub fn new(execution_provider: ExecutionProvider, cuda_device: i32) -> Self {
        match execution_provider {
            ExecutionProvider::Cpu => Self::Cpu,
            ExecutionProvider::Cuda => Self::Cuda {
                device: cuda_device,
            },
        }
    }

    /// Which execution provider this is (`cpu`, `cuda`).
    pub fn kind(self) -> ExecutionProvider {
        match self {
            Self::Cpu => ExecutionProvider::Cpu,
            Self::Cuda { .. } => ExecutionProvider::Cuda,
        }
    }
}

/// `detector.input_size` resolved: an explicit `HxW`, or for `auto`
/// [`InputSize::ACCURATE`] for NanoDet (on CPU and CUDA alike: 1.4 times the
/// CPU time of 416x416 for a higher AP and a smaller count error, figures in
/// `tests/accuracy`) and the model's own size for the others. A malformed
/// setting is refused when the config loads; here it reads as `auto`.
pub fn input_size(setting: &str, model: ModelKind) -> Option<InputSize> {
    match InputSize::setting(setting) {
        Ok(Some(size)) => Some(size),
        _ => (model == ModelKind::NanoDet).then_some(InputSize::ACCURATE),
    }
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub model: ModelKind,
    pub model_path: PathBuf,
    /// `libonnxruntime.so.*`; `None` reads `ORT_DYLIB_PATH`.
    pub library: Option<PathBuf>,
    pub provider: Provider,
    /// Intra-op threads; 0 lets ONNX Runtime choose (one per core).
    pub threads: usize,
    pub iou: f32,
    /// Map raw scores through the calibration stored beside the model for
    /// this input size (`<model>.calibration.json` at the model's own size,
    /// `<model>.<H>x<W>.calibration.json` at another), when there is one;
    /// `false` reports the model's raw scores (fitting, comparing with other
    /// runtimes).
    pub calibrated: bool,
    /// The picture size the model sees; `None`: the model's own.
    pub input_size: Option<InputSize>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "ONNX Runtime library not configured: set detector.ort_library or ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (the test and run scripts install it)"
    )]
    NoLibrary,
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    Library { path: PathBuf, message: String },
    #[error("cannot load the model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    #[error("inference failed: {0}")]
    Run(String),
}

/// Timings of one batch, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchTimings {
    pub preprocess_ms: f64,
    pub inference_ms: f64,
    pub postprocess_ms: f64,
}

/// One frame of a batch: its pixels and what its scene looks for.
pub struct FrameIn<'a> {
    pub frame: &'a Rgb,
    pub wanted: Wanted,
}

pub struct Engine {
    session: Mutex<Session>,
    adapter: Box<dyn ModelAdapter>,
    /// The model takes several frames per run.
    batched: bool,
    provider: Provider,
    iou: f32,
    calibration: Calibration,
    calibration_file: PathBuf,
    input_size: InputSize,
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Load ONNX Runtime once per process (later calls reuse the first library).
fn environment(library: &Path) -> Result<&'static Environment, EngineError> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("panoptes")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| EngineError::Library {
            path: library.to_owned(),
            message: message.clone(),
        })
}

fn model_error(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Model {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

impl Engine {
    /// Load the library and the model; CUDA falls back to CPU (with a warning)
    /// when its provider cannot be registered.
    pub fn load(opts: &EngineOptions) -> Result<Self, EngineError> {
        let library = opts
            .library
            .clone()
            .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
            .ok_or(EngineError::NoLibrary)?;
        let env = environment(&library)?;
        let path = &opts.model_path;
        let builder = |env: &Environment| -> Result<SessionBuilder, EngineError> {
            let mut b = Session::builder(env)
                .map_err(|e| model_error(path, e))?
                .with_optimization_level(GraphOptimizationLevel::All)
                .map_err(|e| model_error(path, e))?;
            // Idle inference threads sleep instead of spinning: between runs
            // the cores decode and resize the next frames.
            b = b
                .with_intra_op_spinning(false)
                .map_err(|e| model_error(path, e))?;
            if opts.threads > 0 {
                b = b
                    .with_intra_threads(opts.threads)
                    .map_err(|e| model_error(path, e))?;
            }
            Ok(b)
        };
        let (session, provider) = match opts.provider {
            Provider::Cpu => (
                builder(env)?
                    .commit_from_file(path)
                    .map_err(|e| model_error(path, e))?,
                Provider::Cpu,
            ),
            Provider::Cuda { device } => {
                let cuda = builder(env)?
                    .with_execution_providers([ort::ep::CUDA::default()
                        .with_device_id(device)
                        .build()
                        .error_on_failure()])
                    .map_err(|e| e.to_string())
                    .and_then(|mut b| b.commit_from_file(path).map_err(|e| e.to_string()));
                match cuda {
                    Ok(s) => (s, opts.provider),
                    Err(e) => {
                        tracing::warn!(error = %e, "CUDA execution provider unavailable: running on CPU");
                        (
                            builder(env)?
                                .commit_from_file(path)
                                .map_err(|e| model_error(path, e))?,
                            Provider::Cpu,
                        )
                    }
                }
            }
        };
        let input = session
            .inputs()
            .first()
            .ok_or_else(|| model_error(path, "the model has no input"))?;
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        if shape.len() != 4 || shape[1] != 3 {
            return Err(model_error(
                path,
                format!("expected one [N,3,H,W] image input, found {shape:?}"),
            ));
        }
        let name = input.name().to_owned();
        let side = |d: i64, default: usize| if d > 0 { d as usize } else { default };
        // The model's own size: the file's, or the family's when the file
        // leaves the picture size free.
        let (own_h, own_w) = match opts.model {
            ModelKind::NanoDet => (super::nanodet::SIZE, super::nanodet::SIZE),
            ModelKind::Yolo => (640, 640),
            ModelKind::Ssd => (300, 300),
        };
        let own = InputSize {
            height: side(shape[2], own_h),
            width: side(shape[3], own_w),
        };
        let size = opts.input_size.unwrap_or(own);
        if size != own && (shape[2] > 0 || shape[3] > 0 || opts.model == ModelKind::Ssd) {
            return Err(model_error(
                path,
                format!(
                    "its input is fixed at {own}: input size {size} needs a model with a free picture size (workers/models/dynamic_batch.py --any-size)"
                ),
            ));
        }
        let adapter: Box<dyn ModelAdapter> = match opts.model {
            ModelKind::NanoDet => Box::new(NanoDet::sized(name, size.height, size.width)),
            ModelKind::Yolo => Box::new(Yolo::new(name, size.height, size.width)),
            ModelKind::Ssd => Box::new(Ssd::new(name, size.height, size.width)),
        };
        let batched = shape[0] != 1;
        let calibration_file = Calibration::path_for(path, (size != own).then_some(size));
        let calibration = if opts.calibrated {
            let c = Calibration::load(&calibration_file)?;
            if c.is_none() {
                tracing::warn!(file = %calibration_file.display(), "no calibration for this model and input size: scene thresholds apply to raw scores (fit one with tests/bench/accuracy.sh)");
            }
            c
        } else {
            None
        };
        let calibrated = calibration.is_some();
        tracing::info!(model = %path.display(), adapter = adapter.name(), input = %size, ?provider, batched, calibrated, "detector loaded");
        Ok(Self {
            session: Mutex::new(session),
            adapter,
            batched,
            provider,
            iou: opts.iou,
            calibration: calibration.unwrap_or_else(Calibration::identity),
            calibration_file,
            input_size: size,
        })
    }

    /// The execution provider in use (after any fallback).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn adapter(&self) -> &dyn ModelAdapter {
        self.adapter.as_ref()
    }

    /// How raw scores become confidences (identity when uncalibrated).
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The calibration file for this model at this input size (read when
    /// calibrated and present).
    pub fn calibration_file(&self) -> &Path {
        &self.calibration_file
    }

    /// The picture size the model sees.
    pub fn input_size(&self) -> InputSize {
        self.input_size
    }

    /// Detect in a batch of frames (blocking: call from a blocking thread).
    /// The outer error fails the whole batch; an inner one, one frame.
    #[allow(clippy::type_complexity)]
    pub fn detect(
        &self,
        frames: &[FrameIn<'_>],
    ) -> Result<(Vec<Result<Vec<Found>, String>>, BatchTimings), EngineError> {
        let mut timings = BatchTimings::default();
        let mut results = Vec::with_capacity(frames.len());
        let chunk = if self.batched { frames.len().max(1) } else { 1 };
        for group in frames.chunks(chunk) {
            let (r, t) = self.run(group)?;
            results.extend(r);
            timings.preprocess_ms += t.preprocess_ms;
            timings.inference_ms += t.inference_ms;
            timings.postprocess_ms += t.postprocess_ms;
        }
        Ok((results, timings))
    }

    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        frames: &[FrameIn<'_>],
    ) -> Result<(Vec<Result<Vec<Found>, String>>, BatchTimings), EngineError> {
        let started = Instant::now();
        let (h, w) = self.adapter.input_size();
        let per = 3 * h * w;
        let mut input = vec![0f32; frames.len() * per];
        let fits: Vec<Fit> = if frames.len() == 1 {
            vec![self.adapter.preprocess(frames[0].frame, &mut input)]
        } else {
            // Frames of a batch in parallel (each slot is its own slice).
            let slots: Vec<(&FrameIn<'_>, std::sync::Mutex<&mut [f32]>)> = frames
                .iter()
                .zip(input.chunks_exact_mut(per))
                .map(|(f, out)| (f, std::sync::Mutex::new(out)))
                .collect();
            crate::image::par_map(&slots, |(f, out)| {
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                self.adapter.preprocess(f.frame, &mut out)
            })
        };
        let preprocessed = Instant::now();
        // Other batches decode while this one holds the session.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let granted = Instant::now();
        let tensor = TensorRef::from_array_view(([frames.len(), 3, h, w], input.as_slice()))
            .map_err(|e| EngineError::Run(e.to_string()))?;
        let outputs = session
            .run(ort::inputs![self.adapter.input_name() => tensor])
            .map_err(|e| EngineError::Run(e.to_string()))?;
        let inferred = Instant::now();
        let values: Vec<_> = outputs.iter().collect();
        let mut views = Vec::with_capacity(values.len());
        for (name, value) in &values {
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| EngineError::Run(format!("output {name}: {e}")))?;
            views.push(Output { name, shape, data });
        }
        let results = frames
            .iter()
            .zip(&fits)
            .enumerate()
            .map(|(i, (f, fit))| {
                // The scene's threshold in raw terms, then raw scores back
                // as calibrated confidences (a monotone map: same boxes).
                let wanted = Wanted {
                    min_confidence: self.calibration.raw_threshold(f.wanted.min_confidence),
                    ..f.wanted
                };
                let mut found = self.adapter.postprocess(&views, i, fit, wanted, self.iou)?;
                for d in &mut found {
                    d.score = self.calibration.confidence(d.score);
                }
                Ok(found)
            })
            .collect();
        let done = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        Ok((
            results,
            BatchTimings {
                preprocess_ms: ms(started, preprocessed),
                inference_ms: ms(granted, inferred),
                postprocess_ms: ms(inferred, done),
            },
        ))
    }
}

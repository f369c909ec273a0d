//! The detect role: frame jobs in, detection results out.

mod worker;

pub use crate::scenes::SceneCache;
pub use worker::{DetectPorts, DetectSettings, DetectWorker};

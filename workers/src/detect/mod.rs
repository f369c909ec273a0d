//! The detect role: frame jobs in, detection results out.

mod scenes;
mod worker;

pub use scenes::SceneCache;
pub use worker::{DetectSettings, DetectWorker, Ports};

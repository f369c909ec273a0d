//! Panoptes pipeline roles. `detect`: frame jobs in, detection results out
//! (stateless, batched, ONNX Runtime on CPU or CUDA). `analytics`: owns each
//! device, puts its results back in capture order and publishes
//! `analysis_result` events. `attributes`: what a person looks like, read
//! from the frame (detect computes it, analytics keeps it per track). Each
//! role is a worker with one `step`, driven by a loop the launcher
//! (`panoptes`) runs, so tests drive them a step at a time.

#![forbid(unsafe_code)]

pub mod analytics;
pub mod attributes;
pub mod detect;
pub mod image;
pub mod inference;
pub mod ingest;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod scenes;
pub mod scheduler;
pub mod server;

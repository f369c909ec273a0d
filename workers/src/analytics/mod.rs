//! The analytics role: the one owner of each device's results (a lease),
//! restoring capture order and publishing `analysis_result` events.
//! Tracking, zones and queue metrics plug in at [`event::FrameAnalysis`].

pub mod dwell;
pub mod event;
mod order;
pub mod queue;
pub mod tracker;
mod worker;

pub use order::{Released, Reorder};
pub use worker::{AnalyticsSettings, AnalyticsWorker};

//! Domain model: the values the API talks about, each parsed once at the edge.

pub mod alert;
pub mod api_key;
pub mod attribute;
pub mod billing;
pub mod camera;
pub mod detection;
pub mod device;
pub mod event;
pub mod insight;
pub mod metrics_history;
pub mod page;
pub mod plan;
pub mod polygon;
pub mod queue_metrics;
pub mod quota;
pub mod scene;
pub mod schedule;
pub mod stream_events;
pub mod task;
pub mod usage;
pub mod user;
pub mod validate;
pub mod webhook;

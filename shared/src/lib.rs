//! Panoptes shared core: domain types, configuration, errors, telemetry and the
//! port traits that adapters in `panoptes-infra` implement.
//!
//! Nothing in here knows about HTTP: the gateway maps [`Error`] to status codes
//! in one place, and workers use the same types without a web framework.

pub mod config;
pub mod domain;
pub mod error;
pub mod ids;
pub mod insights;
pub mod lifecycle;
pub mod metering;
pub mod metrics;
pub mod outbound;
pub mod ports;
pub mod telemetry;
pub mod time;

pub use error::{Error, Result};

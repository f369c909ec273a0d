//! The ingest role: RTSP cameras in, frame jobs out. [`source`] decodes one
//! camera's stream (the session itself, with the outbound guard, TLS and
//! credential rules, is [`panoptes_infra::camera`]'s), [`probe`] tries a
//! camera now (the probe endpoint and the health checks), and
//! [`IngestWorker`] spreads running tasks' streams over ingest nodes.

pub mod probe;
pub mod source;
mod worker;

pub use probe::DecodingProbe;
pub use worker::{IngestPorts, IngestSettings, IngestWorker};

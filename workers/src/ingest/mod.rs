//! The ingest role: RTSP cameras in, frame jobs out. [`source`] opens and
//! decodes one stream, [`probe`] answers `POST /devices/{id}/probe`, and
//! [`IngestWorker`] spreads running tasks' streams over ingest nodes.

pub mod probe;
pub mod source;
pub mod tls;
mod worker;

pub use probe::{ProbeReport, probe};
pub use worker::{IngestSettings, IngestWorker};

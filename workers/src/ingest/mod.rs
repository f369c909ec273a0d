//! The ingest role: RTSP cameras in, frame jobs out. [`source`] opens and
//! decodes one stream, [`probe`] answers `POST /devices/{id}/probe`, and
//! [`IngestWorker`] spreads running tasks' streams over ingest nodes. Every
//! camera connection goes through [`relay`] (outbound guard, TLS,
//! credential rules); [`camera`] works out a device's target.

pub mod camera;
pub mod probe;
pub mod relay;
pub mod source;
pub mod tls;
mod worker;

pub use camera::Camera;
pub use probe::{ProbeReport, probe};
pub use relay::Dialer;
pub use worker::{IngestSettings, IngestWorker};

//! Reaching cameras: a device's target ([`target`]), every connection through
//! a relay of ours ([`relay`]: outbound guard, TLS for `rtsps://` ([`tls`]),
//! credential rules), the RTSP session that hands out H.264 access units
//! ([`session`]), and a probe that stops at the first access unit
//! ([`RtspProbe`], for a gateway without the video codecs; the pipeline's
//! probe decodes that frame too).

pub mod relay;
pub mod session;
pub mod target;
pub mod tls;

mod probe;

pub use probe::RtspProbe;
pub use relay::Dialer;
pub use target::Camera;
pub use tls::Tls;

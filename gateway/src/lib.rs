//! Panoptes gateway: the stateless HTTP API (poem-openapi). A library, so
//! tests start the real application on a free port, the `panoptes` launcher
//! (`gateway/launcher`) composes it with the pipeline roles, and the
//! `panoptes-gateway` binary (`src/main.rs`) serves it alone, linking no
//! inference runtime or video codec. It does not depend on the pipeline
//! crate: what it needs of it (the camera probe) is a port the binary fills.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub mod components;
pub mod http;
pub mod limits;
pub mod openapi_doc;
pub mod sse;
pub mod state;

pub use app::Application;

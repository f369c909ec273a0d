//! Panoptes gateway: the stateless HTTP API (poem-openapi) and the
//! `panoptes` launcher. Library + thin `main.rs`, so tests start the real
//! application on a free port.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod demo_camera;
pub mod http;
pub mod limits;
pub mod openapi_doc;
pub mod sse;
pub mod state;

pub use app::Application;

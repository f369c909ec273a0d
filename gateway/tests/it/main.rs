//! Gateway end-to-end tests over real HTTP, PostgreSQL and Redis.

mod analysis;
mod analytics;
mod api_keys;
mod auth;
mod blobs;
mod cli;
mod connections;
mod devices;
mod envelope;
mod helpers;
mod openapi;
mod ops;
#[path = "../../../workers/tests/common/rtsp.rs"]
mod rtsp;
mod scenes;
mod sse;
mod sse_client;

//! Gateway end-to-end tests over real HTTP, PostgreSQL and Redis.

mod abuse;
mod admin_quota;
mod alerts;
mod analysis;
mod analytics;
mod api_keys;
mod auth;
mod billing;
mod blobs;
mod connections;
mod cors;
mod devices;
mod envelope;
#[path = "../../../workers/tests/common/event_schema.rs"]
mod event_schema;
mod fake_rtsp;
mod fault_proxy;
mod helpers;
mod insights;
mod openapi;
mod ops;
mod outages;
mod outbound;
#[path = "../../../workers/tests/common/promtool.rs"]
mod promtool;
#[path = "../../../workers/tests/common/receiver.rs"]
mod receiver;
#[path = "../../../workers/tests/common/rtsp.rs"]
mod rtsp;
mod scenes;
mod sse;
mod sse_client;
mod sse_slots;
#[path = "../../../infra/tests/it/test_ca.rs"]
#[allow(dead_code)]
mod test_ca;
mod usage;
#[path = "../../../infra/tests/it/vlm_suite/server.rs"]
#[allow(dead_code)]
mod vlm_server;
mod webhooks;

//! Panoptes adapters: the implementations behind the ports in `panoptes-shared`.
//!
//! - [`store::SqlStore`]: SQLite (embedded default) or PostgreSQL, with
//!   migrations embedded in the binary.
//! - [`bus`]: in-process or Redis event bus (live delivery + replay buffer).
//! - [`rate_limit`]: in-process or Redis sliding-window limiters.
//! - [`jobs`], [`detections`], [`coord`]: frame jobs, detection results,
//!   leases and compute nodes, in-process or on Redis.
//! - [`blobs`]: snapshots in a local directory or S3.
//! - [`crypto`]: AES-256-GCM for secrets at rest, argon2id for passwords.
//! - [`resolver`]: the system resolver for the outbound guard.
//! - [`camera`]: the RTSP client every camera connection goes through, and a
//!   probe that needs no video codec.
//! - [`webhooks`]: signed webhook requests through the outbound guard.
//! - [`vlm`]: the vision-language model behind insights (off, or any
//!   OpenAI-compatible chat-completions endpoint).
//! - [`secrets_file`]: generated secrets for a single-node embedded install.
//! - [`wiring`]: the adapters a process uses, chosen by config; [`process`]:
//!   shutdown on a signal.

pub mod blobs;
pub mod bus;
pub mod camera;
pub mod coord;
pub mod crypto;
pub mod detections;
mod http1;
pub mod jobs;
pub mod process;
pub mod rate_limit;
pub mod redis_conn;
pub mod redis_keys;
pub mod resolver;
pub mod secrets_file;
pub mod slots;
pub mod store;
pub mod vlm;
pub mod webhooks;
pub mod wiring;

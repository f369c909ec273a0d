//! Panoptes adapters: the implementations behind the ports in `panoptes-shared`.
//!
//! - [`store::SqlStore`]: SQLite (embedded default) or PostgreSQL, with
//!   migrations embedded in the binary.
//! - [`rate_limit`]: in-process or Redis fixed-window limiters.
//! - [`crypto`]: AES-256-GCM for secrets at rest, argon2id for passwords.
//! - [`secrets_file`]: generated secrets for a single-node embedded install.

pub mod crypto;
pub mod rate_limit;
pub mod redis_keys;
pub mod secrets_file;
pub mod store;

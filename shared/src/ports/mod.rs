//! Port traits: one per external system. Adapters live in `panoptes-infra`,
//! each port has an embedded adapter and a distributed one, chosen by config.

pub mod cipher;
pub mod rate_limit;
pub mod store;

pub use cipher::SecretCipher;
pub use rate_limit::{RateDecision, RateLimiter};
pub use store::{ApiKeyRepo, DeviceRepo, SceneRepo, SessionRepo, Store, UserRepo};

//! HTTP plumbing shared by every endpoint: the response envelope, the error
//! table, the JSON body extractor, per-request context and middleware.

pub mod allow;
pub mod blobs;
pub mod body;
pub mod client_ip;
pub mod connections;
pub mod constraints;
pub mod context;
pub mod cors;
pub mod direct_stream;
pub mod envelope;
pub mod error;
pub mod jpeg;
pub mod metrics;
pub mod middleware;
pub mod serve;

//! Blob store adapters: a local directory (embedded default) and S3 (or any
//! S3-compatible server).

mod local;
mod s3;

pub use local::LocalBlobs;
pub use s3::{S3Blobs, S3Options};

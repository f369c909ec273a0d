//! The `panoptes` launcher: the one place the platform is composed
//! ([`compose`]: `up`, `gateway`, `worker`), the pipeline roles wired from
//! config ([`roles`]), the demo camera of `up`, and the admin commands
//! ([`cli`]). `panoptes-worker` is `panoptes worker` under its former name.

#![forbid(unsafe_code)]

pub mod cli;
pub mod compose;
pub mod demo_camera;
pub mod roles;

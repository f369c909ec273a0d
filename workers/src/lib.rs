//! Panoptes pipeline roles (`ingest`, `detect`, `analytics`, `notify`,
//! `schedule`). Each role will be a worker exposing one step
//! (`try_execute_next`) driven by a loop; none ships yet.

#![forbid(unsafe_code)]

/// The roles a worker process can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Ingest,
    Detect,
    Analytics,
    Notify,
    Schedule,
}

//! The Redis key schema, in one place. Every key starts with the configured
//! prefix (default `panoptes:v1`, the version bumps on incompatible changes).
//! The `{...}` part is a cluster hash tag: keys of one user land on one slot.

/// `<prefix>:rl:{<subject>}:<bucket>:<window-number>`: a fixed-window rate-limit
/// counter; expires with its window.
pub fn rate_limit(prefix: &str, subject_and_bucket: &str, window_number: u64) -> String {
    format!("{prefix}:rl:{{{subject_and_bucket}}}:{window_number}")
}

//! The Redis key schema, in one place. Every key starts with the configured
//! prefix (default `panoptes:v1`; the version bumps on incompatible changes).
//! The `{...}` part is a cluster hash tag.

/// `<prefix>:rl:{<subject>:<bucket>}`: sorted set of admitted request times
/// (ms) in the current sliding window; expires one window after the last hit.
pub fn rate_limit(prefix: &str, subject_and_bucket: &str) -> String {
    format!("{prefix}:rl:{{{subject_and_bucket}}}")
}

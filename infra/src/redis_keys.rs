//! The Redis key schema, in one place. Every key starts with the configured
//! prefix (default `panoptes:v1`; the version bumps on incompatible changes).
//! The `{...}` part is a cluster hash tag.

/// `<prefix>:rl:{<subject>:<bucket>}`: sorted set of admitted request times
/// (ms) in the current sliding window; expires one window after the last hit.
pub fn rate_limit(prefix: &str, subject_and_bucket: &str) -> String {
    format!("{prefix}:rl:{{{subject_and_bucket}}}")
}

/// `<prefix>:events:{<user>}`: the user's replay stream (capped, see the bus)
/// and, with the same name, the pub/sub channel of their live events.
pub fn events(prefix: &str, user: &str) -> String {
    format!("{prefix}:events:{{{user}}}")
}

/// `<prefix>:sse:leases:{<user>}`: sorted set of the user's live SSE stream
/// leases, scored by expiry (ms, server clock).
pub fn stream_leases(prefix: &str, user: &str) -> String {
    format!("{prefix}:sse:leases:{{{user}}}")
}

/// `<prefix>:sse:abandoned:{<user>}`: sorted set of leases whose acquire was
/// given up (it failed or timed out), scored by when the entry lapses (ms,
/// server clock); an acquire of one of them that arrives late takes nothing.
/// (`<prefix>:sse:lease-meta:{<user>}`, once used to pick a stream to take
/// over by `Last-Event-ID`, is no longer read or written.)
pub fn stream_abandoned(prefix: &str, user: &str) -> String {
    format!("{prefix}:sse:abandoned:{{{user}}}")
}

/// `<prefix>:sse:takeovers`: pub/sub channel; each message `<user>|<lease>`
/// names a stream lease that was just taken over, so the replica serving that
/// stream ends it at once instead of at its next renewal.
pub fn stream_takeovers(prefix: &str) -> String {
    format!("{prefix}:sse:takeovers")
}

/// A job queue's keys, `<prefix>:jobs:{<queue>}:...`, and the consumer
/// group its workers read in. One hash tag per queue, for all of its keys: a
/// blocking read waits on every shard (one Redis Cluster slot).
/// - `<prefix>:jobs:{<queue>}:<shard>`: a shard's stream of jobs;
/// - `<prefix>:jobs:{<queue>}:dead`: jobs given up on, with their error;
/// - `<prefix>:jobs:{<queue>}:dropped`: count of jobs dropped as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobStreams {
    /// The `<queue>` of the keys.
    pub queue: &'static str,
    /// The consumer group over the shards' streams.
    pub group: &'static str,
}

impl JobStreams {
    /// Frame jobs (`{frames}`, group `detect`).
    pub const FRAMES: Self = Self {
        queue: "frames",
        group: "detect",
    };

    /// Insight jobs (`{insights}`, group `notify`).
    pub const INSIGHTS: Self = Self {
        queue: "insights",
        group: "notify",
    };

    /// `<prefix>:jobs:{<queue>}:<shard>`.
    pub fn shard(&self, prefix: &str, shard: u16) -> String {
        format!("{prefix}:jobs:{{{}}}:{shard}", self.queue)
    }

    /// `<prefix>:jobs:{<queue>}:dead`.
    pub fn dead(&self, prefix: &str) -> String {
        format!("{prefix}:jobs:{{{}}}:dead", self.queue)
    }

    /// `<prefix>:jobs:{<queue>}:dropped`.
    pub fn dropped(&self, prefix: &str) -> String {
        format!("{prefix}:jobs:{{{}}}:dropped", self.queue)
    }
}

/// `<prefix>:jobs:{frames}:<shard>`: a shard's stream of frame jobs (consumer
/// group `detect`), [`JobStreams::FRAMES`].
pub fn frame_jobs(prefix: &str, shard: u16) -> String {
    JobStreams::FRAMES.shard(prefix, shard)
}

/// `<prefix>:jobs:{frames}:dead`: frame jobs given up on, with their error.
pub fn frame_jobs_dead(prefix: &str) -> String {
    JobStreams::FRAMES.dead(prefix)
}

/// `<prefix>:jobs:{frames}:dropped`: count of frame jobs dropped as stale.
pub fn frame_jobs_dropped(prefix: &str) -> String {
    JobStreams::FRAMES.dropped(prefix)
}

/// `<prefix>:jobs:{insights}:<shard>`: a shard's stream of insight jobs
/// (consumer group `notify`), [`JobStreams::INSIGHTS`]; `:dead` and
/// `:dropped` as for frames.
pub fn insight_jobs(prefix: &str, shard: u16) -> String {
    JobStreams::INSIGHTS.shard(prefix, shard)
}

/// `<prefix>:det:{<device>}`: the device's stream of detection results (field
/// `r`, JSON), in append order; MAXLEN-capped.
pub fn detections(prefix: &str, device: &str) -> String {
    format!("{prefix}:det:{{{device}}}")
}

/// `<prefix>:det:{<device>}:job:<job>`: marks a job's result as recorded
/// (idempotent appends); expires after the reclaim horizon.
pub fn detection_job(prefix: &str, device: &str, job: &str) -> String {
    format!("{prefix}:det:{{{device}}}:job:{job}")
}

/// `<prefix>:det:{<device>}:cursor`: the analytics owner's committed offset.
pub fn detections_cursor(prefix: &str, device: &str) -> String {
    format!("{prefix}:det:{{{device}}}:cursor")
}

/// `<prefix>:det:active`: sorted set device -> last append (ms).
pub fn detections_active(prefix: &str) -> String {
    format!("{prefix}:det:active")
}

/// `<prefix>:lease:{<name>}`: a lease (value: its owner), with a TTL. The
/// names are [`lease_names`].
pub fn lease(prefix: &str, name: &str) -> String {
    format!("{prefix}:lease:{{{name}}}")
}

/// The name of every lease the roles take (the `<name>` of [`lease`]; the
/// in-process leases use the same names). One per thing leased, so two
/// roles never contend for each other's leases.
pub mod lease_names {
    use panoptes_shared::ids::{DeviceId, UserId};

    /// `ingest:<device>`: the ingest node that pulls the device's stream.
    pub fn ingest_stream(device: DeviceId) -> String {
        format!("ingest:{device}")
    }

    /// `health:<device>`: one health check of an idle camera per interval,
    /// across the ingest nodes (taken under a one-off owner, left to lapse).
    pub fn health_check(device: DeviceId) -> String {
        format!("health:{device}")
    }

    /// `analytics:<device>`: the analytics node that owns the device's results.
    pub fn analytics_owner(device: DeviceId) -> String {
        format!("analytics:{device}")
    }

    /// `notify:<user>`: the notify node that evaluates the user's alert rules.
    pub fn notify_rules(user: UserId) -> String {
        format!("notify:{user}")
    }

    /// `webhook:<user>`: the notify node delivering to the user's endpoint
    /// (one at a time, so deliveries go out in order).
    pub fn webhook_sender(user: UserId) -> String {
        format!("webhook:{user}")
    }

    /// `snapshot:<device>`: at most one stored snapshot per device per
    /// interval, across the detect nodes (owned by the job that stores it).
    pub fn snapshot(device: DeviceId) -> String {
        format!("snapshot:{device}")
    }
}

/// `<prefix>:{nodes}`: hash node id -> JSON {info, lastSeenMs}.
pub fn nodes(prefix: &str) -> String {
    format!("{prefix}:{{nodes}}")
}

/// `<prefix>:{nodes}:alive:`: prefix of each node's heartbeat key (with a TTL).
pub fn node_alive_prefix(prefix: &str) -> String {
    format!("{prefix}:{{nodes}}:alive:")
}

//! The settings a distributed production deployment must give each of its
//! processes, beyond the defaults (which suit one process on one machine:
//! SQLite, in-process bus, secrets generated into the data dir). The
//! Terraform environment and the Kubernetes manifests are checked against
//! this list, so a deploy cannot miss one; `panoptes config-reference`
//! prints it.

use serde::Serialize;

/// A kind of process in a deployment: the gateway, or a worker role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    Gateway,
    Ingest,
    Detect,
    Analytics,
    Notify,
    Schedule,
}

impl Process {
    pub const ALL: [Process; 6] = [
        Self::Gateway,
        Self::Ingest,
        Self::Detect,
        Self::Analytics,
        Self::Notify,
        Self::Schedule,
    ];
    const WORKERS: [Process; 5] = [
        Self::Ingest,
        Self::Detect,
        Self::Analytics,
        Self::Notify,
        Self::Schedule,
    ];
}

/// One setting production requires.
#[derive(Debug, Clone, Serialize)]
pub struct Required {
    /// `section.key`.
    pub key: &'static str,
    /// Which processes need it.
    pub processes: &'static [Process],
    /// Comes from a secret store, never a plain value.
    pub secret: bool,
    /// A valid value (secrets: of the right shape, not a real one).
    pub example: &'static str,
    pub why: &'static str,
}

impl Required {
    /// The environment variable that sets it: `PANOPTES__SECTION__KEY`.
    pub fn env(&self) -> String {
        env_var(self.key)
    }
}

/// `section.key` as an environment variable.
pub fn env_var(key: &str) -> String {
    format!(
        "{}{}",
        super::ENV_PREFIX,
        key.replace('.', "__").to_uppercase()
    )
}

const ALL: &[Process] = &Process::ALL;
const WORKERS: &[Process] = &Process::WORKERS;

/// Every setting a production deployment must set, per process.
pub const REQUIRED: &[Required] = &[
    Required {
        key: "store.url",
        processes: ALL,
        secret: true,
        example: "postgres://panoptes:pw@db.internal:5432/panoptes",
        why: "one PostgreSQL for every process; the SQLite default is one node's",
    },
    Required {
        key: "redis.url",
        processes: ALL,
        secret: true,
        example: "rediss://:token@redis.internal:6379",
        why: "the bus, frame queue, leases and limits shared across processes",
    },
    Required {
        key: "auth.jwt_secret",
        processes: ALL,
        secret: true,
        example: "0123456789abcdef0123456789abcdef",
        why: "sessions and tickets verify on any gateway; unset, each process generates its own",
    },
    Required {
        key: "auth.credentials_key",
        processes: ALL,
        secret: true,
        example: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        why: "camera credentials and webhook secrets decrypt on any process; unset, each generates its own",
    },
    Required {
        key: "blobs.backend",
        processes: ALL,
        secret: false,
        example: "s3",
        why: "snapshots written by detectors are read through every gateway",
    },
    Required {
        key: "blobs.s3_bucket",
        processes: ALL,
        secret: false,
        example: "panoptes-snapshots",
        why: "where snapshots live",
    },
    Required {
        key: "blobs.s3_region",
        processes: ALL,
        secret: false,
        example: "eu-west-1",
        why: "the bucket's region (signing)",
    },
    Required {
        key: "log.format",
        processes: ALL,
        secret: false,
        example: "json",
        why: "one JSON object per line for the log service",
    },
    Required {
        key: "data.dir",
        processes: ALL,
        secret: false,
        example: "/var/lib/panoptes",
        why: "a writable directory (the image's root file system is read-only)",
    },
    Required {
        key: "server.listen",
        processes: &[Process::Gateway],
        secret: false,
        example: "0.0.0.0:8080",
        why: "the default listens on loopback only",
    },
    Required {
        key: "server.trusted_proxies",
        processes: &[Process::Gateway],
        secret: false,
        example: "10.0.0.0/16",
        why: "behind a load balancer, the client address (rate limits, logs) is in X-Forwarded-For",
    },
    Required {
        key: "worker.metrics_listen",
        processes: WORKERS,
        secret: false,
        example: "0.0.0.0:9464",
        why: "/metrics (queue lag for scaling) and /healthz, reachable from outside the container",
    },
    Required {
        key: "detector.execution_provider",
        processes: &[Process::Detect],
        secret: false,
        example: "cuda",
        why: "GPU nodes run the CUDA provider",
    },
    Required {
        key: "detector.model_path",
        processes: &[Process::Detect],
        secret: false,
        example: "/opt/panoptes/models/nanodet-m-416.onnx",
        why: "the model's place in the image (the default is relative to a source checkout)",
    },
    Required {
        key: "detector.ort_library",
        processes: &[Process::Detect],
        secret: false,
        example: "/opt/panoptes/lib/libonnxruntime.so.1.31.1",
        why: "ONNX Runtime is loaded at run time from this file",
    },
];

/// The required settings of `process`.
pub fn required_for(process: Process) -> impl Iterator<Item = &'static Required> {
    REQUIRED
        .iter()
        .filter(move |r| r.processes.contains(&process))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn every_required_key_is_a_real_setting_and_its_example_is_valid() {
        let vars: Vec<(String, String)> = REQUIRED
            .iter()
            .map(|r| (r.env(), r.example.to_owned()))
            .collect();
        let cfg = Config::load_from(None, vars).unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        assert_eq!(
            required_for(Process::Gateway).count(),
            11,
            "common settings and the gateway's own"
        );
        assert_eq!(env_var("store.url"), "PANOPTES__STORE__URL");
        assert_eq!(
            env_var("worker.metrics_listen"),
            "PANOPTES__WORKER__METRICS_LISTEN"
        );
    }

    #[test]
    fn every_process_needs_the_shared_state() {
        for p in Process::ALL {
            let keys: Vec<_> = required_for(p).map(|r| r.key).collect();
            for k in ["store.url", "redis.url", "auth.jwt_secret", "blobs.backend"] {
                assert!(keys.contains(&k), "{p:?} lacks {k}");
            }
        }
    }
}

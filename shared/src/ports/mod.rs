//! Port traits: one per external system. Adapters live in `panoptes-infra`,
//! each port has an embedded adapter and a distributed one, chosen by config.

pub mod blobs;
pub mod bus;
pub mod camera;
pub mod cipher;
pub mod coord;
pub mod detections;
pub mod jobs;
pub mod rate_limit;
pub mod resolver;
pub mod slots;
pub mod store;
pub mod vlm;
pub mod webhooks;

pub use blobs::BlobStore;
pub use bus::{BusEvent, EventBus, Offset, Publication, ResumePoint, Subscription};
pub use camera::CameraProbe;
pub use cipher::SecretCipher;
pub use coord::{Leases, NodeInfo, NodeRegistry, NodeStatus};
pub use detections::DetectionLog;
pub use jobs::{Claimed, FrameJob, JobQueue, QueuePolicy, QueueStats};
pub use rate_limit::{RateDecision, RateLimiter};
pub use resolver::Resolver;
pub use slots::{SlotGrant, StreamSlots, StreamToken, TakenOver};
pub use store::{
    AlertFilter, AlertRepo, ApiKeyRepo, AttributeFilter, AttributeRepo, DeliveryFilter, DeviceRepo,
    EventRepo, InsightFilter, InsightRepo, MetricsHistoryRepo, RuleFilter, SceneRepo, SessionRepo,
    Store, TaskRepo, UsageFilter, UsageRepo, UsageTotals, UserRepo, WebhookRepo,
};
pub use vlm::{TokenUsage, VlmAnswer, VlmError, VlmProvider, VlmRequest};
pub use webhooks::{OutboundRequest, OutboundResponse, WebhookSender};

/// Every port trait, for `use panoptes_shared::ports::prelude::*;` where methods are called.
pub mod prelude {
    pub use super::blobs::BlobStore as _;
    pub use super::bus::EventBus as _;
    pub use super::camera::CameraProbe as _;
    pub use super::cipher::SecretCipher as _;
    pub use super::coord::{Leases as _, NodeRegistry as _};
    pub use super::detections::DetectionLog as _;
    pub use super::jobs::JobQueue as _;
    pub use super::rate_limit::RateLimiter as _;
    pub use super::slots::StreamSlots as _;
    pub use super::store::{
        AlertRepo as _, ApiKeyRepo as _, AttributeRepo as _, DeviceRepo as _, EventRepo as _,
        InsightRepo as _, MetricsHistoryRepo as _, SceneRepo as _, SessionRepo as _, Store as _,
        TaskRepo as _, UsageRepo as _, UserRepo as _, WebhookRepo as _,
    };
    pub use super::vlm::VlmProvider as _;
}

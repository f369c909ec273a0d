//! Insights: the VLM's reading of an alert's snapshot. One per alert; it is
//! created `pending` when the alert fires and ends `completed` (with a
//! summary) or `failed` (with a reason). A final insight never changes, so a
//! redelivered VLM job cannot overwrite a result.

use chrono::{DateTime, Utc};

use crate::domain::alert::{Alert, Severity};
use crate::domain::device::string_enum;
use crate::ids::{AlertId, DeviceId, InsightId, SceneId, TaskId, UserId};

string_enum!(
    /// Where the VLM analysis of an insight is.
    VlmStatus { Pending = "pending", Completed = "completed", Failed = "failed" }
);

/// What the VLM answered, for [`Insight::complete`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VlmResult {
    pub summary: String,
    pub structured: Option<serde_json::Value>,
    pub model: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insight {
    pub id: InsightId,
    pub user_id: UserId,
    pub alert_id: AlertId,
    pub device_id: DeviceId,
    pub scene_id: SceneId,
    pub task_id: Option<TaskId>,
    /// The alert's.
    pub severity: Severity,
    pub vlm_status: VlmStatus,
    pub vlm_summary: Option<String>,
    pub vlm_structured_result: Option<serde_json::Value>,
    pub failure_reason: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    /// VLM requests made for it so far.
    pub attempts: u32,
    pub snapshot_key: Option<String>,
    /// The alert's firing time (what the list's date range filters on).
    pub triggered_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Attribute records of the people in view when the alert fired.
    pub attribute_count: u64,
}

impl Insight {
    /// A pending insight for `alert`, created at `now`.
    pub fn pending(alert: &Alert, now: DateTime<Utc>) -> Self {
        Self {
            id: InsightId::new(),
            user_id: alert.user_id,
            alert_id: alert.id,
            device_id: alert.device_id,
            scene_id: alert.scene_id,
            task_id: alert.task_id,
            severity: alert.severity,
            vlm_status: VlmStatus::Pending,
            vlm_summary: None,
            vlm_structured_result: None,
            failure_reason: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
            attempts: 0,
            snapshot_key: alert.snapshot_key.clone(),
            triggered_at: alert.triggered_at,
            created_at: now,
            updated_at: now,
            completed_at: None,
            attribute_count: 0,
        }
    }

    pub fn is_final(&self) -> bool {
        self.vlm_status != VlmStatus::Pending
    }

    /// Records the VLM's answer after `attempts` requests; `false` (and
    /// nothing changed) when the insight is already final.
    pub fn complete(&mut self, result: VlmResult, attempts: u32, now: DateTime<Utc>) -> bool {
        if self.is_final() {
            return false;
        }
        self.vlm_status = VlmStatus::Completed;
        self.vlm_summary = Some(result.summary);
        self.vlm_structured_result = result.structured;
        self.model = result.model;
        self.prompt_tokens = result.prompt_tokens;
        self.completion_tokens = result.completion_tokens;
        self.total_tokens = result.total_tokens;
        self.attempts = attempts;
        self.updated_at = now;
        self.completed_at = Some(now);
        true
    }

    /// Gives up after `attempts` requests; `false` (and nothing changed)
    /// when the insight is already final.
    pub fn fail(&mut self, reason: impl Into<String>, attempts: u32, now: DateTime<Utc>) -> bool {
        if self.is_final() {
            return false;
        }
        self.vlm_status = VlmStatus::Failed;
        self.failure_reason = Some(reason.into());
        self.attempts = attempts;
        self.updated_at = now;
        self.completed_at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::now;

    fn insight() -> Insight {
        let t = now();
        Insight {
            id: InsightId::new(),
            user_id: UserId::new(),
            alert_id: AlertId::new(),
            device_id: DeviceId::new(),
            scene_id: SceneId::new(),
            task_id: None,
            severity: Severity::Warning,
            vlm_status: VlmStatus::Pending,
            vlm_summary: None,
            vlm_structured_result: None,
            failure_reason: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
            attempts: 0,
            snapshot_key: None,
            triggered_at: t,
            created_at: t,
            updated_at: t,
            completed_at: None,
            attribute_count: 0,
        }
    }

    #[test]
    fn a_final_insight_stays_as_it_is() {
        let mut i = insight();
        let done = VlmResult {
            summary: "two people wait".into(),
            ..VlmResult::default()
        };
        assert!(i.complete(done.clone(), 1, now()));
        let kept = i.clone();
        assert!(!i.complete(done, 2, now()));
        assert!(!i.fail("late", 3, now()));
        assert_eq!(i, kept);

        let mut f = insight();
        assert!(f.fail("no snapshot", 3, now()));
        assert!(!f.complete(VlmResult::default(), 4, now()));
        assert_eq!(f.vlm_status, VlmStatus::Failed);
        assert_eq!(f.failure_reason.as_deref(), Some("no snapshot"));
    }
}

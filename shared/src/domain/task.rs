//! Analysis tasks: one run of a scene's analysis on a device, from start to
//! stop. At most one task per device runs at a time (the store enforces it).
//! A task's id is the `<taskId>` of its SSE event ids; its running time is
//! what the `analysisSeconds` quota meters.

use chrono::{DateTime, Utc};

use crate::domain::device::string_enum;
use crate::domain::plan::Plan;
use crate::error::FieldError;
use crate::ids::{DeviceId, SceneId, TaskId, UserId};

string_enum!(
    /// `running` until stopped; `stopped` by a user, the schedule or the quota;
    /// `failed` when the source could not be analysed.
    TaskStatus { Running = "running", Stopped = "stopped", Failed = "failed" }
);
string_enum!(
    /// Who started the task.
    TaskTrigger { Api = "api", Schedule = "schedule", Edge = "edge" }
);
string_enum!(
    /// Why a task ended.
    StopReason {
        User = "user",
        Schedule = "schedule",
        QuotaExhausted = "quota_exhausted",
        SourceError = "source_error",
        SceneUnavailable = "scene_unavailable",
    }
);
string_enum!(
    /// Optional capabilities beyond detection, tracking and queue metrics.
    /// Both need plan `level_02`.
    Capability { Vlm = "vlm", Attributes = "attributes" }
);

impl Capability {
    /// Whether a device on `plan` may use this capability.
    pub fn allowed_on(self, plan: Plan) -> bool {
        plan == Plan::Level02
    }

    /// Parse `enabledCapabilities`: known names, duplicates removed, order kept.
    pub fn parse_list(raw: &[String]) -> Result<Vec<Capability>, FieldError> {
        let mut out = Vec::new();
        for (i, name) in raw.iter().enumerate() {
            let c = Capability::parse(name).ok_or_else(|| {
                FieldError::new(
                    format!("enabledCapabilities[{i}]"),
                    "must be one of `vlm`, `attributes`",
                )
            })?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisTask {
    pub id: TaskId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub scene_id: SceneId,
    pub status: TaskStatus,
    pub trigger: TaskTrigger,
    pub capabilities: Vec<Capability>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_reason: Option<StopReason>,
    /// What went wrong, for `failed` tasks (never secrets: no URLs with credentials).
    pub error: Option<String>,
}

impl AnalysisTask {
    pub fn start(
        user_id: UserId,
        device_id: DeviceId,
        scene_id: SceneId,
        trigger: TaskTrigger,
        capabilities: Vec<Capability>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: TaskId::new(),
            user_id,
            device_id,
            scene_id,
            status: TaskStatus::Running,
            trigger,
            capabilities,
            started_at: at,
            stopped_at: None,
            stop_reason: None,
            error: None,
        }
    }

    /// Seconds of this task's running time inside `[from, to)`, counted as
    /// the usage ledger meters it: the whole seconds it covers
    /// (`⌊end⌋ − ⌊start⌋`), so `runSeconds` and the metered usage agree.
    pub fn seconds_within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        let start = self.started_at.max(from);
        let end = self.stopped_at.unwrap_or(to).min(to);
        if end <= start {
            return 0;
        }
        u64::try_from(end.timestamp() - start.timestamp()).unwrap_or(0)
    }

    /// Whether this task runs `capability` on a device on `plan`: enabled
    /// when the task started, and allowed on the plan the device has now
    /// (a device moved to a lower plan mid-task stops using it).
    pub fn runs(&self, capability: Capability, plan: Plan) -> bool {
        self.capabilities.contains(&capability) && capability.allowed_on(plan)
    }
}

/// How a task ends: the status, the reason and, for failures, the error.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnd {
    pub status: TaskStatus,
    pub reason: StopReason,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

impl TaskEnd {
    pub fn stopped(reason: StopReason, at: DateTime<Utc>) -> Self {
        Self {
            status: TaskStatus::Stopped,
            reason,
            error: None,
            at,
        }
    }

    pub fn failed(error: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            status: TaskStatus::Failed,
            reason: StopReason::SourceError,
            error: Some(error.into()),
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn running_time_is_clipped_to_the_period() {
        let t = |h: u32| Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap();
        let mut task = AnalysisTask::start(
            UserId::new(),
            DeviceId::new(),
            SceneId::new(),
            TaskTrigger::Api,
            vec![],
            t(1),
        );
        assert_eq!(task.seconds_within(t(0), t(3)), 2 * 3600, "still running");
        assert_eq!(task.seconds_within(t(2), t(3)), 3600, "started before");
        task.stopped_at = Some(t(2));
        assert_eq!(task.seconds_within(t(0), t(5)), 3600, "stopped");
        assert_eq!(task.seconds_within(t(3), t(5)), 0, "outside");
        // Whole seconds covered, as the ledger meters: 0.9 s across a second
        // boundary is 1, 1.9 s inside two is 1.
        let ms = |m: i64| t(1) + chrono::Duration::milliseconds(m);
        task.started_at = ms(600);
        task.stopped_at = Some(ms(1_500));
        assert_eq!(task.seconds_within(t(0), t(5)), 1);
        task.stopped_at = Some(ms(2_500));
        assert_eq!(task.seconds_within(t(0), t(5)), 2);
        task.started_at = ms(0);
        task.stopped_at = Some(ms(1_900));
        assert_eq!(task.seconds_within(t(0), t(5)), 1);
    }

    #[test]
    fn capabilities_parse_and_need_level_02() {
        let caps =
            Capability::parse_list(&["vlm".into(), "vlm".into(), "attributes".into()]).unwrap();
        assert_eq!(caps, vec![Capability::Vlm, Capability::Attributes]);
        let err = Capability::parse_list(&["x".into()]).unwrap_err();
        assert_eq!(err.field, "enabledCapabilities[0]");
        assert!(!Capability::Vlm.allowed_on(Plan::Level01));
        assert!(Capability::Attributes.allowed_on(Plan::Level02));
        let t = |caps| {
            AnalysisTask::start(
                UserId::new(),
                DeviceId::new(),
                SceneId::new(),
                TaskTrigger::Api,
                caps,
                chrono::Utc::now(),
            )
        };
        let with = t(vec![Capability::Attributes]);
        assert!(with.runs(Capability::Attributes, Plan::Level02));
        assert!(!with.runs(Capability::Attributes, Plan::Level01));
        assert!(!with.runs(Capability::Vlm, Plan::Level02));
        assert!(!t(vec![]).runs(Capability::Attributes, Plan::Level02));
    }
}

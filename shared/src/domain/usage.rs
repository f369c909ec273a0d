//! Metering: usage events in an append-only ledger, one per source action,
//! identified by that action (a task's minute, an alert, an attribute batch,
//! a VLM request) so that a retried, replayed or doubly processed action
//! counts once. Analysis time is metered in pieces that never cross a UTC
//! minute, so a month boundary (always on a minute) splits a task exactly.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::json;

use crate::domain::device::string_enum;
use crate::domain::plan::{PlanLimits, billing_period};
use crate::domain::task::AnalysisTask;
use crate::ids::{AlertId, DeviceId, UserId};

string_enum!(
    /// A metered feature (the quota names of the usage API).
    Feature {
        AnalysisSeconds = "analysisSeconds",
        AlertCount = "alertCount",
        AttributeCount = "attributeCount",
        VlmTokens = "vlmTokens",
    }
);

impl Feature {
    /// This feature's allowance in a plan's limits.
    pub fn of(self, limits: &PlanLimits) -> u64 {
        match self {
            Self::AnalysisSeconds => limits.analysis_seconds,
            Self::AlertCount => limits.alert_count,
            Self::AttributeCount => limits.attribute_count,
            Self::VlmTokens => limits.vlm_tokens,
        }
    }
}

/// One metered action.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEvent {
    /// Derived from the source action: the same action, the same id.
    pub id: String,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub feature: Feature,
    pub quantity: u64,
    pub occurred_at: DateTime<Utc>,
    /// What was metered (task and interval, alert, request), for the usage list.
    pub source: serde_json::Value,
}

impl UsageEvent {
    /// `YYYY-MM` of the billing period it counts in.
    pub fn period(&self) -> String {
        billing_period(self.occurred_at).0
    }

    /// `YYYY-MM-DD` (UTC) of the day it counts in.
    pub fn day(&self) -> String {
        self.occurred_at.format("%Y-%m-%d").to_string()
    }

    /// The alert `alert` fired on `device`: one alert.
    pub fn alert(user: UserId, device: DeviceId, alert: AlertId, at: DateTime<Utc>) -> Self {
        Self {
            id: format!("alert:{alert}"),
            user_id: user,
            device_id: device,
            feature: Feature::AlertCount,
            quantity: 1,
            occurred_at: at,
            source: json!({ "alertId": alert }),
        }
    }
}

impl UsageEvent {
    /// Attributes computed in batch `batch` (a frame's people, say): `count`
    /// attributes.
    pub fn attributes(
        user: UserId,
        device: DeviceId,
        batch: &str,
        count: u64,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: format!("attributes:{batch}"),
            user_id: user,
            device_id: device,
            feature: Feature::AttributeCount,
            quantity: count,
            occurred_at: at,
            source: json!({ "batchId": batch }),
        }
    }

    /// The tokens VLM request `request` used (prompt and completion).
    pub fn vlm(
        user: UserId,
        device: DeviceId,
        request: &str,
        tokens: u64,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: format!("vlm:{request}"),
            user_id: user,
            device_id: device,
            feature: Feature::VlmTokens,
            quantity: tokens,
            occurred_at: at,
            source: json!({ "requestId": request }),
        }
    }
}

/// Whole seconds since the epoch of `t`, rounded down.
fn seconds(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// The analysis time of `task` in `[from, until)`, as events of at most one
/// UTC minute each, identified by the task and the minute. Each piece counts
/// the whole seconds it covers (`⌊end⌋ − ⌊start⌋`), so the pieces of a task add
/// up to its running time in whole seconds however it is cut. A piece is
/// dated at its start: a minute belongs to one day and one month.
pub fn analysis_pieces(
    task: &AnalysisTask,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<UsageEvent> {
    let from = from.max(task.started_at);
    let until = task.stopped_at.map_or(until, |s| s.min(until));
    let mut out = Vec::new();
    let mut at = from;
    while at < until {
        let minute = at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at);
        let end = (minute + TimeDelta::minutes(1)).min(until);
        let quantity = (seconds(end) - seconds(at)).max(0) as u64;
        if quantity > 0 {
            out.push(UsageEvent {
                id: format!("analysis:{}:{}", task.id, minute.timestamp() / 60),
                user_id: task.user_id,
                device_id: task.device_id,
                feature: Feature::AnalysisSeconds,
                quantity,
                occurred_at: minute,
                source: json!({
                    "taskId": task.id,
                    "from": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "to": end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                }),
            });
        }
        at = end;
    }
    out
}

/// How long after a minute ends a running task's minute is metered: a
/// replica whose clock runs up to this much ahead, or a stop being committed
/// as the minute ends, cannot meter time the task did not run.
pub const SETTLE: TimeDelta = TimeDelta::seconds(30);

/// The most running time one metering step writes (a day of minutes), so a
/// long backlog is worked off in bounded transactions.
pub const MAX_STEP: TimeDelta = TimeDelta::days(1);

/// Where metering of a task stands: up to when its time is metered, and
/// until when it should be now: its end, or while it runs the last whole
/// minute that ended [`SETTLE`] before `now`; at most [`MAX_STEP`] ahead.
pub fn metering_due(
    task: &AnalysisTask,
    metered_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = metered_until
        .unwrap_or(task.started_at)
        .max(task.started_at);
    let until = match task.stopped_at {
        Some(stop) => stop,
        None => {
            let settled = now - SETTLE;
            settled
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(settled)
        }
    };
    // A step that stops short ends on a minute (never inside one).
    let cap = (from + MAX_STEP)
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(from + MAX_STEP);
    (from, until.min(cap).max(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::{TaskStatus, TaskTrigger};
    use crate::ids::SceneId;
    use chrono::TimeZone;

    fn task(start: DateTime<Utc>, stop: Option<DateTime<Utc>>) -> AnalysisTask {
        let mut t = AnalysisTask::start(
            UserId::new(),
            DeviceId::new(),
            SceneId::new(),
            TaskTrigger::Api,
            Vec::new(),
            start,
        );
        t.stopped_at = stop;
        if stop.is_some() {
            t.status = TaskStatus::Stopped;
        }
        t
    }

    #[test]
    fn a_task_across_a_month_boundary_is_split_at_midnight_utc() {
        let start = Utc.with_ymd_and_hms(2026, 11, 30, 23, 58, 30).unwrap();
        let stop = Utc.with_ymd_and_hms(2026, 12, 1, 0, 2, 10).unwrap();
        let t = task(start, Some(stop));
        let pieces = analysis_pieces(&t, start, stop);
        let total: u64 = pieces.iter().map(|p| p.quantity).sum();
        assert_eq!(total, 220, "3 min 40 s");
        let november: u64 = pieces
            .iter()
            .filter(|p| p.period() == "2026-11")
            .map(|p| p.quantity)
            .sum();
        assert_eq!(november, 90);
        assert_eq!(total - november, 130);
        assert_eq!(pieces[0].day(), "2026-11-30");
        assert_eq!(pieces.last().unwrap().day(), "2026-12-01");
        // The same interval cut differently gives the same ids and total.
        let mid = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 45).unwrap();
        let mut again = analysis_pieces(&t, start, mid);
        again.extend(analysis_pieces(&t, mid, stop));
        let ids: std::collections::BTreeSet<_> = pieces.iter().map(|p| p.id.clone()).collect();
        assert!(again.iter().all(|p| ids.contains(&p.id)));
        // A minute cut in two yields the same id twice: the ledger keeps the
        // first, which is why a running task is metered in whole minutes only.
        assert_eq!(again.len(), pieces.len() + 1);
    }

    #[test]
    fn a_running_task_is_due_up_to_its_last_whole_minute() {
        let start = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 20).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 3, 50).unwrap();
        let t = task(start, None);
        let (from, until) = metering_due(&t, None, now);
        assert_eq!(from, start);
        assert_eq!(until, Utc.with_ymd_and_hms(2026, 12, 7, 10, 3, 0).unwrap());
        // A minute is due only SETTLE after it ends.
        let (_, u) = metering_due(&t, None, now - TimeDelta::seconds(21));
        assert_eq!(u, Utc.with_ymd_and_hms(2026, 12, 7, 10, 2, 0).unwrap());
        // A long backlog goes a day at a time, ending on a minute.
        let (f, u) = metering_due(&t, None, now + TimeDelta::days(3));
        assert_eq!((f, u), (start, start + MAX_STEP - TimeDelta::seconds(20)));
        let pieces = analysis_pieces(&t, from, until);
        assert_eq!(pieces.iter().map(|p| p.quantity).sum::<u64>(), 160);
        // Nothing due before the first minute completes.
        let early = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 50).unwrap();
        let (f, u) = metering_due(&t, None, early);
        assert!(analysis_pieces(&t, f, u).is_empty());
        // An ended task is due to its end.
        let stop = Utc.with_ymd_and_hms(2026, 12, 7, 10, 3, 5).unwrap();
        let ended = task(start, Some(stop));
        let (f, u) = metering_due(&ended, Some(until), now);
        assert_eq!((f, u), (until, stop));
        assert_eq!(analysis_pieces(&ended, f, u)[0].quantity, 5);
    }
}

//! Metering analysis time into the usage ledger while tasks run, and reading
//! usage back for quotas. Any number of scheduler replicas may meter at once:
//! the pieces' ids make a second write of a minute a no-op.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::device::Device;
use crate::domain::event::{EventKind, PlatformEvent};
use crate::domain::plan::{PlanLimits, billing_period, period_start};
use crate::domain::quota::Allowance;
use crate::domain::task::{AnalysisTask, TaskStatus};
use crate::domain::usage::{Feature, UsageEvent, analysis_pieces, metering_due};
use crate::error::{Error, Result};
use crate::ids::{DeviceId, UserId};
use crate::ports::Store;

/// Meter `task`'s running time from `metered_until` to what is due at `now`
/// (its end, or its last whole minute while it runs); the seconds newly
/// recorded (0 when another meterer got there first).
pub async fn meter_task(
    store: &dyn Store,
    task: &AnalysisTask,
    metered_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let (from, until) = metering_due(task, metered_until, now);
    if until <= from && (metered_until.is_some() || task.stopped_at.is_none()) {
        return Ok(0);
    }
    let pieces = analysis_pieces(task, from, until);
    store.meter_task(task, from, &pieces, until).await
}

/// Meter every task with time due (the scheduler's pass); seconds metered.
pub async fn meter_all(store: &dyn Store, now: DateTime<Utc>) -> Result<u64> {
    let mut total = 0;
    for (task, metered_until) in store.tasks_to_meter().await? {
        match meter_task(store, &task, metered_until, now).await {
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "metering a task failed; retried next pass")
            }
        }
    }
    Ok(total)
}

/// The device's analysis seconds in the billing period containing `now`: the
/// ledger, plus the running task's time not metered yet.
pub async fn analysis_seconds_used(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    now: DateTime<Utc>,
) -> Result<u64> {
    let (period, _) = billing_period(now);
    let metered = used_this_period(store, user, device, Feature::AnalysisSeconds, &period).await?;
    Ok(metered + unmetered_analysis_seconds(store, user, device, now).await?)
}

/// The device's running task's time in the period containing `now` that the
/// ledger does not hold yet (at most the current minute, while the
/// scheduler keeps up).
pub async fn unmetered_analysis_seconds(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    now: DateTime<Utc>,
) -> Result<u64> {
    let Some(task) = store
        .latest_task(user, device)
        .await?
        .filter(|t| t.status == TaskStatus::Running)
    else {
        return Ok(0);
    };
    let from = store
        .task_metered_until(user, task.id)
        .await?
        .unwrap_or(task.started_at)
        .max(task.started_at)
        .max(period_start(now));
    Ok((now.timestamp() - from.timestamp()).max(0) as u64)
}

/// The percentages of an allowance at which the owner is told: 80 %
/// (`quota_warning`) and 100 % (`quota_exceeded`).
pub const NOTICE_LEVELS: [(u8, EventKind); 2] = [
    (80, EventKind::QuotaWarning),
    (100, EventKind::QuotaExceeded),
];

/// Records `quota_warning` / `quota_exceeded` for each level `used` has
/// reached of `limit`, once per device, feature and period (a feature the
/// plan does not include has nothing to cross); the levels sent by this call.
pub async fn notify_quota(
    store: &dyn Store,
    device: &Device,
    feature: Feature,
    used: u64,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let mut sent = Vec::new();
    if limit == 0 {
        return Ok(sent);
    }
    let (period, resets_at) = billing_period(now);
    for (level, kind) in NOTICE_LEVELS {
        if u128::from(used) * 100 < u128::from(limit) * u128::from(level) {
            continue;
        }
        let event = PlatformEvent::new(
            device.user_id,
            kind,
            Some(device.id),
            None,
            json!({
                "feature": feature.as_str(),
                "period": period,
                "used": used,
                "limit": limit,
                "threshold": level,
                "usagePercentage": used as f64 * 100.0 / limit as f64,
                "resetsAt": resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
            now,
        );
        if store
            .record_quota_notice(device.id, &period, feature, level, &event)
            .await?
        {
            tracing::info!(device = %device.id, feature = feature.as_str(), level, used, limit, "quota notice sent");
            sent.push(level);
        }
    }
    Ok(sent)
}

/// The device's analysis seconds used and allowed this period (at `now`),
/// sending `quota_warning` / `quota_exceeded` when a level is reached (a
/// failed notice is logged and retried by the next check).
pub async fn check_analysis_quota(
    store: &dyn Store,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<(u64, Allowance)> {
    let used = analysis_seconds_used(store, device.user_id, device.id, now).await?;
    let allowed = allowance(store, device, &billing_period(now).0).await?;
    if !allowed.unlimited
        && let Err(e) = notify_quota(
            store,
            device,
            Feature::AnalysisSeconds,
            used,
            allowed.limit(Feature::AnalysisSeconds),
            now,
        )
        .await
    {
        tracing::warn!(device = %device.id, error = %e, "quota notice failed; retried at the next check");
    }
    Ok((used, allowed))
}

/// Admits one more use of a counted feature (an attribute batch, a VLM
/// request) on `device` at `now`, before it is made: refused with
/// `PLAN_REQUIRED` when the device's allowance has none of it (a plan
/// without the feature and no grant) and `QUOTA_EXCEEDED` once this
/// period's allowance is used up. A use admitted while a little is left may
/// end past the limit (a VLM answer's tokens are known only after it); the
/// next one is refused. The allowance admitted against.
pub async fn admit(
    store: &dyn Store,
    device: &Device,
    feature: Feature,
    now: DateTime<Utc>,
) -> Result<Allowance> {
    let (period, resets_at) = billing_period(now);
    let allowed = allowance(store, device, &period).await?;
    if allowed.unlimited {
        return Ok(allowed);
    }
    let limit = allowed.limit(feature);
    if limit == 0 {
        return Err(Error::PlanRequired(format!(
            "{} is not part of this device's plan ({}); it needs plan level_02",
            feature.as_str(),
            device.plan.as_str()
        )));
    }
    let used = used_this_period(store, device.user_id, device.id, feature, &period).await?;
    if allowed.exhausted(feature, used) {
        return Err(Error::QuotaExceeded(format!(
            "the device has used its {} quota for {period} ({used} of {limit}); it resets at {}",
            feature.as_str(),
            resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    Ok(allowed)
}

/// Meters `event` (an attribute batch, a VLM request: identified by its
/// source, so a retry or redelivery counts once) and tells the owner when it
/// reaches 80 % or 100 % of the allowance; whether it was new.
pub async fn meter(store: &dyn Store, device: &Device, event: &UsageEvent) -> Result<bool> {
    let new = store.record_usage(std::slice::from_ref(event)).await? > 0;
    if new {
        let period = event.period();
        let allowed = allowance(store, device, &period).await?;
        if !allowed.unlimited {
            let used =
                used_this_period(store, device.user_id, device.id, event.feature, &period).await?;
            let limit = allowed.limit(event.feature);
            if let Err(e) =
                notify_quota(store, device, event.feature, used, limit, event.occurred_at).await
            {
                tracing::warn!(device = %device.id, error = %e, "quota notice failed; sent with the next use");
            }
        }
    }
    Ok(new)
}

/// What the ledger holds of `feature` for `device` in `period`.
async fn used_this_period(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    feature: Feature,
    period: &str,
) -> Result<u64> {
    Ok(store
        .usage_totals(user, Some(device), period)
        .await?
        .get(&feature)
        .copied()
        .unwrap_or(0))
}

/// What `device` may use in `period`: its plan capped per device, plus the
/// period's grants; unlimited when an admin said so.
pub async fn allowance(store: &dyn Store, device: &Device, period: &str) -> Result<Allowance> {
    let grants = store
        .quota_grants(device.user_id, device.id, period)
        .await?;
    let base = device.allowance();
    let plus = |f: Feature| {
        f.of(&base)
            .saturating_add(grants.get(&f).copied().unwrap_or(0))
    };
    Ok(Allowance {
        limits: PlanLimits {
            analysis_seconds: plus(Feature::AnalysisSeconds),
            alert_count: plus(Feature::AlertCount),
            attribute_count: plus(Feature::AttributeCount),
            vlm_tokens: plus(Feature::VlmTokens),
        },
        unlimited: device.quota.unlimited,
    })
}

/// Closes the billing period before the one containing `now`: one
/// `billing_cycle_completed` per user who used anything in it (their usage
/// per feature), once whichever replica gets there first; how many were sent.
pub async fn close_previous_period(store: &dyn Store, now: DateTime<Utc>) -> Result<u64> {
    let previous = period_start(now) - chrono::Duration::days(1);
    let (period, _) = billing_period(previous);
    let started = period_start(previous);
    let mut sent = 0;
    for user in store.users_with_usage(&period).await? {
        let totals = store.usage_totals(user, None, &period).await?;
        let usage: serde_json::Map<String, serde_json::Value> = Feature::ALL
            .iter()
            .map(|f| {
                (
                    f.as_str().to_owned(),
                    json!(totals.get(f).copied().unwrap_or(0)),
                )
            })
            .collect();
        let event = PlatformEvent::new(
            user,
            EventKind::BillingCycleCompleted,
            None,
            None,
            json!({
                "billingPeriod": period,
                "periodStart": started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "periodEnd": period_start(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "usage": usage,
            }),
            now,
        );
        if store.record_billing_cycle(&period, &event).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

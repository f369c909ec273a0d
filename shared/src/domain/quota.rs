//! The quota ledger: every change to what a device may use, with who made
//! it, when and why. Admins grant extra allowance for a month (no carry-over:
//! a grant counts in its own billing period only) and set a device unlimited
//! or disabled; owners cap a device below its plan or disable it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::device::{Device, QuotaLimits, string_enum};
use crate::domain::plan::{PlanLimits, billing_period};
use crate::domain::usage::Feature;
use crate::ids::{DeviceId, UserId};

string_enum!(
    /// What a quota change did.
    ChangeKind {
        Grant = "grant",
        Unlimited = "unlimited",
        Disabled = "disabled",
        Cap = "cap",
    }
);

/// One row of the quota ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaChange {
    pub id: Uuid,
    pub user_id: UserId,
    pub device_id: DeviceId,
    /// `YYYY-MM` it applies to (grants), or in which it was made.
    pub period: String,
    pub kind: ChangeKind,
    /// Grants and caps: the feature.
    pub feature: Option<Feature>,
    /// Grants: the extra allowance; caps: the new cap (`None`: back to the plan).
    pub amount: Option<u64>,
    /// Unlimited / disabled: the new value.
    pub flag: Option<bool>,
    pub reason: String,
    /// `admin:<id>` or `user:<id>` / `key:<id>`.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl QuotaChange {
    /// A change of `kind` to `device`'s quota in `period`, by `actor`, at `at`.
    pub fn new(
        device: &Device,
        period: String,
        kind: ChangeKind,
        actor: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            user_id: device.user_id,
            device_id: device.id,
            period,
            kind,
            feature: None,
            amount: None,
            flag: None,
            reason: reason.to_owned(),
            actor: actor.to_owned(),
            created_at: at,
        }
    }

    /// The rows for `device`'s quota as changed from `before`, at its
    /// `updated_at`: one per cap changed, one per flag flipped.
    pub fn between(before: &QuotaLimits, device: &Device, actor: &str, reason: &str) -> Vec<Self> {
        let after = &device.quota;
        let at = device.updated_at;
        let row = |kind| Self::new(device, billing_period(at).0, kind, actor, reason, at);
        let mut out = Vec::new();
        for &f in Feature::ALL {
            let (was, now) = (cap(before, f), cap(after, f));
            if was != now {
                out.push(Self {
                    feature: Some(f),
                    amount: now,
                    ..row(ChangeKind::Cap)
                });
            }
        }
        for (kind, was, now) in [
            (ChangeKind::Unlimited, before.unlimited, after.unlimited),
            (ChangeKind::Disabled, before.disabled, after.disabled),
        ] {
            if was != now {
                out.push(Self {
                    flag: Some(now),
                    ..row(kind)
                });
            }
        }
        out
    }
}

/// The owner's cap on `f` (`None`: the plan's).
fn cap(q: &QuotaLimits, f: Feature) -> Option<u64> {
    match f {
        Feature::AnalysisSeconds => q.analysis_seconds,
        Feature::AlertCount => q.alert_count,
        Feature::AttributeCount => q.attribute_count,
        Feature::VlmTokens => q.vlm_tokens,
    }
}

/// What a device may use in a period: its plan, capped per device, plus the
/// period's grants; or no limit at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limits: PlanLimits,
    pub unlimited: bool,
}

impl Allowance {
    pub fn limit(&self, f: Feature) -> u64 {
        f.of(&self.limits)
    }

    /// Whether `used` has reached the limit of `f`.
    pub fn exhausted(&self, f: Feature, used: u64) -> bool {
        !self.unlimited && used >= self.limit(f)
    }
}

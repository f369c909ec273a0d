//! The quota ledger: every change to what a device may use, with who made
//! it, when and why. Admins grant extra allowance for a month (no carry-over:
//! a grant counts in its own billing period only) and set a device unlimited
//! or disabled; owners cap a device below its plan or disable it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::device::string_enum;
use crate::domain::plan::PlanLimits;
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

//! Plans and their monthly quotas (reset on the 1st, 00:00 UTC).

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::domain::device::string_enum;

string_enum!(
    /// Billing plan of a device.
    Plan { Level01 = "level_01", Level02 = "level_02" }
);

/// Monthly allowance of one plan, in the four metered features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    pub analysis_seconds: u64,
    pub alert_count: u64,
    pub attribute_count: u64,
    pub vlm_tokens: u64,
}

impl Plan {
    pub fn limits(self) -> PlanLimits {
        match self {
            Self::Level01 => PlanLimits {
                analysis_seconds: 150 * 3600,
                alert_count: 3_000,
                attribute_count: 0,
                vlm_tokens: 0,
            },
            Self::Level02 => PlanLimits {
                analysis_seconds: 250 * 3600,
                alert_count: 5_000,
                attribute_count: 5_000,
                vlm_tokens: 10_000_000,
            },
        }
    }
}

/// The billing period (`YYYY-MM`) containing `t`, and when the next one starts.
pub fn billing_period(t: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let next = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(t);
    (format!("{:04}-{:02}", t.year(), t.month()), next)
}

/// When the billing period containing `t` began (the 1st, 00:00 UTC).
pub fn period_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_rolls_over_at_year_end() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let (p, next) = billing_period(t);
        assert_eq!(p, "2026-12");
        assert_eq!(next, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }
}

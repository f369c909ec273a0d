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

/// A billing period as given in a query (`YYYY-MM`, months 01 to 12), or
/// why not.
pub fn parse_period(raw: &str) -> Result<String, String> {
    let ok = raw.len() == 7
        && raw.as_bytes()[4] == b'-'
        && raw[..4].bytes().all(|b| b.is_ascii_digit())
        && raw[5..].bytes().all(|b| b.is_ascii_digit())
        && matches!(raw[5..].parse::<u32>(), Ok(1..=12))
        && raw[..4].parse::<i32>().is_ok_and(|y| y >= 1970);
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "must be a billing period YYYY-MM (e.g. 2026-02), not `{raw}`"
        ))
    }
}

impl PlanLimits {
    /// Field by field sum (a user's allowance over their devices).
    pub fn plus(self, o: Self) -> Self {
        Self {
            analysis_seconds: self.analysis_seconds.saturating_add(o.analysis_seconds),
            alert_count: self.alert_count.saturating_add(o.alert_count),
            attribute_count: self.attribute_count.saturating_add(o.attribute_count),
            vlm_tokens: self.vlm_tokens.saturating_add(o.vlm_tokens),
        }
    }

    pub const ZERO: Self = Self {
        analysis_seconds: 0,
        alert_count: 0,
        attribute_count: 0,
        vlm_tokens: 0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_year_and_month() {
        assert_eq!(parse_period("2026-02").as_deref(), Ok("2026-02"));
        assert_eq!(parse_period("2026-12").as_deref(), Ok("2026-12"));
        for bad in [
            "2026-13",
            "2026-00",
            "2026-2",
            "26-02",
            "2026/02",
            "2026-02-01",
            "abcd-ef",
            "",
            "1969-12",
        ] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn period_rolls_over_at_year_end() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let (p, next) = billing_period(t);
        assert_eq!(p, "2026-12");
        assert_eq!(next, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }
}

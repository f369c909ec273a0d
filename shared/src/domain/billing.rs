//! The billing dashboard's arithmetic over usage aggregates: trend buckets
//! (day, ISO week, month), period-over-period comparison and the month-end
//! forecast. Pure functions over daily totals, so the answers are checked on
//! fixture data.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::domain::device::string_enum;
use crate::domain::usage::Feature;

string_enum!(
    /// Trend bucket size.
    Granularity { Day = "day", Week = "week", Month = "month" }
);

/// Usage per feature (absent: none).
pub type Totals = BTreeMap<Feature, u64>;

/// Adds `b` into `a`.
pub fn add_into(a: &mut Totals, b: &Totals) {
    for (f, n) in b {
        *a.entry(*f).or_default() += n;
    }
}

/// The first day of the bucket `day` falls in.
pub fn bucket_start(day: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Day => day,
        // ISO weeks start on Monday.
        Granularity::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
        Granularity::Month => day.with_day(1).unwrap_or(day),
    }
}

fn next_bucket(start: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Day => start + Days::new(1),
        Granularity::Week => start + Days::new(7),
        Granularity::Month => start + Months::new(1),
    }
}

/// Daily totals in `[from, to]` (inclusive days) summed into buckets, every
/// bucket of the range present (empty ones with no usage), oldest first.
pub fn trend(
    daily: &BTreeMap<NaiveDate, Totals>,
    from: NaiveDate,
    to: NaiveDate,
    g: Granularity,
) -> Vec<(NaiveDate, Totals)> {
    let mut out = Vec::new();
    let mut start = bucket_start(from, g);
    while start <= to {
        let end = next_bucket(start, g);
        let mut sum = Totals::new();
        for (_, t) in daily.range(start.max(from)..end.min(to + Days::new(1))) {
            add_into(&mut sum, t);
        }
        out.push((start, sum));
        start = end;
    }
    out
}

/// The number of days in the month starting `first`.
pub fn days_in_month(first: NaiveDate) -> u32 {
    let next = first + Months::new(1);
    (next - first).num_days() as u32
}

/// One feature compared with the previous period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub current: u64,
    pub previous: u64,
    /// `current - previous`.
    pub difference: i64,
    /// Percent change from `previous`; `None` when it was 0.
    pub percent: Option<f64>,
}

/// `current` against `previous`, per feature (every feature present).
pub fn compare(current: &Totals, previous: &Totals) -> BTreeMap<Feature, Change> {
    Feature::ALL
        .iter()
        .map(|&f| {
            let (c, p) = (
                current.get(&f).copied().unwrap_or(0),
                previous.get(&f).copied().unwrap_or(0),
            );
            (
                f,
                Change {
                    current: c,
                    previous: p,
                    difference: c as i64 - p as i64,
                    percent: (p > 0).then(|| (c as f64 - p as f64) * 100.0 / p as f64),
                },
            )
        })
        .collect()
}

/// A feature's month-end projection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub used: u64,
    pub projected: u64,
    pub limit: u64,
    /// The projection reaches the limit (a feature with no allowance: any use).
    pub projected_exceeded: bool,
    /// The day the limit would be reached at this rate, if within the month
    /// and not reached already.
    pub exhausted_on: Option<NaiveDate>,
}

/// How [`forecast`] projects: the month-to-date daily rate carried to the
/// month's end.
pub const FORECAST_METHOD: &str =
    "linear: usage so far / days elapsed (today counted in full) x days in the month";

/// The month starting `first`, `elapsed` days into it (1..=days; today
/// counted in full), with `used` so far and `limits`.
pub fn forecast(
    first: NaiveDate,
    elapsed: u32,
    used: &Totals,
    limits: &Totals,
) -> BTreeMap<Feature, Projection> {
    let days = days_in_month(first);
    let elapsed = elapsed.clamp(1, days);
    Feature::ALL
        .iter()
        .map(|&f| {
            let u = used.get(&f).copied().unwrap_or(0);
            let limit = limits.get(&f).copied().unwrap_or(0);
            let rate = u as f64 / f64::from(elapsed);
            let projected = (rate * f64::from(days)).round() as u64;
            let exhausted_on = (u < limit && rate > 0.0)
                .then(|| (limit as f64 / rate).ceil() as u64)
                .filter(|&day| day <= u64::from(days))
                .map(|day| first + Days::new(day.saturating_sub(1)));
            (
                f,
                Projection {
                    used: u,
                    projected,
                    limit,
                    projected_exceeded: if limit == 0 {
                        projected > 0
                    } else {
                        projected >= limit
                    },
                    exhausted_on,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(pairs: &[(Feature, u64)]) -> Totals {
        pairs.iter().copied().collect()
    }

    #[test]
    fn trend_buckets_by_day_iso_week_and_month_with_empty_ones_kept() {
        let mut daily = BTreeMap::new();
        // 2026-11-29 is a Sunday, 11-30 a Monday.
        daily.insert(d(2026, 11, 29), t(&[(Feature::AnalysisSeconds, 10)]));
        daily.insert(d(2026, 11, 30), t(&[(Feature::AnalysisSeconds, 20)]));
        daily.insert(d(2026, 12, 2), t(&[(Feature::AlertCount, 3)]));
        daily.insert(d(2026, 12, 7), t(&[(Feature::AnalysisSeconds, 5)]));
        let days = trend(&daily, d(2026, 11, 29), d(2026, 12, 2), Granularity::Day);
        assert_eq!(days.len(), 4);
        assert_eq!(days[2], (d(2026, 12, 1), Totals::new()), "empty day kept");
        let weeks = trend(&daily, d(2026, 11, 29), d(2026, 12, 7), Granularity::Week);
        assert_eq!(
            weeks.iter().map(|w| w.0).collect::<Vec<_>>(),
            [d(2026, 11, 23), d(2026, 11, 30), d(2026, 12, 7)]
        );
        assert_eq!(weeks[0].1, t(&[(Feature::AnalysisSeconds, 10)]));
        assert_eq!(
            weeks[1].1,
            t(&[(Feature::AnalysisSeconds, 20), (Feature::AlertCount, 3)])
        );
        let months = trend(&daily, d(2026, 11, 30), d(2026, 12, 31), Granularity::Month);
        assert_eq!(months.len(), 2);
        assert_eq!(
            months[0].1,
            t(&[(Feature::AnalysisSeconds, 20)]),
            "from the 30th only"
        );
        assert_eq!(
            months[1].1,
            t(&[(Feature::AnalysisSeconds, 5), (Feature::AlertCount, 3)])
        );
    }

    #[test]
    fn comparison_gives_differences_and_percentages() {
        let c = compare(
            &t(&[(Feature::AnalysisSeconds, 150), (Feature::AlertCount, 4)]),
            &t(&[(Feature::AnalysisSeconds, 100)]),
        );
        assert_eq!(c[&Feature::AnalysisSeconds].difference, 50);
        assert_eq!(c[&Feature::AnalysisSeconds].percent, Some(50.0));
        assert_eq!(c[&Feature::AlertCount].percent, None, "from zero");
        assert_eq!(c[&Feature::VlmTokens].difference, 0);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn forecast_carries_the_daily_rate_to_the_month_end() {
        // 10 days into a 30-day month: 100 h used of 150 h.
        let f = forecast(
            d(2026, 11, 1),
            10,
            &t(&[
                (Feature::AnalysisSeconds, 360_000),
                (Feature::AlertCount, 10),
            ]),
            &t(&[
                (Feature::AnalysisSeconds, 540_000),
                (Feature::AlertCount, 3_000),
            ]),
        );
        let a = f[&Feature::AnalysisSeconds];
        assert_eq!(a.projected, 1_080_000);
        assert!(a.projected_exceeded);
        // 36,000 s a day reaches 540,000 on day 15.
        assert_eq!(a.exhausted_on, Some(d(2026, 11, 15)));
        let alerts = f[&Feature::AlertCount];
        assert_eq!(
            (
                alerts.projected,
                alerts.projected_exceeded,
                alerts.exhausted_on
            ),
            (30, false, None)
        );
        let vlm = f[&Feature::VlmTokens];
        assert_eq!((vlm.projected, vlm.projected_exceeded), (0, false));
        assert_eq!(days_in_month(d(2028, 2, 1)), 29);
    }
}

//! Row <-> domain conversions shared by the repositories.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use panoptes_shared::domain::schedule::{DaySlots, Schedule, WEEKDAYS};
use panoptes_shared::time::from_millis;
use panoptes_shared::{Error, Result};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Corrupt or hand-edited rows surface as internal errors naming the column.
pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> Error {
    Error::internal(format!("stored column `{column}` is invalid: {detail}"))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

pub(crate) fn id<T: FromStr>(row: &AnyRow, column: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw: String = get(row, column)?;
    raw.parse().map_err(|e| corrupt(column, e))
}

pub(crate) fn time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>> {
    Ok(from_millis(get::<i64>(row, column)?))
}

pub(crate) fn opt_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(get::<Option<i64>>(row, column)?.map(from_millis))
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub(crate) fn json<T: for<'de> Deserialize<'de>>(row: &AnyRow, column: &str) -> Result<T> {
    let raw: String = get(row, column)?;
    serde_json::from_str(&raw).map_err(|e| corrupt(column, e))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

pub(crate) fn enum_col<T>(
    row: &AnyRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T> {
    let raw: String = get(row, column)?;
    parse(&raw).ok_or_else(|| corrupt(column, format!("unknown value `{raw}`")))
}

/// Stored shape of a schedule: the API's own JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredSchedule {
    daily_slots: Option<Vec<bool>>,
    #[serde(default)]
    weekly_slots: std::collections::BTreeMap<String, Vec<bool>>,
}

impl StoredSchedule {
    pub(crate) fn from_domain(s: &Schedule) -> Self {
        Self {
            daily_slots: s.daily.map(|d| d.to_vec()),
            weekly_slots: WEEKDAYS
                .iter()
                .zip(&s.weekly)
                .filter_map(|(day, slots)| slots.map(|s| (day.to_string(), s.to_vec())))
                .collect(),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Schedule> {
        let slots = |v: Vec<bool>| -> Result<DaySlots> {
            Schedule::slots("schedule", &v).map_err(|e| corrupt("schedule", e))
        };
        let mut weekly: [Option<DaySlots>; 7] = Default::default();
        for (day, v) in self.weekly_slots {
            let i = WEEKDAYS
                .iter()
                .position(|d| *d == day)
                .ok_or_else(|| corrupt("schedule", &day))?;
            weekly[i] = Some(slots(v)?);
        }
        Ok(Schedule {
            daily: self.daily_slots.map(slots).transpose()?,
            weekly,
        })
    }
}

/// `COUNT(*)` of a query, as u64.
pub(crate) fn count(row: &AnyRow) -> Result<u64> {
    let n: i64 = row.try_get(0).map_err(|e| corrupt("count", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

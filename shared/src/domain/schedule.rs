//! Device-local time: a fixed UTC offset (`UTC+8`, `UTC-03:30`) and a schedule
//! of 48 half-hour slots per day, optionally per weekday.

use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike, Utc, Weekday};

use crate::error::FieldError;

pub const SLOTS_PER_DAY: usize = 48;

/// A UTC offset in minutes, -12:00..=+14:00 in 15-minute steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcOffset(i32);

impl UtcOffset {
    /// Accepts `UTC`, `UTC+8`, `UTC+08`, `UTC+5:30`, `UTC-03:30`, `+08:00`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "utcOffset",
                "must look like `UTC+8`, `UTC+05:30` or `UTC-3:30` (-12:00..+14:00)",
            )
        };
        let s = raw.trim();
        let s = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("GMT"))
            .unwrap_or(s);
        if s.is_empty() {
            return Ok(Self(0));
        }
        let (sign, rest) = match s.as_bytes()[0] {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let all_digits =
            |v: &str| !v.is_empty() && v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(h) || !all_digits(m) {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let minutes = sign * (h * 60 + m);
        if m >= 60 || m % 15 != 0 || !(-12 * 60..=14 * 60).contains(&minutes) {
            return Err(bad());
        }
        Ok(Self(minutes))
    }

    /// From stored minutes; `None` outside -12:00..=+14:00 or off the 15-minute grid.
    pub fn from_minutes(minutes: i64) -> Option<Self> {
        let m = i32::try_from(minutes).ok()?;
        ((-12 * 60..=14 * 60).contains(&m) && m % 15 == 0).then_some(Self(m))
    }

    pub fn minutes(self) -> i32 {
        self.0
    }

    pub fn fixed(self) -> FixedOffset {
        FixedOffset::east_opt(self.0 * 60)
            .unwrap_or(FixedOffset::east_opt(0).expect("zero offset is valid"))
    }
}

/// Canonical form: `UTC+8`, `UTC+5:30`, `UTC-3:30`, `UTC+0`.
impl std::fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let (h, m) = (self.0.abs() / 60, self.0.abs() % 60);
        if m == 0 {
            write!(f, "UTC{sign}{h}")
        } else {
            write!(f, "UTC{sign}{h}:{m:02}")
        }
    }
}

/// 48 half-hour slots: slot `i` covers local `[i*30min, (i+1)*30min)`.
pub type DaySlots = [bool; SLOTS_PER_DAY];

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    pub daily: Option<DaySlots>,
    /// Per weekday (Monday first). A day given here overrides `daily`; a day
    /// left out falls back to `daily` (or is off when there is none).
    pub weekly: [Option<DaySlots>; 7],
}

impl Schedule {
    pub fn slots(field: &str, raw: &[bool]) -> Result<DaySlots, FieldError> {
        raw.try_into().map_err(|_| {
            FieldError::new(
                field,
                format!(
                    "must have exactly {SLOTS_PER_DAY} half-hour slots (got {})",
                    raw.len()
                ),
            )
        })
    }

    pub fn is_empty(&self) -> bool {
        self.daily.is_none() && self.weekly.iter().all(Option::is_none)
    }

    /// Whether analysis should run at local slot `slot` of `weekday`.
    pub fn is_on(&self, weekday: Weekday, slot: usize) -> bool {
        let day = self.weekly[weekday.num_days_from_monday() as usize]
            .as_ref()
            .or(self.daily.as_ref());
        day.is_some_and(|d| d[slot])
    }

    /// Whether analysis should run at `now` (device local time from `offset`).
    pub fn is_on_at(&self, now: DateTime<Utc>, offset: UtcOffset) -> bool {
        let local = now.with_timezone(&offset.fixed());
        self.is_on(
            local.weekday(),
            ((local.hour() * 60 + local.minute()) / 30) as usize,
        )
    }

    /// When the run of "on" slots containing `now` began (UTC): the latest
    /// off -> on boundary at or before `now`. `None` when `now` is off; a
    /// schedule that is on all week answers a week ago.
    pub fn run_started(&self, now: DateTime<Utc>, offset: UtcOffset) -> Option<DateTime<Utc>> {
        if !self.is_on_at(now, offset) {
            return None;
        }
        let local = now.with_timezone(&offset.fixed());
        let minute_of_day = i64::from(local.hour() * 60 + local.minute());
        let mut start = local
            - Duration::minutes(minute_of_day % 30)
            - Duration::seconds(i64::from(local.second()))
            - Duration::nanoseconds(i64::from(local.nanosecond()));
        for _ in 0..(7 * SLOTS_PER_DAY) {
            let before = start - Duration::minutes(30);
            if !self.is_on(
                before.weekday(),
                ((before.hour() * 60 + before.minute()) / 30) as usize,
            ) {
                break;
            }
            start = before;
        }
        Some(start.with_timezone(&Utc))
    }

    /// The next slot boundary after `now` at which the schedule switches on, in UTC.
    /// `None` when no slot is on in the whole week.
    pub fn next_start_after(&self, now: DateTime<Utc>, offset: UtcOffset) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&offset.fixed());
        let minute_of_day = i64::from(local.hour() * 60 + local.minute());
        let slot_start = local
            - Duration::minutes(minute_of_day % 30)
            - Duration::seconds(i64::from(local.second()))
            - Duration::nanoseconds(i64::from(local.nanosecond()));
        let slot_at =
            |t: DateTime<FixedOffset>| (t.weekday(), ((t.hour() * 60 + t.minute()) / 30) as usize);
        let (wd, s) = slot_at(slot_start);
        let mut prev_on = self.is_on(wd, s);
        // Walk one week plus a slot of boundaries; a start is an off -> on edge.
        for i in 1..=(7 * SLOTS_PER_DAY as i64 + 1) {
            let t = slot_start + Duration::minutes(30 * i);
            let (wd, s) = slot_at(t);
            let on = self.is_on(wd, s);
            if on && !prev_on {
                return Some(t.with_timezone(&Utc));
            }
            prev_on = on;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn offsets_parse_and_print_canonically() {
        for (raw, minutes, shown) in [
            ("UTC+8", 480, "UTC+8"),
            ("UTC+08:00", 480, "UTC+8"),
            ("UTC+5:30", 330, "UTC+5:30"),
            ("UTC-03:30", -210, "UTC-3:30"),
            ("UTC", 0, "UTC+0"),
            ("+14:00", 840, "UTC+14"),
        ] {
            let o = UtcOffset::parse(raw).unwrap();
            assert_eq!(o.minutes(), minutes, "{raw}");
            assert_eq!(o.to_string(), shown);
        }
        for bad in [
            "UTC+15", "UTC+8:20", "UTC8", "UTC+", "UTC+1:60", "UTC-13", "8",
        ] {
            assert!(UtcOffset::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn next_start_honours_the_local_offset() {
        // On 09:00-10:00 local every day, device at UTC+5:30.
        let mut day = [false; SLOTS_PER_DAY];
        day[18] = true;
        day[19] = true;
        let s = Schedule {
            daily: Some(day),
            ..Default::default()
        };
        let offset = UtcOffset::parse("UTC+5:30").unwrap();
        // 2026-01-05 02:00 UTC = 07:30 local -> next start 09:00 local = 03:30 UTC.
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap();
        assert_eq!(
            s.next_start_after(now, offset),
            Some(Utc.with_ymd_and_hms(2026, 1, 5, 3, 30, 0).unwrap())
        );
        // Inside the window: the next start is tomorrow.
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 3, 45, 0).unwrap();
        assert_eq!(
            s.next_start_after(now, offset),
            Some(Utc.with_ymd_and_hms(2026, 1, 6, 3, 30, 0).unwrap())
        );
    }

    #[test]
    fn runs_start_at_the_first_on_slot_in_local_time() {
        // On 22:00-01:00 local (crossing midnight), device at UTC-3:30.
        let mut day = [false; SLOTS_PER_DAY];
        for i in [44, 45, 46, 47, 0, 1] {
            day[i] = true;
        }
        let s = Schedule {
            daily: Some(day),
            ..Default::default()
        };
        let offset = UtcOffset::parse("UTC-3:30").unwrap();
        // 2026-01-06 04:10 UTC = 00:40 local on the 6th: on since 22:00 local on the 5th = 01:30 UTC.
        let now = Utc.with_ymd_and_hms(2026, 1, 6, 4, 10, 0).unwrap();
        assert!(s.is_on_at(now, offset));
        assert_eq!(
            s.run_started(now, offset),
            Some(Utc.with_ymd_and_hms(2026, 1, 6, 1, 30, 0).unwrap())
        );
        // 01:00 local = 04:30 UTC: off.
        let off = Utc.with_ymd_and_hms(2026, 1, 6, 4, 30, 0).unwrap();
        assert!(!s.is_on_at(off, offset));
        assert_eq!(s.run_started(off, offset), None);
        // One millisecond before the boundary is still on.
        assert!(s.is_on_at(off - Duration::milliseconds(1), offset));
    }

    #[test]
    fn weekly_day_overrides_daily_and_empty_schedule_never_starts() {
        let mut weekend = [false; SLOTS_PER_DAY];
        weekend[0] = true;
        let mut weekly: [Option<DaySlots>; 7] = Default::default();
        weekly[6] = Some(weekend); // Sunday 00:00-00:30
        let s = Schedule {
            daily: Some([false; SLOTS_PER_DAY]),
            weekly,
        };
        let now = Utc.with_ymd_and_hms(2026, 1, 7, 12, 0, 0).unwrap(); // a Wednesday
        assert_eq!(
            s.next_start_after(now, UtcOffset::default()),
            Some(Utc.with_ymd_and_hms(2026, 1, 11, 0, 0, 0).unwrap())
        );
        assert_eq!(
            Schedule::default().next_start_after(now, UtcOffset::default()),
            None
        );
    }
}

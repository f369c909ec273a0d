//! Time helpers. Timestamps are UTC everywhere; the store keeps epoch milliseconds.

use chrono::{DateTime, TimeZone, Utc};

/// Now, truncated to the millisecond so a value survives a store round trip unchanged.
pub fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

/// Epoch milliseconds to a UTC time (out-of-range values clamp to the epoch).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// RFC 3339 with milliseconds and a `Z`, the format of every timestamp in the API.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

//! A lock-free latency histogram: 10 µs buckets up to 200 ms, then one
//! overflow bucket (the maximum is kept exactly). Recording is one atomic add,
//! so thousands of stream tasks can record without contending on a lock.

use std::sync::atomic::{AtomicU64, Ordering};

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 20_000;

pub struct Histogram {
    counts: Vec<AtomicU64>,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, us: u64) {
        let i = usize::try_from(us / BUCKET_US)
            .unwrap_or(BUCKETS)
            .min(BUCKETS);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The `p` quantile in milliseconds (upper bound of its bucket); NaN when empty.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return f64::NAN;
        }
        let rank = ((total as f64 * p).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                if i == BUCKETS {
                    break;
                }
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        self.max_ms()
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_bucket_upper_bounds() {
        let h = Histogram::default();
        assert!(h.quantile_ms(0.5).is_nan());
        for us in 1..=1000 {
            h.record(us);
        }
        assert_eq!(h.count(), 1000);
        // The 500th value (500 µs) lies in the bucket [500, 510) µs.
        assert_eq!(h.quantile_ms(0.5), 0.51);
        assert_eq!(h.quantile_ms(0.99), 1.0);
        h.record(5_000_000);
        assert_eq!(h.quantile_ms(1.0), 5000.0);
        assert_eq!(h.max_ms(), 5000.0);
    }
}

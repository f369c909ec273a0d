//! Prometheus metrics of the HTTP layer: request counts and latency by
//! operation, method and status, and the connection loop's gauges and
//! counters. Labels come from the OpenAPI operation id or a fixed set, so
//! their number is bounded by the API, never by what clients send.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Latency histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct HttpMetrics {
    // std Mutex: a short update per request, never held across an await.
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
    /// Written by the connection loop (`http::connections`, `http::serve`).
    pub connections: ConnectionMetrics,
}

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy)]
pub enum CloseReason {
    /// Its client already held `max_connections_per_client` (429, closed).
    PerClient,
    /// It held a reserved health-probe slot and asked for another route (503, closed).
    HealthOnly,
    /// It sent no complete request head within `idle_connection_timeout_ms`.
    Idle,
}

/// Open connections and why some were refused. Gauges are stored by the
/// connection gate under its own lock, so they agree with its counts.
#[derive(Default)]
pub struct ConnectionMetrics {
    open: AtomicUsize,
    open_reserved: AtomicUsize,
    clients: AtomicUsize,
    max: AtomicUsize,
    closed_per_client: AtomicU64,
    closed_health_only: AtomicU64,
    closed_idle: AtomicU64,
    accept_errors: AtomicU64,
}

impl ConnectionMetrics {
    /// Connections open now, reserved ones included.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections open now on the reserved health-probe budget.
    pub fn open_reserved(&self) -> usize {
        self.open_reserved.load(Ordering::Relaxed)
    }

    /// Client addresses holding at least one (capped) connection now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Connections the server has closed for `why`.
    pub fn closes(&self, why: CloseReason) -> u64 {
        match why {
            CloseReason::PerClient => &self.closed_per_client,
            CloseReason::HealthOnly => &self.closed_health_only,
            CloseReason::Idle => &self.closed_idle,
        }
        .load(Ordering::Relaxed)
    }

    pub(crate) fn set_open(&self, open: usize, reserved: usize, clients: usize) {
        self.open.store(open, Ordering::Relaxed);
        self.open_reserved.store(reserved, Ordering::Relaxed);
        self.clients.store(clients, Ordering::Relaxed);
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    pub(crate) fn count_close(&self, why: CloseReason) {
        match why {
            CloseReason::PerClient => &self.closed_per_client,
            CloseReason::HealthOnly => &self.closed_health_only,
            CloseReason::Idle => &self.closed_idle,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let open = self.open();
        let reserved = self.open_reserved();
        let _ = write!(
            out,
            "# HELP panoptes_http_connections_open Client connections open, by the budget they hold.\n\
             # TYPE panoptes_http_connections_open gauge\n\
             panoptes_http_connections_open{{budget=\"ordinary\"}} {}\n\
             panoptes_http_connections_open{{budget=\"reserved\"}} {reserved}\n\
             # HELP panoptes_http_connections_max Ordinary connections served at once (server.max_connections, capped by the file-descriptor limit).\n\
             # TYPE panoptes_http_connections_max gauge\n\
             panoptes_http_connections_max {}\n\
             # HELP panoptes_http_connection_clients Client addresses holding connections (trusted proxies not counted).\n\
             # TYPE panoptes_http_connection_clients gauge\n\
             panoptes_http_connection_clients {}\n\
             # HELP panoptes_http_connections_closed_total Connections the server closed on its own, by reason.\n\
             # TYPE panoptes_http_connections_closed_total counter\n\
             panoptes_http_connections_closed_total{{reason=\"per_client\"}} {}\n\
             panoptes_http_connections_closed_total{{reason=\"health_only\"}} {}\n\
             panoptes_http_connections_closed_total{{reason=\"idle\"}} {}\n\
             # HELP panoptes_http_accept_errors_total Failed accepts (out of file descriptors or memory, or aborted by the peer).\n\
             # TYPE panoptes_http_accept_errors_total counter\n\
             panoptes_http_accept_errors_total {}\n",
            open.saturating_sub(reserved),
            self.max.load(Ordering::Relaxed),
            self.clients(),
            self.closes(CloseReason::PerClient),
            self.closes(CloseReason::HealthOnly),
            self.closes(CloseReason::Idle),
            self.accept_errors.load(Ordering::Relaxed),
        );
    }
}

impl HttpMetrics {
    pub fn observe(&self, operation: &str, method: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = series
            .entry((operation.to_owned(), method.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP panoptes_http_requests_total HTTP requests by operation, method and status.\n",
        );
        out.push_str("# TYPE panoptes_http_requests_total counter\n");
        for ((op, method, status), s) in series.iter() {
            let _ = writeln!(
                out,
                "panoptes_http_requests_total{{operation=\"{op}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP panoptes_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE panoptes_http_request_duration_seconds histogram\n");
        for ((op, method, status), s) in series.iter() {
            let labels = format!("operation=\"{op}\",method=\"{method}\",status=\"{status}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "panoptes_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "panoptes_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "panoptes_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "panoptes_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(series);
        self.connections.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = HttpMetrics::default();
        m.observe("getDevice", "GET", 200, Duration::from_micros(800));
        m.observe("getDevice", "GET", 200, Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains(
            "panoptes_http_requests_total{operation=\"getDevice\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
    }

    #[test]
    fn renders_connection_gauges_and_refusals() {
        let m = HttpMetrics::default();
        m.connections.set_max(100);
        m.connections.set_open(5, 2, 3);
        m.connections.count_close(CloseReason::PerClient);
        m.connections.count_close(CloseReason::Idle);
        m.connections.count_close(CloseReason::Idle);
        m.connections.accept_failed();
        let text = m.render();
        for line in [
            "panoptes_http_connections_open{budget=\"ordinary\"} 3\n",
            "panoptes_http_connections_open{budget=\"reserved\"} 2\n",
            "panoptes_http_connections_max 100\n",
            "panoptes_http_connection_clients 3\n",
            "panoptes_http_connections_closed_total{reason=\"per_client\"} 1\n",
            "panoptes_http_connections_closed_total{reason=\"health_only\"} 0\n",
            "panoptes_http_connections_closed_total{reason=\"idle\"} 2\n",
            "panoptes_http_accept_errors_total 1\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
    }
}

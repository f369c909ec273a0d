//! What every `/metrics` shows about the process itself: the standard
//! `process_*` metrics (read from `/proc/self` on Linux, left out elsewhere)
//! and `panoptes_build_info`.

use std::fmt::Write;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux reports them in
/// `USER_HZ`, which is 100 on every architecture it runs on (the Go
/// Prometheus client makes the same assumption); reading `sysconf` would take
/// `unsafe` code.
const USER_HZ: f64 = 100.0;

/// `process_*` and `panoptes_build_info`, in text format 0.0.4.
pub fn render(out: &mut String) {
    if let Some(p) = ProcessStats::read() {
        p.render(out);
    }
    render_build_info(out);
}

/// `panoptes_build_info{version="..."} 1`, with `commit` when the build set
/// `PANOPTES_GIT_COMMIT` (e.g. `PANOPTES_GIT_COMMIT=$(git rev-parse HEAD) cargo build`).
pub fn render_build_info(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP panoptes_build_info Panoptes build that is running (version, and commit when known); always 1.\n\
         # TYPE panoptes_build_info gauge"
    );
    let version = env!("CARGO_PKG_VERSION");
    match option_env!("PANOPTES_GIT_COMMIT").filter(|c| is_plain(c)) {
        Some(commit) => {
            let _ = writeln!(
                out,
                "panoptes_build_info{{version=\"{version}\",commit=\"{commit}\"}} 1"
            );
        }
        None => {
            let _ = writeln!(out, "panoptes_build_info{{version=\"{version}\"}} 1");
        }
    }
}

/// A label value that needs no escaping.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

/// The process's resources, as the Prometheus client libraries export them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    /// The soft limit; `None` when unlimited.
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// This process's figures; `None` where there is no `/proc` (not Linux).
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Self::parse(&stat, &status, &boot, &limits, open_fds)
    }

    fn parse(stat: &str, status: &str, boot: &str, limits: &str, open_fds: u64) -> Option<Self> {
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses,
        // so fields are counted from the last `)`; field 3 (state) is [0].
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let (utime, stime) = (field(14)?, field(15)?);
        let start_ticks = field(22)?;
        let virtual_bytes = field(23)?;
        let resident_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let boot_time = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())?;
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
        Some(Self {
            cpu_seconds: (utime + stime) as f64 / USER_HZ,
            resident_bytes: resident_kib * 1024,
            virtual_bytes,
            open_fds,
            max_fds,
            start_time_seconds: boot_time as f64 + start_ticks as f64 / USER_HZ,
        })
    }

    fn render(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds.to_string(),
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            self.resident_bytes.to_string(),
        );
        metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            self.virtual_bytes.to_string(),
        );
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            self.open_fds.to_string(),
        );
        if let Some(max) = self.max_fds {
            metric(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max.to_string(),
            );
        }
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds.to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (panoptes (x) y) S 1 4242 4242 0 -1 4194560 2049 0 0 0 \
        150 50 0 0 20 0 9 0 12345 2147483648 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
    const STATUS: &str = "Name:\tpanoptes\nVmSize:\t 2097152 kB\nVmRSS:\t   20480 kB\n";
    const BOOT: &str = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max open files            65536                524288               files     \n";

    #[test]
    fn proc_files_are_read_as_the_client_libraries_do() {
        let p = ProcessStats::parse(STAT, STATUS, BOOT, LIMITS, 12).unwrap();
        assert_eq!(p.cpu_seconds, 2.0);
        assert_eq!(p.resident_bytes, 20480 * 1024);
        assert_eq!(p.virtual_bytes, 2_147_483_648);
        assert_eq!((p.open_fds, p.max_fds), (12, Some(65536)));
        assert!((p.start_time_seconds - 1_700_000_123.45).abs() < 1e-3);
        let unlimited = LIMITS.replace("65536 ", "unlimited ");
        let p = ProcessStats::parse(STAT, STATUS, BOOT, &unlimited, 12).unwrap();
        assert_eq!(p.max_fds, None);
        assert_eq!(
            ProcessStats::parse("garbage", STATUS, BOOT, LIMITS, 1),
            None
        );
    }

    #[test]
    fn this_process_reports_every_metric_on_linux() {
        let mut out = String::new();
        render(&mut out);
        if cfg!(target_os = "linux") {
            for name in [
                "process_cpu_seconds_total",
                "process_resident_memory_bytes",
                "process_virtual_memory_bytes",
                "process_open_fds",
                "process_max_fds",
                "process_start_time_seconds",
            ] {
                assert!(out.contains(&format!("\n{name} ")), "{name} in {out}");
            }
        }
        assert!(
            out.contains(&format!(
                "panoptes_build_info{{version=\"{}\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{out}"
        );
    }
}

//! `promtool check metrics` on a `/metrics` text (used by the worker tests
//! and, through `#[path]`, the gateway's).

/// Checks a `/metrics` text with `promtool check metrics` (Debian package
/// `prometheus`), which must print nothing. A missing promtool fails the
/// test, unless `PANOPTES_TEST_SKIP_PROMTOOL=1` says to skip the check.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if std::env::var("PANOPTES_TEST_SKIP_PROMTOOL").is_ok_and(|v| v == "1") {
        eprintln!("PANOPTES_TEST_SKIP_PROMTOOL=1: /metrics not checked with promtool");
        return;
    }
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed: install Debian's `prometheus` package \
             (apt-get install --no-install-recommends prometheus; .ci/test.sh does), \
             or set PANOPTES_TEST_SKIP_PROMTOOL=1 to skip this check"
        ),
        Err(e) => panic!("promtool cannot be run: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool check metrics: {findings}\n--- /metrics ---\n{text}"
    );
}

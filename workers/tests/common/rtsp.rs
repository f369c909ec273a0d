//! A real RTSP server for tests: `tests/rtsp/serve.py` (GStreamer's RTSP
//! server, Debian's python3-gi) serving the H.264 test clip that
//! `tests/rtsp/clips.sh` makes. Stopped (killed) on drop.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct RtspServer {
    pub port: u16,
    child: Child,
    /// With TLS: the CA that signed the server's certificate (PEM).
    pub ca: Option<std::path::PathBuf>,
}

/// A test CA and a certificate it signed for 127.0.0.1, made with the
/// openssl command line; returns (ca.pem, cert.pem, key.pem).
fn certificates() -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("panoptes-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl runs (the test script installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Panoptes test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "cam.key",
        "-out",
        "cam.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "cam.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cam.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("cam.pem"), dir.join("cam.key"))
}

pub fn clip() -> String {
    std::env::var("PANOPTES_TEST_CLIP").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/media/vtest.mp4").to_owned()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RtspServer {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Serve `/vtest` over RTSPS (TLS) with a certificate from a fresh test CA.
    pub async fn start_tls() -> Self {
        let (ca, cert, key) = certificates();
        let mut server = Self::spawn(free_port(), Some((&cert, &key))).await;
        server.ca = Some(ca);
        server
    }

    /// Serve `/vtest` on `port` (again, after a stop, to bring a camera back).
    pub async fn start_on(port: u16) -> Self {
        Self::spawn(port, None).await
    }

    async fn spawn(port: u16, tls: Option<(&std::path::Path, &std::path::Path)>) -> Self {
        let clip = clip();
        assert!(
            std::path::Path::new(&clip).exists(),
            "test clip {clip} is missing: run tests/rtsp/clips.sh (the test script does)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/rtsp/serve.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls").arg(cert).arg(key);
        }
        let mut child = cmd
            .arg(port.to_string())
            .arg(format!("vtest={clip}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the RTSP test server starts (python3-gi, gir1.2-gst-rtsp-server-1.0)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("the RTSP server says `ready` within 20 s")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        Self {
            port,
            child,
            ca: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "rtsps" } else { "rtsp" };
        format!("{scheme}://127.0.0.1:{}/{path}", self.port)
    }

    /// Kill the server now (the camera goes away).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

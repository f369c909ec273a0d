//! A real RTSP server for tests: `tests/rtsp/serve.py` (GStreamer's RTSP
//! server, Debian's python3-gi) serving the H.264 test clip that
//! `tests/rtsp/clips.sh` makes. Stopped (killed) on drop.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct RtspServer {
    pub port: u16,
    child: Child,
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

    /// Serve `/vtest` on `port` (again, after a stop, to bring a camera back).
    pub async fn start_on(port: u16) -> Self {
        let clip = clip();
        assert!(
            std::path::Path::new(&clip).exists(),
            "test clip {clip} is missing: run tests/rtsp/clips.sh (the test script does)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/rtsp/serve.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
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
        Self { port, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.port)
    }

    /// Kill the server now (the camera goes away).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

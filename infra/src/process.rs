//! Process plumbing every binary shares.

use tokio_util::sync::CancellationToken;

/// Cancel `token` on Ctrl-C or SIGTERM (spawned once per process).
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            },
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A container health check: `GET <path>` on this process's own listener
/// (`addr`; an unspecified address is asked on loopback) answers 200 within
/// `timeout`. Plain HTTP/1.0 over TCP, so an image needs neither a shell
/// nor curl to check itself.
pub async fn check_health(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let ask = async {
        let mut conn = tokio::net::TcpStream::connect(target)
            .await
            .with_context(|| format!("cannot connect to {target}"))?;
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {target}\r\n\r\n").as_bytes())
            .await?;
        let mut head = Vec::with_capacity(64);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n") && head.len() < 64 {
            if conn.read(&mut byte).await? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line.split_whitespace().nth(1).unwrap_or("");
        anyhow::ensure!(
            status == "200",
            "{path} on {target} answered `{}`",
            line.trim()
        );
        Ok(())
    };
    tokio::time::timeout(timeout, ask)
        .await
        .with_context(|| format!("{path} on {target} did not answer in {timeout:?}"))?
}

//! Connection admission over real sockets: the per-client and global caps,
//! the connections reserved for health probes, the idle timeout, and counts
//! that return to zero. Distinct clients are distinct loopback addresses
//! (127.0.0.2, 127.0.0.3, ...).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, spawn_with_env};

async fn spawn(extra: &[(&str, &str)]) -> TestApp {
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    spawn_with_env(Backend::Distributed, &prefix, extra).await
}

/// A connection from `client` (a loopback address standing for one client).
async fn connect_from(app: &TestApp, client: &str) -> TcpStream {
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(client.parse().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

struct Answer {
    status: u16,
    head: String,
    body: serde_json::Value,
}

async fn send(s: &mut TcpStream, path: &str) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
}

/// Read one response; `None` if none came within `wait`.
async fn answer_within(s: &mut TcpStream, wait: Duration) -> Option<Answer> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .to_lowercase()
                .lines()
                .find_map(|l| l.strip_prefix("content-length: ").map(str::to_owned))
                .map_or(0, |v| v.trim().parse().unwrap());
            if body.len() >= len {
                let status = head[9..12].parse().unwrap();
                let body = serde_json::from_str(&body[..len])
                    .unwrap_or(serde_json::Value::String(body[..len].to_owned()));
                let head = head.to_lowercase();
                return Some(Answer { status, head, body });
            }
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            Ok(_) => panic!("closed before a response: {text:?}"),
            Err(_) => return None,
        }
    }
}

async fn get(s: &mut TcpStream, path: &str) -> Answer {
    send(s, path).await;
    answer_within(s, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("a response to {path} within 5 s"))
}

/// Read until the server closes `s`; what it sent and when it closed.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut all = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {wait:?}; got {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
    (String::from_utf8_lossy(&all).into_owned(), start.elapsed())
}

/// Wait (for at most 5 s) until the gateway's connection gauges say so.
async fn until(app: &TestApp, what: &str, ok: impl Fn(usize, usize, usize) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = &app.state.metrics.connections;
        let now = (c.open(), c.open_reserved(), c.clients());
        if ok(now.0, now.1, now.2) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: (open, reserved, clients) = {now:?}"
        );
        tokio::task::yield_now().await;
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} in {text}"))
}

#[tokio::test]
async fn one_client_over_its_connection_cap_is_closed_at_once_and_others_are_still_served() {
    let app = spawn(&[("PANOPTES__SERVER__MAX_CONNECTIONS_PER_CLIENT", "20")]).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from(&app, "127.0.0.1").await);
    }

    for _ in 0..5 {
        let mut extra = connect_from(&app, "127.0.0.1").await;
        // Answered 429 and closed at once (it sent nothing, so the close is a clean FIN).
        let (sent, _) = closed_within(&mut extra, Duration::from_secs(1)).await;
        assert!(sent.starts_with("HTTP/1.1 429 "), "{sent}");
        assert!(sent.contains("connection: close\r\n"), "{sent}");
        let body: serde_json::Value =
            serde_json::from_str(sent.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
        assert_eq!(body["statusCode"], 429, "{body}");
    }

    let started = Instant::now();
    let mut other = connect_from(&app, "127.0.0.2").await;
    let health = get(&mut other, "/healthz").await;
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The connections within the cap are served.
    assert_eq!(get(&mut held[0], "/healthz").await.status, 200);
    let metrics = get(&mut other, "/metrics").await.body;
    let text = metrics.as_str().unwrap();
    assert_eq!(
        metric(
            text,
            "panoptes_http_connections_closed_total{reason=\"per_client\"}"
        ),
        5.0
    );
    assert_eq!(metric(text, "panoptes_http_connection_clients"), 2.0);
}

#[tokio::test]
async fn at_the_global_cap_ordinary_work_waits_but_health_probes_are_answered() {
    let app = spawn(&[
        ("PANOPTES__SERVER__MAX_CONNECTIONS", "4"),
        ("PANOPTES__SERVER__RESERVED_HEALTH_CONNECTIONS", "2"),
    ])
    .await;
    let mut ordinary = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from(&app, "127.0.0.2").await;
        assert_eq!(get(&mut s, "/healthz").await.status, 200);
        ordinary.push(s);
    }

    // Full: a new connection lands on the reserved budget.
    let mut refused = connect_from(&app, "127.0.0.3").await;
    let a = get(&mut refused, "/api/v1/devices").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body["error"]["code"], "SERVICE_UNAVAILABLE", "{}", a.body);
    assert!(a.body["meta"]["requestId"].is_string(), "{}", a.body);
    assert!(a.head.contains("connection: close"), "{}", a.head);
    closed_within(&mut refused, Duration::from_secs(2)).await;
    let mut probe = connect_from(&app, "127.0.0.4").await;
    let started = Instant::now();
    assert_eq!(get(&mut probe, "/healthz").await.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    closed_within(&mut probe, Duration::from_secs(2)).await;
    until(&app, "reserved connections closed", |open, _, _| open == 4).await;

    // The reserved budget taken too: the next connection waits in the backlog...
    let idle_probes = [
        connect_from(&app, "127.0.0.5").await,
        connect_from(&app, "127.0.0.5").await,
    ];
    until(&app, "reserved budget full", |open, reserved, _| {
        open == 6 && reserved == 2
    })
    .await;
    let mut waiting = connect_from(&app, "127.0.0.6").await;
    send(&mut waiting, "/api/v1/devices").await;
    assert!(
        answer_within(&mut waiting, Duration::from_millis(500))
            .await
            .is_none(),
        "a request past every budget is not served"
    );
    // ...and is served as ordinary work once an ordinary connection closes.
    drop(ordinary.pop());
    let served = answer_within(&mut waiting, Duration::from_secs(5))
        .await
        .expect("served once a connection closed");
    assert_eq!(served.status, 401, "{}", served.body);
    drop(idle_probes);
}

#[tokio::test]
async fn connections_without_a_complete_request_head_are_closed_after_the_idle_timeout() {
    let app = spawn(&[("PANOPTES__SERVER__IDLE_CONNECTION_TIMEOUT_MS", "300")]).await;
    let timeout = Duration::from_millis(300);
    let opened = Instant::now();
    let mut silent = connect_from(&app, "127.0.0.2").await;
    let mut half = connect_from(&app, "127.0.0.2").await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut kept_alive = connect_from(&app, "127.0.0.2").await;
    assert_eq!(get(&mut kept_alive, "/healthz").await.status, 200);
    let answered = Instant::now();

    let (sent, _) = closed_within(&mut silent, Duration::from_secs(3)).await;
    assert!(sent.is_empty(), "{sent}");
    assert!(
        opened.elapsed() >= timeout,
        "closed after {:?}",
        opened.elapsed()
    );
    let (sent, _) = closed_within(&mut half, Duration::from_secs(3)).await;
    assert!(sent.is_empty(), "{sent}");
    let (sent, _) = closed_within(&mut kept_alive, Duration::from_secs(3)).await;
    assert!(sent.is_empty(), "{sent}");
    assert!(
        answered.elapsed() >= timeout - Duration::from_millis(50),
        "closed {:?} after its response",
        answered.elapsed()
    );

    let mut probe = connect_from(&app, "127.0.0.3").await;
    let metrics = get(&mut probe, "/metrics").await.body;
    assert_eq!(
        metric(
            metrics.as_str().unwrap(),
            "panoptes_http_connections_closed_total{reason=\"idle\"}"
        ),
        3.0
    );
}

#[tokio::test]
async fn connection_counts_return_to_zero_when_connections_close() {
    let app = spawn(&[
        ("PANOPTES__SERVER__MAX_CONNECTIONS", "6"),
        ("PANOPTES__SERVER__MAX_CONNECTIONS_PER_CLIENT", "3"),
        ("PANOPTES__SERVER__RESERVED_HEALTH_CONNECTIONS", "1"),
        // The helpers' pooled client connection closes soon after sign-up.
        ("PANOPTES__SERVER__IDLE_CONNECTION_TIMEOUT_MS", "2000"),
    ])
    .await;
    let user = app.signup().await;
    until(&app, "the sign-up connection closed", |open, _, _| {
        open == 0
    })
    .await;

    // One client: an idle connection, a kept-alive one, a direct event stream.
    let idle = connect_from(&app, "127.0.0.2").await;
    let mut kept_alive = connect_from(&app, "127.0.0.2").await;
    assert_eq!(get(&mut kept_alive, "/healthz").await.status, 200);
    let mut stream = connect_from(&app, "127.0.0.2").await;
    let auth = format!("Authorization: Bearer {}\r\n", user.token);
    stream
        .write_all(
            format!("GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nHost: x\r\n{auth}\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("retry: 3000") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the stream opens")
            .unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // Over that client's cap: refused.
    let mut over = connect_from(&app, "127.0.0.2").await;
    closed_within(&mut over, Duration::from_secs(1)).await;
    // Another client fills the global cap; a third gets a reserved connection.
    let others = [
        connect_from(&app, "127.0.0.3").await,
        connect_from(&app, "127.0.0.3").await,
        connect_from(&app, "127.0.0.3").await,
    ];
    let reserved = connect_from(&app, "127.0.0.4").await;
    until(&app, "all held", |open, reserved, clients| {
        (open, reserved, clients) == (7, 1, 3)
    })
    .await;
    assert_eq!(app.state.hub.active_streams(), 1);

    drop((idle, kept_alive, stream, others, reserved));
    until(
        &app,
        "every count back to zero",
        |open, reserved, clients| (open, reserved, clients) == (0, 0, 0),
    )
    .await;
    assert_eq!(app.state.hub.active_streams(), 0);
}

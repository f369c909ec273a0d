//! Encryption in transit to the shared state, as the cloud deployment has it.
//! Redis over TLS as ElastiCache serves it (`rediss://` with an AUTH token):
//! a real `redis-server` with a TLS port and a certificate from a private CA;
//! the platform connects when told to trust that CA (`redis.tls_ca_file`),
//! refuses a server it cannot verify, and a wrong token is refused by the
//! server. PostgreSQL with `sslmode=require` (as Aurora is reached): the
//! store's connections are encrypted.

use std::process::Stdio;
use std::time::Duration;

use panoptes_infra::wiring::Backends;
use panoptes_shared::config::Config;
use panoptes_shared::ports::jobs::FrameJob;

struct TlsRedis {
    child: tokio::process::Child,
    port: u16,
    ca: std::path::PathBuf,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `redis-server` on loopback with TLS only (no plain port) and a password.
async fn tls_redis(dir: &std::path::Path) -> TlsRedis {
    let crate::test_ca::TestCa { ca_pem, leaf, key } =
        crate::test_ca::issue(&["localhost", "127.0.0.1"]);
    std::fs::create_dir_all(dir).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    std::fs::write(dir.join("redis.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("redis.key"), key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port"])
        .arg(port.to_string())
        .arg("--tls-cert-file")
        .arg(dir.join("redis.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("redis.key"))
        .arg("--tls-ca-cert-file")
        .arg(&ca_path)
        .args([
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "token-of-32-characters-or-more!!",
        ])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server must be installed (bash .ci/test.sh installs it)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis-server did not open its TLS port (built without TLS?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    TlsRedis {
        child,
        port,
        ca: ca_path,
    }
}

fn config(url: String, ca: Option<&std::path::Path>) -> Config {
    let mut env = vec![
        ("PANOPTES__REDIS__URL".to_owned(), url),
        (
            "PANOPTES__REDIS__KEY_PREFIX".to_owned(),
            format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        ),
    ];
    if let Some(ca) = ca {
        env.push((
            "PANOPTES__REDIS__TLS_CA_FILE".to_owned(),
            ca.display().to_string(),
        ));
    }
    Config::load_from(None, env).unwrap()
}

#[tokio::test]
async fn the_platform_works_over_tls_redis_verified_against_its_ca() {
    let dir = std::env::temp_dir().join(format!("panoptes-tls-redis-{}", uuid::Uuid::new_v4()));
    let redis = tls_redis(&dir).await;
    let url = |password: &str| format!("rediss://:{password}@localhost:{}", redis.port);

    // Trusting the CA: the frame queue works end to end over TLS.
    let cfg = config(url("token-of-32-characters-or-more!!"), Some(&redis.ca));
    let backends = Backends::connect(&cfg).await.expect("connects over TLS");
    let job = FrameJob {
        id: panoptes_shared::ids::JobId::new(),
        user: panoptes_shared::ids::UserId::new(),
        device: panoptes_shared::ids::DeviceId::new(),
        scene: panoptes_shared::ids::SceneId::new(),
        task: panoptes_shared::ids::TaskId::new(),
        captured_at_ms: panoptes_shared::ports::jobs::now_ms(),
        jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
        traceparent: None,
        attributes: false,
    };
    backends.jobs.enqueue(&job).await.unwrap();
    let pulled = backends
        .jobs
        .pull("tls-node", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0].job.id, job.id);
    // And the insight queue, on the same connection.
    let insight = panoptes_shared::ports::jobs::InsightJob::new(
        job.user,
        job.device,
        panoptes_shared::ids::InsightId::new(),
        None,
    );
    backends.insight_jobs.enqueue(&insight).await.unwrap();
    let pulled = backends
        .insight_jobs
        .pull("tls-node", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        pulled.iter().map(|c| &c.job).collect::<Vec<_>>(),
        vec![&insight]
    );

    // The system roots do not know this CA: the server is not trusted.
    let cfg = config(url("token-of-32-characters-or-more!!"), None);
    let err = Backends::connect(&cfg)
        .await
        .err()
        .expect("an unverified server is refused");
    assert!(format!("{err:#}").contains("UnknownIssuer"), "{err:#}");

    // A wrong token: the server refuses it.
    let cfg = config(url("not-the-token"), Some(&redis.ca));
    let err = Backends::connect(&cfg)
        .await
        .err()
        .expect("a wrong token is refused");
    assert!(
        format!("{err:#}").contains("AuthenticationFailed"),
        "{err:#}"
    );

    // A CA file with a plain redis:// URL is a configuration mistake.
    let cfg = config(format!("redis://localhost:{}", redis.port), Some(&redis.ca));
    let err = Backends::connect(&cfg).await.err().unwrap();
    assert!(format!("{err:#}").contains("rediss://"), "{err:#}");
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_store_reaches_postgresql_over_tls_when_the_url_requires_it() {
    let admin = crate::backends::postgres_admin_url();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let store = panoptes_infra::store::SqlStore::connect(&panoptes_infra::store::StoreOptions {
        url: format!("{admin}{sep}sslmode=require"),
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
    })
    .await
    .expect("the test server has ssl = on (Debian's default, with its snakeoil certificate)");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require gave a plain connection");
    store.close().await;
}

//! The Redis connection every adapter shares, with a deadline on each call.
//!
//! A `ConnectionManager` multiplexes one TCP connection and reconnects after
//! a failure. On its own it lets a call wait for as long as reconnecting
//! takes (retries with back-off: about 9 s per request while Redis was
//! down), and it notices a dead connection only when a request fails on it,
//! so the first request after a Redis restart failed on an idle node.
//!
//! [`RedisConn`] fixes both: every command or pipeline gets
//! `redis.command_timeout_ms` in total (a stalled or absent Redis costs a
//! request about a second, then 503), and a background keeper PINGs the
//! connection while the process is idle, so a restarted server is
//! reconnected to before the next request needs it. A request whose
//! connection turns out to have been dropped under it is sent once more on
//! the fresh connection, within the same deadline: a command that never
//! left is not lost to a stale socket. (A command that reached the server
//! just before the drop may then run twice; every write the platform makes
//! through this connection tolerates that: limits count one extra, leases
//! and slots are set, not added, frame jobs and results are keyed by id.)

use std::sync::Weak;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A cheap-to-clone handle on the shared, deadline-bound connection.
#[derive(Clone)]
pub struct RedisConn {
    inner: ConnectionManager,
    deadline: Duration,
    /// Keeps the keeper alive as long as a handle exists.
    _alive: std::sync::Arc<()>,
}

/// How the connection behaves.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    /// Total time for one command (or pipeline), reconnecting included.
    pub command: Duration,
    /// Time for one connection attempt.
    pub connect: Duration,
}

impl Default for RedisTimeouts {
    /// `redis.command_timeout_ms` and `redis.connect_timeout_ms` defaults.
    fn default() -> Self {
        Self {
            command: Duration::from_secs(1),
            connect: Duration::from_secs(1),
        }
    }
}

impl RedisConn {
    /// Connect (the first connection must succeed) and start the keeper.
    pub async fn connect(client: redis::Client, t: RedisTimeouts) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t.connect))
            .set_response_timeout(Some(t.command))
            // Reconnect attempts per failure, quickly: the keeper tries again
            // every interval anyway, and requests must not queue behind
            // long back-offs.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let inner = ConnectionManager::new_with_config(client, config).await?;
        let alive = std::sync::Arc::new(());
        tokio::spawn(keep(
            inner.clone(),
            std::sync::Arc::downgrade(&alive),
            keeper_interval(t.command),
        ));
        Ok(Self {
            inner,
            deadline: t.command,
            _alive: alive,
        })
    }

    /// The deadline of one call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// PING within the deadline (`/readyz`); 503-worthy when Redis does not answer.
    pub async fn ping(&self) -> panoptes_shared::Result<()> {
        let mut conn = self.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| panoptes_shared::Error::unavailable("redis", e))?;
        Ok(())
    }

    async fn bounded<T, F, Fut>(&mut self, mut call: F) -> redis::RedisResult<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let inner = self.inner.clone();
        let attempt = async {
            match call(inner.clone()).await {
                // The manager began reconnecting when this failed; try the
                // fresh connection once. Never after a timeout: that would
                // spend the deadline twice on a stalled server.
                Err(e) if !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error()) => {
                    call(inner).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(timed_out(self.deadline)),
        }
    }
}

fn timed_out(after: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from Redis within {} ms", after.as_millis()),
    ))
}

/// PING often enough that a dropped connection is replaced before requests
/// need it, but not so often that idle nodes chatter: a few times a second
/// at most, once a second at least.
fn keeper_interval(command: Duration) -> Duration {
    command.clamp(Duration::from_millis(250), Duration::from_secs(1))
}

async fn keep(conn: ConnectionManager, alive: Weak<()>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        let mut c = conn.clone();
        // A failure here is what makes the manager reconnect; nothing to report.
        let _ = tokio::time::timeout(every, redis::cmd("PING").query_async::<()>(&mut c)).await;
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.bounded(|mut c| async move { c.req_packed_command(cmd).await })
                .await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.bounded(
                |mut c| async move { c.req_packed_commands(pipeline, offset, count).await },
            )
            .await
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

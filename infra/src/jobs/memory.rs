//! The in-process job queue: per-shard FIFOs and a table of claims, with
//! the same reclaim, dead-letter and staleness rules as the Redis adapter.
//! Generic over the job ([`QueueJob`]): one instance per queue.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::ports::jobs::{
    Claimed, DeadLetter, FrameJob, JobQueue, QueueJob, QueuePolicy, QueueStats, Receipt, now_ms,
};
use tokio::sync::Notify;
use tokio::time::Instant;

struct Claim<J> {
    job: J,
    claimed_at: Instant,
    attempts: u32,
}

struct State<J> {
    waiting: Vec<VecDeque<(u64, J)>>,
    claims: BTreeMap<(u16, u64), Claim<J>>,
    next_seq: u64,
    next_shard: usize,
    dead: Vec<DeadLetter>,
    dropped: u64,
}

/// A queue of `J` jobs in this process (frame jobs unless named).
pub struct MemoryJobQueue<J = FrameJob> {
    policy: QueuePolicy,
    state: Mutex<State<J>>,
    arrived: Notify,
}

impl<J: QueueJob> MemoryJobQueue<J> {
    pub fn new(policy: QueuePolicy) -> Self {
        let shards = usize::from(policy.shards.max(1));
        Self {
            policy,
            state: Mutex::new(State {
                waiting: (0..shards).map(|_| VecDeque::new()).collect(),
                claims: BTreeMap::new(),
                next_seq: 0,
                next_shard: 0,
                dead: Vec::new(),
                dropped: 0,
            }),
            arrived: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stale(&self, job: &J) -> bool {
        now_ms().saturating_sub(job.created_at_ms()) > self.policy.max_age.as_millis() as u64
    }

    /// Hand out what is available now; also when the next claim lapses.
    fn take(&self, max: usize) -> (Vec<Claimed<J>>, Option<Instant>) {
        let mut st = self.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        let lapsed: Vec<_> = st
            .claims
            .iter()
            .filter(|(_, c)| c.claimed_at + self.policy.visibility <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in lapsed {
            if out.len() >= max {
                break;
            }
            let Some(mut claim) = st.claims.remove(&key) else {
                continue;
            };
            if claim.attempts >= self.policy.max_attempts {
                st.dead.push(DeadLetter {
                    job_id: claim.job.job_id(),
                    device: claim.job.device(),
                    attempts: claim.attempts,
                    error: "not acknowledged within the visibility timeout".to_owned(),
                });
            } else if self.stale(&claim.job) {
                st.dropped += 1;
            } else {
                claim.attempts += 1;
                claim.claimed_at = now;
                out.push(claimed(key, &claim));
                st.claims.insert(key, claim);
            }
        }
        let shards = st.waiting.len();
        let mut empty_in_a_row = 0;
        while out.len() < max && empty_in_a_row < shards {
            let shard = st.next_shard % shards;
            st.next_shard = st.next_shard.wrapping_add(1);
            let Some((seq, job)) = st.waiting[shard].pop_front() else {
                empty_in_a_row += 1;
                continue;
            };
            empty_in_a_row = 0;
            if self.stale(&job) {
                st.dropped += 1;
                continue;
            }
            let key = (shard as u16, seq);
            let claim = Claim {
                job,
                claimed_at: now,
                attempts: 1,
            };
            out.push(claimed(key, &claim));
            st.claims.insert(key, claim);
        }
        let next_lapse = st
            .claims
            .values()
            .map(|c| c.claimed_at + self.policy.visibility)
            .min();
        (out, next_lapse)
    }
}

fn claimed<J: QueueJob>((shard, seq): (u16, u64), claim: &Claim<J>) -> Claimed<J> {
    Claimed {
        job: claim.job.clone(),
        receipt: Receipt {
            shard,
            entry: seq.to_string(),
        },
        attempts: claim.attempts,
    }
}

fn key_of(r: &Receipt) -> Option<(u16, u64)> {
    Some((r.shard, r.entry.parse().ok()?))
}

#[async_trait]
impl<J: QueueJob> JobQueue<J> for MemoryJobQueue<J> {
    async fn enqueue(&self, job: &J) -> Result<()> {
        {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            let shard = usize::from(self.policy.shard_of(job.device()));
            let q = &mut st.waiting[shard];
            q.push_back((seq, job.clone()));
            while q.len() > self.policy.max_len {
                q.pop_front();
            }
        }
        self.arrived.notify_waiters();
        Ok(())
    }

    async fn pull(&self, _consumer: &str, max: usize, wait: Duration) -> Result<Vec<Claimed<J>>> {
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let (out, next_lapse) = self.take(max);
            if !out.is_empty() || Instant::now() >= deadline {
                return Ok(out);
            }
            let until = next_lapse.map_or(deadline, |l| l.min(deadline));
            tokio::select! {
                () = arrived => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn ack(&self, receipt: &Receipt) -> Result<()> {
        if let Some(key) = key_of(receipt) {
            self.lock().claims.remove(&key);
        }
        Ok(())
    }

    async fn fail(&self, claimed: &Claimed<J>, error: &str) -> Result<()> {
        let Some(key) = key_of(&claimed.receipt) else {
            return Ok(());
        };
        let mut st = self.lock();
        if claimed.attempts >= self.policy.max_attempts && st.claims.remove(&key).is_some() {
            st.dead.push(DeadLetter {
                job_id: claimed.job.job_id(),
                device: claimed.job.device(),
                attempts: claimed.attempts,
                error: error.to_owned(),
            });
        }
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats> {
        let st = self.lock();
        let oldest = st
            .waiting
            .iter()
            .flatten()
            .map(|(_, j)| j.created_at_ms())
            .chain(st.claims.values().map(|c| c.job.created_at_ms()))
            .min();
        Ok(QueueStats {
            waiting: st.waiting.iter().map(|q| q.len() as u64).sum(),
            pending: st.claims.len() as u64,
            oldest_age_ms: oldest.map(|t| now_ms().saturating_sub(t)),
            dropped_stale: st.dropped,
            dead_letters: st.dead.len() as u64,
        })
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        Ok(self.lock().dead.iter().rev().take(max).cloned().collect())
    }
}

//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes,
//! one lane), on a fixed set of threads.
//!
//! Each hash needs 19 MiB. Run on tokio's blocking pool, a burst of log-ins
//! became hundreds of threads each allocating (and the allocator keeping)
//! its own 19 MiB: a few hundred anonymous requests took a node to gigabytes.
//! Here [`PasswordHasher`] owns `threads` OS threads, each holding ONE
//! argon2 memory area that it reuses for every hash, so hashing memory is
//! fixed at `threads x 19 MiB` whatever the load. Work waits in a bounded
//! queue; a job still waiting at its deadline is refused with
//! [`Error::Busy`] (503 + `Retry-After`) instead of piling up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use panoptes_shared::{Error, Result};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// Hash a password (allocating its own memory): for the CLI and tests.
pub fn hash_password(password: &str) -> Result<String> {
    let mut memory = Memory::default();
    memory.hash(password)
}

/// Check a password against a stored PHC string (allocating its own memory).
pub fn verify_password(password: &str, stored: &str) -> bool {
    Memory::default().verify(password, stored)
}

/// One thread's argon2 working memory, reused for every hash it computes.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.blocks.len() < n {
            // Only a stored hash with larger parameters than ours grows it.
            self.blocks.resize(n, Block::default());
        }
        &mut self.blocks[..n]
    }

    fn hash(&mut self, password: &str) -> Result<String> {
        let params = Params::default();
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut out = vec![0u8; len];
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut out,
                self.blocks(&params),
            )
            .map_err(|e| Error::internal(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(e.to_string()))?;
        let output = Output::new(&out).map_err(|e| Error::internal(e.to_string()))?;
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            salt.as_str(),
            output
        ))
    }

    /// Constant-time comparison with the stored hash; any unparsable input is `false`.
    fn verify(&mut self, password: &str, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let (Ok(algorithm), Some(expected), Some(salt)) = (
            Algorithm::try_from(parsed.algorithm),
            parsed.hash,
            parsed.salt,
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        // A stored hash asking for absurd memory is refused, not obeyed.
        if params.m_cost() > 256 * 1024 {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params.clone());
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                self.blocks(&params),
            )
            .is_ok()
            && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }
}

enum Work {
    Hash(String),
    Verify { password: String, stored: String },
}

enum Done {
    Hashed(Result<String>),
    Verified(bool),
    Expired,
}

struct Job {
    work: Work,
    deadline: Instant,
    reply: oneshot::Sender<Done>,
}

/// What a caller sees of the pool's load.
struct Load {
    queued: AtomicUsize,
    /// Exponentially smoothed microseconds per hash.
    micros_per_hash: AtomicU64,
}

/// The hashing threads and their queue. Cheap to share (`Arc`).
pub struct PasswordHasher {
    tx: SyncSender<Job>,
    threads: usize,
    queue_timeout: Duration,
    load: Arc<Load>,
    /// A hash of a random password: an unknown email costs as much as a wrong password.
    dummy: String,
}

impl PasswordHasher {
    /// `threads` hashing threads (0 = one per core); a job waits at most
    /// `queue_timeout` for one.
    pub fn new(threads: usize, queue_timeout: Duration) -> Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        // The deadline bounds waiting; the bound on the queue bounds memory
        // (a job holds at most a password and a hash string).
        let (tx, rx) = sync_channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        let load = Arc::new(Load {
            queued: AtomicUsize::new(0),
            micros_per_hash: AtomicU64::new(60_000),
        });
        for i in 0..threads {
            let (rx, load) = (rx.clone(), load.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || run(&rx, &load))
                .map_err(Error::internal)?;
        }
        Ok(Self {
            tx,
            threads,
            queue_timeout,
            load,
            dummy: hash_password(&uuid::Uuid::new_v4().to_string())?,
        })
    }

    /// Hash threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.load.queued.load(Ordering::Relaxed)
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        match self.submit(Work::Hash(password)).await? {
            Done::Hashed(r) => r,
            _ => Err(Error::internal("password hasher answered out of kind")),
        }
    }

    /// Whether `password` matches `stored`; with no stored hash (an unknown
    /// account) the same work is done against a dummy and `false` returned.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.clone());
        match self.submit(Work::Verify { password, stored }).await? {
            Done::Verified(ok) => Ok(ok && known),
            _ => Err(Error::internal("password hasher answered out of kind")),
        }
    }

    async fn submit(&self, work: Work) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            work,
            deadline: Instant::now() + self.queue_timeout,
            reply,
        };
        self.load.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.load.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(self.busy());
            }
        }
        match rx.await {
            Ok(Done::Expired) => Err(self.busy()),
            Ok(done) => Ok(done),
            Err(_) => Err(Error::internal("a password hashing thread stopped")),
        }
    }

    fn busy(&self) -> Error {
        let per_hash = Duration::from_micros(self.load.micros_per_hash.load(Ordering::Relaxed));
        let ahead = u32::try_from(self.queued() / self.threads.max(1)).unwrap_or(u32::MAX);
        Error::Busy {
            what: "password hashing",
            retry_after: (per_hash * ahead).max(Duration::from_secs(1)),
        }
    }
}

fn run(rx: &Mutex<Receiver<Job>>, load: &Load) {
    let mut memory = Memory::default();
    loop {
        // std Mutex: held only to take the next job, never across work.
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return, // the hasher was dropped
        };
        load.queued.fetch_sub(1, Ordering::Relaxed);
        if Instant::now() > job.deadline || job.reply.is_closed() {
            // Waited too long, or its request is gone: do not spend 19 MiB of work on it.
            let _ = job.reply.send(Done::Expired);
            continue;
        }
        let started = Instant::now();
        let done = match job.work {
            Work::Hash(password) => Done::Hashed(memory.hash(&password)),
            Work::Verify { password, stored } => Done::Verified(memory.verify(&password, &stored)),
        };
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let avg = load.micros_per_hash.load(Ordering::Relaxed);
        load.micros_per_hash
            .store((avg * 7 + took) / 8, Ordering::Relaxed);
        let _ = job.reply.send(done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "garbage"));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_still_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"old account", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("old account", &theirs));
        assert!(!verify_password("old accounts", &theirs));
        let ours = hash_password("new account").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"new account", &parsed)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_pool_hashes_verifies_and_treats_unknown_accounts_alike() {
        let pool = PasswordHasher::new(2, Duration::from_secs(5)).unwrap();
        let h = pool.hash("pool password".into()).await.unwrap();
        assert!(
            pool.verify("pool password".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!pool.verify("nope".into(), Some(h)).await.unwrap());
        assert!(!pool.verify("pool password".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn work_that_waited_past_its_deadline_is_refused_as_busy() {
        // One thread, a deadline shorter than one hash: of many jobs at once,
        // the first runs and those still queued at their deadline are refused.
        let pool = Arc::new(PasswordHasher::new(1, Duration::from_millis(1)).unwrap());
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(format!("password {i}")).await })
            })
            .collect();
        let mut busy = 0;
        for j in jobs {
            match j.await.unwrap() {
                Ok(h) => assert!(h.starts_with("$argon2id$")),
                Err(Error::Busy { retry_after, .. }) => {
                    assert!(retry_after >= Duration::from_secs(1));
                    busy += 1;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(busy >= 1, "a queue past its deadline must shed work");
        assert_eq!(pool.queued(), 0);
    }
}

//! The streams of this process that watch their lease for a takeover (see
//! `StreamSlots::watch`), shared by both adapters: an adapter that learns of a
//! takeover calls [`Watchers::notify`] and the stream holding that lease ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use panoptes_shared::ids::UserId;
use panoptes_shared::ports::TakenOver;
use tokio::sync::oneshot;

type Key = (UserId, String);

#[derive(Default)]
pub(crate) struct Watchers {
    // std Mutex: map updates only, never held across an await.
    watching: Mutex<HashMap<Key, (u64, oneshot::Sender<()>)>>,
    next_id: AtomicU64,
}

impl Watchers {
    pub(crate) fn watch(self: &Arc<Self>, user: UserId, lease: &str) -> TakenOver {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key = (user, lease.to_owned());
        self.lock().insert(key.clone(), (id, tx));
        TakenOver::new(
            rx,
            Box::new(Unwatch {
                watchers: Arc::downgrade(self),
                key,
                id,
            }),
        )
    }

    /// `lease` was taken over: tell its stream, if it is served here.
    pub(crate) fn notify(&self, user: UserId, lease: &str) {
        if let Some((_, tx)) = self.lock().remove(&(user, lease.to_owned())) {
            let _ = tx.send(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u64, oneshot::Sender<()>)>> {
        self.watching.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Unwatch {
    watchers: std::sync::Weak<Watchers>,
    key: Key,
    id: u64,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        let Some(w) = self.watchers.upgrade() else {
            return;
        };
        let mut watching = w.lock();
        if watching
            .get(&self.key)
            .is_some_and(|(id, _)| *id == self.id)
        {
            watching.remove(&self.key);
        }
    }
}

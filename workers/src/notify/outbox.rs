//! The outbox dispatcher: platform events (written with the change that
//! caused them) become deliveries to the owner's webhook endpoint, when it
//! is enabled, subscribes to the type and existed when the event happened.
//! Each event is claimed by one dispatcher, in the same transaction that
//! queues its delivery, so any number of nodes may run this.

use std::collections::HashMap;
use std::sync::Arc;

use panoptes_shared::Result;
use panoptes_shared::domain::webhook::{Delivery, Webhook};
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::Store;

/// Events taken per step.
const BATCH: u32 = 200;

pub struct Outbox {
    store: Arc<dyn Store>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Dispatch what is waiting.
    pub async fn step(&self) -> Result<Dispatched> {
        let events = self.store.undispatched_events(BATCH).await?;
        let taken = events.len();
        let mut endpoints: HashMap<UserId, Option<Webhook>> = HashMap::new();
        let mut queued = 0;
        for event in events {
            let webhook = match endpoints.get(&event.user_id) {
                Some(w) => w.clone(),
                None => {
                    let w = self.store.get_webhook(event.user_id).await?;
                    endpoints.insert(event.user_id, w.clone());
                    w
                }
            };
            let delivery = webhook
                .filter(|w| {
                    w.enabled && w.subscribes_to(event.kind) && event.created_at >= w.created_at
                })
                .map(|w| Delivery::for_event(&event, &w));
            let now = panoptes_shared::time::now();
            if self
                .store
                .dispatch_event(&event, delivery.as_ref(), now)
                .await?
                && delivery.is_some()
            {
                queued += 1;
            }
        }
        Ok(Dispatched {
            events: taken,
            queued,
        })
    }
}

/// What one outbox step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Events taken from the outbox.
    pub events: usize,
    /// Deliveries queued for them.
    pub queued: usize,
}

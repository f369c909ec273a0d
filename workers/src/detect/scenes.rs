//! What each scene looks for, cached briefly: every frame names its scene,
//! and a batch should not cost a store query per frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_shared::Result;
use panoptes_shared::ids::{SceneId, UserId};
use panoptes_shared::ports::Store;
use tokio::time::Instant;
use uuid::Uuid;

use crate::detector::Wanted;

pub struct SceneCache {
    store: Arc<dyn Store>,
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, (Option<Wanted>, Instant)>>,
}

impl SceneCache {
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The scene's class and threshold; `None` when it no longer exists.
    pub async fn wanted(&self, user: UserId, scene: Uuid) -> Result<Option<Wanted>> {
        let now = Instant::now();
        if let Some((w, at)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&scene)
            && now - *at < self.ttl
        {
            return Ok(*w);
        }
        let wanted = self
            .store
            .get_scene(user, SceneId(scene))
            .await?
            .map(|s| Wanted {
                class: s.parameters.class,
                min_confidence: s.parameters.confidence_threshold as f32,
            });
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scene, (wanted, now));
        Ok(wanted)
    }
}

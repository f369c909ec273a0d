//! Scenes, cached briefly: every frame names its scene, and neither a
//! detect batch nor an analytics pass should cost a store query per frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_shared::Result;
use panoptes_shared::domain::scene::Scene;
use panoptes_shared::ids::{SceneId, UserId};
use panoptes_shared::ports::Store;
use tokio::time::Instant;

use crate::inference::Wanted;

/// A looked-up scene (`None`: deleted) and when it was looked up.
type Entry = (Option<Arc<Scene>>, Instant);

pub struct SceneCache {
    store: Arc<dyn Store>,
    ttl: Duration,
    entries: Mutex<HashMap<SceneId, Entry>>,
}

impl SceneCache {
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The scene; `None` when it no longer exists.
    pub async fn get(&self, user: UserId, scene: SceneId) -> Result<Option<Arc<Scene>>> {
        let now = Instant::now();
        if let Some((s, at)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&scene)
            && now - *at < self.ttl
        {
            return Ok(s.clone());
        }
        let found = self.store.get_scene(user, scene).await?.map(Arc::new);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scene, (found.clone(), now));
        Ok(found)
    }

    /// What the detector looks for in the scene's frames.
    pub async fn wanted(&self, user: UserId, scene: SceneId) -> Result<Option<Wanted>> {
        Ok(self.get(user, scene).await?.map(|s| Wanted {
            class: s.parameters.class,
            min_confidence: s.parameters.confidence_threshold as f32,
        }))
    }
}

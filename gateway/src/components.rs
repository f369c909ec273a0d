//! What else runs in this process besides the gateway (the pipeline roles of
//! `panoptes up`), as `/readyz` reports it. The launcher records each role
//! it starts; a role that cannot start (the detector without ONNX Runtime,
//! say) is `unavailable` with the reason, and the platform is `degraded`.
//! A gateway on its own has none.

use std::sync::RwLock;

/// One in-process component's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    /// `None` when it runs; why not otherwise.
    pub unavailable: Option<String>,
}

#[derive(Debug, Default)]
pub struct Components {
    list: RwLock<Vec<Component>>,
}

impl Components {
    /// `name` runs.
    pub fn running(&self, name: &str) {
        self.set(name, None);
    }

    /// `name` could not start, for `reason`.
    pub fn unavailable(&self, name: &str, reason: String) {
        self.set(name, Some(reason));
    }

    fn set(&self, name: &str, unavailable: Option<String>) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        match list.iter_mut().find(|c| c.name == name) {
            Some(c) => c.unavailable = unavailable,
            None => list.push(Component {
                name: name.to_owned(),
                unavailable,
            }),
        }
    }

    pub fn list(&self) -> Vec<Component> {
        self.list.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

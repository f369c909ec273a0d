//! `vlm.provider = off`: no model to ask. Every call fails at once with
//! [`VlmError::Disabled`], whose message the insight stores as its reason,
//! so an insight says why it has no summary instead of waiting for one.

use async_trait::async_trait;
use panoptes_shared::ports::vlm::{VlmAnswer, VlmError, VlmProvider, VlmRequest};

#[derive(Debug, Clone, Copy, Default)]
pub struct DisabledVlm;

#[async_trait]
impl VlmProvider for DisabledVlm {
    async fn ask(&self, _request: &VlmRequest) -> Result<VlmAnswer, VlmError> {
        Err(VlmError::Disabled)
    }

    fn provider(&self) -> &str {
        "off"
    }
}

//! One SSE stream: `retry: 3000`, then the events the client missed (replayed
//! from the bus buffer after its `Last-Event-ID`), then live events, without
//! duplicates or gaps (subscribe first, replay, then drop live events at or
//! before the last replayed offset).
//!
//! The stream ends when: no data event was sent for the idle timeout; the
//! client was too slow (its queue filled); the bus lost continuity; or its
//! slot lease was lost or taken over. In every case the client reconnects
//! with `Last-Event-ID` and resumes. A client that vanishes is noticed on the
//! next failed write (keep-alive at the latest); dropping the stream then
//! releases its slot and hub membership through guards.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::{BusEvent, Offset, StreamSlots};
use poem::web::sse::Event;
use poem_openapi::payload::EventStream;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use tokio::time::Instant;

use super::SseSettings;
use super::hub::Attachment;

/// Reconnection delay advised to browsers.
pub const RETRY_MS: u64 = 3000;

/// What the stream emits: the reconnection advice, then events.
pub enum SseItem {
    Retry,
    Event(BusEvent),
}

/// Releases the stream's slot when the stream is dropped.
pub struct SlotGuard {
    pub slots: Arc<dyn StreamSlots>,
    pub user: UserId,
    pub lease: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let (slots, user, lease) = (
            self.slots.clone(),
            self.user,
            std::mem::take(&mut self.lease),
        );
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if let Err(e) = slots.release(user, &lease).await {
                tracing::warn!(error = %e, "could not release a stream slot; it lapses with its lease");
            }
        });
    }
}

struct State {
    replay: VecDeque<BusEvent>,
    last: Offset,
    last_event_ms: u64,
    device: Option<DeviceId>,
    attachment: Attachment,
    slot: SlotGuard,
    settings: SseSettings,
    idle_deadline: Instant,
    renew_at: Instant,
    sent_retry: bool,
}

/// Assemble the stream. `replay` holds the buffered events after the client's
/// resume point (already fetched, after `attachment` was taken).
pub fn event_stream(
    replay: Vec<BusEvent>,
    resume_from: Offset,
    device: Option<DeviceId>,
    attachment: Attachment,
    slot: SlotGuard,
    settings: SseSettings,
) -> EventStream<BoxStream<'static, SseItem>> {
    let now = Instant::now();
    let state = State {
        last: replay.last().map_or(resume_from, |e| e.offset),
        replay: replay.into(),
        last_event_ms: resume_from.ms,
        device,
        attachment,
        slot,
        settings,
        idle_deadline: now + settings.idle_timeout,
        renew_at: now + settings.keep_alive,
        sent_retry: false,
    };
    let stream = futures::stream::unfold(state, next_item).boxed();
    EventStream::new(stream)
        .keep_alive(settings.keep_alive)
        .to_event(|item| match item {
            SseItem::Retry => Event::retry(RETRY_MS),
            SseItem::Event(e) => Event::message(e.data.to_string())
                .id(e.event_id())
                .event_type("analysis_result"),
        })
}

async fn next_item(mut st: State) -> Option<(SseItem, State)> {
    if !st.sent_retry {
        st.sent_retry = true;
        return Some((SseItem::Retry, st));
    }
    while let Some(e) = st.replay.pop_front() {
        if st.device.is_none_or(|d| d == e.device) {
            return Some(deliver(st, e));
        }
    }
    loop {
        tokio::select! {
            event = st.attachment.events.recv() => match event {
                // Queue closed: too slow, or the bus lost continuity.
                None => return None,
                Some(e) if e.offset <= st.last => continue,
                Some(e) => {
                    st.last = e.offset;
                    if st.device.is_none_or(|d| d == e.device) {
                        return Some(deliver(st, e));
                    }
                }
            },
            () = tokio::time::sleep_until(st.idle_deadline) => return None,
            () = tokio::time::sleep_until(st.renew_at) => {
                st.renew_at = Instant::now() + st.settings.keep_alive;
                match st.slot.slots.renew(st.slot.user, &st.slot.lease, st.settings.lease_ttl, st.last_event_ms).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    // Keep streaming through a store blip; the lease outlives a few missed renewals.
                    Err(e) => tracing::warn!(error = %e, "could not renew a stream slot"),
                }
            }
        }
    }
}

fn deliver(mut st: State, e: BusEvent) -> (SseItem, State) {
    st.last = st.last.max(e.offset);
    st.last_event_ms = e.offset.ms;
    st.idle_deadline = Instant::now() + st.settings.idle_timeout;
    (SseItem::Event(e), st)
}

/// Documented as the `analysis_result` event payload.
impl Type for SseItem {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        crate::api::v1::streams::AnalysisResult::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        crate::api::v1::streams::AnalysisResult::schema_ref()
    }

    fn register(registry: &mut Registry) {
        crate::api::v1::streams::AnalysisResult::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for SseItem {
    fn to_json(&self) -> Option<serde_json::Value> {
        match self {
            Self::Retry => None,
            Self::Event(e) => serde_json::from_str(&e.data).ok(),
        }
    }
}

//! One SSE stream: `retry: 3000`, then the events the client missed (replayed
//! from the bus buffer after its `Last-Event-ID`), then live events, without
//! duplicates or gaps (subscribe first, replay, then drop live events at or
//! before the last replayed offset).
//!
//! The stream ends when: no data event was sent for the idle timeout; the
//! client was too slow (its queue filled); the bus lost continuity; or its
//! slot lease was lost or taken over; or the node is shutting down. In every
//! case the client reconnects with `Last-Event-ID` and resumes. A client that
//! closes its connection is noticed at once (the connection reads EOF); one
//! whose network died is noticed on the next failed write (the keep-alive at
//! the latest). Dropping the stream releases its slot and hub membership
//! through guards.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::{BusEvent, Offset, StreamSlots};
use tokio::time::Instant;

use super::SseSettings;
use super::body::{SseBody, keep_alive_frame, retry_frame};
use super::hub::{Attachment, Delivery};

/// Reconnection delay advised to browsers.
pub const RETRY_MS: u64 = 3000;

/// The event name of every data frame.
pub const EVENT_NAME: &str = "analysis_result";

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
    /// When the next keep-alive comment is due; the lease is renewed then too.
    tick_at: Instant,
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
) -> SseBody {
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
        tick_at: now + settings.keep_alive,
        sent_retry: false,
    };
    SseBody(futures::stream::unfold(state, next_frame).boxed())
}

async fn next_frame(mut st: State) -> Option<(Bytes, State)> {
    if !st.sent_retry {
        st.sent_retry = true;
        return Some((retry_frame(RETRY_MS), st));
    }
    while let Some(e) = st.replay.pop_front() {
        if st.device.is_none_or(|d| d == e.device) {
            let d = Delivery::new(e);
            return Some(deliver(st, d.event.offset, d.frame));
        }
    }
    loop {
        tokio::select! {
            event = st.attachment.events.recv() => match event {
                // Queue closed: too slow, or the bus lost continuity.
                None => return None,
                Some(d) if d.event.offset <= st.last => continue,
                Some(d) => {
                    st.last = d.event.offset;
                    if st.device.is_none_or(|dev| dev == d.event.device) {
                        return Some(deliver(st, d.event.offset, d.frame.clone()));
                    }
                }
            },
            () = tokio::time::sleep_until(st.idle_deadline) => return None,
            () = tokio::time::sleep_until(st.tick_at) => {
                st.tick_at = Instant::now() + st.settings.keep_alive;
                match st.slot.slots.renew(st.slot.user, &st.slot.lease, st.settings.lease_ttl, st.last_event_ms).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    // Keep streaming through a store blip; the lease outlives a few missed renewals.
                    Err(e) => tracing::warn!(error = %e, "could not renew a stream slot"),
                }
                // Also how a vanished client is noticed: this write fails.
                return Some((keep_alive_frame(), st));
            }
        }
    }
}

fn deliver(mut st: State, offset: Offset, frame: Bytes) -> (Bytes, State) {
    st.last = st.last.max(offset);
    st.last_event_ms = offset.ms;
    st.idle_deadline = Instant::now() + st.settings.idle_timeout;
    (frame, st)
}

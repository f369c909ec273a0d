//! One SSE stream: `retry: 3000`, then the events the client missed (replayed
//! from the bus buffer after its `Last-Event-ID`), then live events, without
//! duplicates or gaps (subscribe first, replay, then drop live events at or
//! before the last replayed offset).
//!
//! Right after `retry:` comes one `stream_token` event (no `id:`, so it does
//! not move the client's last event id) carrying the stream's token, which is
//! also in the `Stream-Token` response header: a client that reconnects with
//! it replaces this stream's slot (see `StreamSlots`).
//!
//! The stream ends when: no data event was sent for the idle timeout; the
//! client was too slow (its queue filled); the bus lost continuity; its slot
//! lease was lost, or taken over (noticed at once through the slot watch, at
//! the latest at the next renewal); or the node is shutting down. In every
//! case the client reconnects with `Last-Event-ID` and resumes. A client that
//! closes its connection is noticed at once (the connection reads EOF); one
//! whose network died is noticed on the next failed write (the keep-alive at
//! the latest). Dropping the stream releases its slot and hub membership
//! through guards.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::StreamExt;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::ports::{BusEvent, Offset, StreamToken};
use tokio::time::Instant;

use super::SseSettings;
use super::body::{SseBody, keep_alive_frame, retry_frame, stream_token_frame};
use super::hub::{Attachment, Delivery};
use super::slots::SlotGuard;

/// Reconnection delay advised to browsers.
pub const RETRY_MS: u64 = 3000;

/// The event name of every data frame.
pub use panoptes_shared::domain::stream_events::ANALYSIS_RESULT as EVENT_NAME;
/// The event that hands the client its stream token.
pub use panoptes_shared::domain::stream_events::STREAM_TOKEN as TOKEN_EVENT_NAME;

struct State {
    replay: VecDeque<BusEvent>,
    last: Offset,
    device: Option<DeviceId>,
    attachment: Attachment,
    slot: SlotGuard,
    settings: SseSettings,
    idle_deadline: Instant,
    /// When the next keep-alive comment is due; the lease is renewed then too.
    tick_at: Instant,
    /// `retry:` and the token event, until sent.
    opening: Option<Bytes>,
}

/// Assemble the stream. `replay` holds the buffered events after the client's
/// resume point (already fetched, after `attachment` was taken).
pub fn event_stream(
    replay: Vec<BusEvent>,
    resume_from: Offset,
    device: Option<DeviceId>,
    attachment: Attachment,
    slot: SlotGuard,
    token: &StreamToken,
    settings: SseSettings,
) -> SseBody {
    let now = Instant::now();
    let state = State {
        last: replay.last().map_or(resume_from, |e| e.offset),
        replay: replay.into(),
        device,
        attachment,
        slot,
        settings,
        idle_deadline: now + settings.idle_timeout,
        tick_at: now + settings.keep_alive,
        opening: Some(
            [retry_frame(RETRY_MS), stream_token_frame(token.expose())]
                .concat()
                .into(),
        ),
    };
    SseBody {
        frames: futures::stream::unfold(state, next_frame).boxed(),
        stream_token: token.expose().to_owned(),
    }
}

async fn next_frame(mut st: State) -> Option<(Bytes, State)> {
    if let Some(opening) = st.opening.take() {
        return Some((opening, st));
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
            // The client reconnected with this stream's token: it is over.
            () = st.slot.taken_over() => return None,
            () = tokio::time::sleep_until(st.tick_at) => {
                st.tick_at = Instant::now() + st.settings.keep_alive;
                match st.slot.renew().await {
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
    st.idle_deadline = Instant::now() + st.settings.idle_timeout;
    (frame, st)
}

//! Live analysis results over Server-Sent Events, and browser tickets.
//!
//! `GET /api/v1/devices/{id}/analysis/stream` and
//! `GET /api/v1/devices/analysis/stream/all` (scope `device:read` or
//! `analytics:read`): `event: analysis_result`, `id: <taskId>-<epochMillis>`,
//! `retry: 3000`, keep-alive comments, closed after the idle timeout without
//! a data event. Resume with `Last-Event-ID` (header, or `lastEventId` for a
//! first connect) on any replica. At most `sse.max_streams_per_user` streams
//! per user cluster-wide; beyond that 429 SSE_CONNECTION_LIMIT. Note that a
//! browser `EventSource` stops for good on 429/503/204/400: the page must
//! decide when to retry.
//!
//! Each stream gets a secret token (`Stream-Token` header, and the first
//! event, `stream_token`, for `EventSource`, which cannot read headers). A
//! client that reconnects while its old stream still holds a slot (the server
//! has not noticed the old connection died) sends the token back
//! (`Stream-Token` header, or `streamToken` for `EventSource`, which cannot
//! send headers) and takes that slot over, even at the limit; the old stream
//! ends. A browser's automatic reconnect reuses the URL, so it carries no
//! fresh token: it opens as a new stream. See `sse::reconnect` for what is
//! refused with 400.
//!
//! Browsers cannot send headers with `EventSource` (the product page's example
//! that passes one does not work), so `POST /api/v1/sse/tickets` mints a
//! short-lived ticket for `?ticket=`.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope as DomainScope;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::ports::{Offset, StreamToken};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::{Object, OpenApi, SecurityScheme};
use uuid::Uuid;

use super::ApiTags;
use super::enums::Scope;
use crate::auth::Caller;
use crate::auth::schemes::{ApiKey, SessionOrKey, SessionToken, SseTicket};
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, ReadErrors, StreamErrors};
use crate::sse::body::SseBody;
use crate::sse::reconnect::Reconnect;
use crate::sse::stream::event_stream;
use crate::state::AppState;

pub struct StreamsApi {
    pub state: AppState,
}

/// Any credential a stream accepts.
#[derive(SecurityScheme)]
pub enum StreamAuth {
    Ticket(SseTicket),
    Key(ApiKey),
    Session(SessionToken),
}

impl StreamAuth {
    fn caller(&self) -> &Caller {
        match self {
            Self::Ticket(t) => &t.0,
            Self::Key(k) => &k.0,
            Self::Session(s) => &s.0,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct TicketDto {
    /// Pass as `?ticket=` to a stream endpoint.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
    pub scopes: Vec<Scope>,
}

const READ_SCOPES: [DomainScope; 2] = [DomainScope::DeviceRead, DomainScope::AnalyticsRead];

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

impl StreamsApi {
    async fn open(
        &self,
        caller: &Caller,
        device: Option<DeviceId>,
        reconnect: Reconnect,
    ) -> Result<SseBody, Error> {
        let st = &self.state;
        caller.require_any(&READ_SCOPES)?;
        let user = caller.user_id;
        // A device key streams its own device only, also on `/stream/all`.
        let device = device.or(caller.device_binding());
        if let Some(d) = device {
            st.device(caller, d.0).await?;
        }
        let resume = match reconnect.last_event_id.as_deref() {
            Some(id) => st.bus.resolve(user, id).await?,
            None => None,
        };
        let settings = st.sse;
        let token = StreamToken::generate();
        let slot = st
            .slots
            .acquire(user, &token, reconnect.replaces.as_ref(), &settings)
            .await?;
        // Subscribe first, then replay: nothing published in between is missed.
        let attachment = st.hub.attach(user).await?;
        let mut replay = Vec::new();
        if let Some(point) = resume {
            let mut after = point.after;
            loop {
                let page = st.bus.replay_after(user, after, 1000).await?;
                let done = page.len() < 1000;
                if let Some(last) = page.last() {
                    after = last.offset;
                }
                replay.extend(page);
                if done {
                    break;
                }
            }
        }
        let from = resume.map_or(Offset::START, |r| r.after);
        Ok(event_stream(
            replay, from, device, attachment, slot, &token, settings,
        ))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Streams")]
impl StreamsApi {
    /// Stream one device's analysis results. Scope `device:read` or `analytics:read`.
    ///
    /// Events are `analysis_result` with `id: <taskId>-<epochMillis>`. The first
    /// event, `stream_token` (no `id:`), carries this stream's token, as does the
    /// `Stream-Token` header: send it back when reconnecting to replace this
    /// stream's slot. 400 `VALIDATION_ERROR` when `Last-Event-ID`/`lastEventId`
    /// is not an event id this API sent (or is more than 5 minutes ahead) or
    /// `Stream-Token`/`streamToken` is not a token it sent.
    #[oai(
        path = "/devices/:id/analysis/stream",
        method = "get",
        operation_id = "streamDeviceAnalysis"
    )]
    async fn device_stream(
        &self,
        auth: StreamAuth,
        id: Path<Uuid>,
        /// The id of the last event received (`<taskId>-<epochMillis>`); set by
        /// browsers on reconnect. Anything else is 400 `VALIDATION_ERROR`.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Same as `Last-Event-ID`, for a first connect (browsers cannot set headers).
        #[oai(name = "lastEventId")]
        last_event_id_query: Query<Option<String>>,
        /// The `Stream-Token` of your previous stream, when reconnecting: the new
        /// stream takes over that stream's slot (even at the limit) if it still
        /// holds one, and that stream ends. Each token works once. Not a token
        /// this API issued: 400 `VALIDATION_ERROR`.
        #[oai(name = "Stream-Token")]
        stream_token: Header<Option<String>>,
        /// Same as `Stream-Token` (browsers cannot set headers).
        #[oai(name = "streamToken")]
        stream_token_query: Query<Option<String>>,
    ) -> ApiResult<SseBody, StreamErrors> {
        let reconnect = Reconnect::parse(
            last_event_id.0,
            last_event_id_query.0,
            stream_token.0,
            stream_token_query.0,
            now_ms(),
        )?;
        Ok(self
            .open(auth.caller(), Some(DeviceId(id.0)), reconnect)
            .await?)
    }

    /// Stream the analysis results of all your devices. Scope `device:read` or `analytics:read`.
    ///
    /// Events are `analysis_result` with `id: <taskId>-<epochMillis>`. The first
    /// event, `stream_token` (no `id:`), carries this stream's token, as does the
    /// `Stream-Token` header: send it back when reconnecting to replace this
    /// stream's slot. 400 `VALIDATION_ERROR` when `Last-Event-ID`/`lastEventId`
    /// is not an event id this API sent (or is more than 5 minutes ahead) or
    /// `Stream-Token`/`streamToken` is not a token it sent.
    #[oai(
        path = "/devices/analysis/stream/all",
        method = "get",
        operation_id = "streamAllAnalysis"
    )]
    async fn all_stream(
        &self,
        auth: StreamAuth,
        /// The id of the last event received (`<taskId>-<epochMillis>`); set by
        /// browsers on reconnect. Anything else is 400 `VALIDATION_ERROR`.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Same as `Last-Event-ID`, for a first connect (browsers cannot set headers).
        #[oai(name = "lastEventId")]
        last_event_id_query: Query<Option<String>>,
        /// The `Stream-Token` of your previous stream, when reconnecting: the new
        /// stream takes over that stream's slot (even at the limit) if it still
        /// holds one, and that stream ends. Each token works once. Not a token
        /// this API issued: 400 `VALIDATION_ERROR`.
        #[oai(name = "Stream-Token")]
        stream_token: Header<Option<String>>,
        /// Same as `Stream-Token` (browsers cannot set headers).
        #[oai(name = "streamToken")]
        stream_token_query: Query<Option<String>>,
    ) -> ApiResult<SseBody, StreamErrors> {
        let reconnect = Reconnect::parse(
            last_event_id.0,
            last_event_id_query.0,
            stream_token.0,
            stream_token_query.0,
            now_ms(),
        )?;
        Ok(self.open(auth.caller(), None, reconnect).await?)
    }

    /// Mint a short-lived ticket for `EventSource` (`?ticket=`), bound to you and
    /// to the stream read scopes your credential holds.
    #[oai(
        path = "/sse/tickets",
        method = "post",
        operation_id = "createSseTicket"
    )]
    async fn ticket(&self, auth: SessionOrKey) -> ApiResult<Reply<TicketDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require_any(&READ_SCOPES)?;
        let scopes: Vec<DomainScope> = READ_SCOPES
            .into_iter()
            .filter(|s| caller.require(*s).is_ok())
            .collect();
        let (ticket, expires_at) = self.state.sessions.issue_ticket(
            caller.user_id,
            &scopes,
            caller.device_binding(),
            self.state.sse.ticket_ttl,
        )?;
        Ok(Reply::new(
            "SSE ticket",
            TicketDto {
                ticket,
                expires_at,
                scopes: scopes.into_iter().map(Into::into).collect(),
            },
        ))
    }
}

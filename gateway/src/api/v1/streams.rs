//! Live analysis results over Server-Sent Events, and browser tickets.
//!
//! `GET /api/v1/devices/{id}/analysis/stream` and
//! `GET /api/v1/devices/analysis/stream/all` (scope `device:read` or
//! `analytics:read`): `event: analysis_result`, `id: <taskId>-<epochMillis>`,
//! `retry: 3000`, keep-alive comments, closed after the idle timeout without
//! a data event. Resume with `Last-Event-ID` (header, or `lastEventId` for a
//! first connect) on any replica. At most `sse.max_streams_per_user` streams
//! per user cluster-wide; beyond that 429 SSE_CONNECTION_LIMIT. Note that a
//! browser `EventSource` stops for good on 429/503/204: the page must decide
//! when to retry.
//!
//! Browsers cannot send headers with `EventSource` (the product page's example
//! that passes one does not work), so `POST /api/v1/sse/tickets` mints a
//! short-lived ticket for `?ticket=`.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope as DomainScope;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::ports::{Offset, SlotGrant};
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
use crate::sse::stream::{SlotGuard, event_stream};
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

/// One `analysis_result` event's `data` (one analysed frame).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AnalysisResult {
    pub device_id: Uuid,
    pub analysis_id: Uuid,
    pub scene_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub detections: Vec<Detection>,
    pub metrics: FrameMetrics,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct Detection {
    /// `person` or `object`.
    #[oai(rename = "type")]
    pub kind: String,
    pub confidence: f64,
    pub bounding_box: Option<BoundingBox>,
    pub track_id: Option<String>,
    /// `queue`, `checkout` or absent.
    pub zone: Option<String>,
    /// level_02 devices only.
    pub attributes: Option<serde_json::Value>,
}

/// Normalised to the frame (0-1).
#[derive(Debug, Object)]
pub struct BoundingBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FrameMetrics {
    pub in_queue: u32,
    pub in_service: u32,
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

impl StreamsApi {
    async fn open(
        &self,
        caller: &Caller,
        device: Option<DeviceId>,
        last_event_id: Option<String>,
    ) -> Result<SseBody, Error> {
        let st = &self.state;
        caller.require_any(&READ_SCOPES)?;
        let user = caller.user_id;
        // A device key streams its own device only, also on `/stream/all`.
        let device = device.or(caller.device_binding());
        if let Some(d) = device {
            st.device(caller, d.0).await?;
        }
        // An unparseable id (not one of ours) starts fresh rather than failing:
        // a browser would otherwise retry it forever.
        let resume = match last_event_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(id) => st.bus.resolve(user, id).await?,
            None => None,
        };
        let lease = Uuid::new_v4().to_string();
        let settings = st.sse;
        match st
            .slots
            .acquire(
                user,
                &lease,
                settings.max_streams_per_user,
                settings.lease_ttl,
                resume.map(|r| r.after.ms),
            )
            .await?
        {
            SlotGrant::Granted => {}
            SlotGrant::Full { retry_after } => {
                return Err(Error::StreamLimit {
                    limit: settings.max_streams_per_user,
                    retry_after,
                });
            }
        }
        let slot = SlotGuard {
            slots: st.slots.clone(),
            user,
            lease,
        };
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
            replay, from, device, attachment, slot, settings,
        ))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Streams")]
impl StreamsApi {
    /// Stream one device's analysis results. Scope `device:read` or `analytics:read`.
    #[oai(
        path = "/devices/:id/analysis/stream",
        method = "get",
        operation_id = "streamDeviceAnalysis"
    )]
    async fn device_stream(
        &self,
        auth: StreamAuth,
        id: Path<Uuid>,
        /// The id of the last event received; set by browsers on reconnect.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Same as `Last-Event-ID`, for a first connect (browsers cannot set headers).
        #[oai(name = "lastEventId")]
        last_event_id_query: Query<Option<String>>,
    ) -> ApiResult<SseBody, StreamErrors> {
        let resume = last_event_id.0.or(last_event_id_query.0);
        Ok(self
            .open(auth.caller(), Some(DeviceId(id.0)), resume)
            .await?)
    }

    /// Stream the analysis results of all your devices. Scope `device:read` or `analytics:read`.
    #[oai(
        path = "/devices/analysis/stream/all",
        method = "get",
        operation_id = "streamAllAnalysis"
    )]
    async fn all_stream(
        &self,
        auth: StreamAuth,
        /// The id of the last event received; set by browsers on reconnect.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Same as `Last-Event-ID`, for a first connect (browsers cannot set headers).
        #[oai(name = "lastEventId")]
        last_event_id_query: Query<Option<String>>,
    ) -> ApiResult<SseBody, StreamErrors> {
        let resume = last_event_id.0.or(last_event_id_query.0);
        Ok(self.open(auth.caller(), None, resume).await?)
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
        let (ticket, expires_at) =
            self.state
                .sessions
                .issue_ticket(caller.user_id, &scopes, self.state.sse.ticket_ttl)?;
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

//! `/api/v1/users/me/webhook`: the caller's one webhook endpoint, its
//! signing secret, a test send and the delivery log. Deliveries are made by
//! the notify role (Standard Webhooks headers and signature, retries with
//! backoff and jitter); see `panoptes_workers::notify`.

mod dto;

use std::time::{Duration, Instant};

use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::validate::optional_text;
use panoptes_shared::domain::webhook::{
    self as domain, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, Delivery, DeliveryStatus as Status,
    SECRET_ROTATION_GRACE, SigningSecret, TEST_EVENT_TYPE, Webhook,
};
use panoptes_shared::ids::{DeliveryId, UserId, WebhookId};
use panoptes_shared::outbound::OutboundError;
use panoptes_shared::ports::DeliveryFilter;
use panoptes_shared::ports::cipher::signing_secrets;
use panoptes_shared::ports::webhooks::OutboundRequest;
use panoptes_shared::time::now;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::types::MaybeUndefined;
use uuid::Uuid;

pub use dto::{
    AttemptDto, CreateWebhookRequest, DeliveryDto, SecretDto, UpdateWebhookRequest, WebhookDto,
};

use super::ApiTags;
use super::enums::DeliveryStatus;
use crate::auth::schemes::SessionOrKey;
use crate::http::body::JsonBody;
use crate::http::envelope::{Created, Empty, Reply};
use crate::http::error::{ApiResult, ReadErrors, WriteErrors};
use crate::state::AppState;

pub struct WebhooksApi {
    pub state: AppState,
}

impl WebhooksApi {
    async fn find(&self, user: UserId) -> Result<Webhook, Error> {
        self.state
            .store
            .get_webhook(user)
            .await?
            .ok_or(Error::NotFound("webhook"))
    }

    /// Check the URL's form, then refuse it when it points at a non-public
    /// address (the same guard as camera URLs; every delivery checks again).
    async fn vet_url(&self, raw: &str) -> Result<String, Error> {
        let url = domain::parse_url(raw, self.state.webhooks_allow_http)?;
        let port = url.port_or_known_default().unwrap_or(443);
        match self.state.outbound.check_url(&url, port).await {
            Ok(()) | Err(OutboundError::Unresolvable(_) | OutboundError::Connect(_)) => {
                Ok(url.to_string())
            }
            Err(OutboundError::Blocked(why)) => Err(Error::validation(
                "url",
                format!("points at a {why} address; webhooks go to public addresses only"),
            )),
            Err(OutboundError::InvalidHost) => Err(Error::validation(
                "url",
                "must name an IP address or a DNS name",
            )),
        }
    }

    fn seal(
        &self,
        secret: &SigningSecret,
    ) -> Result<panoptes_shared::domain::device::Sealed, Error> {
        self.state.cipher.seal(secret.expose().as_bytes())
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Your webhook endpoint (404 before one is created). Scope `webhook:read`.
    #[oai(
        path = "/users/me/webhook",
        method = "get",
        operation_id = "getWebhook"
    )]
    async fn get(&self, auth: SessionOrKey) -> ApiResult<Reply<WebhookDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookRead)?;
        let w = self.find(caller.user_id).await?;
        Ok(Reply::new("Webhook", WebhookDto::new(&w, None)))
    }

    /// Create your webhook endpoint (one per user; 409 when it exists). The
    /// response shows the signing secret; later, `GET .../secret` does.
    /// Scope `webhook:write`.
    #[oai(
        path = "/users/me/webhook",
        method = "post",
        operation_id = "createWebhook"
    )]
    async fn create(
        &self,
        auth: SessionOrKey,
        body: JsonBody<CreateWebhookRequest>,
    ) -> ApiResult<Created<WebhookDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        let req = body.parse()?;
        let url = self.vet_url(&req.url).await?;
        let secret = match &req.secret {
            Some(s) => SigningSecret::parse(s)?,
            None => SigningSecret::generate(),
        };
        let t = now();
        let w = Webhook {
            id: WebhookId::new(),
            user_id: caller.user_id,
            url,
            name: optional_text("name", req.name.as_deref(), 100)?,
            secret: self.seal(&secret)?,
            previous_secret: None,
            previous_secret_until: None,
            subscribed_types: dedup(req.subscribed_types.unwrap_or_default()),
            timeout_ms: req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            max_retries: req.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            enabled: true,
            disabled_reason: None,
            paused_until: None,
            created_at: t,
            updated_at: t,
        };
        self.state.store.create_webhook(&w).await?;
        Ok(Created::new(
            "Webhook created",
            WebhookDto::new(&w, Some(secret.expose().to_owned())),
        ))
    }

    /// Change your webhook endpoint. Scope `webhook:write`.
    #[oai(
        path = "/users/me/webhook",
        method = "patch",
        operation_id = "updateWebhook"
    )]
    async fn update(
        &self,
        auth: SessionOrKey,
        body: JsonBody<UpdateWebhookRequest>,
    ) -> ApiResult<Reply<WebhookDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        let req = body.parse()?;
        let mut w = self.find(caller.user_id).await?;
        let read_at = w.updated_at;
        if let Some(url) = &req.url {
            w.url = self.vet_url(url).await?;
        }
        match req.name {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => w.name = None,
            MaybeUndefined::Value(n) => w.name = optional_text("name", Some(&n), 100)?,
        }
        match req.subscribed_types {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => w.subscribed_types.clear(),
            MaybeUndefined::Value(t) => w.subscribed_types = dedup(t),
        }
        if let Some(t) = req.timeout_ms {
            w.timeout_ms = t;
        }
        if let Some(r) = req.max_retries {
            w.max_retries = r;
        }
        if let Some(enabled) = req.enabled {
            w.enabled = enabled;
            if enabled {
                w.disabled_reason = None;
                w.paused_until = None;
            }
        }
        w.updated_at = later(read_at);
        if !self
            .state
            .store
            .update_webhook(caller.user_id, &w, read_at)
            .await?
        {
            return Err(changed_meanwhile().into());
        }
        Ok(Reply::new("Webhook updated", WebhookDto::new(&w, None)))
    }

    /// Delete your webhook endpoint and its delivery log. Scope `webhook:write`.
    #[oai(
        path = "/users/me/webhook",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(&self, auth: SessionOrKey) -> ApiResult<Reply<Empty>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        if !self.state.store.delete_webhook(caller.user_id).await? {
            return Err(Error::NotFound("webhook").into());
        }
        Ok(Reply::new("Webhook deleted", Empty {}))
    }

    /// Send a signed `webhook_test` event to your endpoint now and report
    /// what it answered (one attempt, no retries; logged with the deliveries).
    /// Scope `webhook:write`.
    #[oai(
        path = "/users/me/webhook/test",
        method = "post",
        operation_id = "testWebhook"
    )]
    async fn test(&self, auth: SessionOrKey) -> ApiResult<Reply<DeliveryDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        let w = self.find(caller.user_id).await?;
        let started_at = now();
        let id = DeliveryId::new();
        let payload = serde_json::json!({
            "type": TEST_EVENT_TYPE,
            "timestamp": started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": { "webhookId": w.id, "message": "Panoptes webhook test" },
        })
        .to_string();
        let mut d = Delivery {
            id,
            user_id: caller.user_id,
            webhook_id: w.id,
            event_id: None,
            event_type: TEST_EVENT_TYPE.into(),
            payload,
            status: Status::Pending,
            attempts: 0,
            round_attempts: 0,
            next_attempt_at: None,
            last_status_code: None,
            last_error: None,
            created_at: started_at,
            updated_at: started_at,
        };
        let secrets = signing_secrets(self.state.cipher.as_ref(), &w, started_at)?;
        let request = OutboundRequest::signed(
            &w.url,
            &d.msg_id(),
            &d.payload,
            &secrets,
            started_at.timestamp(),
            Duration::from_millis(u64::from(w.timeout_ms)),
        );
        let clock = Instant::now();
        let response = self.state.webhook_sender.send(&request).await;
        let latency = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let done = now();
        let (attempt, _) = d.record(
            response.into_result(latency, done),
            started_at,
            done,
            0,
            |_| Duration::ZERO,
        );
        self.state.store.record_test_delivery(&d, &attempt).await?;
        let message = if attempt.succeeded {
            "Test event delivered"
        } else {
            "Test event not delivered"
        };
        Ok(Reply::new(
            message,
            DeliveryDto::new(&d, Some(std::slice::from_ref(&attempt))),
        ))
    }

    /// Your signing secret. Scope `webhook:write` (whoever has it can forge
    /// events to your receiver).
    #[oai(
        path = "/users/me/webhook/secret",
        method = "get",
        operation_id = "getWebhookSecret"
    )]
    async fn secret(&self, auth: SessionOrKey) -> ApiResult<Reply<SecretDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        let w = self.find(caller.user_id).await?;
        let secret = panoptes_shared::ports::cipher::open_signing_secret(
            self.state.cipher.as_ref(),
            &w.secret,
        )?;
        Ok(Reply::new(
            "Webhook secret",
            SecretDto {
                secret: secret.expose().to_owned(),
                previous_secret_expires_at: w.previous_secret_until.filter(|t| *t > now()),
            },
        ))
    }

    /// Replace the signing secret with a generated one. For 24 hours the old
    /// one signs too (`webhook-signature` carries both signatures), so your
    /// receiver can switch without losing events. Scope `webhook:write`.
    #[oai(
        path = "/users/me/webhook/secret/regenerate",
        method = "post",
        operation_id = "regenerateWebhookSecret"
    )]
    async fn regenerate(&self, auth: SessionOrKey) -> ApiResult<Reply<SecretDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        let mut w = self.find(caller.user_id).await?;
        let read_at = w.updated_at;
        let secret = SigningSecret::generate();
        let t = later(read_at);
        w.previous_secret = Some(std::mem::replace(&mut w.secret, self.seal(&secret)?));
        w.previous_secret_until = Some(t + SECRET_ROTATION_GRACE);
        w.updated_at = t;
        if !self
            .state
            .store
            .update_webhook(caller.user_id, &w, read_at)
            .await?
        {
            return Err(changed_meanwhile().into());
        }
        Ok(Reply::new(
            "Webhook secret regenerated",
            SecretDto {
                secret: secret.expose().to_owned(),
                previous_secret_expires_at: w.previous_secret_until,
            },
        ))
    }

    /// The delivery log, newest first: every event sent to your endpoint
    /// with its status, attempts and last answer. Filter by `eventType`
    /// (an event type or `webhook_test`) and `status`. Scope `webhook:read`.
    #[oai(
        path = "/users/me/webhook/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        auth: SessionOrKey,
        #[oai(name = "eventType", validator(max_length = 64))] event_type: Query<Option<String>>,
        status: Query<Option<DeliveryStatus>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<DeliveryDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookRead)?;
        let page = super::page(page.0, limit.0)?;
        if let Some(t) = &event_type.0
            && t != TEST_EVENT_TYPE
            && EventKind::parse(t).is_none()
        {
            return Err(Error::validation(
                "eventType",
                format!(
                    "must be an event type ({}) or {TEST_EVENT_TYPE}",
                    EventKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .into());
        }
        let filter = DeliveryFilter {
            event_type: event_type.0,
            status: status.0.map(Into::into),
        };
        let list = self
            .state
            .store
            .list_deliveries(caller.user_id, &filter, page)
            .await?;
        Ok(Reply::page(
            "Webhook deliveries",
            list.map(|d| DeliveryDto::new(&d, None)),
        ))
    }

    /// One delivery with every attempt. Scope `webhook:read`.
    #[oai(
        path = "/users/me/webhook/deliveries/:id",
        method = "get",
        operation_id = "getWebhookDelivery"
    )]
    async fn delivery(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<DeliveryDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookRead)?;
        let d = self
            .state
            .store
            .get_delivery(caller.user_id, DeliveryId(id.0))
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        let attempts = self.state.store.list_attempts(caller.user_id, d.id).await?;
        Ok(Reply::new(
            "Webhook delivery",
            DeliveryDto::new(&d, Some(&attempts)),
        ))
    }

    /// Queue a delivery again now, with a fresh retry budget and the same
    /// `webhook-id` (409 while it is still pending). Scope `webhook:write`.
    #[oai(
        path = "/users/me/webhook/deliveries/:id/redeliver",
        method = "post",
        operation_id = "redeliverWebhookDelivery"
    )]
    async fn redeliver(
        &self,
        auth: SessionOrKey,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<DeliveryDto>, WriteErrors> {
        let caller = auth.caller();
        caller.require(Scope::WebhookWrite)?;
        let did = DeliveryId(id.0);
        let d = self
            .state
            .store
            .get_delivery(caller.user_id, did)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        if d.status == Status::Pending {
            return Err(Error::Conflict(
                "the delivery is still pending; its next attempt is scheduled".into(),
            )
            .into());
        }
        self.state
            .store
            .requeue_delivery(caller.user_id, did, now())
            .await?;
        let d = self
            .state
            .store
            .get_delivery(caller.user_id, did)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        Ok(Reply::new(
            "Webhook delivery queued",
            DeliveryDto::new(&d, None),
        ))
    }
}

/// 409 for a configuration changed between our read and our write.
fn changed_meanwhile() -> Error {
    Error::Conflict("the webhook changed meanwhile (a secret regenerated, or the endpoint disabled); read it and try again".into())
}

/// Now, or just after `previous` (stored times are milliseconds): every
/// write moves `updated_at` on, so a write made from an older read is refused.
fn later(previous: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    now().max(previous + chrono::Duration::milliseconds(1))
}

/// Event types in order, each once.
fn dedup(types: Vec<super::enums::EventType>) -> Vec<EventKind> {
    let mut out: Vec<EventKind> = types.into_iter().map(Into::into).collect();
    out.sort();
    out.dedup();
    out
}

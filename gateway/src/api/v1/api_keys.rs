//! `/api/v1/api-keys`: create, list, get, update, revoke and rotate keys.
//! Session token only; each operation has its documented per-user rate limit.
//! The secret is returned once (create, rotate); only its hash is stored.

use chrono::{DateTime, Utc};
use panoptes_shared::domain::api_key::{self as domain, GeneratedKey};
use panoptes_shared::domain::validate::text;
use panoptes_shared::ids::{ApiKeyId, DeviceId, UserId};
use panoptes_shared::time::now;
use panoptes_shared::{Error, Result};
use poem_openapi::param::{Path, Query};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use super::ApiTags;
use super::enums::{KeyStatus, KeyType, Scope};
use crate::auth::schemes::SessionToken;
use crate::http::body::JsonBody;
use crate::http::envelope::{Created, Reply};
use crate::http::error::{ApiResult, KeyErrors};
use crate::limits::Bucket;
use crate::state::AppState;

pub struct ApiKeysApi {
    pub state: AppState,
}

#[derive(Debug, Object, Deserialize)]
pub struct CreateApiKeyRequest {
    /// 1-100 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Decides the prefix and the default scopes.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// Omit for the type's defaults. A `device` key may carry at most
    /// `device:read`, `device:heartbeat`, `device:sync` and `task:read`.
    pub scopes: Option<Vec<Scope>>,
    /// Required for `type: device`, refused for the other types: the one
    /// device the key works for (every other device is 404 to it). Deleting
    /// the device deletes its keys.
    #[oai(rename = "deviceId")]
    #[serde(rename = "deviceId")]
    pub device_id: Option<Uuid>,
    /// Omit for a key that does not expire. Must be in the future.
    #[oai(rename = "expiresAt")]
    #[serde(rename = "expiresAt")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Object, Deserialize)]
pub struct UpdateApiKeyRequest {
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    /// `null` removes the expiry.
    #[oai(rename = "expiresAt")]
    #[serde(rename = "expiresAt", default)]
    pub expires_at: MaybeUndefined<DateTime<Utc>>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyDto {
    pub id: Uuid,
    pub name: String,
    #[oai(rename = "type")]
    pub key_type: KeyType,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// The device a `device` key is bound to.
    #[oai(rename = "deviceId")]
    pub device_id: Option<Uuid>,
    pub status: KeyStatus,
    #[oai(rename = "expiresAt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[oai(rename = "lastUsedAt")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[oai(rename = "revokedAt")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[oai(rename = "rotatedAt")]
    pub rotated_at: Option<DateTime<Utc>>,
    #[oai(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    #[oai(rename = "updatedAt")]
    pub updated_at: DateTime<Utc>,
}

/// A key with its secret: returned by create and rotate only, never again.
#[derive(Debug, Object)]
pub struct ApiKeySecretDto {
    /// The full key. Store it now: it cannot be shown again.
    pub key: String,
    #[oai(rename = "apiKey")]
    pub api_key: ApiKeyDto,
}

impl From<domain::ApiKey> for ApiKeyDto {
    fn from(k: domain::ApiKey) -> Self {
        Self {
            id: k.id.0,
            name: k.name.clone(),
            key_type: k.key_type.into(),
            prefix: k.display_prefix.clone(),
            scopes: k.scopes.iter().map(Scope::from).collect(),
            device_id: k.device_id.map(|d| d.0),
            status: k.status(now()).into(),
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            rotated_at: k.rotated_at,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

fn scopes(key_type: domain::KeyType, raw: Vec<Scope>) -> Result<domain::Scopes> {
    if raw.is_empty() {
        return Err(Error::validation(
            "scopes",
            "must name at least one scope (omit it for the type's defaults)",
        ));
    }
    let permitted = key_type.permitted_scopes();
    let scopes = domain::Scopes::new(raw.into_iter().map(Into::into).collect());
    if let Some(extra) = scopes.iter().find(|s| !permitted.contains(*s)) {
        return Err(Error::validation(
            "scopes",
            format!(
                "a {} key cannot carry `{extra}`; it may carry {}",
                key_type.as_str(),
                permitted
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(scopes)
}

fn future(t: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if t <= now() {
        return Err(Error::validation("expiresAt", "must be in the future"));
    }
    Ok(t)
}

impl ApiKeysApi {
    /// The (session-authenticated) caller, counted against `bucket`.
    async fn caller(&self, auth: &SessionToken, bucket: Bucket) -> Result<UserId> {
        let user = auth.0.user_id;
        self.state.rate_limit(&user.to_string(), bucket).await?;
        Ok(user)
    }

    async fn find(&self, user: UserId, id: Uuid) -> Result<domain::ApiKey> {
        self.state
            .store
            .get_api_key(user, ApiKeyId(id))
            .await?
            .ok_or(Error::NotFound("API key"))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Create a key. The secret is in this response only. 10 requests/min.
    #[oai(path = "/api-keys", method = "post", operation_id = "createApiKey")]
    async fn create(
        &self,
        auth: SessionToken,
        body: JsonBody<CreateApiKeyRequest>,
    ) -> ApiResult<Created<ApiKeySecretDto>, KeyErrors> {
        let user = self.caller(&auth, Bucket::KeyCreate).await?;
        let req = body.parse()?;
        let key_type: domain::KeyType = req.key_type.into();
        let name = text("name", &req.name, 1, 100)?;
        let scopes = match req.scopes {
            Some(raw) => scopes(key_type, raw)?,
            None => key_type.default_scopes(),
        };
        let device_id = match (key_type.bound_to_device(), req.device_id) {
            (true, None) => {
                return Err(Error::validation(
                    "deviceId",
                    "a device key is bound to one device: give its id",
                )
                .into());
            }
            (true, Some(id)) => {
                let found = self.state.store.get_device(user, DeviceId(id)).await?;
                Some(
                    found
                        .ok_or_else(|| Error::validation("deviceId", "no such device"))?
                        .id,
                )
            }
            (false, Some(_)) => {
                return Err(Error::validation(
                    "deviceId",
                    "only device keys are bound to a device; omit it",
                )
                .into());
            }
            (false, None) => None,
        };
        let expires_at = req.expires_at.map(future).transpose()?;
        let generated = GeneratedKey::new(key_type);
        let t = now();
        let key = domain::ApiKey {
            id: ApiKeyId::new(),
            user_id: user,
            name,
            key_type,
            display_prefix: generated.display_prefix.clone(),
            scopes,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            rotated_at: None,
            created_at: t,
            updated_at: t,
            device_id,
        };
        self.state
            .store
            .insert_api_key(&key, &generated.hash)
            .await?;
        let secret = generated.secret.expose_secret().to_owned();
        Ok(Created::new(
            "API key created; store the key now, it is not shown again",
            ApiKeySecretDto {
                key: secret,
                api_key: key.into(),
            },
        ))
    }

    /// List your keys, newest first. 60 requests/min.
    #[oai(path = "/api-keys", method = "get", operation_id = "listApiKeys")]
    async fn list(
        &self,
        auth: SessionToken,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<ApiKeyDto>>, KeyErrors> {
        let user = self.caller(&auth, Bucket::KeyRead).await?;
        let keys = self
            .state
            .store
            .list_api_keys(user, super::page(page.0, limit.0)?)
            .await?;
        Ok(Reply::page("API keys", keys.map(ApiKeyDto::from)))
    }

    /// One key (never its secret). 60 requests/min.
    #[oai(path = "/api-keys/:id", method = "get", operation_id = "getApiKey")]
    async fn get(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<ApiKeyDto>, KeyErrors> {
        let user = self.caller(&auth, Bucket::KeyRead).await?;
        Ok(Reply::new("API key", self.find(user, id.0).await?.into()))
    }

    /// Rename, re-scope or change the expiry of a key. 20 requests/min.
    #[oai(
        path = "/api-keys/:id",
        method = "patch",
        operation_id = "updateApiKey"
    )]
    async fn update(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
        body: JsonBody<UpdateApiKeyRequest>,
    ) -> ApiResult<Reply<ApiKeyDto>, KeyErrors> {
        let user = self.caller(&auth, Bucket::KeyUpdate).await?;
        let req = body.parse()?;
        let mut key = self.find(user, id.0).await?;
        if key.revoked_at.is_some() {
            return Err(Error::Conflict(
                "the API key is revoked and can no longer be changed".into(),
            )
            .into());
        }
        if let Some(name) = req.name {
            key.name = text("name", &name, 1, 100)?;
        }
        if let Some(raw) = req.scopes {
            key.scopes = scopes(key.key_type, raw)?;
        }
        match req.expires_at {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => key.expires_at = None,
            MaybeUndefined::Value(t) => key.expires_at = Some(future(t)?),
        }
        key.updated_at = now();
        self.state.store.update_api_key(user, &key).await?;
        Ok(Reply::new("API key updated", key.into()))
    }

    /// Revoke a key: refused at once on every gateway. Idempotent. 10 requests/min.
    #[oai(
        path = "/api-keys/:id",
        method = "delete",
        operation_id = "revokeApiKey"
    )]
    async fn revoke(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<ApiKeyDto>, KeyErrors> {
        let user = self.caller(&auth, Bucket::KeyRevoke).await?;
        let mut key = self.find(user, id.0).await?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(now());
            key.updated_at = now();
            self.state.store.update_api_key(user, &key).await?;
        }
        Ok(Reply::new("API key revoked", key.into()))
    }

    /// Replace a key's secret; the old one stops working at once. 5 requests/min.
    #[oai(
        path = "/api-keys/:id/rotate",
        method = "post",
        operation_id = "rotateApiKey"
    )]
    async fn rotate(
        &self,
        auth: SessionToken,
        id: Path<Uuid>,
    ) -> ApiResult<Reply<ApiKeySecretDto>, KeyErrors> {
        let user = self.caller(&auth, Bucket::KeyRotate).await?;
        let mut key = self.find(user, id.0).await?;
        if key.revoked_at.is_some() {
            return Err(
                Error::Conflict("the API key is revoked and cannot be rotated".into()).into(),
            );
        }
        let generated = GeneratedKey::new(key.key_type);
        key.display_prefix = generated.display_prefix.clone();
        key.rotated_at = Some(now());
        key.updated_at = now();
        if !self
            .state
            .store
            .rotate_api_key(user, &key, &generated.hash)
            .await?
        {
            return Err(Error::Conflict("the API key was revoked meanwhile".into()).into());
        }
        let secret = generated.secret.expose_secret().to_owned();
        Ok(Reply::new(
            "API key rotated; store the new key now, it is not shown again",
            ApiKeySecretDto {
                key: secret,
                api_key: key.into(),
            },
        ))
    }
}

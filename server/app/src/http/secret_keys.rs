//! `/v1/tenants/{tenant_id}/secret-keys`: tenant secret keys.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx, TenantPath};
use super::pagination::{ListQuery, list_response};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::credentials::SecretKeyRecord;
use gatehouse_core::ids::{SecretKeyId, TenantId};
use gatehouse_core::services::secret_keys::IssuedSecretKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A tenant secret key as shown to operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretKey {
    /// Key id.
    pub id: SecretKeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Label.
    pub name: String,
    /// The first characters of the secret, to recognise it by.
    pub prefix: String,
    /// `active`, `expiring` (rotated, still valid until `expires_at`), `expired` or `revoked`.
    pub status: &'static str,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last use, to the minute.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When a rotated key stops working.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The secret itself: present only in the response that created it, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl SecretKey {
    fn from_record(record: SecretKeyRecord, now: OffsetDateTime) -> Self {
        let status = match (record.revoked_at, record.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            (None, Some(_)) => "expiring",
            (None, None) => "active",
        };
        Self {
            id: record.id,
            tenant_id: record.tenant_id,
            name: record.name,
            prefix: record.display_prefix,
            status,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            secret: None,
        }
    }

    fn issued(issued: IssuedSecretKey, now: OffsetDateTime) -> Self {
        Self { secret: Some(issued.secret.expose().to_owned()), ..Self::from_record(issued.record, now) }
    }
}

list_response!(SecretKeyList, SecretKey);

/// Body of `POST …/secret-keys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecretKeyRequest {
    /// Label, e.g. `production backend`.
    pub name: Option<String>,
}

/// Body of `POST …/secret-keys/{key_id}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretKeyRequest {
    /// How long the old key keeps working, 0 to 604800 seconds (default 86400).
    pub overlap_seconds: Option<i64>,
}

/// Path of one key.
#[derive(Debug, Deserialize)]
pub struct KeyPath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Key id.
    pub key_id: SecretKeyId,
}

/// Creates a secret key; the secret is in this response only.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/secret-keys", tag = "secret-keys", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)), request_body = CreateSecretKeyRequest,
    responses((status = 201, body = SecretKey), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_secret_key(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateSecretKeyRequest>,
) -> ApiResult<(StatusCode, Json<SecretKey>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let issued = state.services.secret_keys.create(&access, &ctx, body.name).await?;
    Ok((StatusCode::CREATED, Json(SecretKey::issued(issued, state.clock.now()))))
}

/// Lists a tenant's keys (never their secrets).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/secret-keys", tag = "secret-keys", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ListQuery),
    responses((status = 200, body = SecretKeyList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_secret_keys(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<SecretKeyList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let keys = state.services.secret_keys.list(&access, &ctx, &query.page()?).await?;
    let now = state.clock.now();
    Ok(Json(keys.map(|k| SecretKey::from_record(k, now)).into()))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/secret-keys/{key_id}", tag = "secret-keys", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("key_id" = SecretKeyId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_secret_key(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<KeyPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.secret_keys.revoke(&access, &ctx, &path.key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates a key: returns its successor (with the secret); the old key keeps working
/// for the overlap window, then stops.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/secret-keys/{key_id}/rotate", tag = "secret-keys",
    security(("bearer" = [])), params(("tenant_id" = TenantId, Path), ("key_id" = SecretKeyId, Path)),
    request_body = RotateSecretKeyRequest,
    responses((status = 201, body = SecretKey), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret_key(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<KeyPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<RotateSecretKeyRequest>,
) -> ApiResult<(StatusCode, Json<SecretKey>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let overlap = body.overlap_seconds.map(time::Duration::seconds);
    let issued = state.services.secret_keys.rotate(&access, &ctx, &path.key_id, overlap).await?;
    Ok((StatusCode::CREATED, Json(SecretKey::issued(issued, state.clock.now()))))
}

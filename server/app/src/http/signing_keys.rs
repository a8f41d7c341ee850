//! `/v1/tenants/{tenant_id}/signing-keys`: the tenant's token signing keys.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiPath, Ctx, TenantPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use gatehouse_core::ids::{SigningKeyId, TenantId};
use gatehouse_core::signing::{KeyStatus, alg_name};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A published signing key (public part only).
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKey {
    /// Key id (the JWT `kid`).
    pub id: SigningKeyId,
    /// Algorithm.
    pub alg: &'static str,
    /// `next` (published, not yet signing), `active` or `retired`.
    pub status: KeyStatus,
    /// Public JWK.
    #[schema(value_type = Object)]
    pub public_jwk: serde_json::Value,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// A retired key is published until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub publish_until: Option<OffsetDateTime>,
}

/// The published keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyList {
    /// Keys, oldest first.
    pub data: Vec<SigningKey>,
    /// Always `null`: a tenant has at most a handful of published keys.
    pub next_cursor: Option<String>,
}

/// The result of a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    /// The key that signs from now on (it was already published as `next`).
    pub kid: SigningKeyId,
}

/// Lists the tenant's published signing keys.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/signing-keys", tag = "signing-keys", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses((status = 200, body = SigningKeyList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_signing_keys(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<SigningKeyList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let keys = state.services.keys.list(&access, &ctx).await?;
    let data = keys
        .into_iter()
        .map(|k| SigningKey {
            id: k.id,
            alg: alg_name(k.alg),
            status: k.status,
            public_jwk: k.public_jwk,
            created_at: k.created_at,
            publish_until: k.publish_until,
        })
        .collect();
    Ok(Json(SigningKeyList { data, next_cursor: None }))
}

/// Rotates: the published next key starts signing, the active key retires (published
/// until its last token expires), and a new next key is published.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/signing-keys/rotate", tag = "signing-keys", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses((status = 200, body = RotatedKey), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_signing_keys(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<RotatedKey>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(RotatedKey { kid: state.services.keys.rotate(&access, &ctx).await? }))
}

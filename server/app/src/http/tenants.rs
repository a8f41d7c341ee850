//! `/v1/tenants`: create, read, list, update, delete.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx, TenantPath};
use super::pagination::{ListQuery, list_response};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::ids::TenantId;
use gatehouse_core::services::tenants::{NewTenant, TenantPatch};
use gatehouse_core::tenant::Tenant;
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// URL name: 3-63 lowercase letters, digits and inner hyphens; never reusable.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Settings over the defaults (see `TenantSettings`).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// Body of `PATCH /v1/tenants/{tenant_id}`; `settings` is merged (RFC 7396).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    /// New display name.
    pub name: Option<String>,
    /// Settings to merge; `null` for a field restores its default.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

list_response!(TenantList, Tenant);

/// Creates a tenant (operators without a tenant restriction only).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = CreateTenantRequest,
    responses((status = 201, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateTenantRequest>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    let op = principal.operator()?;
    let input = NewTenant { slug: body.slug, name: body.name, settings: body.settings };
    let tenant = state.services.tenants.create(&op, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Lists the tenants the caller can reach.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = TenantList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_tenants(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<TenantList>> {
    let page = query.page()?;
    Ok(Json(state.services.tenants.list(&principal, &ctx, &page).await?.into()))
}

/// Reads a tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_tenant(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<Tenant>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.tenants.get(&access, &ctx).await?))
}

/// Changes a tenant's name or settings.
#[utoipa::path(patch, path = "/v1/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path, description = "Tenant id")), request_body = UpdateTenantRequest,
    responses((status = 200, body = Tenant), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_tenant(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<UpdateTenantRequest>,
) -> ApiResult<Json<Tenant>> {
    let access = principal.tenant(&path.tenant_id)?;
    let patch = TenantPatch { name: body.name, settings: body.settings };
    Ok(Json(state.services.tenants.update(&access, &ctx, patch).await?))
}

/// Deletes a tenant (soft: its slug is never reused; its keys stop working at once).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path, description = "Tenant id")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.tenants.delete(&access, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

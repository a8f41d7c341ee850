//! `/v1/admin-tokens`: operator API tokens for automation.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use super::pagination::{ListQuery, list_response};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::access::OperatorRole;
use gatehouse_core::credentials::AdminTokenRecord;
use gatehouse_core::ids::{AdminTokenId, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An operator API token as shown to operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminToken {
    /// Token id.
    pub id: AdminTokenId,
    /// Label.
    pub name: String,
    /// The first characters of the secret.
    pub prefix: String,
    /// Tenants it may act on; `null` means all tenants and operator-level actions.
    pub tenant_ids: Option<Vec<TenantId>>,
    /// What it may do: `owner`, `security_admin`, `support_admin`, `billing_admin`,
    /// `read_only_auditor`.
    pub role: OperatorRole,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last use, to the minute.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The secret: in the creating response only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<AdminTokenRecord> for AdminToken {
    fn from(r: AdminTokenRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            prefix: r.display_prefix,
            tenant_ids: r.tenant_scope,
            role: r.role,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            secret: None,
        }
    }
}

list_response!(AdminTokenList, AdminToken);

/// Body of `POST /v1/admin-tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminTokenRequest {
    /// Label.
    pub name: Option<String>,
    /// Restrict the token to these tenants; omit for an unrestricted token.
    pub tenant_ids: Option<Vec<TenantId>>,
    /// Its role (default `owner`).
    #[serde(default)]
    pub role: OperatorRole,
}

/// Path of one token.
#[derive(Debug, Deserialize)]
pub struct TokenPath {
    /// Token id.
    pub token_id: AdminTokenId,
}

/// Creates an operator token; the secret is in this response only.
#[utoipa::path(post, path = "/v1/admin-tokens", tag = "admin-tokens", security(("bearer" = [])),
    request_body = CreateAdminTokenRequest,
    responses((status = 201, body = AdminToken), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_admin_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateAdminTokenRequest>,
) -> ApiResult<(StatusCode, Json<AdminToken>)> {
    let op = principal.operator()?;
    let issued = state.services.admin_tokens.create(&op, &ctx, body.name, body.tenant_ids, body.role).await?;
    let token = AdminToken { secret: Some(issued.secret.expose().to_owned()), ..issued.record.into() };
    Ok((StatusCode::CREATED, Json(token)))
}

/// Lists operator tokens (never their secrets).
#[utoipa::path(get, path = "/v1/admin-tokens", tag = "admin-tokens", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = AdminTokenList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_admin_tokens(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<AdminTokenList>> {
    let op = principal.operator()?;
    let tokens = state.services.admin_tokens.list(&op, &ctx, &query.page()?).await?;
    Ok(Json(tokens.map(AdminToken::from).into()))
}

/// Revokes an operator token at once.
#[utoipa::path(delete, path = "/v1/admin-tokens/{token_id}", tag = "admin-tokens", security(("bearer" = [])),
    params(("token_id" = AdminTokenId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_admin_token(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TokenPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let op = principal.operator()?;
    state.services.admin_tokens.revoke(&op, &ctx, &path.token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

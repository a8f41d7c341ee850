//! `/v1/audit-events`: the audit log, filtered to what the caller may see.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiQuery, Ctx};
use super::pagination::list_response;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::TenantId;
use gatehouse_core::services::audit_log::AuditFilter;
use serde::Deserialize;
use utoipa::IntoParams;

list_response!(AuditEventList, AuditEvent);

/// Filters and pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    /// Only events of this tenant.
    pub tenant_id: Option<TenantId>,
    /// Only this action, e.g. `tenant.create`.
    pub action: Option<String>,
    /// Only this actor (credential id).
    pub actor_id: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Lists audit events, oldest first.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit", security(("bearer" = [])), params(AuditQueryParams),
    responses((status = 200, body = AuditEventList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQueryParams>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<AuditEventList>> {
    let page = gatehouse_core::page::PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = AuditFilter { tenant_id: query.tenant_id, action: query.action, actor_id: query.actor_id };
    Ok(Json(state.services.audit.list(&principal, &ctx, filter, &page).await?.into()))
}

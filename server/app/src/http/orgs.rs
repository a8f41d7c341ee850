//! `/v1/tenants/{tenant_id}/organizations` (members, invitations, permission checks) and
//! `/v1/tenants/{tenant_id}/roles`: managing a tenant's organizations.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx, TenantPath};
use super::pagination::{ListQuery, list_response};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::ids::{InvitationId, OrganizationId, TenantId, UserId};
use gatehouse_core::org::{DomainJoin, Invitation, Membership, OrgDomain, Organization, Role, challenge_name};
use gatehouse_core::services::orgs::{NewOrg, OrgPatch};
use gatehouse_core::store::OrgFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

list_response!(OrganizationList, Organization);
list_response!(MemberList, Membership);

/// Path of one organization.
#[derive(Debug, Deserialize)]
pub struct OrgPath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Organization id.
    pub org_id: OrganizationId,
}

/// Path of one member.
#[derive(Debug, Deserialize)]
pub struct MemberPath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Organization id.
    pub org_id: OrganizationId,
    /// The member's user id.
    pub user_id: UserId,
}

/// Path of one invitation.
#[derive(Debug, Deserialize)]
pub struct InvitationPath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Organization id.
    pub org_id: OrganizationId,
    /// Invitation id.
    pub invitation_id: InvitationId,
}

/// Path of one custom role.
#[derive(Debug, Deserialize)]
pub struct RolePath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Role key.
    pub key: String,
}

/// Body of `POST /v1/tenants/{tenant_id}/organizations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    /// URL name, unique in the tenant.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Logo (https).
    pub logo_url: Option<String>,
    /// Free-form JSON object (8 KiB).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Parent organization (nesting up to 5 levels).
    pub parent_id: Option<OrganizationId>,
    /// A user of the tenant to make its first owner.
    pub owner_user_id: Option<UserId>,
    /// What its verified domains do: `off` (default), `auto_join` or `offer`.
    pub domain_join: Option<DomainJoin>,
    /// The role users join with through a domain (default `member`).
    pub domain_join_role: Option<String>,
}

/// Creates an organization.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)), request_body = CreateOrgRequest,
    responses((status = 201, body = Organization), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_organization(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let input = NewOrg {
        slug: body.slug,
        name: body.name,
        logo_url: body.logo_url,
        metadata: body.metadata,
        parent_id: body.parent_id,
        owner_user_id: body.owner_user_id,
        domain_join: body.domain_join,
        domain_join_role: body.domain_join_role,
    };
    Ok((StatusCode::CREATED, Json(state.services.orgs.create(&access, &ctx, input).await?)))
}

/// Filters of the organization list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// Only the direct children of this organization.
    pub parent_id: Option<OrganizationId>,
    /// Only the descendants of this organization, all levels.
    pub subtree_of: Option<OrganizationId>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Lists organizations by id (all, one's children, or one's subtree).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/organizations", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), OrgQuery),
    responses((status = 200, body = OrganizationList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_organizations(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(query): ApiQuery<OrgQuery>,
    Auth(principal): Auth,
) -> ApiResult<Json<OrganizationList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let page = ListQuery { limit: query.limit, cursor: query.cursor }.page()?;
    let filter = OrgFilter { parent_id: query.parent_id, subtree_of: query.subtree_of };
    Ok(Json(state.services.orgs.list(&access, &filter, &page).await?.into()))
}

/// Reads an organization.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/organizations/{org_id}", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)),
    responses((status = 200, body = Organization), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_organization(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
) -> ApiResult<Json<Organization>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.orgs.get(&access, &path.org_id).await?))
}

/// Body of `PATCH …/organizations/{org_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrgRequest {
    /// New slug.
    pub slug: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New logo.
    pub logo_url: Option<String>,
    /// New metadata (replaces the old).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// New domain policy.
    pub domain_join: Option<DomainJoin>,
    /// New role for domain joins.
    pub domain_join_role: Option<String>,
}

/// Changes an organization.
#[utoipa::path(patch, path = "/v1/tenants/{tenant_id}/organizations/{org_id}", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)), request_body = UpdateOrgRequest,
    responses((status = 200, body = Organization), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_organization(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<UpdateOrgRequest>,
) -> ApiResult<Json<Organization>> {
    let access = principal.tenant(&path.tenant_id)?;
    let patch = OrgPatch {
        slug: body.slug,
        name: body.name,
        logo_url: body.logo_url,
        metadata: body.metadata,
        domain_join: body.domain_join,
        domain_join_role: body.domain_join_role,
    };
    Ok(Json(state.services.orgs.update(&access, &ctx, &path.org_id, patch).await?))
}

/// Deletes an organization without sub-organizations (`409` otherwise).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/organizations/{org_id}", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_organization(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.orgs.delete(&access, &ctx, &path.org_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST …/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// A user of the tenant.
    pub user_id: UserId,
    /// A role key.
    pub role: String,
}

/// Adds a member.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/members", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)), request_body = AddMemberRequest,
    responses((status = 201, body = Membership), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_member(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<Membership>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let member = state.services.orgs.add_member(&access, &ctx, &path.org_id, &body.user_id, &body.role).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Lists members by user id.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/members", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ListQuery),
    responses((status = 200, body = MemberList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_members(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
) -> ApiResult<Json<MemberList>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.orgs.members(&access, &path.org_id, &query.page()?).await?.into()))
}

/// Body of `PATCH …/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// The new role key.
    pub role: String,
}

/// Changes a member's role (`409` when it would leave no owner).
#[utoipa::path(patch, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/members/{user_id}", tag = "organizations",
    security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ("user_id" = UserId, Path)),
    request_body = ChangeRoleRequest,
    responses((status = 200, body = Membership), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_member(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MemberPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<ChangeRoleRequest>,
) -> ApiResult<Json<Membership>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.orgs.change_role(&access, &ctx, &path.org_id, &path.user_id, &body.role).await?))
}

/// Removes a member (`409` for the last owner); their org sessions end.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/members/{user_id}", tag = "organizations",
    security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ("user_id" = UserId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_member(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MemberPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.orgs.remove_member(&access, &ctx, &path.org_id, &path.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST …/check`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The user.
    pub user_id: UserId,
    /// The permission, `resource:action`.
    pub permission: String,
}

/// A permission check's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    /// Whether the user holds the permission in the organization.
    pub allowed: bool,
    /// The user's role there (`null` when not a member).
    pub role: Option<String>,
    /// The role's permission that grants it.
    pub granted_by: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// Whether a user holds a permission in an organization, and why.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/check", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)), request_body = CheckRequest,
    responses((status = 200, body = CheckResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_check(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CheckRequest>,
) -> ApiResult<Json<CheckResponse>> {
    let access = principal.tenant(&path.tenant_id)?;
    let c = state.services.orgs.check(&access, &path.org_id, &body.user_id, &body.permission).await?;
    Ok(Json(CheckResponse { allowed: c.allowed, role: c.role, granted_by: c.granted_by, reason: c.reason }))
}

/// Body of `POST …/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The address to invite.
    pub email: String,
    /// The role granted on acceptance.
    pub role: String,
}

/// Invites an address (the link goes by email; a newer invitation replaces an older one).
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/invitations", tag = "organizations",
    security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)), request_body = InviteRequest,
    responses((status = 201, body = Invitation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_invitation(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let invitation = state.services.orgs.invite(&access, &ctx, &path.org_id, &body.email, &body.role).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// The organization's invitations.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    /// Newest first.
    pub data: Vec<Invitation>,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// Lists the organization's invitations, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/invitations", tag = "organizations",
    security(("bearer" = [])), params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)),
    responses((status = 200, body = InvitationList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_invitations(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
) -> ApiResult<Json<InvitationList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let data = state.services.orgs.invitations(&access, &path.org_id).await?;
    Ok(Json(InvitationList { data, next_cursor: None }))
}

/// Sends a pending invitation again: a new invitation with a new link and expiry.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/invitations/{invitation_id}/resend",
    tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ("invitation_id" = InvitationId, Path)),
    responses((status = 201, body = Invitation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_invitation_resend(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<InvitationPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let invitation = state.services.orgs.resend(&access, &ctx, &path.org_id, &path.invitation_id).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Revokes a pending invitation.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/invitations/{invitation_id}",
    tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ("invitation_id" = InvitationId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_invitation(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<InvitationPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.orgs.revoke(&access, &ctx, &path.org_id, &path.invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    /// Built-in roles first, then custom ones by key.
    pub data: Vec<Role>,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// Lists built-in and custom roles.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/roles", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses((status = 200, body = RoleList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_roles(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
) -> ApiResult<Json<RoleList>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(RoleList { data: state.services.orgs.roles(&access).await?, next_cursor: None }))
}

/// Body of `POST /v1/tenants/{tenant_id}/roles` and `PUT …/roles/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// Key (create only; the path names it on update).
    pub key: Option<String>,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Permission strings `resource:action` (`*` as the action for all).
    pub permissions: Vec<String>,
}

fn role_of(key: String, body: RoleRequest) -> Role {
    Role { key, name: body.name, description: body.description, permissions: body.permissions, built_in: false }
}

/// Creates a custom role.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/roles", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)), request_body = RoleRequest,
    responses((status = 201, body = Role), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_role(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<RoleRequest>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let key = body.key.clone().unwrap_or_default();
    let role = state.services.orgs.put_role(&access, &ctx, role_of(key, body), true).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Replaces a custom role's name, description and permissions.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/roles/{key}", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("key" = String, Path)), request_body = RoleRequest,
    responses((status = 200, body = Role), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_role(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<RolePath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<RoleRequest>,
) -> ApiResult<Json<Role>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.orgs.put_role(&access, &ctx, role_of(path.key, body), false).await?))
}

/// Deletes a custom role nobody holds (`409` otherwise).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/roles/{key}", tag = "organizations", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("key" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_role(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<RolePath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.orgs.delete_role(&access, &ctx, &path.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Path of one domain.
#[derive(Debug, Deserialize)]
pub struct DomainPath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Organization id.
    pub org_id: OrganizationId,
    /// The domain.
    pub domain: String,
}

/// The DNS record that proves a domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainVerification {
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub record_type: &'static str,
    /// Where to publish it.
    pub name: String,
    /// What to publish.
    pub value: String,
}

/// A domain of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainResponse {
    /// The domain.
    pub domain: String,
    /// When the record was found (`null` until then).
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<time::OffsetDateTime>,
    /// The record to publish.
    pub verification: DomainVerification,
}

impl From<OrgDomain> for DomainResponse {
    fn from(d: OrgDomain) -> Self {
        Self {
            verification: DomainVerification {
                record_type: "TXT",
                name: challenge_name(&d.domain),
                value: d.verification_token,
            },
            domain: d.domain,
            verified_at: d.verified_at,
        }
    }
}

/// Body of `POST …/domains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomainRequest {
    /// The domain, e.g. `example.com`.
    pub domain: String,
}

/// Claims a domain: answers the TXT record to publish before verifying.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/domains", tag = "organizations",
    security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)), request_body = AddDomainRequest,
    responses((status = 201, body = DomainResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_domain(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<AddDomainRequest>,
) -> ApiResult<(StatusCode, Json<DomainResponse>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let domain = state.services.orgs.add_domain(&access, &ctx, &path.org_id, &body.domain).await?;
    Ok((StatusCode::CREATED, Json(domain.into())))
}

/// The organization's domains.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainList {
    /// By domain.
    pub data: Vec<DomainResponse>,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// Lists the organization's domains.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/domains", tag = "organizations",
    security(("bearer" = [])), params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path)),
    responses((status = 200, body = DomainList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_domains(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OrgPath>,
    Auth(principal): Auth,
) -> ApiResult<Json<DomainList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let data = state.services.orgs.domains(&access, &path.org_id).await?.into_iter().map(Into::into).collect();
    Ok(Json(DomainList { data, next_cursor: None }))
}

/// Looks up the TXT record now and marks the domain verified when it is there
/// (`400 domain_not_verified` otherwise; `409` when another organization verified it).
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/domains/{domain}/verify", tag = "organizations",
    security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ("domain" = String, Path)),
    responses((status = 200, body = DomainResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_domain_verify(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<DomainPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<DomainResponse>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.orgs.verify_domain(&access, &ctx, &path.org_id, &path.domain).await?.into()))
}

/// Removes a domain claim.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/organizations/{org_id}/domains/{domain}", tag = "organizations",
    security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("org_id" = OrganizationId, Path), ("domain" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_domain(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<DomainPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.orgs.delete_domain(&access, &ctx, &path.org_id, &path.domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

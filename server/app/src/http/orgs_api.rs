//! `/t/{t}/auth/organizations…` and `/t/{t}/auth/invitations/accept`: the signed-in
//! user's organizations, org-scoped tokens, and accepting invitations.

use super::auth_api::{AccessToken, TenantSlugPath, Transport, login_response, token_response, with_field};
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Ctx};
use super::verification_api::optional_bearer;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::ids::OrganizationId;
use gatehouse_core::org::{Membership, Organization};
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::orgs::Accepted;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One of the user's organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyOrganization {
    /// The organization.
    pub organization: Organization,
    /// The user's role there.
    pub role: String,
}

/// The user's organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyOrganizationList {
    /// By organization id.
    pub data: Vec<MyOrganization>,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// The signed-in user's organizations and roles.
#[utoipa::path(get, path = "/t/{t}/auth/organizations", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])),
    responses((status = 200, body = MyOrganizationList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_my_organizations(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
) -> ApiResult<Json<MyOrganizationList>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let data = state
        .services
        .orgs
        .mine(&tenant, &token)
        .await?
        .into_iter()
        .map(|(organization, m)| MyOrganization { organization, role: m.role })
        .collect();
    Ok(Json(MyOrganizationList { data, next_cursor: None }))
}

/// Path of one of the user's organizations.
#[derive(Debug, Deserialize)]
pub struct MyOrgPath {
    /// Tenant slug.
    pub t: String,
    /// Organization id.
    pub org_id: OrganizationId,
}

/// Body of `POST organizations/{org_id}/token`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgTokenRequest {
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// A token set scoped to one of the user's organizations (`org_id`, `org_slug`,
/// `org_role`, `permissions` in the access token; its refreshes stay scoped).
#[utoipa::path(post, path = "/t/{t}/auth/organizations/{org_id}/token", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), ("org_id" = OrganizationId, Path)),
    security(("bearer" = [])), request_body = OrgTokenRequest,
    responses((status = 200, body = super::auth_api::TokenSetResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_org_token(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MyOrgPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<OrgTokenRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let tokens = state.services.orgs.org_token(&tenant, &ctx, &token, &path.org_id).await?;
    Ok(token_response(StatusCode::OK, &tenant, tokens, body.transport))
}

/// Body of `POST invitations/accept`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The invitation token from the emailed link.
    pub token: String,
    /// Without a bearer: the new account's password.
    pub password: Option<String>,
    /// Without a bearer: the new account's display name.
    pub name: Option<String>,
    /// Refresh-token transport of a new account's tokens (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// What accepting answers: the membership (`200`, signed in), or for a new account the
/// token set (or challenge) with `membership` added (`201`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "documents the answers; the handler builds each arm's type directly")]
pub enum AcceptInvitationResponse {
    /// Joined.
    Membership(Membership),
    /// Signed up and signed in.
    SignedUp(super::auth_api::LoginResponse),
}

/// Accepts an invitation: signed in (bearer) as the invited address, or by creating the
/// account with a password (the link proved the address; works under invite-only
/// sign-up).
#[utoipa::path(post, path = "/t/{t}/auth/invitations/accept", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security((), ("bearer" = [])), request_body = AcceptInvitationRequest,
    responses((status = 200, body = AcceptInvitationResponse, description = "The membership"),
              (status = 201, body = AcceptInvitationResponse, description = "A new account's token set (or challenge) with `membership`"),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_invitation_accept(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AcceptInvitationRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let bearer = optional_bearer(&headers);
    let signup = body.password.map(|p| (SecretString::new(p), body.name));
    match state.services.orgs.accept(&tenant, &ctx, &body.token, bearer.as_deref(), signup).await? {
        Accepted::Joined(membership) => Ok(Json(membership).into_response()),
        Accepted::SignedUp(membership, outcome) => {
            let mut response =
                with_field(login_response(&tenant, outcome, body.transport), "membership", membership).await?;
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        }
    }
}

/// Organizations the user may join through their verified email's domain.
#[utoipa::path(get, path = "/t/{t}/auth/organizations/discoverable", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug")), security(("bearer" = [])),
    responses((status = 200, body = DiscoverableList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_discoverable_organizations(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
) -> ApiResult<Json<DiscoverableList>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let data = state.services.orgs.discoverable(&tenant, &token).await?;
    Ok(Json(DiscoverableList { data, next_cursor: None }))
}

/// Organizations open to the user.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoverableList {
    /// By id.
    pub data: Vec<Organization>,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// Joins an organization open to the user's verified email domain.
#[utoipa::path(post, path = "/t/{t}/auth/organizations/{org_id}/join", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), ("org_id" = OrganizationId, Path)), security(("bearer" = [])),
    responses((status = 201, body = Membership), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_org_join(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MyOrgPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
) -> ApiResult<(StatusCode, Json<Membership>)> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    Ok((StatusCode::CREATED, Json(state.services.orgs.join(&tenant, &ctx, &token, &path.org_id).await?)))
}

/// Leaves one of the user's organizations (`409` for its last owner); the sessions
/// scoped to it end at once.
#[utoipa::path(delete, path = "/t/{t}/auth/organizations/{org_id}", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), ("org_id" = OrganizationId, Path)), security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_my_organization(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MyOrgPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.orgs.leave(&tenant, &ctx, &token, &path.org_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

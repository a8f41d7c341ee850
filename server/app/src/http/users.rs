//! `/v1/tenants/{tenant_id}/users`: managing a tenant's users.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx, TenantPath};
use super::pagination::list_response;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::ids::{TenantId, UserId};
use gatehouse_core::page::PageRequest;
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::users::{ImportUser, NewUser, UserPatch};
use gatehouse_core::user::{User, UserFilter, UserProfile, UserStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// User id.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Email address as entered.
    pub email: String,
    /// Whether the address was proven.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// `active` or `disabled`.
    pub status: UserStatus,
    /// Whether the user has a password.
    pub has_password: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Last sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    /// Unique per tenant, when set.
    pub username: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Whether the number was proven by an SMS code (then it can sign the user in).
    pub phone_verified: bool,
    /// Picture URL.
    pub picture: Option<String>,
    /// BCP 47 language tag.
    pub locale: Option<String>,
    /// Metadata the user's apps may read.
    #[schema(value_type = Object)]
    pub public_metadata: serde_json::Value,
    /// Metadata for the tenant's servers only: present in the management API, never in
    /// responses to the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<serde_json::Value>,
}

impl UserResponse {
    /// The user as the user themself may see it (no private metadata).
    pub fn for_end_user(user: User) -> Self {
        Self { private_metadata: None, ..Self::from(user) }
    }
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            username: u.profile.username,
            phone: u.profile.phone,
            phone_verified: u.profile.phone_verified,
            picture: u.profile.picture,
            locale: u.profile.locale,
            public_metadata: u.public_metadata,
            private_metadata: Some(u.private_metadata),
            id: u.id,
            tenant_id: u.tenant_id,
            email: u.email.as_str().to_owned(),
            email_verified: u.email_verified,
            name: u.name,
            status: u.status,
            has_password: u.password_hash.is_some(),
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

list_response!(UserList, UserResponse);

/// Body of `POST …/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Email address (unique per tenant, ignoring case).
    pub email: String,
    /// Initial password, checked against the tenant's policy; omit for passwordless.
    pub password: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Mark the address as verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Unique per tenant: 3-32 lowercase letters, digits, `.`, `_`, `-`.
    pub username: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// `https` picture URL.
    pub picture: Option<String>,
    /// BCP 47 language tag.
    pub locale: Option<String>,
    /// JSON object, at most 8 KiB.
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<serde_json::Value>,
    /// JSON object, at most 8 KiB.
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<serde_json::Value>,
}

/// Body of `PATCH …/users/{user_id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New email (unverified unless `email_verified` says otherwise).
    pub email: Option<String>,
    /// New display name; empty clears it.
    pub name: Option<String>,
    /// Verification flag.
    pub email_verified: Option<bool>,
    /// `active` or `disabled`.
    pub status: Option<UserStatus>,
    /// New password.
    pub password: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Language tag.
    pub locale: Option<String>,
    /// Replaces the public metadata.
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<serde_json::Value>,
    /// Replaces the private metadata.
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<serde_json::Value>,
}

/// Filters and pagination for listing users.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Email starts with this (case-insensitive).
    pub email_prefix: Option<String>,
    /// Only this status.
    pub status: Option<UserStatus>,
    /// Created at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_after: Option<OffsetDateTime>,
    /// Created before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_before: Option<OffsetDateTime>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Path of one user.
#[derive(Debug, Deserialize)]
pub struct UserPath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// User id.
    pub user_id: UserId,
}

/// Creates a user.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/users", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)), request_body = CreateUserRequest,
    responses((status = 201, body = UserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let input = NewUser {
        email: body.email,
        password: body.password.map(SecretString::new),
        name: body.name,
        email_verified: body.email_verified,
        profile: UserProfile {
            username: body.username,
            phone: body.phone,
            picture: body.picture,
            locale: body.locale,
            phone_verified: false,
        },
        public_metadata: body.public_metadata,
        private_metadata: body.private_metadata,
    };
    let user = state.services.users.create(&access, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Lists users, oldest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/users", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), UserQuery),
    responses((status = 200, body = UserList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_users(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(query): ApiQuery<UserQuery>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<UserList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = UserFilter {
        email_prefix: query.email_prefix,
        status: query.status,
        created_after: query.created_after,
        created_before: query.created_before,
    };
    let users = state.services.users.list(&access, &ctx, filter, &page).await?;
    Ok(Json(users.map(UserResponse::from).into()))
}

/// Reads a user.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)),
    responses((status = 200, body = UserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<UserPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<UserResponse>> {
    let access = principal.tenant(&path.tenant_id)?;
    Ok(Json(state.services.users.get(&access, &ctx, &path.user_id).await?.into()))
}

/// Changes a user (email, name, verification, status, password).
#[utoipa::path(patch, path = "/v1/tenants/{tenant_id}/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<UserPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserResponse>> {
    let access = principal.tenant(&path.tenant_id)?;
    let patch = UserPatch {
        email: body.email,
        name: body.name,
        email_verified: body.email_verified,
        status: body.status,
        password: body.password.map(SecretString::new),
        profile: UserProfile {
            username: body.username,
            phone: body.phone,
            picture: body.picture,
            locale: body.locale,
            phone_verified: false,
        },
        public_metadata: body.public_metadata,
        private_metadata: body.private_metadata,
    };
    Ok(Json(state.services.users.update(&access, &ctx, &path.user_id, patch).await?.into()))
}

/// Deletes a user.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_user(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<UserPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.users.delete(&access, &ctx, &path.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One user of an import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportUserRequest {
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the address was verified in the old system.
    #[serde(default)]
    pub email_verified: bool,
    /// The old password hash: a bcrypt string (`$2a$`/`$2b$`/`$2y$`, as Auth0 exports), an
    /// Argon2 or PBKDF2-SHA256 PHC string, or Keycloak's credential object
    /// `{"algorithm": "pbkdf2-sha256", "hashIterations", "salt", "value"}`.
    #[schema(value_type = Option<Object>)]
    pub password_hash: Option<serde_json::Value>,
    /// Username.
    pub username: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Language tag.
    pub locale: Option<String>,
    /// Public metadata.
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<serde_json::Value>,
    /// Private metadata.
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<serde_json::Value>,
}

/// Body of `POST …/users/import`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportUsersRequest {
    /// 1 to 1000 users (within the request size limit); all are imported or none.
    pub users: Vec<ImportUserRequest>,
}

/// Result of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportUsersResponse {
    /// How many users were created.
    pub imported: usize,
}

/// Imports users with their existing password hashes (verified at first sign-in, then
/// replaced by Argon2id). All or none.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/users/import", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)), request_body = ImportUsersRequest,
    responses((status = 201, body = ImportUsersResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_user_import(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<ImportUsersRequest>,
) -> ApiResult<(StatusCode, Json<ImportUsersResponse>)> {
    let access = principal.tenant(&path.tenant_id)?;
    let rows = body
        .users
        .into_iter()
        .map(|u| ImportUser {
            email: u.email,
            name: u.name,
            email_verified: u.email_verified,
            password_hash: u.password_hash,
            profile: UserProfile {
                username: u.username,
                phone: u.phone,
                picture: u.picture,
                locale: u.locale,
                phone_verified: false,
            },
            public_metadata: u.public_metadata,
            private_metadata: u.private_metadata,
        })
        .collect();
    let imported = state.services.users.import(&access, &ctx, rows).await?;
    Ok((StatusCode::CREATED, Json(ImportUsersResponse { imported })))
}

/// A session of a user, as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSessionResponse {
    /// Session id.
    pub id: gatehouse_core::ids::SessionId,
    /// Sign-in time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Absolute end.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// The organization its tokens are scoped to.
    pub org_id: Option<gatehouse_core::ids::OrganizationId>,
    /// IP at sign-in.
    pub ip: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
}

impl From<gatehouse_core::session::Session> for UserSessionResponse {
    fn from(s: gatehouse_core::session::Session) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            amr: s.amr,
            org_id: s.org_id,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

/// A user's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSessionList {
    /// Oldest first.
    pub data: Vec<UserSessionResponse>,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// Lists a user's live sessions.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/users/{user_id}/sessions", tag = "users", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)),
    responses((status = 200, body = UserSessionList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_user_sessions(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<UserPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<UserSessionList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let sessions = state.services.users.sessions(&access, &ctx, &path.user_id).await?;
    Ok(Json(UserSessionList { data: sessions.into_iter().map(Into::into).collect(), next_cursor: None }))
}

//! The end-user auth API under `/t/{t}/auth/…`: sign-up, sign-in, refresh, sign-out, me.

use super::cookies;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Ctx};
use super::users::UserResponse;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::error::ServiceError;
use gatehouse_core::ids::SessionId;
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::auth::{LoginOutcome, SignupOutcome, TokenSet};
use gatehouse_core::tenant::Tenant;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Path of a tenant's auth routes.
#[derive(Debug, Deserialize)]
pub struct TenantSlugPath {
    /// Tenant slug.
    pub t: String,
}

/// How the refresh token travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// In the JSON body (mobile, CLI, server apps).
    #[default]
    Json,
    /// In an `HttpOnly; Secure; SameSite=Strict` cookie (browsers); absent from the body.
    Cookie,
}

/// Body of `POST /t/{t}/auth/signup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Email address.
    pub email: String,
    /// Password, checked against the tenant's policy.
    pub password: String,
    /// Display name.
    pub name: Option<String>,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Body of `POST /t/{t}/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Body of `POST /t/{t}/auth/refresh` and `POST /t/{t}/auth/logout`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last token set; omit to use the `gh_refresh` cookie
    /// (then `X-CSRF-Token` must echo the `gh_csrf` cookie).
    pub refresh_token: Option<String>,
}

/// Tokens for a signed-in client.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSetResponse {
    /// Access JWT (`typ: at+jwt`), sent as `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: u32,
    /// Opaque, single-use refresh token; each refresh returns a new one. Absent with the
    /// cookie transport.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The user.
    pub user: UserResponse,
}

impl From<TokenSet> for TokenSetResponse {
    fn from(t: TokenSet) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            refresh_token: Some(t.refresh_token.expose().to_owned()),
            user: UserResponse::for_end_user(t.user),
        }
    }
}

/// A token set as a response, in the requested transport.
pub(crate) fn token_response(status: StatusCode, tenant: &Tenant, tokens: TokenSet, transport: Transport) -> Response {
    match transport {
        Transport::Json => (status, Json(TokenSetResponse::from(tokens))).into_response(),
        Transport::Cookie => {
            let set_cookies = cookies::issue(tenant, &tokens.refresh_token);
            let body = TokenSetResponse { refresh_token: None, ..TokenSetResponse::from(tokens) };
            let mut response = (status, Json(body)).into_response();
            for value in set_cookies {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
    }
}

/// A JSON response (a token set or a challenge, in its transport, cookies kept) with one
/// more top-level field: the recovery codes of an enrollment, a new passkey, a membership.
pub(crate) async fn with_field(response: Response, key: &str, value: impl Serialize) -> Result<Response, ServiceError> {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.map_err(ServiceError::internal)?;
    let mut json: serde_json::Value = serde_json::from_slice(&bytes).map_err(ServiceError::internal)?;
    json[key] = serde_json::to_value(value).map_err(ServiceError::internal)?;
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok((parts, Json(json)).into_response())
}

/// The second-factor challenge that ends a first factor when one is needed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallengeResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// Single use, five minutes, bound to the user and tenant: trade it at `mfa/verify`
    /// (or, with `enrollment_required`, at `totp/setup` and `totp/enable`).
    pub mfa_token: String,
    /// Factors that can answer (`totp`, `recovery_code`).
    pub factors: Vec<&'static str>,
    /// The tenant requires a second factor and the user has none yet: enroll first.
    pub enrollment_required: bool,
}

/// What a sign-in answers: tokens, or the second-factor challenge. One schema for both,
/// so generated clients get one result type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "documents the two sign-in answers; handlers build each arm's type directly")]
pub enum LoginResponse {
    /// Signed in.
    Tokens(Box<TokenSetResponse>),
    /// A second factor is needed.
    MfaRequired(MfaChallengeResponse),
}

/// A first factor's outcome as a response: tokens in the requested transport, or the
/// challenge (`200` either way, per CONTRACT).
pub(crate) fn login_response(tenant: &Tenant, outcome: LoginOutcome, transport: Transport) -> Response {
    match outcome {
        LoginOutcome::SignedIn(tokens) => token_response(StatusCode::OK, tenant, *tokens, transport),
        LoginOutcome::MfaRequired(challenge) => (
            StatusCode::OK,
            Json(MfaChallengeResponse {
                mfa_required: true,
                mfa_token: challenge.mfa_token.expose().to_owned(),
                factors: challenge.factors,
                enrollment_required: challenge.enrollment_required,
            }),
        )
            .into_response(),
    }
}

/// The refresh token of a refresh or logout: from the body, or from the cookie after the
/// CSRF check.
fn presented_refresh_token(
    body: RefreshRequest,
    headers: &HeaderMap,
    tenant: &Tenant,
) -> ApiResult<(String, Transport)> {
    if let Some(token) = body.refresh_token {
        return Ok((token, Transport::Json));
    }
    let token =
        cookies::read(headers, cookies::REFRESH_COOKIE).ok_or_else(|| ApiError::from(ServiceError::InvalidToken))?;
    cookies::check_csrf(headers, tenant)?;
    Ok((token, Transport::Cookie))
}

/// Sign-up accepted, pending email verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationRequired {
    /// Always `true`.
    pub verification_required: bool,
}

/// What a sign-up answers: tokens (`201`), or a request to verify the email first
/// (`202`). One schema for both statuses, so generated clients get one result type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "documents the two sign-up answers; handlers build each arm's type directly")]
pub enum SignupResponse {
    /// Signed in.
    Tokens(Box<TokenSetResponse>),
    /// Pending email verification.
    VerificationRequired(VerificationRequired),
    /// The tenant requires a second factor: enroll one first.
    MfaRequired(MfaChallengeResponse),
}

/// Creates an account and signs it in (or asks for email verification first).
#[utoipa::path(post, path = "/t/{t}/auth/signup", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = SignupRequest,
    responses((status = 201, body = SignupResponse, description = "Signed in: a token set"),
              (status = 202, body = SignupResponse, description = "`{\"verification_required\": true}`"),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_signup(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let password = SecretString::new(body.password);
    match state.services.auth.signup(&tenant, &ctx, &body.email, &password, body.name).await? {
        SignupOutcome::SignedIn(tokens) => Ok(token_response(StatusCode::CREATED, &tenant, *tokens, body.transport)),
        SignupOutcome::MfaRequired(challenge) => {
            let mut response = login_response(&tenant, LoginOutcome::MfaRequired(challenge), body.transport);
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        }
        SignupOutcome::VerificationRequired => {
            Ok((StatusCode::ACCEPTED, Json(VerificationRequired { verification_required: true })).into_response())
        }
    }
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/t/{t}/auth/login", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse, description = "A token set, or the second-factor challenge"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_login(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let outcome = state.services.auth.login(&tenant, &ctx, &body.email, &SecretString::new(body.password)).await?;
    Ok(login_response(&tenant, outcome, body.transport))
}

/// Trades a refresh token for a new token set (the old refresh token is spent).
#[utoipa::path(post, path = "/t/{t}/auth/refresh", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = RefreshRequest,
    responses((status = 200, body = TokenSetResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_refresh(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let (token, transport) = presented_refresh_token(body, &headers, &tenant)?;
    let tokens = state.services.auth.refresh(&tenant, &ctx, &token).await?;
    Ok(token_response(StatusCode::OK, &tenant, tokens, transport))
}

/// Signs out: ends the session the refresh token belongs to.
#[utoipa::path(post, path = "/t/{t}/auth/logout", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = RefreshRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_logout(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let (token, transport) = presented_refresh_token(body, &headers, &tenant)?;
    state.services.auth.logout(&tenant, &ctx, &token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if transport == Transport::Cookie {
        for value in cookies::clear(&tenant) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(get, path = "/t/{t}/auth/me", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_me(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
) -> ApiResult<Json<UserResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let (user, _claims) = state.services.auth.me(&tenant, &token).await?;
    Ok(Json(UserResponse::for_end_user(user)))
}

/// Body of `PATCH /t/{t}/auth/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// New display name; empty clears it.
    pub name: Option<String>,
    /// `https` picture URL.
    pub picture: Option<String>,
    /// BCP 47 language tag.
    pub locale: Option<String>,
}

/// Body of `POST /t/{t}/auth/password/change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now.
    pub current_password: String,
    /// The new password, checked against the tenant's policy.
    pub new_password: String,
}

/// Changes the signed-in user's profile.
#[utoipa::path(patch, path = "/t/{t}/auth/me", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_me(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<UpdateMeRequest>,
) -> ApiResult<Json<UserResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let profile =
        gatehouse_core::user::UserProfile { picture: body.picture, locale: body.locale, ..Default::default() };
    let user = state.services.auth.update_me(&tenant, &ctx, &token, body.name, profile).await?;
    Ok(Json(UserResponse::for_end_user(user)))
}

/// Changes the signed-in user's password; every other session is signed out.
#[utoipa::path(post, path = "/t/{t}/auth/password/change", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_password_change(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    StepUpToken(step_up): StepUpToken,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let (current, new) = (SecretString::new(body.current_password), SecretString::new(body.new_password));
    state.services.auth.change_password(&tenant, &ctx, &token, &current, &new, step_up.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One of the user's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Session id (the `sid` claim).
    pub id: SessionId,
    /// Sign-in time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Absolute end.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// IP at sign-in.
    pub ip: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session of the calling token.
    pub current: bool,
}

/// The user's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Sessions, oldest first.
    pub data: Vec<SessionResponse>,
    /// Always `null`: all live sessions fit one page.
    pub next_cursor: Option<String>,
}

/// Path of one session.
#[derive(Debug, Deserialize)]
pub struct SessionPath {
    /// Tenant slug.
    pub t: String,
    /// Session id.
    pub session_id: SessionId,
}

/// Lists the signed-in user's live sessions (devices).
#[utoipa::path(get, path = "/t/{t}/auth/sessions", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])),
    responses((status = 200, body = SessionList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_sessions(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
) -> ApiResult<Json<SessionList>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let (sessions, current) = state.services.auth.sessions(&tenant, &token).await?;
    let data = sessions
        .into_iter()
        .map(|s| SessionResponse {
            current: s.id.as_str() == current,
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(SessionList { data, next_cursor: None }))
}

/// Signs out one of the user's sessions.
#[utoipa::path(delete, path = "/t/{t}/auth/sessions/{session_id}", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), ("session_id" = SessionId, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_session(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<SessionPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.auth.revoke_session(&tenant, &ctx, &token, &path.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out everywhere, this session included.
#[utoipa::path(delete, path = "/t/{t}/auth/sessions", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_sessions(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    StepUpToken(step_up): StepUpToken,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.auth.revoke_all_sessions(&tenant, &ctx, &token, step_up.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The optional `X-Step-Up-Token` header of a sensitive action (from `POST step-up`).
#[derive(Debug)]
pub struct StepUpToken(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for StepUpToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, ApiError> {
        let value = parts.headers.get("x-step-up-token").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
        Ok(Self(value.filter(|v| !v.is_empty())))
    }
}

/// An end user's access token from `Authorization: Bearer`; missing → `invalid_token`.
#[derive(Debug)]
pub struct AccessToken(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AccessToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim);
        match token {
            Some(token) if !token.is_empty() => Ok(Self(token.to_owned())),
            _ => Err(ServiceError::InvalidToken.into()),
        }
    }
}

//! `/t/{t}/auth/…` routes that prove or recover what identifies a user: email
//! verification, forgotten password, email change, phone number.

use super::auth_api::{AccessToken, StepUpToken, TenantSlugPath};
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Ctx};
use super::users::UserResponse;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::verification::Proof;
use serde::Deserialize;
use utoipa::ToSchema;

/// The bearer token, if the request carries one.
pub(crate) fn optional_bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Body of `POST /t/{t}/auth/email/verify/send`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendVerificationRequest {
    /// The address to verify; omit when signed in (bearer token).
    pub email: Option<String>,
}

/// Body of `POST /t/{t}/auth/email/verify` and `POST /t/{t}/auth/email/change/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// The token from the link.
    pub token: Option<String>,
    /// Or the 6-digit code from the message.
    pub code: Option<String>,
    /// The address the code was sent to (when not signed in).
    pub email: Option<String>,
}

impl ProofRequest {
    fn into_proof(self) -> ApiResult<Proof> {
        match (self.token, self.code) {
            (Some(token), None) => Ok(Proof::Token(token)),
            (None, Some(code)) => Ok(Proof::Code { email: self.email, code }),
            _ => Err(gatehouse_core::error::ServiceError::invalid("token", "give either token or code").into()),
        }
    }
}

/// (Re)sends the email-verification message.
#[utoipa::path(post, path = "/t/{t}/auth/email/verify/send", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = SendVerificationRequest,
    responses((status = 202, description = "Sent if an unverified account has the address"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_email_verification(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendVerificationRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let bearer = optional_bearer(&headers);
    state
        .services
        .verification
        .send_email_verification(&tenant, &ctx, bearer.as_deref(), body.email.as_deref())
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Verifies the email address by its link token or code.
#[utoipa::path(post, path = "/t/{t}/auth/email/verify", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = ProofRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_email_verify(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProofRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let bearer = optional_bearer(&headers);
    state.services.verification.verify_email(&tenant, &ctx, bearer.as_deref(), body.into_proof()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /t/{t}/auth/password/forgot`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The account's address.
    pub email: String,
}

/// Sends a password-reset link; the same answer whether or not the account exists.
#[utoipa::path(post, path = "/t/{t}/auth/password/forgot", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = ForgotPasswordRequest,
    responses((status = 202), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_password_forgot(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<ForgotPasswordRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.verification.forgot_password(&tenant, &ctx, &body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Body of `POST /t/{t}/auth/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the reset link.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// Sets a new password with a reset token and signs out every session.
#[utoipa::path(post, path = "/t/{t}/auth/password/reset", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = ResetPasswordRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_password_reset(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let password = SecretString::new(body.new_password);
    state.services.verification.reset_password(&tenant, &ctx, &body.token, &password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /t/{t}/auth/email/change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The new address; it must be confirmed before it replaces the old one.
    pub new_email: String,
}

/// Starts an email change: a confirmation goes to the new address.
#[utoipa::path(post, path = "/t/{t}/auth/email/change", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = EmailChangeRequest,
    responses((status = 202), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_email_change(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    StepUpToken(step_up): StepUpToken,
    ApiJson(body): ApiJson<EmailChangeRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state
        .services
        .verification
        .request_email_change(&tenant, &ctx, &token, &body.new_email, step_up.as_deref())
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Confirms an email change by the link token, or by the code while signed in.
#[utoipa::path(post, path = "/t/{t}/auth/email/change/confirm", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = ProofRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_email_change_confirm(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProofRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let bearer = optional_bearer(&headers);
    state.services.verification.confirm_email_change(&tenant, &ctx, bearer.as_deref(), body.into_proof()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /t/{t}/auth/email/change/undo`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the link.
    pub token: String,
}

/// Undoes an email change from the link sent to the old address; signs out everywhere.
#[utoipa::path(post, path = "/t/{t}/auth/email/change/undo", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = TokenRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_email_change_undo(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.verification.undo_email_change(&tenant, &ctx, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /t/{t}/auth/phone/send`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// E.164 number, e.g. `+4930123456`.
    pub phone: String,
}

/// Sends a code by SMS to a number the signed-in user wants to add.
#[utoipa::path(post, path = "/t/{t}/auth/phone/send", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = PhoneRequest,
    responses((status = 202), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_phone_code(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<PhoneRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.verification.send_phone_code(&tenant, &ctx, &token, &body.phone).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Body of `POST /t/{t}/auth/phone/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneVerifyRequest {
    /// The number the code was sent to.
    pub phone: String,
    /// The 6-digit code.
    pub code: String,
}

/// Sets the signed-in user's verified phone number with the code sent to it.
#[utoipa::path(post, path = "/t/{t}/auth/phone/verify", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = PhoneVerifyRequest,
    responses((status = 200, body = UserResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_phone_verify(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<PhoneVerifyRequest>,
) -> ApiResult<Json<UserResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let user = state.services.verification.verify_phone(&tenant, &ctx, &token, &body.phone, &body.code).await?;
    Ok(Json(UserResponse::for_end_user(user)))
}

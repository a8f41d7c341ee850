//! `/t/{t}/auth/…` routes for signing in without a password: magic links and one-time
//! codes by email or SMS.

use super::auth_api::{LoginResponse, TenantSlugPath, Transport, login_response};
use super::cookies;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::error::ServiceError;
use gatehouse_core::messaging::Channel;
use gatehouse_core::services::passwordless::{Address, MagicLinkOutcome};
use gatehouse_core::tenant::Tenant;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The cookie binding a magic link to the browser that asked for it.
pub const BROWSER_COOKIE: &str = "gh_magic";

fn binding_cookie_path(tenant: &Tenant) -> String {
    format!("/t/{}/auth/magic-link", tenant.slug.as_str())
}

/// Body of `POST /t/{t}/auth/magic-link/send`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MagicLinkRequest {
    /// The address to send the link to.
    pub email: String,
    /// Where to return after the link is opened: one of the tenant's `redirect_uris`.
    pub redirect_uri: String,
}

/// Emails a sign-in link; the same answer whether or not an account has the address.
#[utoipa::path(post, path = "/t/{t}/auth/magic-link/send", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = MagicLinkRequest,
    responses((status = 202), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_magic_link(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<MagicLinkRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let binding = state.services.passwordless.send_magic_link(&tenant, &ctx, &body.email, &body.redirect_uri).await?;
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Some(value) = binding {
        let cookie = format!(
            "{BROWSER_COOKIE}={}; Path={}; Max-Age=900; HttpOnly; Secure; SameSite=Lax",
            value.expose(),
            binding_cookie_path(&tenant)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// Query of `GET /t/{t}/auth/magic-link/verify`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MagicLinkQuery {
    /// The token from the link.
    pub token: String,
}

/// Opens a magic link: redirects to the registered URI with a one-time `code` (trade it
/// at `magic-link/exchange`), or answers the token set to `Accept: application/json`.
#[utoipa::path(get, path = "/t/{t}/auth/magic-link/verify", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), MagicLinkQuery),
    responses((status = 302, description = "Redirect to the redirect URI with `code`"),
              (status = 200, body = LoginResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_magic_link_verify(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    ApiQuery(query): ApiQuery<MagicLinkQuery>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let want_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    let browser = cookies::read(&headers, BROWSER_COOKIE);
    let outcome = state
        .services
        .passwordless
        .verify_magic_link(&tenant, &ctx, &query.token, browser.as_deref(), want_json)
        .await?;
    match outcome {
        MagicLinkOutcome::Tokens(outcome) => Ok(login_response(&tenant, *outcome, Transport::Json)),
        MagicLinkOutcome::Redirect(url) => {
            let location = HeaderValue::from_str(&url).map_err(|_| ServiceError::InvalidCode)?;
            Ok((
                StatusCode::FOUND,
                [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            )
                .into_response())
        }
    }
}

/// Body of `POST /t/{t}/auth/magic-link/exchange`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The `code` the magic link redirected with (valid two minutes, once).
    pub code: String,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Trades the one-time code of a magic-link redirect for a token set.
#[utoipa::path(post, path = "/t/{t}/auth/magic-link/exchange", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = ExchangeRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_magic_link_exchange(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<ExchangeRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let outcome = state.services.passwordless.exchange(&tenant, &ctx, &body.code).await?;
    Ok(login_response(&tenant, outcome, body.transport))
}

/// Body of `POST /t/{t}/auth/otp/send`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpSendRequest {
    /// `email` or `sms`.
    pub channel: Channel,
    /// The address (channel `email`).
    pub email: Option<String>,
    /// The verified E.164 number (channel `sms`).
    pub phone: Option<String>,
}

/// Body of `POST /t/{t}/auth/otp/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpVerifyRequest {
    /// `email` or `sms`.
    pub channel: Channel,
    /// The address (channel `email`).
    pub email: Option<String>,
    /// The number (channel `sms`).
    pub phone: Option<String>,
    /// The 6-digit code.
    pub code: String,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

fn address(channel: Channel, email: Option<String>, phone: Option<String>) -> Result<Address, ServiceError> {
    match (channel, email, phone) {
        (Channel::Email, Some(email), None) => Ok(Address::Email(email)),
        (Channel::Sms, None, Some(phone)) => Ok(Address::Phone(phone)),
        (Channel::Email, _, _) => {
            Err(ServiceError::invalid("email", "is required (and phone not allowed) for channel email"))
        }
        (Channel::Sms, _, _) => {
            Err(ServiceError::invalid("phone", "is required (and email not allowed) for channel sms"))
        }
    }
}

/// Sends a 6-digit sign-in code (10 minutes, 5 attempts); the same answer whether or not
/// an account has the address.
#[utoipa::path(post, path = "/t/{t}/auth/otp/send", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = OtpSendRequest,
    responses((status = 202), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_otp(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<OtpSendRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let to = address(body.channel, body.email, body.phone)?;
    state.services.passwordless.send_code(&tenant, &ctx, to).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Signs in with a code from `otp/send`.
#[utoipa::path(post, path = "/t/{t}/auth/otp/verify", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = OtpVerifyRequest,
    responses((status = 200, body = LoginResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_otp_verify(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<OtpVerifyRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let to = address(body.channel, body.email, body.phone)?;
    let outcome = state.services.passwordless.verify_code(&tenant, &ctx, to, &body.code).await?;
    Ok(login_response(&tenant, outcome, body.transport))
}

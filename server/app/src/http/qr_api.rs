//! `/t/{t}/auth/qr/…`: cross-device sign-in by QR code. Device A starts and polls;
//! device B, signed in, inspects, then approves or denies.

use super::auth_api::{AccessToken, LoginResponse, TenantSlugPath, Transport, login_response};
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Ctx};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::services::qr_login::{PollOutcome, QR_TTL};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A started cross-device sign-in, for the device that wants to sign in.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrStartResponse {
    /// Keep it: poll with it at `qr/poll`. Never show it.
    pub poll_token: String,
    /// The code the QR image carries (`qrc_…`).
    pub qr_code: String,
    /// The URL in the QR image (the console's approval page).
    pub qr_url: String,
    /// The QR image as SVG.
    pub qr_svg: String,
    /// Seconds until the request expires.
    pub expires_in: i64,
}

/// Starts a cross-device sign-in: show the QR code, then poll.
#[utoipa::path(post, path = "/t/{t}/auth/qr/start", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    responses((status = 201, body = QrStartResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_qr_start(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
) -> ApiResult<(StatusCode, Json<QrStartResponse>)> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let started = state.services.qr_login.start(&tenant, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(QrStartResponse {
            poll_token: started.poll_token.expose().to_owned(),
            qr_code: started.qr_code.expose().to_owned(),
            qr_url: started.qr_url,
            qr_svg: started.qr_svg,
            expires_in: QR_TTL.whole_seconds(),
        }),
    ))
}

/// Body of `qr/inspect`, `qr/approve` and `qr/deny`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrCodeRequest {
    /// The code from the QR image.
    pub code: String,
}

/// Where a cross-device sign-in request comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrOrigin {
    /// The requesting device's user agent.
    pub user_agent: Option<String>,
    /// Its IP address.
    pub ip: Option<String>,
    /// When it asked.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
}

/// Shows the signed-in device where a request comes from, before it decides.
#[utoipa::path(post, path = "/t/{t}/auth/qr/inspect", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = QrCodeRequest,
    responses((status = 200, body = QrOrigin), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_qr_inspect(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<QrCodeRequest>,
) -> ApiResult<Json<QrOrigin>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let origin = state.services.qr_login.inspect(&tenant, &token, &body.code).await?;
    Ok(Json(QrOrigin { user_agent: origin.user_agent, ip: origin.ip, requested_at: origin.requested_at }))
}

/// Approves the request: the other device gets tokens for this user at its next poll.
#[utoipa::path(post, path = "/t/{t}/auth/qr/approve", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = QrCodeRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_qr_approve(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<QrCodeRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.qr_login.decide(&tenant, &ctx, &token, &body.code, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Denies the request.
#[utoipa::path(post, path = "/t/{t}/auth/qr/deny", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = QrCodeRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_qr_deny(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<QrCodeRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.qr_login.decide(&tenant, &ctx, &token, &body.code, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `qr/poll`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrPollRequest {
    /// From `qr/start`.
    pub poll_token: String,
    /// Wait up to this many seconds for a decision (long polling; at most 25, default 0).
    #[serde(default)]
    pub wait_seconds: u8,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Still waiting for the other device.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrPending {
    /// Always `pending`.
    pub status: &'static str,
}

/// What a poll answers: tokens or a challenge (`200`), or pending (`202`). One schema for
/// both statuses, so generated clients get one result type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "documents the poll answers; the handler builds each arm's type directly")]
pub enum QrPollResponse {
    /// Approved.
    SignedIn(Box<LoginResponse>),
    /// Not decided yet.
    Pending(QrPending),
}

/// Asks how the request stands: `202` pending, `200` tokens once approved (once), `403`
/// denied, `400 invalid_code` expired, used or unknown.
#[utoipa::path(post, path = "/t/{t}/auth/qr/poll", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = QrPollRequest,
    responses((status = 200, body = QrPollResponse, description = "Approved: a token set (or a second-factor challenge)"),
              (status = 202, body = QrPollResponse, description = "`{\"status\": \"pending\"}`"),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_qr_poll(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<QrPollRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let wait = std::time::Duration::from_secs(u64::from(body.wait_seconds));
    match state.services.qr_login.poll(&tenant, &ctx, &body.poll_token, wait).await? {
        PollOutcome::Pending => Ok((StatusCode::ACCEPTED, Json(QrPending { status: "pending" })).into_response()),
        PollOutcome::Approved(outcome) => Ok(login_response(&tenant, *outcome, body.transport)),
    }
}

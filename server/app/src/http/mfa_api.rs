//! `/t/{t}/auth/…` routes for second factors: TOTP set-up, enabling, disabling,
//! recovery codes, and answering a sign-in challenge (`mfa/verify`).

use super::auth_api::{
    AccessToken, StepUpToken, TenantSlugPath, TokenSetResponse, Transport, token_response, with_field,
};
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Ctx};
use super::verification_api::optional_bearer;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::error::ServiceError;
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::mfa::{Caller, Factor, StepUpProof};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /t/{t}/auth/totp/setup` and the `mfa_token` of enrollment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpSetupRequest {
    /// When enrolling from a sign-in challenge (`enrollment_required`): its `mfa_token`.
    /// Otherwise omit it and send the access token as bearer.
    pub mfa_token: Option<String>,
}

/// A new TOTP secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetupResponse {
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://totp/…` URI for authenticator apps.
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

fn caller(headers: &HeaderMap, mfa_token: Option<String>) -> Result<Caller, ServiceError> {
    match (optional_bearer(headers), mfa_token) {
        (_, Some(token)) => Ok(Caller::Challenge(token)),
        (Some(bearer), None) => Ok(Caller::Bearer(bearer)),
        (None, None) => Err(ServiceError::InvalidToken),
    }
}

/// Starts TOTP enrollment: a new secret, its URI and QR code.
#[utoipa::path(post, path = "/t/{t}/auth/totp/setup", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = TotpSetupRequest,
    responses((status = 200, body = TotpSetupResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_totp_setup(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TotpSetupRequest>,
) -> ApiResult<Json<TotpSetupResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let setup = state.services.mfa.setup(&tenant, &ctx, &caller(&headers, body.mfa_token)?).await?;
    Ok(Json(TotpSetupResponse {
        secret: setup.secret.expose().to_owned(),
        otpauth_uri: setup.otpauth_uri.expose().to_owned(),
        qr_svg: setup.qr_svg,
    }))
}

/// Body of `POST /t/{t}/auth/totp/enable`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnableRequest {
    /// A current code from the authenticator.
    pub code: String,
    /// When enrolling from a sign-in challenge: its `mfa_token`.
    pub mfa_token: Option<String>,
    /// Refresh-token transport for the tokens of an enrollment (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use codes; each replaces a TOTP code once.
    pub recovery_codes: Vec<String>,
}

/// Enables TOTP with one valid code; answers ten recovery codes. Enrolling from a sign-in
/// challenge, the answer also carries the token set.
#[utoipa::path(post, path = "/t/{t}/auth/totp/enable", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = TotpEnableRequest,
    responses((status = 200, body = RecoveryCodesResponse, description = "`recovery_codes` (and the token set's fields after an enrollment)"),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_totp_enable(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TotpEnableRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let enabled = state.services.mfa.enable(&tenant, &ctx, &caller(&headers, body.mfa_token)?, &body.code).await?;
    let codes: Vec<String> = enabled.recovery_codes.iter().map(|c| c.expose().to_owned()).collect();
    match enabled.tokens {
        None => Ok(Json(RecoveryCodesResponse { recovery_codes: codes }).into_response()),
        Some(tokens) => {
            // The token set, in its transport, with the codes added to the body.
            let response = token_response(StatusCode::OK, &tenant, *tokens, body.transport);
            Ok(with_field(response, "recovery_codes", codes).await?)
        }
    }
}

/// Body of `POST /t/{t}/auth/totp/disable`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorRequest {
    /// `totp`, `recovery_code` or `passkey`.
    pub factor: FactorKind,
    /// The code (`totp`, `recovery_code`).
    pub code: Option<String>,
    /// The ceremony from `passkeys/login/begin` (`passkey`).
    pub ceremony_id: Option<String>,
    /// The assertion from `navigator.credentials.get()` (`passkey`).
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

/// A second factor's kind.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// A TOTP code.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey assertion.
    Passkey,
}

fn factor(
    kind: FactorKind,
    code: Option<String>,
    ceremony_id: Option<String>,
    credential: Option<serde_json::Value>,
) -> Result<Factor, ServiceError> {
    let code = || code.clone().ok_or_else(|| ServiceError::invalid("code", "is required for this factor"));
    Ok(match kind {
        FactorKind::Totp => Factor::Totp(code()?),
        FactorKind::RecoveryCode => Factor::RecoveryCode(code()?),
        FactorKind::Passkey => Factor::Passkey {
            ceremony_id: ceremony_id.ok_or_else(|| {
                ServiceError::invalid("ceremony_id", "is required for a passkey (passkeys/login/begin)")
            })?,
            credential: credential.ok_or_else(|| ServiceError::invalid("credential", "is required for a passkey"))?,
        },
    })
}

/// Removes TOTP and the recovery codes; needs a fresh factor.
#[utoipa::path(post, path = "/t/{t}/auth/totp/disable", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = FactorRequest,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_totp_disable(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    StepUpToken(step_up): StepUpToken,
    ApiJson(body): ApiJson<FactorRequest>,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let factor = factor(body.factor, body.code, body.ceremony_id, body.credential)?;
    state.services.mfa.disable(&tenant, &ctx, &token, &factor, step_up.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /t/{t}/auth/recovery-codes/regenerate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateRequest {
    /// A current TOTP code.
    pub code: String,
}

/// A new set of recovery codes (the old set stops working); needs a TOTP code.
#[utoipa::path(post, path = "/t/{t}/auth/recovery-codes/regenerate", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = RegenerateRequest,
    responses((status = 200, body = RecoveryCodesResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_recovery_codes(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    StepUpToken(step_up): StepUpToken,
    ApiJson(body): ApiJson<RegenerateRequest>,
) -> ApiResult<Json<RecoveryCodesResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let codes =
        state.services.mfa.regenerate_recovery_codes(&tenant, &ctx, &token, &body.code, step_up.as_deref()).await?;
    Ok(Json(RecoveryCodesResponse { recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect() }))
}

/// The signed-in user's second factors.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatus {
    /// Whether TOTP is enabled.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: u32,
    /// Unused recovery codes left.
    pub recovery_codes_left: u32,
}

/// The signed-in user's second factors.
#[utoipa::path(get, path = "/t/{t}/auth/mfa", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])),
    responses((status = 200, body = MfaStatus), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_mfa(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
) -> ApiResult<Json<MfaStatus>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let (factors, recovery_codes_left) = state.services.mfa.status(&tenant, &token).await?;
    Ok(Json(MfaStatus { totp: factors.totp, passkeys: factors.passkeys, recovery_codes_left }))
}

/// Body of `POST /t/{t}/auth/mfa/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// From the sign-in's challenge.
    pub mfa_token: String,
    /// `totp`, `recovery_code` or `passkey`.
    pub factor: FactorKind,
    /// The code (`totp`, `recovery_code`).
    pub code: Option<String>,
    /// The ceremony from `passkeys/login/begin` with this `mfa_token` (`passkey`).
    pub ceremony_id: Option<String>,
    /// The assertion from `navigator.credentials.get()` (`passkey`).
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Answers a sign-in challenge with a second factor; answers the token set.
#[utoipa::path(post, path = "/t/{t}/auth/mfa/verify", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    request_body = MfaVerifyRequest,
    responses((status = 200, body = TokenSetResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_mfa_verify(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<MfaVerifyRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let factor = factor(body.factor, body.code, body.ceremony_id, body.credential)?;
    let tokens = state.services.mfa.verify(&tenant, &ctx, &body.mfa_token, &factor).await?;
    Ok(token_response(StatusCode::OK, &tenant, tokens, body.transport))
}

/// Body of `POST /t/{t}/auth/step-up`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpRequest {
    /// `password`, `totp`, `recovery_code` or `passkey` (with a second factor, not `password`).
    pub factor: StepUpFactor,
    /// The password or code.
    pub code: Option<String>,
    /// The ceremony from `passkeys/login/begin` with the bearer (`passkey`).
    pub ceremony_id: Option<String>,
    /// The assertion from `navigator.credentials.get()` (`passkey`).
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

/// What proves the user again.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepUpFactor {
    /// The account's password.
    Password,
    /// A TOTP code.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey assertion.
    Passkey,
}

/// A step-up token.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepUpResponse {
    /// Send as `X-Step-Up-Token` with one sensitive action of this session.
    pub step_up_token: String,
    /// Seconds it stays valid.
    pub expires_in: u32,
}

/// Proves a factor again: a token for one sensitive action (disable TOTP, regenerate
/// recovery codes, change email or password, sign out everywhere) of this session, once
/// its sign-in is older than five minutes.
#[utoipa::path(post, path = "/t/{t}/auth/step-up", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])), request_body = StepUpRequest,
    responses((status = 200, body = StepUpResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_step_up(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<StepUpRequest>,
) -> ApiResult<Json<StepUpResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let kind = match body.factor {
        StepUpFactor::Password => None,
        StepUpFactor::Totp => Some(FactorKind::Totp),
        StepUpFactor::RecoveryCode => Some(FactorKind::RecoveryCode),
        StepUpFactor::Passkey => Some(FactorKind::Passkey),
    };
    let proof = match kind {
        None => StepUpProof::Password(SecretString::new(
            body.code.ok_or_else(|| ServiceError::invalid("code", "is required: the password"))?,
        )),
        Some(kind) => StepUpProof::Factor(factor(kind, body.code, body.ceremony_id, body.credential)?),
    };
    let step_up = state.services.mfa.step_up(&tenant, &ctx, &token, proof).await?;
    Ok(Json(StepUpResponse { step_up_token: step_up.expose().to_owned(), expires_in: 300 }))
}

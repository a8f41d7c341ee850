//! `/t/{t}/auth/passkeys/…` routes: WebAuthn registration and sign-in ceremonies, and
//! the signed-in user's passkeys (list, rename, delete).

use super::auth_api::{
    AccessToken, LoginResponse, StepUpToken, TenantSlugPath, Transport, VerificationRequired, login_response,
    token_response, with_field,
};
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Ctx};
use super::verification_api::optional_bearer;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use gatehouse_core::ids::{PasskeyId, UserId};
use gatehouse_core::passkey::Passkey;
use gatehouse_core::services::mfa::{PasskeyCaller, PasskeyRegistration};
use gatehouse_core::services::passkeys::Ceremony;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Body of `passkeys/register/begin` and `passkeys/login/begin`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyBeginRequest {
    /// Registration: the email of a new passwordless account (no bearer). Sign-in: the
    /// account to sign in to (email-first); omit it for a discoverable credential.
    pub email: Option<String>,
    /// Registration at sign-up: the new account's display name.
    pub name: Option<String>,
    /// Registration: the `mfa_token` of a challenge that requires enrollment. Sign-in:
    /// the `mfa_token` of a challenge to answer with a passkey (then `mfa/verify`).
    pub mfa_token: Option<String>,
}

/// Options for `navigator.credentials.create()` or `.get()`, and the ceremony to finish.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyOptionsResponse {
    /// Single use, five minutes: send it back with the credential.
    pub ceremony_id: String,
    /// The WebAuthn options (`PublicKeyCredentialCreationOptions` or
    /// `PublicKeyCredentialRequestOptions`, binary fields base64url).
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

impl From<Ceremony> for PasskeyOptionsResponse {
    fn from(c: Ceremony) -> Self {
        Self { ceremony_id: c.ceremony_id, public_key: c.options["publicKey"].clone() }
    }
}

fn caller(headers: &HeaderMap, body: PasskeyBeginRequest) -> PasskeyCaller {
    match (optional_bearer(headers), body.mfa_token) {
        (_, Some(token)) => PasskeyCaller::Challenge(token),
        (Some(bearer), None) => PasskeyCaller::Bearer(bearer),
        (None, None) => PasskeyCaller::Anonymous { email: body.email, name: body.name },
    }
}

/// A passkey of the signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyResponse {
    /// Id.
    pub id: PasskeyId,
    /// Owner.
    pub user_id: UserId,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// The user's name for it.
    pub name: String,
    /// The authenticator model, when its attestation named it.
    pub aaguid: Option<String>,
    /// Attestation format presented at registration.
    pub attestation_format: String,
    /// Whether it may be synced between devices.
    pub backup_eligible: bool,
    /// Whether it is synced.
    pub backup_state: bool,
    /// Highest signature counter seen.
    pub sign_count: u32,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last sign-in with it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<Passkey> for PasskeyResponse {
    fn from(p: Passkey) -> Self {
        Self {
            id: p.id,
            user_id: p.user_id,
            credential_id: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&p.credential_id),
            name: p.name,
            aaguid: p.aaguid,
            attestation_format: p.attestation_format,
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
            sign_count: p.sign_count,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// Starts a passkey registration: for the signed-in user (bearer), a user enrolling from
/// a challenge (`mfa_token`), or a new passwordless account (`email`).
#[utoipa::path(post, path = "/t/{t}/auth/passkeys/register/begin", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug")),
    security((), ("bearer" = [])), request_body = PasskeyBeginRequest,
    responses((status = 200, body = PasskeyOptionsResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_passkey_register_begin(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasskeyBeginRequest>,
) -> ApiResult<Json<PasskeyOptionsResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let ceremony = state.services.mfa.passkey_register_begin(&tenant, &ctx, caller(&headers, body)).await?;
    Ok(Json(ceremony.into()))
}

/// Body of `passkeys/register/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterFinishRequest {
    /// From `register/begin`.
    pub ceremony_id: String,
    /// What `navigator.credentials.create()` returned (`PublicKeyCredential.toJSON()`).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// A name for the passkey (default "Passkey").
    pub name: Option<String>,
    /// The `mfa_token` the registration began with, when enrolling from a challenge.
    pub mfa_token: Option<String>,
    /// Refresh-token transport of a sign-in (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// What a registration answers: the passkey (`201`); after a sign-up or an enrollment
/// the token set with a `passkey` field added (`201`), the challenge (`201`) or
/// `{"verification_required": true}` (`202`). One schema for all.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "documents the registration answers; the handler builds each arm's type directly")]
pub enum PasskeyRegisterResponse {
    /// Stored.
    Passkey(Box<PasskeyResponse>),
    /// Signed in, or a challenge, or pending verification.
    SignIn(LoginResponse),
    /// Pending email verification.
    VerificationRequired(VerificationRequired),
}

/// Finishes a passkey registration begun by the same caller.
#[utoipa::path(post, path = "/t/{t}/auth/passkeys/register/finish", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug")),
    security((), ("bearer" = [])), request_body = PasskeyRegisterFinishRequest,
    responses((status = 201, body = PasskeyRegisterResponse, description = "The passkey, or after a sign-up or enrollment the token set (with `passkey`) or a challenge"),
              (status = 202, body = PasskeyRegisterResponse, description = "`{\"verification_required\": true}`"),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_passkey_register_finish(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasskeyRegisterFinishRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let who = caller(&headers, PasskeyBeginRequest { mfa_token: body.mfa_token, ..Default::default() });
    let registration = state
        .services
        .mfa
        .passkey_register_finish(&tenant, &ctx, who, &body.ceremony_id, body.credential, body.name)
        .await?;
    match registration {
        PasskeyRegistration::Stored(passkey) => {
            Ok((StatusCode::CREATED, Json(PasskeyResponse::from(passkey))).into_response())
        }
        PasskeyRegistration::SignedIn(passkey, tokens) => {
            let response = token_response(StatusCode::CREATED, &tenant, *tokens, body.transport);
            Ok(with_field(response, "passkey", PasskeyResponse::from(passkey)).await?)
        }
        PasskeyRegistration::MfaRequired(_, challenge) => {
            let outcome = gatehouse_core::services::auth::LoginOutcome::MfaRequired(challenge);
            let mut response = login_response(&tenant, outcome, body.transport);
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        }
        PasskeyRegistration::VerificationRequired(_) => {
            Ok((StatusCode::ACCEPTED, Json(VerificationRequired { verification_required: true })).into_response())
        }
    }
}

/// Starts a passkey assertion: a sign-in (no bearer; `email` for email-first, none for a
/// discoverable credential), a second factor for a challenge (`mfa_token`, then
/// `mfa/verify` with `factor: passkey`), or a step-up (bearer, then `step-up`).
#[utoipa::path(post, path = "/t/{t}/auth/passkeys/login/begin", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug")),
    security((), ("bearer" = [])), request_body = PasskeyBeginRequest,
    responses((status = 200, body = PasskeyOptionsResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_passkey_login_begin(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasskeyBeginRequest>,
) -> ApiResult<Json<PasskeyOptionsResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let ceremony = state.services.mfa.passkey_assertion_begin(&tenant, &ctx, caller(&headers, body)).await?;
    Ok(Json(ceremony.into()))
}

/// Body of `passkeys/login/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginFinishRequest {
    /// From `login/begin`.
    pub ceremony_id: String,
    /// What `navigator.credentials.get()` returned (`PublicKeyCredential.toJSON()`).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// Refresh-token transport (default `json`).
    #[serde(default)]
    pub transport: Transport,
}

/// Signs in with a passkey: the token set, or a second-factor challenge when the
/// authenticator did not verify the user and the account or tenant asks for more.
#[utoipa::path(post, path = "/t/{t}/auth/passkeys/login/finish", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug")),
    request_body = PasskeyLoginFinishRequest,
    responses((status = 200, body = LoginResponse, description = "A token set, or the second-factor challenge"),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_passkey_login_finish(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<PasskeyLoginFinishRequest>,
) -> ApiResult<Response> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let outcome = state.services.passkeys.sign_in(&tenant, &ctx, &body.ceremony_id, body.credential).await?;
    Ok(login_response(&tenant, outcome, body.transport))
}

/// The signed-in user's passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyList {
    /// Passkeys, oldest first.
    pub data: Vec<PasskeyResponse>,
    /// Always `null`: a user's passkeys fit one page.
    pub next_cursor: Option<String>,
}

/// Lists the signed-in user's passkeys.
#[utoipa::path(get, path = "/t/{t}/auth/passkeys", tag = "auth", params(("t" = String, Path, description = "Tenant slug")),
    security(("bearer" = [])),
    responses((status = 200, body = PasskeyList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
    AccessToken(token): AccessToken,
) -> ApiResult<Json<PasskeyList>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let passkeys = state.services.passkeys.list(&tenant, &token).await?;
    Ok(Json(PasskeyList { data: passkeys.into_iter().map(Into::into).collect(), next_cursor: None }))
}

/// Path of one passkey.
#[derive(Debug, Deserialize)]
pub struct PasskeyPath {
    /// Tenant slug.
    pub t: String,
    /// Passkey id.
    pub passkey_id: PasskeyId,
}

/// Body of `PATCH passkeys/{passkey_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRenameRequest {
    /// The new name (1 to 100 characters).
    pub name: String,
}

/// Renames one of the signed-in user's passkeys.
#[utoipa::path(patch, path = "/t/{t}/auth/passkeys/{passkey_id}", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), ("passkey_id" = PasskeyId, Path)),
    security(("bearer" = [])), request_body = PasskeyRenameRequest,
    responses((status = 200, body = PasskeyResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_passkey(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PasskeyPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    ApiJson(body): ApiJson<PasskeyRenameRequest>,
) -> ApiResult<Json<PasskeyResponse>> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let passkey = state.services.passkeys.rename(&tenant, &ctx, &token, &path.passkey_id, &body.name).await?;
    Ok(Json(passkey.into()))
}

/// Deletes one of the signed-in user's passkeys: a sensitive action (a sign-in within
/// five minutes, or `X-Step-Up-Token`).
#[utoipa::path(delete, path = "/t/{t}/auth/passkeys/{passkey_id}", tag = "auth",
    params(("t" = String, Path, description = "Tenant slug"), ("passkey_id" = PasskeyId, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_passkey(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PasskeyPath>,
    Ctx(ctx): Ctx,
    AccessToken(token): AccessToken,
    StepUpToken(step_up): StepUpToken,
) -> ApiResult<StatusCode> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    state.services.passkeys.delete(&tenant, &ctx, &token, &path.passkey_id, step_up.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/v1/operators` (operator accounts, managed by operator owners) and
//! `/v1/operator-sessions` (an operator signs in with a password and TOTP).

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use super::pagination::{ListQuery, list_response};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::access::OperatorRole;
use gatehouse_core::ids::{OperatorId, TenantId};
use gatehouse_core::operator::Operator;
use gatehouse_core::secret::SecretString;
use gatehouse_core::services::operators::{NewOperator, OperatorPatch, SignInStep};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An operator account.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorResponse {
    /// Id.
    pub id: OperatorId,
    /// Sign-in address.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Role.
    pub role: OperatorRole,
    /// Reachable tenants; `null`: all.
    pub tenant_ids: Option<Vec<TenantId>>,
    /// Whether TOTP is enrolled (it is at the first sign-in).
    pub totp_enrolled: bool,
    /// Disabled operators cannot sign in.
    pub disabled: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
}

impl From<Operator> for OperatorResponse {
    fn from(o: Operator) -> Self {
        Self {
            id: o.id,
            email: o.email.as_str().to_owned(),
            name: o.name,
            role: o.role,
            tenant_ids: o.tenant_ids,
            totp_enrolled: o.totp_sealed.is_some(),
            disabled: o.disabled,
            created_at: o.created_at,
            last_login_at: o.last_login_at,
        }
    }
}

list_response!(OperatorList, OperatorResponse);

/// Body of `POST /v1/operators`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    /// Sign-in address.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Initial password (12 characters or more).
    pub password: String,
    /// Role.
    pub role: OperatorRole,
    /// Reachable tenants; omit for all.
    pub tenant_ids: Option<Vec<TenantId>>,
}

/// Creates an operator account (operator owners only).
#[utoipa::path(post, path = "/v1/operators", tag = "operators", security(("bearer" = [])), request_body = CreateOperatorRequest,
    responses((status = 201, body = OperatorResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_operator(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateOperatorRequest>,
) -> ApiResult<(StatusCode, Json<OperatorResponse>)> {
    let op = principal.operator()?;
    let input = NewOperator {
        email: body.email,
        name: body.name,
        password: SecretString::new(body.password),
        role: body.role,
        tenant_ids: body.tenant_ids,
    };
    Ok((StatusCode::CREATED, Json(state.services.operators.create(&op, &ctx, input).await?.into())))
}

/// Lists operator accounts.
#[utoipa::path(get, path = "/v1/operators", tag = "operators", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = OperatorList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_operators(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
) -> ApiResult<Json<OperatorList>> {
    let op = principal.operator()?;
    Ok(Json(state.services.operators.list(&op, &query.page()?).await?.map(OperatorResponse::from).into()))
}

/// Path of one operator.
#[derive(Debug, Deserialize)]
pub struct OperatorPath {
    /// Operator id.
    pub operator_id: OperatorId,
}

/// Body of `PATCH /v1/operators/{operator_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOperatorRequest {
    /// New role.
    pub role: Option<OperatorRole>,
    /// New scope; `null` for all tenants (omit to keep).
    #[serde(default, with = "serde_with_double_option")]
    pub tenant_ids: Option<Option<Vec<TenantId>>>,
    /// Disable (ends every session) or enable.
    pub disabled: Option<bool>,
}

mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};
    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Ok(Some(Option::<T>::deserialize(d)?))
    }
}

/// Changes an operator's role, scope or status.
#[utoipa::path(patch, path = "/v1/operators/{operator_id}", tag = "operators", security(("bearer" = [])),
    params(("operator_id" = OperatorId, Path)), request_body = UpdateOperatorRequest,
    responses((status = 200, body = OperatorResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_operator(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OperatorPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<UpdateOperatorRequest>,
) -> ApiResult<Json<OperatorResponse>> {
    let op = principal.operator()?;
    let patch = OperatorPatch { role: body.role, tenant_ids: body.tenant_ids, disabled: body.disabled };
    Ok(Json(state.services.operators.update(&op, &ctx, &path.operator_id, patch).await?.into()))
}

/// Deletes an operator account.
#[utoipa::path(delete, path = "/v1/operators/{operator_id}", tag = "operators", security(("bearer" = [])),
    params(("operator_id" = OperatorId, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_operator(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<OperatorPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let op = principal.operator()?;
    state.services.operators.delete(&op, &ctx, &path.operator_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/operator-sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorSignInRequest {
    /// Sign-in address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// The second step of an operator sign-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorChallenge {
    /// Single use, five minutes: send it with a TOTP code to `operator-sessions/verify`.
    pub challenge: String,
    /// `true` at the first sign-in: add `secret` to an authenticator app first.
    pub totp_setup_required: bool,
    /// The new TOTP secret (set-up only).
    pub secret: Option<String>,
    /// Its `otpauth://` URI (set-up only).
    pub otpauth_uri: Option<String>,
}

/// First step of an operator sign-in: the password. A TOTP code always follows.
#[utoipa::path(post, path = "/v1/operator-sessions", tag = "operators", request_body = OperatorSignInRequest,
    responses((status = 200, body = OperatorChallenge), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_operator_session(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<OperatorSignInRequest>,
) -> ApiResult<Json<OperatorChallenge>> {
    let step = state.services.operators.sign_in(&ctx, &body.email, &SecretString::new(body.password)).await?;
    Ok(Json(match step {
        SignInStep::TotpRequired { challenge } => OperatorChallenge {
            challenge: challenge.expose().to_owned(),
            totp_setup_required: false,
            secret: None,
            otpauth_uri: None,
        },
        SignInStep::TotpSetup { challenge, secret, otpauth_uri } => OperatorChallenge {
            challenge: challenge.expose().to_owned(),
            totp_setup_required: true,
            secret: Some(secret.expose().to_owned()),
            otpauth_uri: Some(otpauth_uri.expose().to_owned()),
        },
    }))
}

/// Body of `POST /v1/operator-sessions/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorVerifyRequest {
    /// From the first step.
    pub challenge: String,
    /// A current TOTP code.
    pub code: String,
}

/// An operator session.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorSessionResponse {
    /// Bearer token for the management API and the console (`gh_ops_…`).
    pub token: String,
    /// When it ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Second step: a TOTP code; answers the session token.
#[utoipa::path(post, path = "/v1/operator-sessions/verify", tag = "operators", request_body = OperatorVerifyRequest,
    responses((status = 201, body = OperatorSessionResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_operator_session_verify(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<OperatorVerifyRequest>,
) -> ApiResult<(StatusCode, Json<OperatorSessionResponse>)> {
    let (token, expires_at) = state.services.operators.verify(&ctx, &body.challenge, &body.code).await?;
    Ok((StatusCode::CREATED, Json(OperatorSessionResponse { token: token.expose().to_owned(), expires_at })))
}

/// Signs the calling operator out.
#[utoipa::path(delete, path = "/v1/operator-sessions/current", tag = "operators", security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_operator_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    state.services.operators.sign_out(&principal, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

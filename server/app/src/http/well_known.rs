//! Standards endpoints of a tenant: JWKS and OpenID discovery.

use super::auth_api::TenantSlugPath;
use super::error::{ApiResult, Problem};
use super::extract::ApiPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use gatehouse_core::signing::alg_name;

/// How long relying parties may cache the JWKS. Short enough that a rotation (whose
/// next key is published a full rotation ahead) is seen in time.
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// The tenant's public signing keys (RFC 7517).
#[utoipa::path(get, path = "/t/{t}/.well-known/jwks.json", tag = "standards",
    params(("t" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_jwks(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
) -> ApiResult<impl IntoResponse> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let jwks = state.services.keys.jwks(&tenant).await?;
    Ok(([(header::CACHE_CONTROL, JWKS_MAX_AGE)], Json(jwks)))
}

/// OpenID Provider metadata, listing what the tenant offers so far.
#[utoipa::path(get, path = "/t/{t}/.well-known/openid-configuration", tag = "standards",
    params(("t" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_openid_configuration(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantSlugPath>,
) -> ApiResult<impl IntoResponse> {
    let tenant = state.services.auth.tenant(&path.t).await?;
    let issuer = state.services.auth.issuer(&tenant);
    let doc = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [alg_name(tenant.settings.signing_alg)],
        "response_types_supported": [],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tid", "sid", "scope", "amr", "auth_time"],
        "scopes_supported": ["openid", "profile", "email"],
    });
    Ok(([(header::CACHE_CONTROL, JWKS_MAX_AGE)], Json(doc)))
}

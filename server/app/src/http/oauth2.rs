//! OAuth 2.0 endpoints of a tenant. For now, token introspection (RFC 7662) for resource
//! servers that must see a revoked session or a disabled user at once. Errors use the
//! RFC 6749 shape, as the standard requires, not problem+json.

use super::auth::Auth;
use super::auth_api::TenantSlugPath;
use super::error::ApiError;
use super::extract::ApiPath;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::error::ServiceError;
use serde_json::{Value, json};

/// The form fields of an introspection request.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the form body; the handler reads it with form_urlencoded")]
pub struct IntrospectionRequest {
    /// The access token to check.
    token: String,
    /// `access_token` (the only kind introspected so far).
    token_type_hint: Option<String>,
}

/// RFC 7662 token introspection, authenticated by a secret key of the tenant (`sk_…`)
/// or an operator token with access to it. Answers `{"active": false}` for any token
/// that is not a live access token of this tenant (bad signature, expired, revoked
/// session, disabled user); otherwise `active: true` with the token's claims.
#[utoipa::path(post, path = "/t/{t}/oauth2/introspect", tag = "standards",
    params(("t" = String, Path, description = "Tenant slug")),
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object, description = "RFC 7662 introspection response"),
        (status = 400, body = Object, description = "`{\"error\": \"invalid_request\"}`"),
        (status = 401, body = Object, description = "`{\"error\": \"invalid_client\"}`")))]
pub async fn create_introspection(
    State(state): State<AppState>,
    path: Result<ApiPath<TenantSlugPath>, ApiError>,
    caller: Result<Auth, ApiError>,
    body: Bytes,
) -> Response {
    let Ok(ApiPath(path)) = path else { return oauth_error(StatusCode::NOT_FOUND, "invalid_request") };
    let Ok(Auth(principal)) = caller else { return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client") };
    let tenant = match state.services.auth.tenant(&path.t).await {
        Ok(tenant) => tenant,
        Err(ServiceError::NotFound { .. }) => return oauth_error(StatusCode::NOT_FOUND, "invalid_request"),
        Err(_) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
    };
    // A secret key of another tenant (or a scoped operator token) may not look inside
    // this tenant's tokens.
    if principal.tenant(&tenant.id).is_err() {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let token = url::form_urlencoded::parse(&body).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let answer = match state.services.auth.me(&tenant, &token).await {
        Ok((user, claims)) => {
            let mut answer = serde_json::to_value(&claims).unwrap_or_else(|_| json!({}));
            if let Value::Object(fields) = &mut answer {
                fields.insert("active".into(), Value::Bool(true));
                fields.insert("token_type".into(), json!("Bearer"));
                fields.insert("username".into(), json!(user.email.normalized()));
            }
            answer
        }
        Err(ServiceError::InvalidToken) => json!({ "active": false }),
        Err(_) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": error }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = header::HeaderValue::from_static("Bearer error=\"invalid_client\"");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

//! CORS for the tenant planes (`/t/{slug}/…`): an origin is allowed when the tenant
//! lists it in `settings.allowed_origins`. The management API (`/v1`) is for servers
//! and sends no CORS headers, so browsers cannot call it cross-origin.

use super::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gatehouse_core::tenant::TenantSlug;

const ALLOWED_METHODS: &str = "GET, POST, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id, x-csrf-token";
const PREFLIGHT_MAX_AGE: &str = "600";

fn tenant_slug(path: &str) -> Option<TenantSlug> {
    let rest = path.strip_prefix("/t/")?;
    let slug = rest.split('/').next()?;
    TenantSlug::parse(slug).ok()
}

/// Answers preflights and decorates responses for allowed origins.
pub async fn tenant_cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let (Some(origin), Some(slug)) = (origin, tenant_slug(request.uri().path())) else {
        return next.run(request).await;
    };
    let allowed = match state.services.auth.tenant(slug.as_str()).await {
        Ok(tenant) => origin.to_str().is_ok_and(|o| tenant.settings.allowed_origins.iter().any(|a| a == o)),
        Err(_) => false,
    };
    let is_preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if is_preflight {
        if !allowed {
            return ApiError::new(ErrorCode::Forbidden, "this origin is not allowed for this tenant").into_response();
        }
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-request-id, retry-after"));
        if is_preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
        }
    }
    response
}

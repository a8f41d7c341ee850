//! Operational endpoints: liveness, readiness, metrics.

use super::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = HealthResponse)))]
pub async fn get_health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// The database and the ephemeral store answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = HealthResponse),
    (status = 503, body = super::error::Problem, content_type = "application/problem+json"),
))]
pub async fn get_readiness(State(state): State<AppState>) -> ApiResult<Json<HealthResponse>> {
    let unavailable = |what: &str, cause: String| {
        ApiError::from(gatehouse_core::error::ServiceError::Unavailable(format!("{what}: {cause}")))
    };
    state.store.ping().await.map_err(|e| unavailable("database", e.to_string()))?;
    state.ephemeral.ping().await.map_err(|e| unavailable("ephemeral store", e.to_string()))?;
    Ok(Json(HealthResponse { status: "ok" }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(state.store.pool_stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// Fallback for known routes with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
}

//! The management-API authentication extractor, with a per-IP limit on failed attempts.

use super::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use gatehouse_core::access::Principal;
use gatehouse_core::error::ServiceError;
use std::time::Duration;

/// Failed attempts one IP may make per window before it is refused outright.
pub const MAX_FAILURES_PER_WINDOW: u64 = 20;
/// The failure-counting window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = super::extract::client_ip(parts, &state.config.trusted_proxies)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let failures = format!("rl:mgmt-auth-fail:{ip}");
        let blocked = format!("{failures}:blocked");
        let unavailable =
            |e: gatehouse_core::ephemeral::EphemeralError| ApiError::from(ServiceError::Unavailable(e.to_string()));
        if state.ephemeral.cache_get(&blocked).await.map_err(unavailable)?.is_some() {
            return Err(too_many(FAILURE_WINDOW));
        }
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let result = match bearer {
            Some(token) if !token.is_empty() => state.services.authenticator.authenticate(token).await,
            _ => Err(ServiceError::Unauthenticated),
        };
        match result {
            Ok(principal) => Ok(Auth(principal)),
            Err(ServiceError::Unauthenticated) => {
                let count = state.ephemeral.increment(&failures, FAILURE_WINDOW).await.map_err(unavailable)?;
                if count.hits >= MAX_FAILURES_PER_WINDOW {
                    state
                        .ephemeral
                        .cache_set(&blocked, b"1", count.resets_in.max(Duration::from_secs(1)))
                        .await
                        .map_err(unavailable)?;
                }
                Err(ServiceError::Unauthenticated.into())
            }
            Err(other) => Err(other.into()),
        }
    }
}

fn too_many(window: Duration) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, "too many failed authentication attempts from this address")
        .with_retry_after(window.as_secs())
}

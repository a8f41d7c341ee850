//! Extractors whose rejections are problem+json like every other error.

use super::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use gatehouse_core::audit::RequestContext;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            ApiError::new(ErrorCode::ValidationFailed, data_error_detail(&e.body_text()))
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::new(ErrorCode::MalformedJson, "the body is not valid JSON"),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(ErrorCode::UnsupportedMediaType, "send Content-Type: application/json")
        }
        JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::PayloadTooLarge, "the body exceeds the size limit")
        }
        other => ApiError::new(ErrorCode::MalformedJson, format!("the body could not be read: {}", other.body_text())),
    }
}

/// serde's message without axum's "Failed to deserialize the JSON body into the target
/// type: " preamble; it names the field and what was expected, never our internals.
fn data_error_detail(text: &str) -> String {
    text.split_once(": ").map(|(_, rest)| rest).unwrap_or(text).to_owned()
}

/// Typed path parameters.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::new(ErrorCode::InvalidPath, e.body_text().replace("Invalid URL: ", "")))
            }
            Err(other) => Err(ApiError::new(ErrorCode::InvalidPath, other.body_text())),
        }
    }
}

/// Typed query parameters; unknown parameters are refused.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::new(ErrorCode::InvalidQuery, data_error_detail(&e.body_text())))
            }
            Err(other) => Err(ApiError::new(ErrorCode::InvalidQuery, other.body_text())),
        }
    }
}

/// The client's IP: the peer address, unless the peer is a configured trusted proxy, in
/// which case the nearest address in `X-Forwarded-For` that is not itself a trusted
/// proxy. Without trusted proxies the header is ignored, so it cannot be spoofed to
/// dodge per-IP limits or forge audit records.
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { return Some(peer) };
        if !trusted.iter().any(|net| net.contains(&ip)) {
            return Some(ip);
        }
    }
    Some(peer)
}

/// The path of every `/v1/tenants/{tenant_id}/…` route.
#[derive(Debug, serde::Deserialize)]
pub struct TenantPath {
    /// Tenant id.
    pub tenant_id: gatehouse_core::ids::TenantId,
}

/// The request id assigned by the middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest user agent kept in audit events.
const MAX_USER_AGENT: usize = 256;

/// Where the request came from, for audit events.
#[derive(Debug, Clone)]
pub struct Ctx(pub RequestContext);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts, &state.config.trusted_proxies).map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let accept_language = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(MAX_USER_AGENT).collect());
        Ok(Self(RequestContext { ip, user_agent, request_id, accept_language }))
    }
}

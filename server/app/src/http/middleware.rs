//! Cross-cutting HTTP behaviour: request ids, one log line per request (errors logged
//! once, here), metrics, and security headers.

use super::error::ErrorReport;
use super::extract::RequestId;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The request-id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The matched route template, carried from the router to the outer middleware.
#[derive(Debug, Clone)]
struct Route(String);

/// Inner layer (runs after routing): records which route matched.
pub async fn mark_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Accepts a caller's request id if it is short and plain, otherwise makes one.
fn request_id(request: &Request) -> String {
    let given = request.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if (1..=128).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) =>
        {
            id.to_owned()
        }
        _ => format!("req_{}", ulid_text()),
    }
}

fn ulid_text() -> String {
    gatehouse_core::ids::EventId::generate().as_str().trim_start_matches("evt_").to_owned()
}

/// Outer layer: request id in and out, a span and a log line per request, metrics,
/// security headers.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let span = tracing::info_span!("request", request.id = %id, http.method = %method);
    let mut response = next.run(request).instrument(span.clone()).await;

    let route = response.extensions().get::<Route>().map_or("unmatched", |r| r.0.as_str()).to_owned();
    let status = response.status();
    let elapsed = started.elapsed();
    state.metrics.observe(method.as_str(), &route, status.as_u16(), elapsed.as_secs_f64());
    let _entered = span.enter();
    let millis = elapsed.as_secs_f64() * 1000.0;
    match response.extensions().get::<ErrorReport>() {
        Some(report) if status.is_server_error() => tracing::error!(
            http.route = %route, http.status = status.as_u16(), latency_ms = millis, error.code = report.code,
            error.cause = report.internal.as_deref().unwrap_or(""), "request failed"
        ),
        Some(report) => tracing::info!(
            http.route = %route, http.status = status.as_u16(), latency_ms = millis, error.code = report.code,
            "request refused"
        ),
        None => {
            tracing::info!(http.route = %route, http.status = status.as_u16(), latency_ms = millis, "request")
        }
    }

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.public_url.scheme() == "https" {
        headers
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    response
}

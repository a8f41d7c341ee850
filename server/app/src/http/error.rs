//! The one HTTP error type: RFC 9457 problem+json with a stable machine `code`. Every
//! failure (service errors, extractor rejections, unknown routes) goes through it. The
//! internal cause is attached to the response for the logging middleware and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::error::{FieldError, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

/// Stable machine-readable error codes. Clients branch on these, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// The input is well-formed but breaks a rule (wrong type, unknown field, bad value).
    ValidationFailed,
    /// A path segment is malformed (e.g. an id of the wrong kind).
    InvalidPath,
    /// A query parameter is malformed.
    InvalidQuery,
    /// The pagination cursor was not issued by us.
    InvalidCursor,
    /// The body exceeds the size limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// No valid credential.
    Unauthorized,
    /// Wrong email or password (the same whether or not the account exists).
    InvalidCredentials,
    /// The access or refresh token is missing, malformed, expired, revoked or foreign.
    InvalidToken,
    /// A one-time link or code is wrong, expired, used up or already used.
    InvalidCode,
    /// A passkey registration or assertion failed verification; `detail` names the check.
    PasskeyRejected,
    /// The domain's TXT record was not found: publish it, then verify again.
    DomainNotVerified,
    /// The tenant requires a verified email address before sign-in completes.
    EmailNotVerified,
    /// A sensitive action needs a recent sign-in: get a step-up token first.
    StepUpRequired,
    /// The credential may not do this.
    Forbidden,
    /// A cookie-authenticated write without a matching CSRF token or from a foreign origin.
    CsrfFailed,
    /// No such resource (or not visible to the caller).
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The change collides with existing state.
    Conflict,
    /// Too many requests; see `Retry-After`.
    RateLimited,
    /// A dependency is down; retry later.
    Unavailable,
    /// A bug on our side; the request id helps us find it.
    Internal,
}

impl ErrorCode {
    fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::ValidationFailed => "validation_failed",
            Self::InvalidPath => "invalid_path",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidCursor => "invalid_cursor",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::InvalidCode => "invalid_code",
            Self::PasskeyRejected => "passkey_rejected",
            Self::DomainNotVerified => "domain_not_verified",
            Self::EmailNotVerified => "email_not_verified",
            Self::StepUpRequired => "step_up_required",
            Self::Forbidden => "forbidden",
            Self::CsrfFailed => "csrf_failed",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson
            | Self::InvalidPath
            | Self::InvalidQuery
            | Self::InvalidCursor
            | Self::InvalidCode
            | Self::PasskeyRejected
            | Self::DomainNotVerified => StatusCode::BAD_REQUEST,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized | Self::InvalidCredentials | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::CsrfFailed | Self::EmailNotVerified | Self::StepUpRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "The request body is not valid JSON",
            Self::ValidationFailed => "The request is invalid",
            Self::InvalidPath => "The URL path is invalid",
            Self::InvalidQuery => "The query string is invalid",
            Self::InvalidCursor => "The pagination cursor is invalid",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The request body must be application/json",
            Self::Unauthorized => "Authentication required",
            Self::InvalidCredentials => "Invalid email or password",
            Self::InvalidToken => "Invalid token",
            Self::InvalidCode => "Invalid, expired or used link or code",
            Self::PasskeyRejected => "Passkey rejected",
            Self::DomainNotVerified => "Domain not verified",
            Self::EmailNotVerified => "Email address not verified",
            Self::StepUpRequired => "Recent authentication required",
            Self::Forbidden => "Not allowed",
            Self::CsrfFailed => "Cross-site request refused",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::RateLimited => "Too many requests",
            Self::Unavailable => "Service unavailable",
            Self::Internal => "Internal error",
        }
    }
}

/// The problem+json body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:gatehouse:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// Stable machine code.
    pub code: ErrorCode,
    /// Invalid fields, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An HTTP error.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
    internal: Option<String>,
    retry_after: Option<u64>,
}

/// What the logging middleware learns of an error response.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// Code sent.
    pub code: &'static str,
    /// Cause, never sent to the client.
    pub internal: Option<String>,
}

impl ApiError {
    /// An error with a public detail message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), errors: Vec::new(), internal: None, retry_after: None }
    }

    /// Adds field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds `Retry-After`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// An internal error: the cause is logged, the client sees a generic message.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self { internal: Some(cause.into()), ..Self::new(ErrorCode::Internal, "something went wrong on our side") }
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// `(code, status, detail, field errors)`, for interfaces that report errors their
    /// own way (GraphQL's `extensions`).
    pub fn parts(&self) -> (&'static str, u16, &str, &[FieldError]) {
        (self.code.as_str(), self.code.status().as_u16(), &self.detail, &self.errors)
    }

    /// The logged cause of an internal error.
    pub fn internal_cause(&self) -> Option<&str> {
        self.internal.as_deref()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(errors) => {
                let detail =
                    errors.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
                ApiError::new(ErrorCode::ValidationFailed, detail).with_errors(errors)
            }
            ServiceError::InvalidCursor => {
                ApiError::new(ErrorCode::InvalidCursor, "pass back a next_cursor value unchanged")
            }
            ServiceError::NotFound { resource } => ApiError::new(ErrorCode::NotFound, format!("no such {resource}")),
            ServiceError::Conflict { constraint } => ApiError::new(ErrorCode::Conflict, conflict_detail(&constraint)),
            ServiceError::Unauthenticated => {
                ApiError::new(ErrorCode::Unauthorized, "send a valid admin token or secret key as a Bearer token")
            }
            ServiceError::Forbidden(why) => ApiError::new(ErrorCode::Forbidden, why),
            ServiceError::InvalidCode => ApiError::new(
                ErrorCode::InvalidCode,
                "the link or code is wrong, expired or already used; ask for a new one",
            ),
            ServiceError::StepUpRequired => ApiError::new(
                ErrorCode::StepUpRequired,
                "this action needs a recent sign-in: get a step-up token at /auth/step-up and send it as X-Step-Up-Token",
            ),
            ServiceError::PasskeyRejected(why) => ApiError::new(ErrorCode::PasskeyRejected, why),
            ServiceError::DomainNotVerified => ApiError::new(
                ErrorCode::DomainNotVerified,
                "no TXT record with the verification token at _gatehouse-challenge.<domain> yet",
            ),
            ServiceError::EmailNotVerified => ApiError::new(
                ErrorCode::EmailNotVerified,
                "confirm your email address first; a new confirmation message can be requested",
            ),
            ServiceError::InvalidCredentials => {
                ApiError::new(ErrorCode::InvalidCredentials, "the email or password is not correct")
            }
            ServiceError::InvalidToken => {
                ApiError::new(ErrorCode::InvalidToken, "the token is not valid; sign in again")
            }
            ServiceError::RateLimited { retry_after } => {
                ApiError::new(ErrorCode::RateLimited, "too many attempts; retry later")
                    .with_retry_after(retry_after.max(1))
            }
            ServiceError::Unavailable(cause) => ApiError {
                internal: Some(cause),
                ..ApiError::new(ErrorCode::Unavailable, "a dependency is unavailable; retry shortly")
                    .with_retry_after(1)
            },
            ServiceError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

fn conflict_detail(constraint: &str) -> String {
    match constraint {
        "tenants_slug_key" => "a tenant with this slug exists or existed (slugs are never reused)".into(),
        "tenants_version" => "the tenant changed concurrently; retry".into(),
        "secret_keys_rotated" => "this secret key has already been rotated".into(),
        "users_tenant_id_email_normalized_key" => "a user with this email exists in this tenant".into(),
        other => format!("conflicts with existing state ({other})"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = Problem {
            kind: format!("urn:gatehouse:problem:{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code,
            errors: self.errors,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        match self.code {
            ErrorCode::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gatehouse\""));
            }
            ErrorCode::InvalidToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            _ => {}
        }
        response.extensions_mut().insert(ErrorReport { code: self.code.as_str(), internal: self.internal });
        response
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

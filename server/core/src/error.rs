//! The service layer's error enum. It knows nothing of HTTP; the app maps it to
//! problem+json in one place.

use crate::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `settings.allowed_origins[0]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input broke one or more rules.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A pagination cursor was not one we issued.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The resource does not exist or the caller may not know it exists.
    #[error("{resource} not found")]
    NotFound {
        /// What was looked for, e.g. `tenant`.
        resource: &'static str,
    },
    /// The change collides with existing state.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The constraint or rule that was violated (stable across databases).
        constraint: String,
    },
    /// No valid credential was presented.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong email or password (the same answer whether or not the account exists).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An access or refresh token is missing, malformed, expired, revoked or foreign.
    #[error("invalid token")]
    InvalidToken,
    /// A one-time link or code is wrong, expired, used up or already used.
    #[error("invalid code")]
    InvalidCode,
    /// A WebAuthn ceremony failed verification (origin, RP id, challenge, signature,
    /// counter, user verification, attestation policy); the text says which check.
    #[error("passkey rejected: {0}")]
    PasskeyRejected(&'static str),
    /// The domain's TXT record was not found (or does not carry the token).
    #[error("domain not verified")]
    DomainNotVerified,
    /// The tenant requires a verified email before sign-in completes.
    #[error("email not verified")]
    EmailNotVerified,
    /// A sensitive action needs a recent sign-in or a step-up token.
    #[error("step-up required")]
    StepUpRequired,
    /// Too many attempts; retry after the given seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A dependency (database, Redis) cannot be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend failure; the text is logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A validation error.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        Self::Validation(fields)
    }

    /// A validation error on one field.
    pub fn invalid(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// An internal error from anything displayable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// Maps a store error, naming the resource for `NotFound`.
    pub fn from_store(resource: &'static str) -> impl Fn(StoreError) -> ServiceError {
        move |e| match e {
            StoreError::NotFound => ServiceError::NotFound { resource },
            other => other.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ServiceError::NotFound { resource: "resource" },
            StoreError::Conflict { constraint } => ServiceError::Conflict { constraint },
            StoreError::Unavailable(why) => ServiceError::Unavailable(why),
            StoreError::Backend(why) => ServiceError::Internal(why),
        }
    }
}

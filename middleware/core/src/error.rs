//! Why a token was refused.

/// A token was refused, or could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No bearer token was presented.
    #[error("no bearer token")]
    Missing,
    /// Not a well-formed JWT (or larger than any Gatehouse token).
    #[error("malformed token")]
    Malformed,
    /// The header's `typ` is not `at+jwt`.
    #[error("not an access token (typ must be at+jwt)")]
    WrongType,
    /// No published key has the token's `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The header's `alg` is not the algorithm pinned to the key.
    #[error("algorithm does not match the signing key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Past `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Before `nbf` (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not a configured issuer.
    #[error("untrusted issuer")]
    WrongIssuer,
    /// `aud` is not an accepted audience.
    #[error("wrong audience")]
    WrongAudience,
    /// Introspection says the token is no longer active (revoked session, disabled user).
    #[error("token is not active")]
    Inactive,
    /// The issuer could not be reached and nothing cached can decide.
    #[error("issuer unavailable: {0}")]
    Unavailable(String),
}

impl VerifyError {
    /// Whether this is an outage rather than a bad token.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

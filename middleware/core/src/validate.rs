//! Offline validation of one token against a key set: no I/O.

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::keys::KeySet;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};

/// Longest token accepted. Gatehouse tokens are well under 2 KiB; this bounds the work
/// an attacker can cause with an oversized header or payload.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a token must show to be accepted.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The exact `iss`.
    pub issuer: &'a str,
    /// Accepted `aud` values (one must match).
    pub audiences: &'a [String],
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
}

/// The `kid` of a token's header, for key lookup before validation.
pub fn token_kid(token: &str) -> Result<String, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    decode_header(token).map_err(|_| VerifyError::Malformed)?.kid.ok_or(VerifyError::Malformed)
}

/// Validates an access token: size, `typ: at+jwt`, a known `kid`, the algorithm pinned
/// to that key (never the token's choice), the signature, then `iss`, `aud`, `exp` and
/// `nbf` (with leeway). Header fields such as `jwk`, `jku` and `x5u` are ignored.
pub fn validate(token: &str, keys: &KeySet, expect: &Expectations<'_>) -> Result<Claims, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(VerifyError::Malformed)?;
    let key = keys.get(kid).ok_or(VerifyError::UnknownKey)?;
    if header.alg != key.alg {
        return Err(VerifyError::AlgorithmMismatch);
    }
    let mut validation = Validation::new(key.alg);
    validation.set_issuer(&[expect.issuer]);
    validation.set_audience(expect.audiences);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = expect.leeway_seconds;
    decode::<Claims>(token, &key.key, &validation).map(|data| data.claims).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        _ => VerifyError::Malformed,
    })
}

/// The `iss` of a token, read without verifying anything: only to choose which issuer's
/// keys to verify it with (validation then checks `iss` for real).
pub fn unverified_issuer(token: &str) -> Result<String, VerifyError> {
    use base64::Engine as _;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let payload = token.split('.').nth(1).ok_or(VerifyError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice::<Iss>(&bytes).map(|i| i.iss).map_err(|_| VerifyError::Malformed)
}

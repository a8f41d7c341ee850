//! Offline validation of one token against a key set: no I/O.

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::keys::KeySet;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;

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

/// The header fields validation reads; everything else (`jwk`, `jku`, `x5u`, …) is
/// ignored by construction.
#[derive(serde::Deserialize)]
struct Header<'a> {
    alg: Algorithm,
    #[serde(borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
}

/// Base64url-decodes one part into `buffer` (on the stack: no allocation per token).
fn decode_into<'b>(part: &str, buffer: &'b mut [u8]) -> Result<&'b [u8], VerifyError> {
    let n = URL_SAFE_NO_PAD.decode_slice(part, buffer).map_err(|_| VerifyError::Malformed)?;
    buffer.get(..n).ok_or(VerifyError::Malformed)
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, VerifyError> {
    // Typical claims decode to well under 1 KiB: a small stack buffer (cheap to zero);
    // larger ones (up to the token limit) go to the heap.
    let parse = |bytes: &[u8]| serde_json::from_slice(bytes).map_err(|_| VerifyError::Malformed);
    if part.len() <= 1360 {
        let mut buffer = [0u8; 1024];
        parse(decode_into(part, &mut buffer)?)
    } else {
        let mut buffer = vec![0u8; part.len()];
        parse(decode_into(part, &mut buffer)?)
    }
}

/// `(header, payload, signature)` of a compact JWS, refusing oversized input.
fn split(token: &str) -> Result<(&str, &str, &str), VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let mut parts = token.splitn(4, '.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(VerifyError::Malformed),
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Validates an access token: size and shape, `typ: at+jwt`, a known `kid`, the
/// algorithm pinned to that key (never the token's choice), the signature (aws-lc-rs),
/// then the claims: every required claim present with its type (`exp` as a string does
/// not parse), `iss`, `aud`, and `exp` / `nbf` with leeway. Header fields such as
/// `jwk`, `jku` and `x5u` are never read; a header over 1 KiB or a signature over 1 KiB
/// (decoded) is malformed.
pub fn validate(token: &str, keys: &KeySet, expect: &Expectations<'_>) -> Result<Claims, VerifyError> {
    let (header_part, payload_part, signature_part) = split(token)?;
    let mut header_buffer = [0u8; 1024];
    let header: Header<'_> =
        serde_json::from_slice(decode_into(header_part, &mut header_buffer)?).map_err(|_| VerifyError::Malformed)?;
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
    let mut signature_buffer = [0u8; 1024];
    let signature = decode_into(signature_part, &mut signature_buffer)?;
    let signed = &token[..header_part.len() + 1 + payload_part.len()];
    if !key.verify(signed.as_bytes(), signature) {
        return Err(VerifyError::BadSignature);
    }
    let claims: Claims = decode_part(payload_part)?;
    let (now, leeway) = (unix_now(), i64::try_from(expect.leeway_seconds).unwrap_or(i64::MAX));
    if claims.exp < now.saturating_sub(leeway) {
        return Err(VerifyError::Expired);
    }
    if claims.nbf > now.saturating_add(leeway) {
        return Err(VerifyError::NotYetValid);
    }
    if claims.iss != expect.issuer {
        return Err(VerifyError::WrongIssuer);
    }
    if !expect.audiences.contains(&claims.aud) {
        return Err(VerifyError::WrongAudience);
    }
    Ok(claims)
}

/// The `iss` of a token, read without verifying anything: only to choose which issuer's
/// keys to verify it with (validation then checks `iss` for real).
pub fn unverified_issuer(token: &str) -> Result<String, VerifyError> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let (_, payload, _) = split(token)?;
    decode_part::<Iss>(payload).map(|i| i.iss)
}

//! Verification keys from a JWKS, each pinned to one algorithm.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use std::collections::HashMap;
use std::sync::Arc;

/// A public key, parsed once by aws-lc-rs, and the one algorithm it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    /// The pinned algorithm: taken from the key, never from a token.
    pub alg: Algorithm,
    /// The parsed key (parsing per verification would cost as much as a quarter of an
    /// RSA verify).
    pub key: Arc<ParsedPublicKey>,
}

impl VerificationKey {
    /// An ES256 key from its uncompressed point (`0x04 || x || y`).
    pub fn es256(point: &[u8]) -> Option<Self> {
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).ok()?;
        Some(Self { alg: Algorithm::ES256, key: Arc::new(key) })
    }

    /// An EdDSA (Ed25519) key from its 32 bytes.
    pub fn ed25519(public: &[u8]) -> Option<Self> {
        let key = ParsedPublicKey::new(&ED25519, public).ok()?;
        Some(Self { alg: Algorithm::EdDSA, key: Arc::new(key) })
    }

    /// An RS256 key from its modulus and exponent (big-endian bytes), 2048 bits or more.
    pub fn rs256(n: &[u8], e: &[u8]) -> Option<Self> {
        let der = aws_lc_rs::rsa::PublicKeyComponents { n, e }.as_der().ok()?;
        let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref()).ok()?;
        Some(Self { alg: Algorithm::RS256, key: Arc::new(key) })
    }

    /// Checks a signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// Keys by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a JWKS document (`{"keys": [...]}`), keeping the signing keys it can pin
    /// to ES256, EdDSA or RS256. Keys without a `kid`, symmetric keys (`kty: oct`),
    /// encryption keys and keys whose `alg` contradicts their type are skipped.
    pub fn from_jwks(jwks: &serde_json::Value) -> Self {
        let mut set = Self::new();
        for jwk in jwks.get("keys").and_then(serde_json::Value::as_array).into_iter().flatten() {
            set.add_jwk(jwk);
        }
        set
    }

    /// Adds one JWK under its `kid` if it is a signing key [`KeySet::from_jwks`] would
    /// keep; returns whether it was added.
    pub fn add_jwk(&mut self, jwk: &serde_json::Value) -> bool {
        match (jwk.get("kid").and_then(serde_json::Value::as_str), parse_jwk(jwk)) {
            (Some(kid), Some(key)) => {
                self.keys.insert(kid.to_owned(), key);
                true
            }
            _ => false,
        }
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerificationKey) {
        self.keys.insert(kid.into(), key);
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }

    /// Whether a key with this `kid` is present.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_jwk(jwk: &serde_json::Value) -> Option<VerificationKey> {
    let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    let bytes = |name: &str| field(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let declared = field("alg");
    let key = match (field("kty")?, field("crv")) {
        ("EC", Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            VerificationKey::es256(&[&[4u8][..], &x, &y].concat())?
        }
        ("OKP", Some("Ed25519")) => VerificationKey::ed25519(&bytes("x")?)?,
        // RSA keys can serve several algorithms; only an explicit RS256 is accepted.
        ("RSA", _) if declared == Some("RS256") => VerificationKey::rs256(&bytes("n")?, &bytes("e")?)?,
        _ => return None,
    };
    let matches = declared.is_none_or(|d| match key.alg {
        Algorithm::ES256 => d == "ES256",
        Algorithm::EdDSA => d == "EdDSA" || d == "Ed25519",
        _ => d == "RS256",
    });
    matches.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_pinnable_signing_keys_are_kept() {
        let jwks = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {"kty": "RSA", "kid": "rsa-no-alg", "n": "sXch", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-wrong-alg", "alg": "ES256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]});
        let set = KeySet::from_jwks(&jwks);
        assert_eq!(set.len(), 1);
        assert_eq!(set.get("ed").map(|k| k.alg), Some(Algorithm::EdDSA));
        assert!(KeySet::from_jwks(&json!({"keys": "nope"})).is_empty());
    }
}

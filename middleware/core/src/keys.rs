//! Verification keys from a JWKS, each pinned to one algorithm.

use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;

/// A public key and the one algorithm it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    /// The pinned algorithm: taken from the key, never from a token.
    pub alg: Algorithm,
    /// The parsed key.
    pub key: DecodingKey,
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
            if let (Some(kid), Some(key)) = (jwk.get("kid").and_then(serde_json::Value::as_str), parse_jwk(jwk)) {
                set.keys.insert(kid.to_owned(), key);
            }
        }
        set
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
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let declared = field("alg");
    let (alg, key) = match (field("kty")?, field("crv")) {
        ("EC", Some("P-256")) => (Algorithm::ES256, DecodingKey::from_ec_components(field("x")?, field("y")?).ok()?),
        ("OKP", Some("Ed25519")) => (Algorithm::EdDSA, DecodingKey::from_ed_components(field("x")?).ok()?),
        // RSA keys can serve several algorithms; only an explicit RS256 is accepted.
        ("RSA", _) if declared == Some("RS256") => {
            (Algorithm::RS256, DecodingKey::from_rsa_components(field("n")?, field("e")?).ok()?)
        }
        _ => return None,
    };
    let matches = declared.is_none_or(|d| match alg {
        Algorithm::ES256 => d == "ES256",
        Algorithm::EdDSA => d == "EdDSA" || d == "Ed25519",
        _ => d == "RS256",
    });
    matches.then_some(VerificationKey { alg, key })
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

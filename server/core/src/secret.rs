//! Secrets: generation, redaction and hashing.
//!
//! High-entropy secrets (API keys, tokens) are stored only as SHA-256 digests: they
//! cannot be guessed, so a slow password hash would add cost without adding safety.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// A secret value whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it must leave the process (a response shown once).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with another value in time independent of where they differ.
    pub fn constant_time_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// The SHA-256 digest of a secret, hex-encoded: what we store and look up by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    /// Hashes a presented secret.
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        let mut out = String::with_capacity(64);
        for byte in digest {
            out.push_str(&format!("{byte:02x}"));
        }
        Self(out)
    }

    /// Rebuilds a hash read from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// A freshly generated secret: the value to show once, its hash to store, and a short
/// non-secret prefix to recognise it by in listings.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    /// The full secret, e.g. `sk_3fJ…`.
    pub value: SecretString,
    /// What is stored.
    pub hash: SecretHash,
    /// The first characters of the secret, safe to display.
    pub display_prefix: String,
}

/// Generates a secret `{prefix}{43 base64url chars}` carrying 256 bits of entropy.
pub fn generate_secret(prefix: &str) -> GeneratedSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let value = format!("{prefix}{body}");
    let display_prefix = value.chars().take(prefix.len() + 6).collect();
    GeneratedSecret { hash: SecretHash::of(&value), value: SecretString::new(value), display_prefix }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let generated = generate_secret("sk_");
        let printed = format!("{generated:?}");
        assert!(!printed.contains(generated.value.expose()));
        assert!(!printed.contains(generated.hash.as_str()));
    }

    #[test]
    fn generated_secrets_are_unique_prefixed_and_hash_stably() {
        let a = generate_secret("sk_");
        let b = generate_secret("sk_");
        assert_ne!(a.value, b.value);
        assert!(a.value.expose().starts_with("sk_"));
        assert_eq!(a.value.expose().len(), 3 + 43);
        assert_eq!(SecretHash::of(a.value.expose()), a.hash);
        assert!(a.value.constant_time_eq(a.value.expose()));
        assert!(!a.value.constant_time_eq(b.value.expose()));
    }
}

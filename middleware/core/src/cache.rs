//! A bounded cache of tokens already verified, keyed by the token's SHA-256, each entry
//! kept no longer than its token's `exp`.

use crate::claims::Claims;
use crate::validate::unix_now;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Verified tokens by hash.
pub struct TokenCache {
    entries: quick_cache::sync::Cache<[u8; 32], Arc<Claims>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("len", &self.entries.len()).finish()
    }
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self { entries: quick_cache::sync::Cache::new(capacity.max(1)) }
    }

    /// The token's hash: the cache never holds the token itself.
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token verified before, unless it has expired since.
    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<Claims>> {
        let claims = self.entries.get(key)?;
        if claims.exp > unix_now() {
            Some(claims)
        } else {
            self.entries.remove(key);
            None
        }
    }

    /// Remembers a verified token.
    pub fn insert(&self, key: [u8; 32], claims: Arc<Claims>) {
        self.entries.insert(key, claims);
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }
}

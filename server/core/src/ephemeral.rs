//! The ephemeral store: short-lived state that may be lost without harm to correctness
//! (rate-limit counters, one-time values, caches, cache-invalidation messages).
//! Backed by Redis in production and by [`memory::MemoryStore`] on a single node.

pub mod memory;

use async_trait::async_trait;
use futures::stream::BoxStream;
use std::time::Duration;

/// Why an ephemeral-store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EphemeralError {
    /// The store cannot be reached; callers guarding credentials must fail closed.
    #[error("ephemeral store unavailable: {0}")]
    Unavailable(String),
}

/// A fixed-window counter after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Hits in the current window, including this one.
    pub hits: u64,
    /// Time until the window resets.
    pub resets_in: Duration,
}

/// Short-lived shared state. Keys are namespaced by the caller (`rl:…`, `otv:…`).
#[async_trait]
pub trait EphemeralStore: Send + Sync + std::fmt::Debug {
    /// Adds one to the counter `key`; the window starts at the first hit and lasts `window`.
    async fn increment(&self, key: &str, window: Duration) -> Result<Count, EphemeralError>;
    /// The hits of counter `key` in its current window, without adding one: 0 when the
    /// counter does not exist (never hit, expired or deleted).
    async fn hits(&self, key: &str) -> Result<u64, EphemeralError>;
    /// Stores a one-time value unless `key` is taken; `Ok(false)` if it was.
    async fn put_once(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError>;
    /// Reads and deletes in one step: of any number of concurrent takers, one gets it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Caches a value.
    async fn cache_set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError>;
    /// Reads a cached value.
    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Drops a cached value.
    async fn cache_delete(&self, key: &str) -> Result<(), EphemeralError>;
    /// Sends a message to every current subscriber of `channel` (on every node).
    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), EphemeralError>;
    /// Messages published to `channel` from now on.
    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EphemeralError>;
    /// Checks the store answers.
    async fn ping(&self) -> Result<(), EphemeralError>;
}

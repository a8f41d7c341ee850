//! DNS lookups the services need (TXT records proving domain ownership), behind a trait
//! so the server can use a real resolver and tests a real one pointed at a local server.

use async_trait::async_trait;

/// Why a lookup failed (other than "no such record", which is an empty answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dns lookup failed: {0}")]
pub struct DnsError(pub String);

/// Looks up TXT records.
#[async_trait]
pub trait TxtResolver: Send + Sync + std::fmt::Debug {
    /// The TXT strings at `name` (each record's strings joined); empty when there are none.
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError>;
}

//! Management-API credentials as stored: tenant secret keys and operator API tokens.
//! Only SHA-256 digests of the secrets are kept.

use crate::ids::{AdminTokenId, SecretKeyId, TenantId};
use crate::secret::SecretHash;
use time::OffsetDateTime;

/// A tenant secret key (`sk_…`), valid for its own tenant only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyRecord {
    /// Record id.
    pub id: SecretKeyId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Label chosen by the operator.
    pub name: String,
    /// First characters of the secret, for recognising it.
    pub display_prefix: String,
    /// SHA-256 of the secret.
    pub hash: SecretHash,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last successful use (updated at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Set when the key was rotated: it stops working then.
    pub expires_at: Option<OffsetDateTime>,
    /// Set when the key was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

impl SecretKeyRecord {
    /// Whether the key authenticates at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// An operator API token (`gh_admin_…`) for automation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    /// Record id.
    pub id: AdminTokenId,
    /// Label.
    pub name: String,
    /// First characters of the secret.
    pub display_prefix: String,
    /// SHA-256 of the secret.
    pub hash: SecretHash,
    /// Tenants it may act on; `None` means every tenant and operator-level actions.
    pub tenant_scope: Option<Vec<TenantId>>,
    /// What it may do.
    pub role: crate::access::OperatorRole,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last successful use (updated at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Set when revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

//! Operator accounts: the people who run Gatehouse and use the console, with a role and
//! an optional tenant scope, a password and a mandatory TOTP factor, and their sessions.

use crate::access::OperatorRole;
use crate::ids::{OperatorId, OperatorSessionId, TenantId};
use crate::secret::SecretHash;
use crate::user::Email;
use time::OffsetDateTime;

/// An operator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Opaque id (`opr_…`).
    pub id: OperatorId,
    /// Sign-in address (unique).
    pub email: Email,
    /// Display name.
    pub name: Option<String>,
    /// What the operator may do.
    pub role: OperatorRole,
    /// Reachable tenants; `None` means all.
    pub tenant_ids: Option<Vec<TenantId>>,
    /// Argon2id hash.
    pub password_hash: String,
    /// The TOTP secret, sealed under the master key; `None` until enrolled at the first
    /// sign-in.
    pub totp_sealed: Option<Vec<u8>>,
    /// The last accepted TOTP step (codes work once).
    pub totp_last_step: Option<i64>,
    /// Disabled operators cannot sign in; their sessions end.
    pub disabled: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last sign-in.
    pub last_login_at: Option<OffsetDateTime>,
}

/// A signed-in operator's session (bearer `gh_ops_…`, stored as SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    /// Opaque id (`ops_…`).
    pub id: OperatorSessionId,
    /// The operator.
    pub operator_id: OperatorId,
    /// Hash of the bearer token.
    pub token_hash: SecretHash,
    /// Start.
    pub created_at: OffsetDateTime,
    /// End.
    pub expires_at: OffsetDateTime,
    /// Revoked (sign-out, operator disabled).
    pub revoked_at: Option<OffsetDateTime>,
}

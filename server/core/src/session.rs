//! Sessions (one sign-in each) and their single-use refresh tokens, stored as hashes.

use crate::ids::{SessionId, TenantId, UserId};
use crate::secret::SecretHash;
use time::OffsetDateTime;

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (the `sid` claim).
    pub id: SessionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The signed-in user.
    pub user_id: UserId,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last refresh.
    pub last_seen_at: OffsetDateTime,
    /// Absolute end, whatever the refreshes.
    pub expires_at: OffsetDateTime,
    /// When the user authenticated.
    pub auth_time: OffsetDateTime,
    /// Authentication methods used (RFC 8176).
    pub amr: Vec<String>,
    /// Client IP at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// The organization its tokens are scoped to (an org session from
    /// `organizations/{org_id}/token`); removing the member revokes it.
    pub org_id: Option<crate::ids::OrganizationId>,
}

impl Session {
    /// Whether it still allows refreshes and access at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A refresh token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub hash: SecretHash,
    /// Issue time.
    pub created_at: OffsetDateTime,
    /// Sliding expiry.
    pub expires_at: OffsetDateTime,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// It was live: it is now spent and its successor stored.
    Rotated {
        /// The session.
        session: Session,
        /// Its user, read in the same statement as the token.
        user: Box<crate::user::User>,
    },
    /// It was spent moments ago, within the grace window, by a concurrent request of the
    /// same client: here is the successor that request received (sealed).
    Raced {
        /// The session.
        session: Session,
        /// The successor token, sealed under the master key.
        successor_sealed: Vec<u8>,
        /// Its user.
        user: Box<crate::user::User>,
    },
    /// It had been spent before: a sign of theft, so the whole session was revoked.
    Reused(Session),
    /// Unknown, expired, or its session is over.
    Invalid,
}

//! Second factors as stored: a TOTP secret per user and single-use recovery codes.

use crate::ids::UserId;
use time::OffsetDateTime;

/// A user's TOTP authenticator. Set up first (pending), enabled after one valid code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The user.
    pub user_id: UserId,
    /// The shared secret, sealed under the master key (context: tenant and user).
    pub secret_sealed: Vec<u8>,
    /// When a valid code enabled it; `None` while pending.
    pub enabled_at: Option<OffsetDateTime>,
    /// The last time step accepted: a code is never accepted twice (RFC 6238 §5.2).
    pub last_step: Option<i64>,
    /// When it was set up.
    pub created_at: OffsetDateTime,
}

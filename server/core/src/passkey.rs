//! Passkeys: WebAuthn credentials registered to a user, as stored.

use crate::ids::{PasskeyId, UserId};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A user's passkey.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Passkey {
    /// Opaque id (`pkey_…`).
    pub id: PasskeyId,
    /// The owner.
    pub user_id: UserId,
    /// The authenticator's credential id (unique across every tenant).
    #[serde(skip)]
    pub credential_id: Vec<u8>,
    /// A name the user chose (or the default, "Passkey").
    pub name: String,
    /// The verified credential (public key, algorithm, transports, registration policy) as
    /// webauthn-rs serialises it; its counter is superseded by `sign_count`.
    #[serde(skip)]
    pub credential: serde_json::Value,
    /// The highest signature counter seen (0 for authenticators without one).
    pub sign_count: u32,
    /// The authenticator model's AAGUID, as reported at registration.
    pub aaguid: Option<String>,
    /// The attestation statement format presented at registration (`none`, `packed`, …).
    pub attestation_format: String,
    /// Whether the key may be synced between devices (a platform or cloud passkey).
    pub backup_eligible: bool,
    /// Whether it is currently synced.
    pub backup_state: bool,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last sign-in with it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A verified assertion to record against a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// The passkey.
    pub id: PasskeyId,
    /// Its owner.
    pub user_id: UserId,
    /// The counter the authenticator signed.
    pub sign_count: u32,
    /// The backup state it reported.
    pub backup_state: bool,
    /// When.
    pub at: OffsetDateTime,
}

/// A user's enabled second factors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondFactors {
    /// TOTP is enabled.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: u32,
}

impl SecondFactors {
    /// Whether any factor beyond the first exists.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

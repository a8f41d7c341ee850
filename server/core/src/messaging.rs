//! Messages to users (email and SMS) and the one-time secrets they carry: link tokens
//! and short codes. Secrets are stored only as hashes; message bodies are stored sealed
//! under the master key until they are sent.

use crate::audit::AuditEvent;
use crate::ids::{MessageId, OneTimeId, TenantId, UserId};
use crate::secret::SecretHash;
use crate::session::{RefreshToken, Session};
use crate::user::User;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email through SMTP.
    Email,
    /// Text message through the SMS provider.
    Sms,
}

impl Channel {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

/// Every message Gatehouse sends; each has a template per locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Proves an address at sign-up or on request (link and code).
    VerifyEmail,
    /// Lets a user who forgot the password set a new one (link).
    PasswordReset,
    /// Tells the user the password was reset.
    PasswordResetDone,
    /// Confirms a new address before it replaces the old one (link and code).
    EmailChangeConfirm,
    /// Tells the old address it was replaced, with a link to undo.
    EmailChangeNotice,
    /// Signs in without a password (link).
    MagicLink,
    /// Signs in with a code sent by email.
    EmailLoginCode,
    /// Proves a phone number (SMS code).
    PhoneVerify,
    /// Signs in with a code sent by SMS.
    SmsLoginCode,
    /// Tells the user a second factor was turned on.
    MfaEnabled,
    /// Tells the user their second factor was turned off.
    MfaDisabled,
    /// Tells the user a recovery code was used to sign in.
    RecoveryCodeUsed,
    /// Tells the user their recovery codes were replaced.
    RecoveryCodesRegenerated,
    /// Tells the user a passkey was added to their account.
    PasskeyAdded,
    /// Tells the user a passkey was removed from their account.
    PasskeyRemoved,
    /// Invites an address to join an organization.
    Invitation,
}

impl MessageKind {
    /// Every kind, for listings and tests.
    pub const ALL: [Self; 16] = [
        Self::VerifyEmail,
        Self::PasswordReset,
        Self::PasswordResetDone,
        Self::EmailChangeConfirm,
        Self::EmailChangeNotice,
        Self::MagicLink,
        Self::EmailLoginCode,
        Self::PhoneVerify,
        Self::SmsLoginCode,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRegenerated,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::Invitation,
    ];

    /// Stored and URL form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::PasswordResetDone => "password_reset_done",
            Self::EmailChangeConfirm => "email_change_confirm",
            Self::EmailChangeNotice => "email_change_notice",
            Self::MagicLink => "magic_link",
            Self::EmailLoginCode => "email_login_code",
            Self::PhoneVerify => "phone_verify",
            Self::SmsLoginCode => "sms_login_code",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::Invitation => "invitation",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The channel the message goes through.
    pub fn channel(self) -> Channel {
        match self {
            Self::PhoneVerify | Self::SmsLoginCode => Channel::Sms,
            _ => Channel::Email,
        }
    }
}

/// A rendered message: what the outbox seals and the transports send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedMessage {
    /// Subject line (empty for SMS).
    pub subject: String,
    /// Plain-text body (the whole SMS).
    pub text: String,
    /// HTML body (email only).
    pub html: Option<String>,
}

/// A message to store in the outbox, in the same transaction as its cause.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    /// Id (also the stable `Message-ID` of the email).
    pub id: MessageId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Email or SMS.
    pub channel: Channel,
    /// Address or E.164 number.
    pub recipient: String,
    /// Which template made it.
    pub kind: MessageKind,
    /// The [`RenderedMessage`] as JSON, sealed under the master key with the id as context.
    pub sealed: Vec<u8>,
    /// When it was queued.
    pub created_at: OffsetDateTime,
}

/// Where a message is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Claimed by a worker, which holds a lease on it.
    Sending,
    /// Accepted by the relay or provider.
    Sent,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sending" => Some(Self::Sending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A message as stored in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    /// The message.
    pub message: OutboxMessage,
    /// Delivery status.
    pub status: DeliveryStatus,
    /// Attempts so far (including a claimed one).
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: OffsetDateTime,
    /// The last failure, for operators.
    pub last_error: Option<String>,
    /// When it was accepted for delivery.
    pub sent_at: Option<OffsetDateTime>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    /// Accepted by the relay or provider.
    Sent {
        /// When.
        at: OffsetDateTime,
        /// Keep the sealed content (the dev outbox shows what the log transport "sent");
        /// otherwise it is erased with the status.
        keep_content: bool,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// When to retry.
        next_attempt_at: OffsetDateTime,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time.
    Failed {
        /// Why.
        error: String,
    },
}

/// What a finished attempt writes to its outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryUpdate<'a> {
    /// The new status.
    pub status: DeliveryStatus,
    /// When to try again (a retry); `None` keeps the row's.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Why the attempt failed; `None` keeps the row's last error.
    pub error: Option<&'a str>,
    /// When it was sent.
    pub sent_at: Option<OffsetDateTime>,
    /// Whether the sealed content goes: a message sent or given up is never opened
    /// again (ADR 24); one to retry still is, and the dev outbox keeps what it shows.
    pub erase_content: bool,
}

impl DeliveryOutcome {
    /// The row update this outcome makes.
    pub fn update(&self) -> DeliveryUpdate<'_> {
        match self {
            Self::Sent { at, keep_content } => DeliveryUpdate {
                status: DeliveryStatus::Sent,
                next_attempt_at: None,
                error: None,
                sent_at: Some(*at),
                erase_content: !keep_content,
            },
            Self::Retry { next_attempt_at, error } => DeliveryUpdate {
                status: DeliveryStatus::Pending,
                next_attempt_at: Some(*next_attempt_at),
                error: Some(error),
                sent_at: None,
                erase_content: false,
            },
            Self::Failed { error } => DeliveryUpdate {
                status: DeliveryStatus::Failed,
                next_attempt_at: None,
                error: Some(error),
                sent_at: None,
                erase_content: true,
            },
        }
    }
}

/// What a one-time secret is for. Secrets of one purpose are never accepted for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves an email address.
    VerifyEmail,
    /// Sets a new password.
    PasswordReset,
    /// Confirms a new email address.
    EmailChange,
    /// Undoes an email change from the old address.
    EmailChangeUndo,
    /// Signs in by the emailed link.
    MagicLink,
    /// The one-time code a magic link redirects with, traded for tokens.
    MagicLinkCode,
    /// Signs in by an emailed code.
    EmailLogin,
    /// Proves a phone number.
    PhoneVerify,
    /// Signs in by an SMS code.
    SmsLogin,
    /// The `mfa_token` between a first factor and the second.
    MfaChallenge,
    /// A step-up token: one sensitive action of one session.
    StepUp,
    /// A cross-device sign-in waiting for approval (keyed by the QR code; target: the
    /// poll token's hash).
    QrLogin,
    /// An approved cross-device sign-in (keyed by the poll token).
    QrApproved,
    /// A denied cross-device sign-in (keyed by the poll token).
    QrDenied,
}

impl Purpose {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
            Self::EmailChangeUndo => "email_change_undo",
            Self::MagicLink => "magic_link",
            Self::MagicLinkCode => "magic_link_code",
            Self::EmailLogin => "email_login",
            Self::PhoneVerify => "phone_verify",
            Self::SmsLogin => "sms_login",
            Self::MfaChallenge => "mfa_challenge",
            Self::StepUp => "step_up",
            Self::QrLogin => "qr_login",
            Self::QrApproved => "qr_approved",
            Self::QrDenied => "qr_denied",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::VerifyEmail,
            Self::PasswordReset,
            Self::EmailChange,
            Self::EmailChangeUndo,
            Self::MagicLink,
            Self::MagicLinkCode,
            Self::EmailLogin,
            Self::PhoneVerify,
            Self::SmsLogin,
            Self::MfaChallenge,
            Self::StepUp,
            Self::QrLogin,
            Self::QrApproved,
            Self::QrDenied,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A link token and/or code sent to an address, stored as hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeSecret {
    /// Id.
    pub id: OneTimeId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// What it is for.
    pub purpose: Purpose,
    /// The normalised address or E.164 number it was sent to.
    pub target: String,
    /// The account it belongs to (none when it would create one).
    pub user_id: Option<UserId>,
    /// SHA-256 of the link token, if a link was sent.
    pub token_hash: Option<SecretHash>,
    /// Keyed hash of the code, if a code was sent.
    pub code_hash: Option<String>,
    /// Wrong codes entered so far.
    pub attempts: u32,
    /// Attempts after which the code dies.
    pub max_attempts: u32,
    /// Flow-specific data (new email, redirect URI, browser binding hash, …).
    pub data: serde_json::Value,
    /// Issue time.
    pub created_at: OffsetDateTime,
    /// End of validity.
    pub expires_at: OffsetDateTime,
    /// When it was used or superseded.
    pub consumed_at: Option<OffsetDateTime>,
}

/// What redeeming a one-time secret writes to the user.
#[derive(Debug, Clone, Copy)]
pub enum UserWrite<'a> {
    /// Nothing.
    None,
    /// Creates the account (first passwordless sign-in).
    Insert(&'a User),
    /// Overwrites the account's mutable fields.
    Update(&'a User),
}

/// Everything one redemption changes, written in one transaction: the secret is
/// consumed only if it is still live, and then everything else happens, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct Redemption<'a> {
    /// The secret to consume.
    pub secret_id: &'a OneTimeId,
    /// Now.
    pub now: OffsetDateTime,
    /// The change to the user.
    pub user: UserWrite<'a>,
    /// Revoke every live session of the user, for this reason.
    pub revoke_sessions: Option<&'a str>,
    /// Start this session with its first refresh token.
    pub session: Option<(&'a Session, &'a RefreshToken)>,
    /// Issue this follow-up secret (e.g. the undo link of an email change).
    pub issue: Option<&'a OneTimeSecret>,
    /// Messages caused by it.
    pub messages: &'a [OutboxMessage],
    /// The audit event.
    pub event: &'a AuditEvent,
}

/// A password sign-up, written in one transaction: the account, its verification
/// secret and message and `user.signup` event, and how the new user goes on.
#[derive(Debug, Clone, Copy)]
pub struct SignUp<'a> {
    /// The new account.
    pub user: &'a User,
    /// Its email verification secret.
    pub verification: &'a OneTimeSecret,
    /// The messages that carry it.
    pub messages: &'a [OutboxMessage],
    /// The `user.signup` event.
    pub event: &'a AuditEvent,
    /// What is stored beside the account.
    pub then: SignUpStart<'a>,
}

impl SignUp<'_> {
    /// Whether what follows the account is its own: a session must be of the sign-up's
    /// tenant and of the new user (stores refuse the sign-up otherwise).
    pub fn starts_its_own_account(&self, tenant_id: &TenantId) -> bool {
        match self.then {
            SignUpStart::Session(session, ..) => session.tenant_id == *tenant_id && session.user_id == self.user.id,
            SignUpStart::Nothing | SignUpStart::Challenge(..) => true,
        }
    }
}

/// How a new account goes on from its sign-up.
#[derive(Debug, Clone, Copy)]
pub enum SignUpStart<'a> {
    /// Nothing yet: the address must be verified before a sign-in.
    Nothing,
    /// A second-factor enrolment challenge (its secret and `login.mfa_required` event).
    Challenge(&'a OneTimeSecret, &'a AuditEvent),
    /// A session at once: the session, its first refresh token, `login.success`.
    Session(&'a Session, &'a RefreshToken, &'a AuditEvent),
}

/// A tenant's own version of one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOverride {
    /// Which message.
    pub kind: MessageKind,
    /// Language (`en`, `de`, …).
    pub locale: String,
    /// Subject template.
    pub subject: String,
    /// HTML body template (auto-escaped).
    pub html: String,
    /// Text body template.
    pub text: String,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

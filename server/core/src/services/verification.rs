//! Proving and recovering what identifies a user: email verification, forgotten
//! passwords, email changes (confirmed at the new address, undoable from the old one) and
//! phone numbers. Every answer that takes an address is the same whether or not an
//! account has it; every secret is single use and redeemed atomically with its effect.

use super::auth::AuthService;
use super::messenger::{Dispatch, Messenger, is_code_shaped};
use super::templates::TemplateVars;
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::messaging::{MessageKind, OneTimeSecret, Purpose, Redemption, UserWrite};
use crate::password::{PasswordHasher, check_policy};
use crate::secret::{SecretHash, SecretString};
use crate::store::Store;
use crate::tenant::Tenant;
use crate::user::{Email, User, UserStatus};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use time::Duration;

/// Validity of an email-verification link and code.
const VERIFY_EMAIL_TTL: Duration = Duration::hours(1);
/// Validity of a password-reset link (the issue asks for 15-30 minutes).
const RESET_TTL: Duration = Duration::minutes(20);
/// Validity of an email-change confirmation.
const EMAIL_CHANGE_TTL: Duration = Duration::hours(1);
/// How long the old address can undo an email change.
const EMAIL_UNDO_TTL: Duration = Duration::hours(72);
/// Validity of a phone code.
const PHONE_CODE_TTL: Duration = Duration::minutes(10);
/// Messages one address may be sent per window.
pub const SENDS_PER_ADDRESS: u64 = 5;
/// The window of [`SENDS_PER_ADDRESS`].
pub const SEND_WINDOW: StdDuration = StdDuration::from_secs(15 * 60);
/// Message requests one IP may make per minute.
pub const SENDS_PER_IP: u64 = 20;
/// Code or link redemptions one IP may attempt per minute.
pub const REDEEMS_PER_IP: u64 = 30;

/// What proves the request in [`VerificationService::verify_email`].
#[derive(Debug, Clone)]
pub enum Proof {
    /// The link token.
    Token(String),
    /// A code, with the address it was sent to.
    Code {
        /// The address (the signed-in user's when absent).
        email: Option<String>,
        /// The code.
        code: String,
    },
}

/// The verification and recovery flows.
#[derive(Debug, Clone)]
pub struct VerificationService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    auth: AuthService,
    messenger: Messenger,
    hasher: PasswordHasher,
}

impl VerificationService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        auth: AuthService,
        messenger: Messenger,
        hasher: PasswordHasher,
    ) -> Self {
        Self { store, clock, auth, messenger, hasher }
    }

    /// Applies the per-IP and per-address limits of sending a message.
    pub(crate) async fn limit_send(
        auth: &AuthService,
        tenant: &Tenant,
        ctx: &RequestContext,
        address: &str,
    ) -> Result<(), ServiceError> {
        auth.limit(tenant, ctx, "message_send", SENDS_PER_IP).await?;
        let subject = format!("addr:{}", SecretHash::of(address).as_str());
        auth.limit_by(tenant, ctx, "message_send", &subject, SENDS_PER_ADDRESS, SEND_WINDOW).await
    }

    /// Applies the per-user limit of messages a signed-in user may ask for.
    async fn limit_user(&self, tenant: &Tenant, ctx: &RequestContext, user: &User) -> Result<(), ServiceError> {
        let subject = format!("user:{}", user.id);
        self.auth.limit_by(tenant, ctx, "message_send", &subject, SENDS_PER_ADDRESS, SEND_WINDOW).await
    }

    /// The email-verification message of `user`, prepared for storing with `new_user`
    /// at sign-up or on its own.
    pub(crate) async fn verification_dispatch(
        messenger: &Messenger,
        tenant: &Tenant,
        ctx: &RequestContext,
        now: time::OffsetDateTime,
        user: &User,
    ) -> Result<super::messenger::Prepared, ServiceError> {
        messenger
            .prepare(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose: Purpose::VerifyEmail,
                    kind: MessageKind::VerifyEmail,
                    target: user.email.normalized(),
                    recipient: user.email.as_str(),
                    user_id: Some(&user.id),
                    user_locale: user.profile.locale.as_deref(),
                    ttl: VERIFY_EMAIL_TTL,
                    link_path: Some("verify-email"),
                    code: true,
                    data: serde_json::json!({}),
                    vars: TemplateVars { email: Some(user.email.as_str().to_owned()), ..TemplateVars::default() },
                },
            )
            .await
    }

    /// Sends (again) the verification message to the signed-in user, or to the account
    /// with `email`. Answers alike whether or not such an unverified account exists.
    pub async fn send_email_verification(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: Option<&str>,
        email: Option<&str>,
    ) -> Result<(), ServiceError> {
        let user = match (access_token, email) {
            (Some(token), _) => Some(self.auth.me(tenant, token).await?.0),
            (None, Some(raw)) => {
                let email = Email::parse(raw).map_err(|why| ServiceError::invalid("email", &why))?;
                Self::limit_send(&self.auth, tenant, ctx, email.normalized()).await?;
                self.store.find_user_by_email(&tenant.id, email.normalized()).await?
            }
            (None, None) => return Err(ServiceError::invalid("email", "is required without a bearer token")),
        };
        let Some(user) = user.filter(|u| !u.email_verified && u.status == UserStatus::Active) else { return Ok(()) };
        if access_token.is_some() {
            self.limit_user(tenant, ctx, &user).await?;
            Self::limit_send(&self.auth, tenant, ctx, user.email.normalized()).await?;
        }
        let now = self.clock.now();
        let prepared = Self::verification_dispatch(&self.messenger, tenant, ctx, now, &user).await?;
        let event = AuditEvent::by_user(
            now,
            ctx,
            "email.verification_sent",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({ "message_id": prepared.message.id }),
        );
        self.store.issue_one_time(&tenant.id, &prepared.secret, &[prepared.message], &event).await?;
        self.messenger.queued();
        Ok(())
    }

    /// Finds the live secret a proof names, counting a code attempt.
    async fn find(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        purpose: Purpose,
        proof: &Proof,
        signed_in: Option<&User>,
        target_of: impl Fn(&User) -> String,
    ) -> Result<OneTimeSecret, ServiceError> {
        self.auth.limit(tenant, ctx, "one_time_redeem", REDEEMS_PER_IP).await?;
        let now = self.clock.now();
        match proof {
            Proof::Token(token) => {
                if !token.starts_with(super::messenger::LINK_TOKEN_PREFIX) || token.len() > 128 {
                    return Err(ServiceError::InvalidCode);
                }
                self.store
                    .find_one_time_by_token(&tenant.id, purpose, &SecretHash::of(token), now)
                    .await?
                    .ok_or(ServiceError::InvalidCode)
            }
            Proof::Code { email, code } => {
                let target = match (email, signed_in) {
                    (Some(raw), _) => Email::parse(raw).map_err(|_| ServiceError::InvalidCode)?.normalized().to_owned(),
                    (None, Some(user)) => target_of(user),
                    (None, None) => return Err(ServiceError::invalid("email", "is required with a code")),
                };
                if !is_code_shaped(code) {
                    return Err(ServiceError::InvalidCode);
                }
                let secret = self
                    .store
                    .attempt_one_time_code(&tenant.id, purpose, &target, now)
                    .await?
                    .ok_or(ServiceError::InvalidCode)?;
                if self.messenger.code_matches(&secret, code) { Ok(secret) } else { Err(ServiceError::InvalidCode) }
            }
        }
    }

    /// Marks the address verified, by its link token or code.
    pub async fn verify_email(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: Option<&str>,
        proof: Proof,
    ) -> Result<(), ServiceError> {
        let signed_in = match access_token {
            Some(token) => Some(self.auth.me(tenant, token).await?.0),
            None => None,
        };
        let secret = self
            .find(tenant, ctx, Purpose::VerifyEmail, &proof, signed_in.as_ref(), |u| u.email.normalized().to_owned())
            .await?;
        let user_id = secret.user_id.clone().ok_or(ServiceError::InvalidCode)?;
        let mut user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidCode)?;
        // The address must still be the one the secret was sent to.
        if user.email.normalized() != secret.target {
            return Err(ServiceError::InvalidCode);
        }
        let now = self.clock.now();
        user.email_verified = true;
        user.updated_at = now;
        let event =
            AuditEvent::by_user(now, ctx, "email.verified", &tenant.id, Some(user.id.as_str()), serde_json::json!({}));
        self.redeem(tenant, &secret, UserWrite::Update(&user), None, &[], &event).await?;
        // A verified address at an organization's verified domain may join it at once.
        super::org_domains::auto_join(self.store.as_ref(), tenant, ctx, &user, now).await
    }

    async fn redeem(
        &self,
        tenant: &Tenant,
        secret: &OneTimeSecret,
        user: UserWrite<'_>,
        revoke_sessions: Option<&str>,
        messages: &[crate::messaging::OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), ServiceError> {
        self.redeem_with(tenant, secret, user, revoke_sessions, None, messages, event).await
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the fields of one Redemption")]
    async fn redeem_with(
        &self,
        tenant: &Tenant,
        secret: &OneTimeSecret,
        user: UserWrite<'_>,
        revoke_sessions: Option<&str>,
        issue: Option<&OneTimeSecret>,
        messages: &[crate::messaging::OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), ServiceError> {
        let redemption = Redemption {
            secret_id: &secret.id,
            now: self.clock.now(),
            user,
            revoke_sessions,
            session: None,
            issue,
            messages,
            event,
        };
        super::redeem(self.store.as_ref(), &tenant.id, &redemption, ServiceError::InvalidCode).await?;
        if !messages.is_empty() {
            self.messenger.queued();
        }
        Ok(())
    }

    /// Sends a password-reset link if an active account has this address; answers the
    /// same either way.
    pub async fn forgot_password(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        email: &str,
    ) -> Result<(), ServiceError> {
        let email = Email::parse(email).map_err(|why| ServiceError::invalid("email", &why))?;
        Self::limit_send(&self.auth, tenant, ctx, email.normalized()).await?;
        let user = self.store.find_user_by_email(&tenant.id, email.normalized()).await?;
        let now = self.clock.now();
        let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
            return self.decoy_reset(tenant, ctx, now, &email).await;
        };
        self.messenger
            .send(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose: Purpose::PasswordReset,
                    kind: MessageKind::PasswordReset,
                    target: user.email.normalized(),
                    recipient: user.email.as_str(),
                    user_id: Some(&user.id),
                    user_locale: user.profile.locale.as_deref(),
                    ttl: RESET_TTL,
                    link_path: Some("reset-password"),
                    code: false,
                    data: serde_json::json!({}),
                    vars: TemplateVars::default(),
                },
                "password.reset_requested",
                serde_json::json!({}),
            )
            .await
    }

    /// For an address without an active account: the same template work and one
    /// transaction (an audit event, useful on its own for spotting enumeration), so the
    /// answer takes about as long as a real reset request.
    async fn decoy_reset(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        now: time::OffsetDateTime,
        email: &Email,
    ) -> Result<(), ServiceError> {
        let vars = TemplateVars {
            link: Some(self.messenger.link(tenant, "reset-password", "ot_")),
            ..TemplateVars::default()
        };
        self.messenger.compose(tenant, ctx, now, MessageKind::PasswordReset, email.as_str(), None, &vars).await?;
        let data = serde_json::json!({ "account": "none" });
        let event = AuditEvent::by_user(now, ctx, "password.reset_requested", &tenant.id, None, data);
        Ok(self.store.append_audit_events(std::slice::from_ref(&event)).await?)
    }

    /// Sets a new password with a reset token: signs out every session, proves the
    /// address, lifts the sign-in back-off and tells the user. Issues no tokens, so a
    /// second factor is never skipped.
    pub async fn reset_password(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        token: &str,
        new_password: &SecretString,
    ) -> Result<(), ServiceError> {
        let secret = self
            .find(tenant, ctx, Purpose::PasswordReset, &Proof::Token(token.to_owned()), None, |_| String::new())
            .await?;
        let user_id = secret.user_id.clone().ok_or(ServiceError::InvalidCode)?;
        let mut user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidCode)?;
        if user.email.normalized() != secret.target || user.status != UserStatus::Active {
            return Err(ServiceError::InvalidCode);
        }
        check_policy(&tenant.settings.password_policy, new_password.expose(), &user.email)
            .map_err(|e| ServiceError::Validation(vec![crate::error::FieldError::new("new_password", e.message)]))?;
        let now = self.clock.now();
        user.password_hash = Some(self.hasher.hash(new_password).await?);
        user.email_verified = true;
        user.updated_at = now;
        let notice = self
            .messenger
            .compose(
                tenant,
                ctx,
                now,
                MessageKind::PasswordResetDone,
                user.email.as_str(),
                user.profile.locale.as_deref(),
                &TemplateVars::for_tenant(tenant),
            )
            .await?;
        let event =
            AuditEvent::by_user(now, ctx, "password.reset", &tenant.id, Some(user.id.as_str()), serde_json::json!({}));
        self.redeem(tenant, &secret, UserWrite::Update(&user), Some("password_reset"), &[notice], &event).await?;
        self.auth.clear_backoff(tenant, &user).await
    }

    /// Starts changing the signed-in user's address: a confirmation (link and code)
    /// goes to the new address. Nothing changes until it is confirmed.
    pub async fn request_email_change(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        new_email: &str,
        step_up: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.auth.sensitive(tenant, ctx, access_token, step_up).await?;
        let new_email = Email::parse(new_email).map_err(|why| ServiceError::invalid("new_email", &why))?;
        if new_email.normalized() == user.email.normalized() {
            return Err(ServiceError::invalid("new_email", "is already the account's address"));
        }
        self.limit_user(tenant, ctx, &user).await?;
        Self::limit_send(&self.auth, tenant, ctx, new_email.normalized()).await?;
        let now = self.clock.now();
        self.messenger
            .send(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose: Purpose::EmailChange,
                    kind: MessageKind::EmailChangeConfirm,
                    target: user.id.as_str(),
                    recipient: new_email.as_str(),
                    user_id: Some(&user.id),
                    user_locale: user.profile.locale.as_deref(),
                    ttl: EMAIL_CHANGE_TTL,
                    link_path: Some("confirm-email-change"),
                    code: true,
                    data: serde_json::json!({ "new_email": new_email.as_str(), "old_email": user.email.as_str() }),
                    vars: TemplateVars { email: Some(new_email.as_str().to_owned()), ..TemplateVars::default() },
                },
                "email.change_requested",
                serde_json::json!({}),
            )
            .await
    }

    /// Confirms an email change (link token, or code while signed in): the new address
    /// replaces the old, verified; the old address is told, with a link to undo.
    pub async fn confirm_email_change(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: Option<&str>,
        proof: Proof,
    ) -> Result<(), ServiceError> {
        let signed_in = match access_token {
            Some(token) => Some(self.auth.me(tenant, token).await?.0),
            None => None,
        };
        let proof = match proof {
            // Codes of an email change are bound to the account, not to an address.
            Proof::Code { code, .. } => Proof::Code { email: None, code },
            token => token,
        };
        let secret =
            self.find(tenant, ctx, Purpose::EmailChange, &proof, signed_in.as_ref(), |u| u.id.to_string()).await?;
        let user_id = secret.user_id.clone().ok_or(ServiceError::InvalidCode)?;
        let mut user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidCode)?;
        let new_email =
            secret.data["new_email"].as_str().and_then(|e| Email::parse(e).ok()).ok_or(ServiceError::InvalidCode)?;
        let old_email = user.email.clone();
        if secret.data["old_email"].as_str() != Some(old_email.as_str()) {
            return Err(ServiceError::InvalidCode);
        }
        let now = self.clock.now();
        user.email = new_email.clone();
        user.email_verified = true;
        user.updated_at = now;
        let undo = self
            .messenger
            .prepare(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose: Purpose::EmailChangeUndo,
                    kind: MessageKind::EmailChangeNotice,
                    target: user.id.as_str(),
                    recipient: old_email.as_str(),
                    user_id: Some(&user.id),
                    user_locale: user.profile.locale.as_deref(),
                    ttl: EMAIL_UNDO_TTL,
                    link_path: Some("undo-email-change"),
                    code: false,
                    data: serde_json::json!({ "old_email": old_email.as_str(), "new_email": new_email.as_str() }),
                    vars: TemplateVars { new_email: Some(new_email.as_str().to_owned()), ..TemplateVars::default() },
                },
            )
            .await?;
        let event = AuditEvent::by_user(
            now,
            ctx,
            "email.changed",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({ "notice_message_id": undo.message.id }),
        );
        self.redeem_with(tenant, &secret, UserWrite::Update(&user), None, Some(&undo.secret), &[undo.message], &event)
            .await
            .map_err(|e| match e {
                ServiceError::Conflict { .. } => {
                    ServiceError::Conflict { constraint: "users_tenant_id_email_normalized_key".into() }
                }
                other => other,
            })
    }

    /// Undoes an email change from the old address: restores it and signs out every
    /// session (whoever changed it may hold one).
    pub async fn undo_email_change(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        token: &str,
    ) -> Result<(), ServiceError> {
        let secret = self
            .find(tenant, ctx, Purpose::EmailChangeUndo, &Proof::Token(token.to_owned()), None, |_| String::new())
            .await?;
        let user_id = secret.user_id.clone().ok_or(ServiceError::InvalidCode)?;
        let mut user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidCode)?;
        let old_email =
            secret.data["old_email"].as_str().and_then(|e| Email::parse(e).ok()).ok_or(ServiceError::InvalidCode)?;
        let now = self.clock.now();
        user.email = old_email;
        user.email_verified = true;
        user.updated_at = now;
        let event = AuditEvent::by_user(
            now,
            ctx,
            "email.change_undone",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({}),
        );
        self.redeem(tenant, &secret, UserWrite::Update(&user), Some("email_change_undone"), &[], &event).await?;
        self.auth.clear_backoff(tenant, &user).await
    }

    /// Sends a code to a phone number the signed-in user wants to add.
    pub async fn send_phone_code(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        phone: &str,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        let phone = parse_phone(phone)?;
        self.limit_user(tenant, ctx, &user).await?;
        Self::limit_send(&self.auth, tenant, ctx, &phone).await?;
        let now = self.clock.now();
        self.messenger
            .send(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose: Purpose::PhoneVerify,
                    kind: MessageKind::PhoneVerify,
                    target: &format!("{}|{phone}", user.id),
                    recipient: &phone,
                    user_id: Some(&user.id),
                    user_locale: user.profile.locale.as_deref(),
                    ttl: PHONE_CODE_TTL,
                    link_path: None,
                    code: true,
                    data: serde_json::json!({ "phone": phone }),
                    vars: TemplateVars::default(),
                },
                "phone.code_sent",
                serde_json::json!({}),
            )
            .await
    }

    /// Sets the signed-in user's phone number, verified, with the code sent to it.
    pub async fn verify_phone(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        phone: &str,
        code: &str,
    ) -> Result<User, ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        let phone = parse_phone(phone)?;
        let target = format!("{}|{phone}", user.id);
        let secret = self
            .find(
                tenant,
                ctx,
                Purpose::PhoneVerify,
                &Proof::Code { email: None, code: code.to_owned() },
                Some(&user),
                |_| target.clone(),
            )
            .await?;
        let mut user = user;
        let now = self.clock.now();
        user.profile.phone = Some(phone);
        user.profile.phone_verified = true;
        user.updated_at = now;
        let event =
            AuditEvent::by_user(now, ctx, "phone.verified", &tenant.id, Some(user.id.as_str()), serde_json::json!({}));
        self.redeem(tenant, &secret, UserWrite::Update(&user), None, &[], &event).await?;
        Ok(user)
    }
}

/// An E.164 number, spaces removed.
pub fn parse_phone(raw: &str) -> Result<String, ServiceError> {
    let phone: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let profile = crate::user::UserProfile { phone: Some(phone.clone()), ..Default::default() };
    crate::user::check_profile(&profile).map_err(ServiceError::Validation)?;
    Ok(phone)
}

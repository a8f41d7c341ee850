//! Signing in without a password: magic links and one-time codes by email or SMS.
//!
//! Sending answers alike whether or not an account exists. A first sign-in by email
//! creates the account when the tenant allows open sign-up (the link or code proves the
//! address). Links redirect only to the tenant's registered redirect URIs, and can be
//! bound to the browser that asked for them.

use super::auth::{AuthService, LoginOutcome, SecretSignIn};
use super::messenger::{Dispatch, LINK_TOKEN_PREFIX, Messenger, is_code_shaped};
use super::templates::TemplateVars;
use super::verification::{REDEEMS_PER_IP, VerificationService, parse_phone};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::{OneTimeId, UserId};
use crate::messaging::{MessageKind, OneTimeSecret, Purpose, Redemption, UserWrite};
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::store::Store;
use crate::tenant::{SignupMode, Tenant};
use crate::user::{Email, User, UserStatus};
use std::sync::Arc;
use time::Duration;

/// Validity of a magic link.
const MAGIC_LINK_TTL: Duration = Duration::minutes(15);
/// Validity of the code a magic link redirects with.
const MAGIC_CODE_TTL: Duration = Duration::minutes(2);
/// Validity of a sign-in code (the issue asks for 10 minutes).
const LOGIN_CODE_TTL: Duration = Duration::minutes(10);
/// Prefix of the one-time code a magic link redirects with.
pub const MAGIC_CODE_PREFIX: &str = "mlc_";
/// Prefix of the browser-binding cookie value.
pub const BROWSER_BINDING_PREFIX: &str = "mlb_";

/// Where a code or link was sent.
#[derive(Debug, Clone)]
pub enum Address {
    /// An email address.
    Email(String),
    /// An E.164 phone number.
    Phone(String),
}

/// How a verified magic link continues.
#[derive(Debug)]
pub enum MagicLinkOutcome {
    /// Tokens (or the second-factor challenge), for a client that asked for JSON.
    Tokens(Box<LoginOutcome>),
    /// Redirect the browser here (the registered URI with a one-time `code`).
    Redirect(String),
}

/// The passwordless flows.
#[derive(Debug, Clone)]
pub struct PasswordlessService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    auth: AuthService,
    messenger: Messenger,
}

impl PasswordlessService {
    /// Wires the service.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, auth: AuthService, messenger: Messenger) -> Self {
        Self { store, clock, auth, messenger }
    }

    /// The account an email sign-in may use: the active owner of the address, or none
    /// when a new one may be created; `Err` when it may not proceed.
    async fn email_account(&self, tenant: &Tenant, email: &Email) -> Result<Option<User>, ServiceError> {
        match self.store.find_user_by_email(&tenant.id, email.normalized()).await? {
            Some(user) if user.status == UserStatus::Active => Ok(Some(user)),
            Some(_) => Err(ServiceError::InvalidCode),
            None if tenant.settings.signup == SignupMode::Open => Ok(None),
            None => Err(ServiceError::InvalidCode),
        }
    }

    /// Emails a sign-in link. Returns the browser-binding value to set as a cookie when
    /// the tenant binds links to the asking browser (also when nothing was sent).
    pub async fn send_magic_link(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        email: &str,
        redirect_uri: &str,
    ) -> Result<Option<SecretString>, ServiceError> {
        if !tenant.settings.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(ServiceError::invalid("redirect_uri", "is not one of the tenant's redirect URIs"));
        }
        let email = Email::parse(email).map_err(|why| ServiceError::invalid("email", &why))?;
        VerificationService::limit_send(&self.auth, tenant, ctx, email.normalized()).await?;
        let binding = tenant.settings.magic_link_same_browser.then(|| generate_secret(BROWSER_BINDING_PREFIX));
        let Ok(user) = self.email_account(tenant, &email).await else { return Ok(binding.map(|b| b.value)) };
        let mut data = serde_json::json!({ "redirect_uri": redirect_uri });
        if let Some(b) = &binding {
            data["browser"] = serde_json::Value::String(b.hash.as_str().to_owned());
        }
        let now = self.clock.now();
        self.messenger
            .send(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose: Purpose::MagicLink,
                    kind: MessageKind::MagicLink,
                    target: email.normalized(),
                    recipient: email.as_str(),
                    user_id: user.as_ref().map(|u| &u.id),
                    user_locale: user.as_ref().and_then(|u| u.profile.locale.as_deref()),
                    ttl: MAGIC_LINK_TTL,
                    link_path: Some("auth/magic-link/verify"),
                    code: false,
                    data,
                    vars: TemplateVars { email: Some(email.as_str().to_owned()), ..TemplateVars::default() },
                },
                "magic_link.sent",
                serde_json::json!({}),
            )
            .await?;
        Ok(binding.map(|b| b.value))
    }

    /// Redeems a magic link: tokens when `want_tokens`, else a redirect to the
    /// registered URI carrying a short-lived one-time code for [`Self::exchange`].
    pub async fn verify_magic_link(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        token: &str,
        browser: Option<&str>,
        want_tokens: bool,
    ) -> Result<MagicLinkOutcome, ServiceError> {
        self.auth.limit(tenant, ctx, "one_time_redeem", REDEEMS_PER_IP).await?;
        if !token.starts_with(LINK_TOKEN_PREFIX) || token.len() > 128 {
            return Err(ServiceError::InvalidCode);
        }
        let now = self.clock.now();
        let secret = self
            .store
            .find_one_time_by_token(&tenant.id, Purpose::MagicLink, &SecretHash::of(token), now)
            .await?
            .ok_or(ServiceError::InvalidCode)?;
        if let Some(expected) = secret.data["browser"].as_str() {
            let presented = SecretHash::of(browser.unwrap_or_default());
            let same: bool = subtle::ConstantTimeEq::ct_eq(presented.as_str().as_bytes(), expected.as_bytes()).into();
            if !same {
                return Err(ServiceError::InvalidCode);
            }
        }
        let redirect_uri = secret.data["redirect_uri"].as_str().unwrap_or_default().to_owned();
        let email = Email::parse(&secret.target).map_err(|_| ServiceError::InvalidCode)?;
        let existing = self.email_account(tenant, &email).await?;
        let (user, inserted) = self.signed_in_user(tenant, existing, email);
        let write = if inserted { UserWrite::Insert(&user) } else { UserWrite::Update(&user) };
        if want_tokens {
            let outcome = self.sign_in(tenant, ctx, &secret, write, &user, &["email"], "magic_link").await?;
            return Ok(MagicLinkOutcome::Tokens(Box::new(outcome)));
        }
        let code = generate_secret(MAGIC_CODE_PREFIX);
        let follow_up = OneTimeSecret {
            id: OneTimeId::generate(),
            tenant_id: tenant.id.clone(),
            purpose: Purpose::MagicLinkCode,
            target: user.id.to_string(),
            user_id: Some(user.id.clone()),
            token_hash: Some(code.hash),
            code_hash: None,
            attempts: 0,
            max_attempts: 1,
            data: serde_json::json!({}),
            created_at: now,
            expires_at: now + MAGIC_CODE_TTL,
            consumed_at: None,
        };
        let event = AuditEvent::by_user(
            now,
            ctx,
            "magic_link.verified",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({ "created_account": inserted }),
        );
        let redemption = Redemption {
            secret_id: &secret.id,
            now,
            user: write,
            revoke_sessions: None,
            session: None,
            issue: Some(&follow_up),
            messages: &[],
            event: &event,
        };
        super::redeem(self.store.as_ref(), &tenant.id, &redemption, ServiceError::InvalidCode).await?;
        let mut url = url::Url::parse(&redirect_uri).map_err(|_| ServiceError::InvalidCode)?;
        url.query_pairs_mut().append_pair("code", code.value.expose());
        Ok(MagicLinkOutcome::Redirect(url.into()))
    }

    /// Trades the one-time code of a magic-link redirect for tokens.
    pub async fn exchange(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        code: &str,
    ) -> Result<LoginOutcome, ServiceError> {
        self.auth.limit(tenant, ctx, "one_time_redeem", REDEEMS_PER_IP).await?;
        if !code.starts_with(MAGIC_CODE_PREFIX) || code.len() > 128 {
            return Err(ServiceError::InvalidCode);
        }
        let now = self.clock.now();
        let secret = self
            .store
            .find_one_time_by_token(&tenant.id, Purpose::MagicLinkCode, &SecretHash::of(code), now)
            .await?
            .ok_or(ServiceError::InvalidCode)?;
        let user_id: UserId = secret.user_id.clone().ok_or(ServiceError::InvalidCode)?;
        let mut user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidCode)?;
        if user.status != UserStatus::Active {
            return Err(ServiceError::InvalidCode);
        }
        user.last_login_at = Some(now);
        self.sign_in(tenant, ctx, &secret, UserWrite::Update(&user), &user, &["email"], "magic_link").await
    }

    /// Sends a sign-in code by email or SMS; answers alike whether or not an account
    /// has the address.
    pub async fn send_code(&self, tenant: &Tenant, ctx: &RequestContext, to: Address) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let (purpose, kind, target, recipient, user) = match to {
            Address::Email(raw) => {
                let email = Email::parse(&raw).map_err(|why| ServiceError::invalid("email", &why))?;
                VerificationService::limit_send(&self.auth, tenant, ctx, email.normalized()).await?;
                let Ok(user) = self.email_account(tenant, &email).await else { return Ok(()) };
                (
                    Purpose::EmailLogin,
                    MessageKind::EmailLoginCode,
                    email.normalized().to_owned(),
                    email.as_str().to_owned(),
                    user,
                )
            }
            Address::Phone(raw) => {
                let phone = parse_phone(&raw)?;
                VerificationService::limit_send(&self.auth, tenant, ctx, &phone).await?;
                let user = self.store.find_user_by_verified_phone(&tenant.id, &phone).await?;
                let Some(user) = user.filter(|u| u.status == UserStatus::Active) else { return Ok(()) };
                (Purpose::SmsLogin, MessageKind::SmsLoginCode, phone.clone(), phone, Some(user))
            }
        };
        self.messenger
            .send(
                tenant,
                ctx,
                now,
                Dispatch {
                    purpose,
                    kind,
                    target: &target,
                    recipient: &recipient,
                    user_id: user.as_ref().map(|u| &u.id),
                    user_locale: user.as_ref().and_then(|u| u.profile.locale.as_deref()),
                    ttl: LOGIN_CODE_TTL,
                    link_path: None,
                    code: true,
                    data: serde_json::json!({}),
                    vars: TemplateVars::default(),
                },
                "login_code.sent",
                serde_json::json!({ "channel": kind.channel().as_str(), }),
            )
            .await
    }

    /// Signs in with a code sent by [`Self::send_code`]. After five wrong codes the code
    /// dies; a new one must be requested.
    pub async fn verify_code(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        to: Address,
        code: &str,
    ) -> Result<LoginOutcome, ServiceError> {
        self.auth.limit(tenant, ctx, "one_time_redeem", REDEEMS_PER_IP).await?;
        let (purpose, target) = match &to {
            Address::Email(raw) => {
                (Purpose::EmailLogin, Email::parse(raw).map_err(|_| ServiceError::InvalidCode)?.normalized().to_owned())
            }
            Address::Phone(raw) => (Purpose::SmsLogin, parse_phone(raw).map_err(|_| ServiceError::InvalidCode)?),
        };
        if !is_code_shaped(code) {
            return Err(ServiceError::InvalidCode);
        }
        let now = self.clock.now();
        let secret = self
            .store
            .attempt_one_time_code(&tenant.id, purpose, &target, now)
            .await?
            .ok_or(ServiceError::InvalidCode)?;
        if !self.messenger.code_matches(&secret, code) {
            let left = secret.max_attempts.saturating_sub(secret.attempts);
            let event = AuditEvent::by_user(
                now,
                ctx,
                "login.failure",
                &tenant.id,
                secret.user_id.as_ref().map(UserId::as_str),
                serde_json::json!({ "reason": "invalid_code", "attempts_left": left }),
            );
            self.auth_audit(event).await?;
            return Err(ServiceError::InvalidCode);
        }
        match to {
            Address::Email(_) => {
                let email = Email::parse(&secret.target).map_err(|_| ServiceError::InvalidCode)?;
                let existing = self.email_account(tenant, &email).await?;
                let (user, inserted) = self.signed_in_user(tenant, existing, email);
                let write = if inserted { UserWrite::Insert(&user) } else { UserWrite::Update(&user) };
                self.sign_in(tenant, ctx, &secret, write, &user, &["otp", "email"], "email_code").await
            }
            Address::Phone(_) => {
                let mut user = self
                    .store
                    .find_user_by_verified_phone(&tenant.id, &secret.target)
                    .await?
                    .filter(|u| u.status == UserStatus::Active && Some(&u.id) == secret.user_id.as_ref())
                    .ok_or(ServiceError::InvalidCode)?;
                user.last_login_at = Some(now);
                self.sign_in(tenant, ctx, &secret, UserWrite::Update(&user), &user, &["otp", "sms"], "sms_code").await
            }
        }
    }

    async fn auth_audit(&self, event: AuditEvent) -> Result<(), ServiceError> {
        self.store.append_audit_events(std::slice::from_ref(&event)).await.map_err(ServiceError::from)
    }

    /// The user an email sign-in ends with: the existing one, verified and signed in
    /// now, or a new passwordless account (`true`).
    fn signed_in_user(&self, tenant: &Tenant, existing: Option<User>, email: Email) -> (User, bool) {
        let now = self.clock.now();
        match existing {
            Some(mut user) => {
                user.email_verified = true;
                user.last_login_at = Some(now);
                user.updated_at = now;
                (user, false)
            }
            None => (
                User {
                    email_verified: true,
                    last_login_at: Some(now),
                    ..User::signing_up(&tenant.id, email, None, now)
                },
                true,
            ),
        }
    }

    /// Consumes the secret and starts a session in one transaction; returns the tokens.
    #[allow(clippy::too_many_arguments, reason = "each argument is one fact of the sign-in")]
    async fn sign_in(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        secret: &OneTimeSecret,
        write: UserWrite<'_>,
        user: &User,
        amr: &[&str],
        via: &str,
    ) -> Result<LoginOutcome, ServiceError> {
        let now = self.clock.now();
        if let Some((challenge_secret, challenge)) =
            super::mfa::challenge_for(self.store.as_ref(), tenant, user, amr, now).await?
        {
            let data = serde_json::json!({ "via": via, "factors": challenge.factors });
            let event = AuditEvent::by_user(now, ctx, "login.mfa_required", &tenant.id, Some(user.id.as_str()), data);
            let redemption = Redemption {
                secret_id: &secret.id,
                now,
                user: write,
                revoke_sessions: None,
                session: None,
                issue: Some(&challenge_secret),
                messages: &[],
                event: &event,
            };
            super::redeem(self.store.as_ref(), &tenant.id, &redemption, ServiceError::InvalidCode).await?;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        let insert = matches!(write, UserWrite::Insert(_));
        let sign_in = SecretSignIn {
            secret_id: &secret.id,
            user: user.clone(),
            insert,
            amr,
            data: serde_json::json!({ "via": via, "created_account": insert }),
        };
        let tokens = self.auth.redeem_into_session(tenant, ctx, sign_in, ServiceError::InvalidCode).await?;
        Ok(LoginOutcome::SignedIn(Box::new(tokens)))
    }
}

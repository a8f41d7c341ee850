//! The end-user authentication flows of a tenant: sign-up, password sign-in, refresh and
//! sign-out. The signed-in user's own account (profile, password, sessions, step-up) is
//! in the `account` submodule, the flows' rate limits in `limits`.
//!
//! Sign-in answers the same for unknown accounts, wrong passwords and disabled users,
//! and costs the same (a dummy hash is verified when there is no account). Failed
//! sign-ins per account back off exponentially from the fifth; attempts per IP are
//! capped. When the ephemeral store is down these checks fail closed.

mod account;
mod limits;

use limits::{ip_subject, limit_key};

use super::AuditLog;
use super::keys::KeyService;
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::ephemeral::{EphemeralError, EphemeralStore};
use crate::error::{FieldError, ServiceError};
use crate::ids::{SessionId, UserId};
use crate::messaging::{SignUp, SignUpStart};
use crate::passkey::SecondFactors;
use crate::password::{PasswordHasher, Verified, check_policy};
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::session::{RefreshOutcome, RefreshToken, Session};
use crate::signing::{AccessClaims, Sealer};
use crate::store::{RotationEvent, Store, StoreError};
use crate::tenant::{SignupMode, Tenant, TenantSlug};
use crate::user::{Email, User, UserStatus, check_user_name};
use std::sync::Arc;
use std::time::Duration;

/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "rt_";
/// Sign-in attempts one IP may make per minute per tenant.
const LOGIN_ATTEMPTS_PER_IP: u64 = 60;
/// Sign-ups one IP may make per minute per tenant.
const SIGNUPS_PER_IP: u64 = 10;
/// Consecutive failures before an account backs off.
const FAILURES_BEFORE_BACKOFF: u64 = 5;
/// Longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long failures are remembered.
const FAILURE_MEMORY: Duration = Duration::from_secs(60 * 60);
/// The window of every per-IP limit.
const PER_IP_WINDOW: Duration = Duration::from_secs(60);

/// Tokens handed to a signed-in client.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u32,
    /// The opaque, single-use refresh token.
    pub refresh_token: SecretString,
    /// The user.
    pub user: User,
}

/// How a new account goes on after its sign-up (what [`SignUpStart`] stores, with what
/// the caller then needs).
enum NewAccountNext {
    /// The address must be verified first.
    Verify,
    /// A second factor to enrol: its challenge secret, the challenge, `login.mfa_required`.
    Enrol(crate::messaging::OneTimeSecret, super::mfa::Challenge, AuditEvent),
    /// A session: it, its first refresh token and that token's secret, `login.success`.
    Session(Session, RefreshToken, SecretString, AuditEvent),
}

/// A sign-in completed by redeeming a one-time secret (a code, a link, a challenge, an
/// approval): see [`AuthService::redeem_into_session`].
#[derive(Debug)]
pub struct SecretSignIn<'a> {
    /// The secret consumed by the sign-in.
    pub secret_id: &'a crate::ids::OneTimeId,
    /// The user (its sign-in time is set here).
    pub user: User,
    /// Whether the user is new (inserted) rather than updated.
    pub insert: bool,
    /// The session's authentication methods.
    pub amr: &'a [&'a str],
    /// Audit data of `login.success` (the session id and `amr` are added).
    pub data: serde_json::Value,
}

/// How a first factor ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(Box<TokenSet>),
    /// A second factor is needed first (or must be enrolled): answer the challenge.
    MfaRequired(super::mfa::Challenge),
}

/// What sign-up produced.
#[derive(Debug, Clone)]
pub enum SignupOutcome {
    /// Signed in at once.
    SignedIn(Box<TokenSet>),
    /// The tenant requires a second factor: enroll one with the challenge first.
    MfaRequired(super::mfa::Challenge),
    /// The tenant wants a verified email first.
    VerificationRequired,
}

/// What the authentication service is built from.
#[derive(Debug, Clone)]
pub struct AuthDeps {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Rate limits and back-off.
    pub ephemeral: Arc<dyn EphemeralStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The audit log.
    pub audit: AuditLog,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Signing keys.
    pub keys: KeyService,
    /// Seals grace-window successors under the master key.
    pub sealer: Arc<Sealer>,
    /// `GATEHOUSE_PUBLIC_URL`; issuers derive from it.
    pub public_url: String,
    /// Composes the verification message sent at sign-up.
    pub messenger: super::messenger::Messenger,
    /// Tenants recently read by slug.
    pub tenants: super::tenants::TenantCache,
}

/// The authentication use cases.
#[derive(Debug, Clone)]
pub struct AuthService {
    store: Arc<dyn Store>,
    ephemeral: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    hasher: PasswordHasher,
    keys: KeyService,
    sealer: Arc<Sealer>,
    public_url: String,
    messenger: super::messenger::Messenger,
    tenants: super::tenants::TenantCache,
}

fn unavailable(e: EphemeralError) -> ServiceError {
    ServiceError::Unavailable(e.to_string())
}

impl AuthService {
    /// Wires the service.
    pub fn new(deps: AuthDeps) -> Self {
        let public_url = deps.public_url.trim_end_matches('/').to_owned();
        Self {
            store: deps.store,
            ephemeral: deps.ephemeral,
            clock: deps.clock,
            audit: deps.audit,
            hasher: deps.hasher,
            keys: deps.keys,
            sealer: deps.sealer,
            public_url,
            messenger: deps.messenger,
            tenants: deps.tenants,
        }
    }

    /// The tenant behind a URL slug (from memory if read in the last two seconds).
    pub async fn tenant(&self, slug: &str) -> Result<Tenant, ServiceError> {
        if let Some(tenant) = self.tenants.get(slug) {
            return Ok(tenant);
        }
        let slug = TenantSlug::parse(slug).map_err(|_| ServiceError::NotFound { resource: "tenant" })?;
        let tenant = self.store.get_tenant_by_slug(&slug).await.map_err(ServiceError::from_store("tenant"))?;
        self.tenants.put(&tenant);
        Ok(tenant)
    }

    /// The tenant's token issuer.
    pub fn issuer(&self, tenant: &Tenant) -> String {
        format!("{}/t/{}", self.public_url, tenant.slug.as_str())
    }

    /// Creates an account with a password.
    pub async fn signup(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        email: &str,
        password: &SecretString,
        name: Option<String>,
    ) -> Result<SignupOutcome, ServiceError> {
        self.limit(tenant, ctx, "signup", SIGNUPS_PER_IP).await?;
        if tenant.settings.signup == SignupMode::InviteOnly {
            return Err(ServiceError::Forbidden("sign-up is by invitation only"));
        }
        let mut errors = Vec::new();
        let email = Email::parse(email).map_err(|why| errors.push(FieldError::new("email", why)));
        let name = check_user_name(name).map_err(|why| errors.push(FieldError::new("name", why)));
        let (Ok(email), Ok(name)) = (email, name) else { return Err(ServiceError::Validation(errors)) };
        check_policy(&tenant.settings.password_policy, password.expose(), &email)
            .map_err(|e| ServiceError::Validation(vec![e]))?;
        let now = self.clock.now();
        let user = User {
            password_hash: Some(self.hasher.hash(password).await?),
            ..User::signing_up(&tenant.id, email, name, now)
        };
        // The account and its verification message are stored together, or neither.
        let verification =
            super::verification::VerificationService::verification_dispatch(&self.messenger, tenant, ctx, now, &user)
                .await?;
        let event = AuditEvent::by_user(
            now,
            ctx,
            "user.signup",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({ "verification_message_id": verification.message.id }),
        );
        // How the account goes on is decided before it is stored, so that it is stored
        // with it: the verification first, else a second factor to enrol (a new account
        // has none), else a session. One transaction either way.
        let verify_first = tenant.settings.require_verified_email;
        let next = if verify_first {
            NewAccountNext::Verify
        } else if let Some((secret, challenge)) =
            super::mfa::challenge_with(tenant, &user, SecondFactors::default(), &["pwd"], now)
        {
            let data = serde_json::json!({ "factors": challenge.factors, "enrollment_required": true });
            let event = AuditEvent::by_user(now, ctx, "login.mfa_required", &tenant.id, Some(user.id.as_str()), data);
            NewAccountNext::Enrol(secret, challenge, event)
        } else {
            let (session, first, refresh_token) = self.new_session(tenant, ctx, &user.id, &["pwd"]);
            let data = serde_json::json!({ "session_id": session.id, "via": "signup" });
            let event =
                AuditEvent::by_user(session.created_at, ctx, "login.success", &tenant.id, Some(user.id.as_str()), data);
            NewAccountNext::Session(session, first, refresh_token, event)
        };
        let then = match &next {
            NewAccountNext::Verify => SignUpStart::Nothing,
            NewAccountNext::Enrol(secret, _, event) => SignUpStart::Challenge(secret, event),
            NewAccountNext::Session(session, first, _, event) => SignUpStart::Session(session, first, event),
        };
        let messages = [verification.message];
        let sign_up =
            SignUp { user: &user, verification: &verification.secret, messages: &messages, event: &event, then };
        match self.store.sign_up(&tenant.id, &sign_up).await {
            Ok(()) => self.messenger.queued(),
            Err(StoreError::Conflict { constraint }) => {
                if verify_first {
                    // Answer exactly as for a new account, revealing nothing.
                    return Ok(SignupOutcome::VerificationRequired);
                }
                return Err(ServiceError::Conflict { constraint });
            }
            Err(e) => return Err(e.into()),
        }
        match next {
            NewAccountNext::Verify => Ok(SignupOutcome::VerificationRequired),
            NewAccountNext::Enrol(_, challenge, _) => Ok(SignupOutcome::MfaRequired(challenge)),
            NewAccountNext::Session(session, _, refresh_token, _) => {
                let tokens = self.token_set(tenant, user, &session, refresh_token).await?;
                Ok(SignupOutcome::SignedIn(Box::new(tokens)))
            }
        }
    }

    /// Signs in with email and password.
    pub async fn login(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        email: &str,
        password: &SecretString,
    ) -> Result<LoginOutcome, ServiceError> {
        // An unparseable address is simply an unknown account: same work, same answer.
        let email = Email::parse(email).ok();
        let account_key = email.as_ref().map(|e| format!("login:acct:{}:{}", tenant.id, e.normalized()));
        // The attempt is counted against the caller's IP, and the account's back-off and
        // failure count are read, in one trip to the ephemeral store: the three commands
        // are issued together and travel pipelined on its one multiplexed connection.
        let ip_key = limit_key(tenant, "login", &ip_subject(ctx));
        let attempts = self.ephemeral.increment(&ip_key, PER_IP_WINDOW);
        let (attempts, locked, failures) = match &account_key {
            Some(key) => {
                let locked = format!("{key}:locked");
                tokio::try_join!(attempts, self.ephemeral.cache_get(&locked), self.ephemeral.hits(key))
                    .map_err(unavailable)?
            }
            None => (attempts.await.map_err(unavailable)?, None, 0),
        };
        self.refuse_past_limit(tenant, ctx, "login", attempts, LOGIN_ATTEMPTS_PER_IP, PER_IP_WINDOW).await?;
        if let Some(until) = locked {
            let retry_after = String::from_utf8_lossy(&until).parse().unwrap_or(1);
            return Err(ServiceError::RateLimited { retry_after });
        }
        // The account and its second factors in one read (one round trip fewer per sign-in).
        let found = match &email {
            Some(e) => self.store.find_user_for_sign_in(&tenant.id, e.normalized()).await?,
            None => None,
        };
        let (user, factors) = found.map_or((None, SecondFactors::default()), |(u, f)| (Some(u), f));
        let verified = self.hasher.verify(password, user.as_ref().and_then(|u| u.password_hash.as_deref())).await?;
        let now = self.clock.now();
        let (Some(mut user), Verified::Yes { rehash }) = (user, verified) else {
            return Err(self.failed_login(tenant, ctx, account_key.as_deref(), None, "invalid_credentials").await);
        };
        if user.status != UserStatus::Active {
            return Err(self.failed_login(tenant, ctx, account_key.as_deref(), Some(&user.id), "user_disabled").await);
        }
        // Only the right password learns that the address is unproven.
        if tenant.settings.require_verified_email && !user.email_verified {
            let data = serde_json::json!({ "reason": "email_not_verified" });
            let event = AuditEvent::by_user(now, ctx, "login.failure", &tenant.id, Some(user.id.as_str()), data);
            self.audit.record(event).await?;
            return Err(ServiceError::EmailNotVerified);
        }
        // The right password ends a run of failures. Most sign-ins follow none, and they
        // skip the delete. A failure racing this sign-in may survive it: that can only
        // bring a back-off sooner, never put one off.
        if let Some(key) = &account_key
            && failures > 0
        {
            self.ephemeral.cache_delete(key).await.map_err(unavailable)?;
        }
        if let Some((secret, challenge)) = super::mfa::challenge_with(tenant, &user, factors, &["pwd"], now) {
            let data = serde_json::json!({
                "factors": challenge.factors,
                "enrollment_required": challenge.enrollment_required,
            });
            let event = AuditEvent::by_user(now, ctx, "login.mfa_required", &tenant.id, Some(user.id.as_str()), data);
            self.store.issue_one_time(&tenant.id, &secret, &[], &event).await?;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        user.last_login_at = Some(now);
        let rehashed = rehash.is_some();
        if let Some(new_hash) = rehash {
            user.password_hash = Some(new_hash);
            user.updated_at = now;
        }
        let tokens = self.start_session(tenant, ctx, user, rehashed).await?;
        Ok(LoginOutcome::SignedIn(Box::new(tokens)))
    }

    async fn failed_login(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        account_key: Option<&str>,
        user_id: Option<&UserId>,
        reason: &str,
    ) -> ServiceError {
        let data = serde_json::json!({ "reason": reason });
        let event =
            AuditEvent::by_user(self.clock.now(), ctx, "login.failure", &tenant.id, user_id.map(UserId::as_str), data);
        if let Err(e) = self.audit.record(event).await {
            return e;
        }
        if let Some(key) = account_key {
            match self.ephemeral.increment(key, FAILURE_MEMORY).await {
                Ok(count) if count.hits >= FAILURES_BEFORE_BACKOFF => {
                    let exponent = u32::try_from(count.hits - FAILURES_BEFORE_BACKOFF).unwrap_or(u32::MAX).min(10);
                    let backoff = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
                    let locked = format!("{key}:locked");
                    let value = backoff.as_secs().to_string();
                    if let Err(e) = self.ephemeral.cache_set(&locked, value.as_bytes(), backoff).await {
                        return unavailable(e);
                    }
                    let data =
                        serde_json::json!({ "consecutive_failures": count.hits, "backoff_seconds": backoff.as_secs() });
                    let uid = user_id.map(UserId::as_str);
                    let event = AuditEvent::by_user(self.clock.now(), ctx, "login.throttled", &tenant.id, uid, data);
                    if let Err(e) = self.audit.record(event).await {
                        return e;
                    }
                }
                Ok(_) => {}
                Err(e) => return unavailable(e),
            }
        }
        ServiceError::InvalidCredentials
    }

    /// Trades a refresh token for a new token set; a reused token ends its session.
    pub async fn refresh(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        presented: &str,
    ) -> Result<TokenSet, ServiceError> {
        if !presented.starts_with(REFRESH_TOKEN_PREFIX) || presented.len() > 128 {
            return Err(ServiceError::InvalidToken);
        }
        let now = self.clock.now();
        let (successor, secret) = self.new_refresh_token(tenant, now);
        let presented_hash = SecretHash::of(presented);
        // Kept with the spent token, bound to it, for a concurrent request of the same client.
        let sealed = self.sealer.seal(presented_hash.as_str(), secret.expose().as_bytes())?;
        let grace = time::Duration::seconds(i64::from(tenant.settings.refresh_token_reuse_grace_seconds));
        // Every exchange of a refresh token is audited: a rotation in its own transaction,
        // a racing duplicate (which gets the same successor) on its own.
        let rotated = |raced: bool| RotationEvent::new(now, ctx, &tenant.id, raced);
        let event = rotated(false);
        let outcome = self
            .store
            .rotate_refresh_token(&tenant.id, &presented_hash, &successor, &sealed, now, grace, &event)
            .await?;
        let (session, user, secret) = match outcome {
            RefreshOutcome::Rotated { session, user } => (session, *user, secret),
            RefreshOutcome::Raced { session, successor_sealed, user } => {
                let plain = self.sealer.open(presented_hash.as_str(), &successor_sealed)?;
                let token = String::from_utf8(plain).map_err(ServiceError::internal)?;
                self.audit.record(rotated(true).for_session(&session)).await?;
                (session, *user, SecretString::new(token))
            }
            RefreshOutcome::Reused(session) => {
                let data = serde_json::json!({ "session_id": session.id });
                let uid = session.user_id.to_string();
                let event = AuditEvent::by_user(now, ctx, "refresh_token.reuse_detected", &tenant.id, Some(&uid), data);
                self.audit.record(event).await?;
                return Err(ServiceError::InvalidToken);
            }
            RefreshOutcome::Invalid => return Err(ServiceError::InvalidToken),
        };
        if user.status != UserStatus::Active {
            self.store.revoke_user_sessions(&tenant.id, &user.id, None, now, "user_disabled").await?;
            return Err(ServiceError::InvalidToken);
        }
        let access_token = self.access_token(tenant, &user, &session).await?;
        Ok(TokenSet { access_token, expires_in: tenant.settings.access_token_ttl_seconds, refresh_token: secret, user })
    }

    /// Ends the session a refresh token belongs to. Unknown tokens are not an error.
    pub async fn logout(&self, tenant: &Tenant, ctx: &RequestContext, presented: &str) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let revoked =
            self.store.revoke_session_by_refresh_token(&tenant.id, &SecretHash::of(presented), now, "logout").await?;
        if let Some(session) = revoked {
            let uid = session.user_id.to_string();
            let data = serde_json::json!({ "session_id": session.id });
            self.audit.record(AuditEvent::by_user(now, ctx, "user.logout", &tenant.id, Some(&uid), data)).await?;
        }
        Ok(())
    }

    /// A new session of `user_id` (not yet stored), its first refresh token and that
    /// token's secret, for flows that store the session in their own transaction.
    pub fn new_session(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        user_id: &UserId,
        amr: &[&str],
    ) -> (Session, RefreshToken, SecretString) {
        let now = self.clock.now();
        let session = Session {
            id: SessionId::generate(),
            tenant_id: tenant.id.clone(),
            user_id: user_id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + time::Duration::seconds(i64::from(tenant.settings.session_absolute_ttl_seconds)),
            auth_time: now,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            revoked_at: None,
            org_id: None,
        };
        let (first, secret) = self.new_refresh_token(tenant, now);
        (session, first, secret)
    }

    /// The token set of a stored session.
    pub async fn token_set(
        &self,
        tenant: &Tenant,
        user: User,
        session: &Session,
        refresh_token: SecretString,
    ) -> Result<TokenSet, ServiceError> {
        let access_token = self.access_token(tenant, &user, session).await?;
        Ok(TokenSet { access_token, expires_in: tenant.settings.access_token_ttl_seconds, refresh_token, user })
    }

    /// Consumes a one-time secret and starts a session in one transaction, with its
    /// `login.success` event; the tokens. `gone` is the error when the secret was used or
    /// expired meanwhile (of parallel redemptions, all but one get it).
    pub async fn redeem_into_session(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        sign_in: SecretSignIn<'_>,
        gone: ServiceError,
    ) -> Result<TokenSet, ServiceError> {
        let SecretSignIn { secret_id, mut user, insert, amr, mut data } = sign_in;
        let (session, refresh, refresh_secret) = self.new_session(tenant, ctx, &user.id, amr);
        user.last_login_at = Some(session.created_at);
        data["session_id"] = serde_json::Value::String(session.id.to_string());
        data["amr"] = serde_json::json!(amr);
        let event =
            AuditEvent::by_user(session.created_at, ctx, "login.success", &tenant.id, Some(user.id.as_str()), data);
        let redemption = crate::messaging::Redemption {
            secret_id,
            now: session.created_at,
            user: if insert {
                crate::messaging::UserWrite::Insert(&user)
            } else {
                crate::messaging::UserWrite::Update(&user)
            },
            revoke_sessions: None,
            session: Some((&session, &refresh)),
            issue: None,
            messages: &[],
            event: &event,
        };
        super::redeem(self.store.as_ref(), &tenant.id, &redemption, gone).await?;
        self.token_set(tenant, user, &session, refresh_secret).await
    }

    /// Ends a first factor other than a password (a passkey): a challenge when the
    /// tenant's policy and the user's factors ask for another, else a session (sign-in
    /// time, session, refresh token and `login.success` in one transaction).
    pub async fn sign_in_with(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        mut user: User,
        amr: &[&str],
        mut data: serde_json::Value,
    ) -> Result<LoginOutcome, ServiceError> {
        let now = self.clock.now();
        if let Some((secret, challenge)) =
            super::mfa::challenge_for(self.store.as_ref(), tenant, &user, amr, now).await?
        {
            let data = serde_json::json!({
                "factors": challenge.factors,
                "enrollment_required": challenge.enrollment_required,
                "amr": amr,
            });
            let event = AuditEvent::by_user(now, ctx, "login.mfa_required", &tenant.id, Some(user.id.as_str()), data);
            self.store.issue_one_time(&tenant.id, &secret, &[], &event).await?;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        let (session, first, secret) = self.new_session(tenant, ctx, &user.id, amr);
        user.last_login_at = Some(session.created_at);
        data["session_id"] = serde_json::Value::String(session.id.to_string());
        data["amr"] = serde_json::json!(amr);
        let event =
            AuditEvent::by_user(session.created_at, ctx, "login.success", &tenant.id, Some(user.id.as_str()), data);
        self.store.record_login(&tenant.id, &user, &session, &first, &event).await?;
        let tokens = self.token_set(tenant, user, &session, secret).await?;
        Ok(LoginOutcome::SignedIn(Box::new(tokens)))
    }

    /// Records an audit event on its own.
    pub async fn record(&self, event: AuditEvent) -> Result<(), ServiceError> {
        self.audit.record(event).await
    }

    /// Forgets an account's failed sign-ins and lifts its back-off (after a password
    /// reset proved the owner).
    pub async fn clear_backoff(&self, tenant: &Tenant, user: &User) -> Result<(), ServiceError> {
        let key = format!("login:acct:{}:{}", tenant.id, user.email.normalized());
        self.ephemeral.cache_delete(&key).await.map_err(unavailable)?;
        self.ephemeral.cache_delete(&format!("{key}:locked")).await.map_err(unavailable)
    }

    /// Ends a password sign-in: the sign-in time (and an upgraded hash, `rehashed`), the
    /// session, its first refresh token and `login.success` in one transaction.
    async fn start_session(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        user: User,
        rehashed: bool,
    ) -> Result<TokenSet, ServiceError> {
        let (session, first, secret) = self.new_session(tenant, ctx, &user.id, &["pwd"]);
        let data = serde_json::json!({ "session_id": session.id, "via": "password", "password_rehashed": rehashed });
        let event =
            AuditEvent::by_user(session.created_at, ctx, "login.success", &tenant.id, Some(user.id.as_str()), data);
        self.store.record_login(&tenant.id, &user, &session, &first, &event).await?;
        self.token_set(tenant, user, &session, secret).await
    }

    fn new_refresh_token(&self, tenant: &Tenant, now: time::OffsetDateTime) -> (RefreshToken, SecretString) {
        let generated = generate_secret(REFRESH_TOKEN_PREFIX);
        let ttl = time::Duration::seconds(i64::from(tenant.settings.refresh_token_ttl_seconds));
        (RefreshToken { hash: generated.hash, created_at: now, expires_at: now + ttl }, generated.value)
    }

    async fn access_token(&self, tenant: &Tenant, user: &User, session: &Session) -> Result<String, ServiceError> {
        // An org session's tokens carry the organization and the member's current role;
        // a member who left gets none.
        let org = match &session.org_id {
            Some(org_id) => {
                let member =
                    self.store.get_member(&tenant.id, org_id, &user.id).await?.ok_or(ServiceError::InvalidToken)?;
                let org = self.store.get_org(&tenant.id, org_id).await.map_err(|_| ServiceError::InvalidToken)?;
                let permissions = super::orgs::role_permissions(self.store.as_ref(), &tenant.id, &member.role)
                    .await?
                    .unwrap_or_default();
                Some((org, member.role, permissions))
            }
            None => None,
        };
        let now = self.clock.now().unix_timestamp();
        let claims = AccessClaims {
            iss: self.issuer(tenant),
            sub: user.id.to_string(),
            aud: tenant.id.to_string(),
            exp: now + i64::from(tenant.settings.access_token_ttl_seconds),
            iat: now,
            nbf: now,
            jti: crate::ids::EventId::generate().as_str().trim_start_matches("evt_").to_owned(),
            tid: tenant.id.to_string(),
            sid: session.id.to_string(),
            scope: "openid profile email".into(),
            amr: session.amr.clone(),
            auth_time: session.auth_time.unix_timestamp(),
            acr: Some(if session.amr.iter().any(|m| m == "mfa") { "aal2" } else { "aal1" }.to_owned()),
            org_id: org.as_ref().map(|(o, _, _)| o.id.to_string()),
            org_slug: org.as_ref().map(|(o, _, _)| o.slug.clone()),
            org_role: org.as_ref().map(|(_, role, _)| role.clone()),
            permissions: org.map(|(_, _, p)| p).unwrap_or_default(),
        };
        self.keys.signer(tenant).await?.sign(&claims)
    }
}

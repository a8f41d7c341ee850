//! Second factors: TOTP (RFC 6238, via totp-rs) with recovery codes, and the `mfa_token`
//! step between a first factor and the tokens.
//!
//! A first factor (password, magic link, emailed or texted code) of a user with TOTP
//! enabled ends in a challenge, never in tokens: a single-use `mfa_token` bound to the
//! user and tenant, valid five minutes, traded at `mfa/verify` with a TOTP code or a
//! recovery code. Under `mfa: required`, a user without a factor gets the same
//! challenge and enrolls with it (`totp/setup`, `totp/enable`) before any token exists.

use super::auth::{AuthService, SecretSignIn, SignupOutcome, TokenSet};
use super::passkeys::{AssertionFor, Ceremony, PasskeyService, Registrant};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::OneTimeId;
use crate::messaging::{MessageKind, OneTimeSecret, Purpose};
use crate::mfa::TotpFactor;
use crate::passkey::{Passkey, SecondFactors};
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::signing::Sealer;
use crate::store::{Store, StoreError};
use crate::tenant::{MfaPolicy, Tenant};
use crate::user::{User, UserStatus};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration as StdDuration;

/// Prefix of `mfa_token`s.
pub const MFA_TOKEN_PREFIX: &str = "mfa_";
/// Validity of an `mfa_token`.
const CHALLENGE_TTL: time::Duration = time::Duration::minutes(5);
/// Wrong second factors per challenge before it is refused.
const ATTEMPTS_PER_CHALLENGE: u64 = 5;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// TOTP secret length (160 bits, as RFC 4226 recommends).
const TOTP_SECRET_BYTES: usize = 20;

/// What a challenge answer carries.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The single-use token for `mfa/verify` (or enrollment).
    pub mfa_token: SecretString,
    /// The factors that can answer it.
    pub factors: Vec<&'static str>,
    /// The user has no factor yet and must enroll one (tenant policy `required`).
    pub enrollment_required: bool,
}

/// Who is acting on their own TOTP: a signed-in user, or one enrolling from a challenge.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `Authorization: Bearer` access token.
    Bearer(String),
    /// An `mfa_token` whose challenge requires enrollment.
    Challenge(String),
}

/// A new TOTP secret to show the user once.
#[derive(Debug)]
pub struct TotpSetup {
    /// Base32 secret for manual entry.
    pub secret: SecretString,
    /// `otpauth://totp/…` URI.
    pub otpauth_uri: SecretString,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

/// What enabling TOTP returns.
#[derive(Debug)]
pub struct Enabled {
    /// The recovery codes, shown this once.
    pub recovery_codes: Vec<SecretString>,
    /// Tokens, when the user enrolled from a sign-in challenge.
    pub tokens: Option<Box<TokenSet>>,
}

/// A second factor presented at `mfa/verify` or to confirm a sensitive change.
#[derive(Debug, Clone)]
pub enum Factor {
    /// A 6-digit TOTP code.
    Totp(String),
    /// A recovery code.
    RecoveryCode(String),
    /// A passkey assertion answering a ceremony begun for this user.
    Passkey {
        /// The ceremony (`passkeys/login/begin` with the `mfa_token` or bearer).
        ceremony_id: String,
        /// The credential as `navigator.credentials.get()` returned it.
        credential: serde_json::Value,
    },
}

/// Who starts or finishes a passkey ceremony.
#[derive(Debug, Clone)]
pub enum PasskeyCaller {
    /// A signed-in user (`Authorization: Bearer`).
    Bearer(String),
    /// An `mfa_token`: enrolling a passkey (registration) or answering with one (assertion).
    Challenge(String),
    /// Nobody yet: sign-up (registration; `email` required) or sign-in (assertion;
    /// discoverable without `email`, email-first with it).
    Anonymous {
        /// The account's email.
        email: Option<String>,
        /// A display name for a new account.
        name: Option<String>,
    },
}

/// How a passkey registration ended.
#[derive(Debug)]
pub enum PasskeyRegistration {
    /// Stored for the signed-in user.
    Stored(Passkey),
    /// Signed in: a passkey sign-up, or enrollment from a challenge completed.
    SignedIn(Passkey, Box<TokenSet>),
    /// A sign-up whose account must answer a second-factor challenge first.
    MfaRequired(Passkey, Challenge),
    /// A sign-up whose email must be verified first.
    VerificationRequired(Passkey),
}

/// What renews a session's authentication for a sensitive action.
#[derive(Debug)]
pub enum StepUpProof {
    /// The password (accounts without a second factor).
    Password(SecretString),
    /// A second factor.
    Factor(Factor),
}

/// The MFA use cases.
#[derive(Debug, Clone)]
pub struct MfaService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    auth: AuthService,
    sealer: Arc<Sealer>,
    messenger: super::messenger::Messenger,
    passkeys: PasskeyService,
}

/// The RFC 6238 parameters Gatehouse uses (SHA-1, 6 digits, 30 s, ±1 step), over `secret`.
pub fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<totp_rs::Totp, ServiceError> {
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| ServiceError::internal(format!("totp: {e:?}")))
}

fn sealing_context(tenant: &Tenant, user: &User) -> String {
    format!("totp:{}:{}", tenant.id, user.id)
}

/// A recovery code: 10 characters of an unambiguous alphabet, shown as `xxxxx-xxxxx`.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let chars: String = (0..10).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

impl MfaService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        auth: AuthService,
        sealer: Arc<Sealer>,
        messenger: super::messenger::Messenger,
        passkeys: PasskeyService,
    ) -> Self {
        Self { store, clock, auth, sealer, messenger, passkeys }
    }

    /// Starts a passkey registration: for the signed-in user, a user enrolling from a
    /// challenge, or a new account (`Anonymous` with an email).
    pub async fn passkey_register_begin(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        caller: PasskeyCaller,
    ) -> Result<Ceremony, ServiceError> {
        let registrant = match caller {
            PasskeyCaller::Bearer(token) => Registrant::User(self.auth.me(tenant, &token).await?.0),
            PasskeyCaller::Challenge(token) => {
                Registrant::Enrolling(self.caller(tenant, &Caller::Challenge(token)).await?.0)
            }
            PasskeyCaller::Anonymous { email: Some(email), name } => Registrant::Signup { email, name },
            PasskeyCaller::Anonymous { email: None, .. } => {
                return Err(ServiceError::invalid("email", "is required to sign up with a passkey (or sign in first)"));
            }
        };
        self.passkeys.register_begin(tenant, ctx, registrant).await
    }

    /// Finishes a passkey registration begun by the same caller. Enrolling from a
    /// challenge completes the sign-in; a sign-up signs in (or asks for what is missing).
    pub async fn passkey_register_finish(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        caller: PasskeyCaller,
        ceremony_id: &str,
        credential: serde_json::Value,
        name: Option<String>,
    ) -> Result<PasskeyRegistration, ServiceError> {
        let (user, challenge) = match &caller {
            PasskeyCaller::Bearer(token) => (Some(self.auth.me(tenant, token).await?.0), None),
            PasskeyCaller::Challenge(token) => {
                let (user, secret) = self.caller(tenant, &Caller::Challenge(token.clone())).await?;
                (Some(user), secret)
            }
            PasskeyCaller::Anonymous { .. } => (None, None),
        };
        let registered = self
            .passkeys
            .register_finish(tenant, ctx, user.as_ref(), challenge.is_some(), ceremony_id, credential, name)
            .await?;
        if let (Some(secret), Some(user)) = (challenge, user) {
            let amr = amr_with(&secret, registered.method);
            let tokens = self.complete(tenant, ctx, &secret, user, &amr, "passkey_enrollment").await?;
            return Ok(PasskeyRegistration::SignedIn(registered.passkey, Box::new(tokens)));
        }
        Ok(match registered.signup {
            None => PasskeyRegistration::Stored(registered.passkey),
            Some(SignupOutcome::SignedIn(tokens)) => PasskeyRegistration::SignedIn(registered.passkey, tokens),
            Some(SignupOutcome::MfaRequired(c)) => PasskeyRegistration::MfaRequired(registered.passkey, c),
            Some(SignupOutcome::VerificationRequired) => PasskeyRegistration::VerificationRequired(registered.passkey),
        })
    }

    /// Starts a passkey assertion: a sign-in (anonymous), a second factor for a
    /// challenge's user, or a step-up for the signed-in user.
    pub async fn passkey_assertion_begin(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        caller: PasskeyCaller,
    ) -> Result<Ceremony, ServiceError> {
        let purpose = match caller {
            PasskeyCaller::Bearer(token) => AssertionFor::User(Box::new(self.auth.me(tenant, &token).await?.0)),
            PasskeyCaller::Challenge(token) => {
                let (secret, user) = self.challenge(tenant, &token).await?;
                if secret.data["enroll"] == serde_json::Value::Bool(true) {
                    return Err(ServiceError::Forbidden("enroll a second factor first (passkeys/register/begin)"));
                }
                AssertionFor::User(Box::new(user))
            }
            PasskeyCaller::Anonymous { email, .. } => AssertionFor::SignIn(email),
        };
        self.passkeys.assertion_begin(tenant, ctx, purpose).await
    }

    fn recovery_hash(&self, tenant: &Tenant, user: &User, code: &str) -> String {
        let normalized: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
        self.sealer.code_hash(&format!("recovery:{}:{}", tenant.id, user.id), &normalized)
    }

    fn new_recovery_codes(&self, tenant: &Tenant, user: &User) -> (Vec<SecretString>, Vec<String>) {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes = codes.iter().map(|c| self.recovery_hash(tenant, user, c)).collect();
        (codes.into_iter().map(SecretString::new).collect(), hashes)
    }

    fn unix_now(&self) -> u64 {
        u64::try_from(self.clock.now().unix_timestamp()).unwrap_or(0)
    }

    fn totp_of(&self, tenant: &Tenant, user: &User, factor: &TotpFactor) -> Result<totp_rs::Totp, ServiceError> {
        let secret = self.sealer.open(&sealing_context(tenant, user), &factor.secret_sealed)?;
        totp(secret, &product_name(tenant), user.email.as_str())
    }

    /// The live challenge behind an `mfa_token`, with its user.
    async fn challenge(&self, tenant: &Tenant, mfa_token: &str) -> Result<(OneTimeSecret, User), ServiceError> {
        if !mfa_token.starts_with(MFA_TOKEN_PREFIX) || mfa_token.len() > 128 {
            return Err(ServiceError::InvalidToken);
        }
        let now = self.clock.now();
        let secret = self
            .store
            .find_one_time_by_token(&tenant.id, Purpose::MfaChallenge, &SecretHash::of(mfa_token), now)
            .await?
            .ok_or(ServiceError::InvalidToken)?;
        let user_id = secret.user_id.clone().ok_or(ServiceError::InvalidToken)?;
        let user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidToken)?;
        if user.status != UserStatus::Active {
            return Err(ServiceError::InvalidToken);
        }
        Ok((secret, user))
    }

    async fn caller(&self, tenant: &Tenant, caller: &Caller) -> Result<(User, Option<OneTimeSecret>), ServiceError> {
        match caller {
            Caller::Bearer(token) => Ok((self.auth.me(tenant, token).await?.0, None)),
            Caller::Challenge(token) => {
                let (secret, user) = self.challenge(tenant, token).await?;
                if secret.data["enroll"] != serde_json::Value::Bool(true) {
                    return Err(ServiceError::Forbidden("this mfa_token answers a challenge; use mfa/verify"));
                }
                Ok((user, Some(secret)))
            }
        }
    }

    /// Starts TOTP enrollment: a new secret (replacing a pending one), its `otpauth://`
    /// URI and QR code. Nothing changes at sign-in until [`Self::enable`].
    pub async fn setup(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        caller: &Caller,
    ) -> Result<TotpSetup, ServiceError> {
        if tenant.settings.mfa == MfaPolicy::Off {
            return Err(ServiceError::Forbidden("this tenant does not offer second factors"));
        }
        let (user, _) = self.caller(tenant, caller).await?;
        let mut secret = [0u8; TOTP_SECRET_BYTES];
        rand::rng().fill(&mut secret);
        let now = self.clock.now();
        let factor = TotpFactor {
            user_id: user.id.clone(),
            secret_sealed: self.sealer.seal(&sealing_context(tenant, &user), &secret)?,
            enabled_at: None,
            last_step: None,
            created_at: now,
        };
        let event =
            AuditEvent::by_user(now, ctx, "mfa.totp_setup", &tenant.id, Some(user.id.as_str()), serde_json::json!({}));
        self.store.put_pending_totp(&tenant.id, &factor, &event).await.map_err(ServiceError::from_store("user"))?;
        let totp = totp(secret.to_vec(), &product_name(tenant), user.email.as_str())?;
        let uri = totp.to_url().map_err(|e| ServiceError::internal(format!("totp url: {e:?}")))?;
        let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(ServiceError::internal)?;
        let qr_svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
        Ok(TotpSetup { secret: SecretString::new(base32_of(&secret)), otpauth_uri: SecretString::new(uri), qr_svg })
    }

    /// Enables the pending TOTP factor with one valid code; returns ten recovery codes
    /// (and tokens, when enrolling from a sign-in challenge).
    pub async fn enable(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        caller: &Caller,
        code: &str,
    ) -> Result<Enabled, ServiceError> {
        let (user, challenge) = self.caller(tenant, caller).await?;
        self.auth
            .limit_by(tenant, ctx, "mfa_verify", &format!("user:{}", user.id), 10, StdDuration::from_secs(300))
            .await?;
        let factor = self
            .store
            .get_totp(&tenant.id, &user.id)
            .await?
            .ok_or(ServiceError::NotFound { resource: "pending totp" })?;
        if factor.enabled_at.is_some() {
            return Err(ServiceError::Conflict { constraint: "mfa_totp_enabled".into() });
        }
        let step = self
            .totp_of(tenant, &user, &factor)?
            .check(code.trim(), self.unix_now())
            .ok_or(ServiceError::InvalidCode)?;
        let (codes, hashes) = self.new_recovery_codes(tenant, &user);
        let now = self.clock.now();
        let event = AuditEvent::by_user(
            now,
            ctx,
            "mfa.totp_enabled",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({}),
        );
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let notice = self.messenger.notice(tenant, ctx, self.clock.now(), &user, MessageKind::MfaEnabled).await?;
        self.store
            .enable_totp(&tenant.id, &user.id, factor.created_at, step, &hashes, &[notice], &event)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ServiceError::InvalidCode,
                other => other.into(),
            })?;
        self.messenger.queued();
        let tokens = match challenge {
            Some(secret) => {
                let amr = amr_with(&secret, "otp");
                Some(Box::new(self.complete(tenant, ctx, &secret, user, &amr, "totp_enrollment").await?))
            }
            None => None,
        };
        Ok(Enabled { recovery_codes: codes, tokens })
    }

    /// Checks a second factor of the user now; spends it (a TOTP step or a recovery code).
    async fn check_factor(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        user: &User,
        factor: &Factor,
    ) -> Result<&'static str, ServiceError> {
        match factor {
            Factor::Totp(code) => {
                let stored = self.store.get_totp(&tenant.id, &user.id).await?.filter(|f| f.enabled_at.is_some());
                let stored = stored.ok_or(ServiceError::InvalidCode)?;
                let step = self
                    .totp_of(tenant, user, &stored)?
                    .check(code.trim(), self.unix_now())
                    .ok_or(ServiceError::InvalidCode)?;
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                // A code accepted once is refused for the rest of its window (and older ones).
                if !self.store.use_totp_step(&tenant.id, &user.id, step).await? {
                    return Err(ServiceError::InvalidCode);
                }
                Ok("otp")
            }
            Factor::RecoveryCode(code) => {
                let hash = self.recovery_hash(tenant, user, code);
                if !self.store.use_recovery_code(&tenant.id, &user.id, &hash, self.clock.now()).await? {
                    return Err(ServiceError::InvalidCode);
                }
                let left = self.store.count_recovery_codes(&tenant.id, &user.id).await?;
                let data = serde_json::json!({ "recovery_codes_left": left });
                let event = AuditEvent::by_user(
                    self.clock.now(),
                    ctx,
                    "mfa.recovery_code_used",
                    &tenant.id,
                    Some(user.id.as_str()),
                    data,
                );
                // The notice and the event are stored together.
                let notice =
                    self.messenger.notice(tenant, ctx, self.clock.now(), user, MessageKind::RecoveryCodeUsed).await?;
                self.store.enqueue_messages(&tenant.id, &[notice], &event).await?;
                self.messenger.queued();
                Ok("rc")
            }
            Factor::Passkey { ceremony_id, credential } => {
                self.passkeys.verify_factor(tenant, ctx, user, ceremony_id, credential.clone()).await
            }
        }
    }

    /// Answers a sign-in challenge with a second factor: the challenge is consumed and the
    /// session starts in one transaction.
    pub async fn verify(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        mfa_token: &str,
        factor: &Factor,
    ) -> Result<TokenSet, ServiceError> {
        self.auth.limit(tenant, ctx, "mfa_verify", 30).await?;
        let (secret, user) = self.challenge(tenant, mfa_token).await?;
        if secret.data["enroll"] == serde_json::Value::Bool(true) {
            return Err(ServiceError::Forbidden("enroll a second factor first (totp/setup, totp/enable)"));
        }
        let subject = format!("challenge:{}", secret.id);
        self.auth
            .limit_by(tenant, ctx, "mfa_verify", &subject, ATTEMPTS_PER_CHALLENGE, StdDuration::from_secs(300))
            .await?;
        let method = self.check_factor(tenant, ctx, &user, factor).await?;
        let amr = amr_with(&secret, method);
        self.complete(tenant, ctx, &secret, user, &amr, "mfa").await
    }

    async fn complete(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        challenge: &OneTimeSecret,
        user: User,
        amr: &[String],
        via: &str,
    ) -> Result<TokenSet, ServiceError> {
        let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
        let sign_in = SecretSignIn {
            secret_id: &challenge.id,
            user,
            insert: false,
            amr: &amr,
            data: serde_json::json!({ "via": via }),
        };
        self.auth.redeem_into_session(tenant, ctx, sign_in, ServiceError::InvalidToken).await
    }

    /// Removes TOTP and the recovery codes; needs a fresh second factor.
    pub async fn disable(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        factor: &Factor,
        step_up: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.auth.sensitive(tenant, ctx, access_token, step_up).await?;
        self.auth
            .limit_by(tenant, ctx, "mfa_verify", &format!("user:{}", user.id), 10, StdDuration::from_secs(300))
            .await?;
        self.check_factor(tenant, ctx, &user, factor).await?;
        let event = AuditEvent::by_user(
            self.clock.now(),
            ctx,
            "mfa.totp_disabled",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({}),
        );
        let notice = self.messenger.notice(tenant, ctx, self.clock.now(), &user, MessageKind::MfaDisabled).await?;
        self.store
            .delete_totp(&tenant.id, &user.id, &[notice], &event)
            .await
            .map_err(ServiceError::from_store("totp"))?;
        self.messenger.queued();
        Ok(())
    }

    /// A new set of recovery codes (the old set stops working); needs a TOTP code.
    pub async fn regenerate_recovery_codes(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        code: &str,
        step_up: Option<&str>,
    ) -> Result<Vec<SecretString>, ServiceError> {
        let (user, _) = self.auth.sensitive(tenant, ctx, access_token, step_up).await?;
        self.auth
            .limit_by(tenant, ctx, "mfa_verify", &format!("user:{}", user.id), 10, StdDuration::from_secs(300))
            .await?;
        self.check_factor(tenant, ctx, &user, &Factor::Totp(code.to_owned())).await?;
        let (codes, hashes) = self.new_recovery_codes(tenant, &user);
        let now = self.clock.now();
        let event = AuditEvent::by_user(
            now,
            ctx,
            "mfa.recovery_codes_regenerated",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({}),
        );
        let notice =
            self.messenger.notice(tenant, ctx, self.clock.now(), &user, MessageKind::RecoveryCodesRegenerated).await?;
        self.store.replace_recovery_codes(&tenant.id, &user.id, &hashes, now, &[notice], &event).await?;
        self.messenger.queued();
        Ok(codes)
    }

    /// Proves a factor again for the signed-in session; returns a step-up token good
    /// for one sensitive action within five minutes. With TOTP enabled, only the second
    /// factor steps up (a password alone is weaker than the sign-in it would renew).
    pub async fn step_up(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        proof: StepUpProof,
    ) -> Result<SecretString, ServiceError> {
        let (user, _, session) = self.auth.signed_in(tenant, access_token).await?;
        let subject = format!("user:{}", user.id);
        self.auth.limit_by(tenant, ctx, "mfa_verify", &subject, 10, StdDuration::from_secs(300)).await?;
        let has_factor = self.store.second_factors(&tenant.id, &user.id).await?.any();
        let method = match proof {
            StepUpProof::Password(_) if has_factor => {
                return Err(ServiceError::Forbidden("this account steps up with its second factor"));
            }
            StepUpProof::Password(password) => {
                self.auth.check_password(tenant, ctx, &user, &password, "wrong_step_up_password").await?;
                "pwd"
            }
            StepUpProof::Factor(factor) => self.check_factor(tenant, ctx, &user, &factor).await?,
        };
        self.auth.issue_step_up(tenant, ctx, &user, &session, method).await
    }

    /// The user's second factors, and how many recovery codes are left.
    pub async fn status(&self, tenant: &Tenant, access_token: &str) -> Result<(SecondFactors, u32), ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        let factors = self.store.second_factors(&tenant.id, &user.id).await?;
        Ok((factors, self.store.count_recovery_codes(&tenant.id, &user.id).await?))
    }
}

/// The first factor's `amr` plus the second's, and `mfa`.
fn amr_with(challenge: &OneTimeSecret, method: &str) -> Vec<String> {
    let mut amr: Vec<String> = challenge.data["amr"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    for m in [method, "mfa"] {
        if !amr.iter().any(|a| a == m) {
            amr.push(m.to_owned());
        }
    }
    amr
}

fn product_name(tenant: &Tenant) -> String {
    tenant.settings.branding.display_name.clone().unwrap_or_else(|| tenant.name.clone())
}

/// RFC 4648 base32 without padding (how authenticator apps take secrets).
pub(crate) fn base32_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Builds the challenge that ends a first factor when a second one is needed: `None`
/// when the tenant's policy and the user's factors let the sign-in complete.
pub async fn challenge_for(
    store: &dyn Store,
    tenant: &Tenant,
    user: &User,
    amr: &[&str],
    now: time::OffsetDateTime,
) -> Result<Option<(OneTimeSecret, Challenge)>, ServiceError> {
    // A first factor that is multi-factor itself (a user-verified passkey) needs no other.
    if tenant.settings.mfa == MfaPolicy::Off || amr.contains(&"mfa") {
        return Ok(None);
    }
    let have = store.second_factors(&tenant.id, &user.id).await?;
    Ok(challenge_with(tenant, user, have, amr, now))
}

/// [`challenge_for`] with the user's second factors already read (a password sign-in
/// reads them with the account).
pub fn challenge_with(
    tenant: &Tenant,
    user: &User,
    have: SecondFactors,
    amr: &[&str],
    now: time::OffsetDateTime,
) -> Option<(OneTimeSecret, Challenge)> {
    if tenant.settings.mfa == MfaPolicy::Off || amr.contains(&"mfa") {
        return None;
    }
    let passkey_first = amr.iter().any(|m| *m == "hwk" || *m == "swk");
    let mut factors = Vec::new();
    if have.totp {
        factors.extend(["totp", "recovery_code"]);
    }
    if have.passkeys > 0 && !passkey_first {
        factors.push("passkey");
    }
    let enroll = factors.is_empty() && tenant.settings.mfa == MfaPolicy::Required;
    if factors.is_empty() && !enroll {
        return None;
    }
    if enroll {
        factors = vec!["totp", "passkey"];
    }
    let token = generate_secret(MFA_TOKEN_PREFIX);
    let secret = OneTimeSecret {
        id: OneTimeId::generate(),
        tenant_id: tenant.id.clone(),
        purpose: Purpose::MfaChallenge,
        target: user.id.to_string(),
        user_id: Some(user.id.clone()),
        token_hash: Some(token.hash),
        code_hash: None,
        attempts: 0,
        max_attempts: 0,
        data: serde_json::json!({ "amr": amr, "enroll": enroll }),
        created_at: now,
        expires_at: now + CHALLENGE_TTL,
        consumed_at: None,
    };
    Some((secret, Challenge { mfa_token: token.value, factors, enrollment_required: enroll }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the same HOTP truncation).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890".to_vec();
        let t = totp_rs::Builder::new().with_secret(secret).with_digits(8).with_account_name("x").build().unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(t.generate(time).to_string(), code, "at {time}");
        }
        // Ours: six digits, ±1 step of 30 s, and the matched step is reported.
        let ours = totp(b"12345678901234567890".to_vec(), "Acme", "a@example.com").unwrap();
        let code = ours.generate(1_111_111_109).to_string();
        assert_eq!(code.len(), 6);
        assert_eq!(ours.check(&code, 1_111_111_109 + 30), Some(1_111_111_109 / 30));
        assert_eq!(ours.check(&code, 1_111_111_109 - 30), Some(1_111_111_109 / 30));
        assert_eq!(ours.check(&code, 1_111_111_109 + 61), None);
    }

    #[test]
    fn base32_matches_rfc_4648_and_recovery_codes_look_right() {
        assert_eq!(base32_of(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_of(b"f"), "MY");
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
    }
}

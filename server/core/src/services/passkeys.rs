//! Passkeys (WebAuthn, via webauthn-rs-core): registration while signed in, while
//! enrolling from a sign-in challenge, or at sign-up of a passwordless account; sign-in
//! with a discoverable credential or email-first; passkeys as a second factor and for
//! step-up; list, rename, delete.
//!
//! Every ceremony's state lives in the ephemeral store under a random `ceremony_id` for
//! five minutes and is taken (deleted) by the first `finish`, so a challenge answers once.
//! The relying party (id, origins, attestation and user-verification policy) is the
//! tenant's. The signature counter is checked by webauthn-rs against the stored one and
//! then advanced with a conditional update, so a replayed or cloned authenticator's
//! assertion fails even when two arrive at once.

use super::auth::{AuthService, LoginOutcome, SignupOutcome};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::ephemeral::EphemeralStore;
use crate::error::{FieldError, ServiceError};
use crate::ids::{PasskeyId, UserId};
use crate::messaging::MessageKind;
use crate::passkey::{Passkey, PasskeyUse};
use crate::secret::{SecretHash, generate_secret};
use crate::signing::Sealer;
use crate::store::{PasskeySignup, Store, StoreError};
use crate::tenant::{AttestationPolicy, SignupMode, Tenant, UserVerification};
use crate::user::{Email, User, UserStatus, check_user_name};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, Credential, PublicKeyCredential, RegisterPublicKeyCredential,
    Registration, RegistrationState, UserVerificationPolicy,
};

/// How long a ceremony may take.
const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Prefix of ceremony ids.
const CEREMONY_PREFIX: &str = "wac_";
/// Ceremonies one IP may start or finish per minute per tenant.
const CEREMONIES_PER_IP: u64 = 30;
/// Passkeys per user.
const MAX_PASSKEYS: usize = 20;

/// Who registers a passkey.
#[derive(Debug, Clone)]
pub enum Registrant {
    /// The signed-in user.
    User(User),
    /// A user enrolling a second factor from a sign-in challenge (tenant policy
    /// `required`); the challenge completes when the passkey is stored.
    Enrolling(User),
    /// A new account without a password.
    Signup {
        /// Its email.
        email: String,
        /// Its optional display name.
        name: Option<String>,
    },
}

/// What an assertion is for.
#[derive(Debug, Clone)]
pub enum AssertionFor {
    /// Signing in: discoverable (`None`) or email-first (`Some(email)`).
    SignIn(Option<String>),
    /// Proving a factor of a known user (`mfa/verify`, step-up).
    User(Box<User>),
}

/// Options to hand to `navigator.credentials.create()` / `.get()`, and the ceremony id
/// that `finish` takes back.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// Single-use id of the ceremony.
    pub ceremony_id: String,
    /// The WebAuthn options (`{"publicKey": …}`).
    pub options: serde_json::Value,
}

/// A registration's result.
#[derive(Debug)]
pub struct Registered {
    /// The new passkey.
    pub passkey: Passkey,
    /// At sign-up: how it ended.
    pub signup: Option<SignupOutcome>,
    /// The `amr` method the new passkey proves (`hwk`, or `swk` when synced).
    pub method: &'static str,
}

/// A verified assertion of a user's passkey.
#[derive(Debug)]
pub struct Asserted {
    /// The user.
    pub user: User,
    /// `amr` values the assertion proves: `hwk` (or `swk` for a synced passkey), plus
    /// `user` when the authenticator verified the user.
    pub amr: Vec<&'static str>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Pending {
    Register { user_id: UserId, enrolling: bool, signup: Option<(String, Option<String>)>, state: RegistrationState },
    Assert { user_id: Option<UserId>, state: AuthenticationState },
}

/// The passkey use cases.
#[derive(Debug, Clone)]
pub struct PasskeyService {
    store: Arc<dyn Store>,
    ephemeral: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    auth: AuthService,
    messenger: super::messenger::Messenger,
    sealer: Arc<Sealer>,
    public_url: String,
}

fn rejected(e: &WebauthnError) -> ServiceError {
    ServiceError::PasskeyRejected(match e {
        WebauthnError::MismatchedChallenge => "the challenge does not match this ceremony",
        WebauthnError::InvalidRPOrigin | WebauthnError::CredentialCrossOrigin => "the origin is not allowed",
        WebauthnError::InvalidRPIDHash => "the relying-party id does not match",
        WebauthnError::UserNotVerified => "user verification is required",
        WebauthnError::UserNotPresent => "user presence is required",
        WebauthnError::CredentialPossibleCompromise => {
            "the signature counter did not advance (a cloned or replayed authenticator)"
        }
        WebauthnError::CredentialNotFound => "this credential is not allowed here",
        WebauthnError::InvalidClientDataType => "the client data is for another ceremony",
        WebauthnError::AttestationNotSupported
        | WebauthnError::AttestationNotVerifiable
        | WebauthnError::AttestationUntrustedAaguid
        | WebauthnError::AttestationFormatMissingAaguid => "the attestation is not acceptable",
        WebauthnError::CredentialAlteredAlgFromRequest => "the credential's algorithm or id was not offered",
        _ => "the credential could not be verified",
    })
}

fn malformed(field: &str) -> ServiceError {
    ServiceError::Validation(vec![FieldError::new(field, "must be a WebAuthn credential as the browser returns it")])
}

fn format_name(credential: &Credential) -> String {
    serde_json::to_value(&credential.attestation_format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The authenticator model's AAGUID from the attested credential data (covered by the
/// attestation signature unless the format is `none`); `None` when absent or all zeros.
fn aaguid_of(reg: &RegisterPublicKeyCredential) -> Option<String> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(rename = "authData", with = "serde_bytes_compat")]
        auth_data: Vec<u8>,
    }
    let object: Object = serde_cbor_2::from_slice(&reg.response.attestation_object).ok()?;
    let data = AuthenticatorData::<Registration>::try_from(object.auth_data.as_slice()).ok()?;
    let aaguid = data.acd?.aaguid;
    if aaguid == [0; 16] {
        return None;
    }
    let hex: String = aaguid.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// CBOR byte strings into `Vec<u8>`.
mod serde_bytes_compat {
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let value: serde_cbor_2::Value = serde::Deserialize::deserialize(d)?;
        match value {
            serde_cbor_2::Value::Bytes(b) => Ok(b),
            _ => Err(serde::de::Error::custom("authData must be a byte string")),
        }
    }
}

impl PasskeyService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn Store>,
        ephemeral: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        auth: AuthService,
        messenger: super::messenger::Messenger,
        sealer: Arc<Sealer>,
        public_url: &str,
    ) -> Self {
        let public_url = public_url.to_owned();
        Self { store, ephemeral, clock, auth, messenger, sealer, public_url }
    }

    /// The tenant's relying party.
    fn relying_party(&self, tenant: &Tenant) -> Result<WebauthnCore, ServiceError> {
        let settings = &tenant.settings.passkeys;
        let public_url = url::Url::parse(&self.public_url).map_err(ServiceError::internal)?;
        let rp_id = match &settings.rp_id {
            Some(id) => id.clone(),
            None => public_url.host_str().unwrap_or("localhost").to_owned(),
        };
        let origins: Vec<url::Url> = if settings.origins.is_empty() {
            std::iter::once(public_url.origin().ascii_serialization())
                .chain(tenant.settings.allowed_origins.iter().cloned())
                .filter_map(|o| url::Url::parse(&o).ok())
                .collect()
        } else {
            settings.origins.iter().filter_map(|o| url::Url::parse(o).ok()).collect()
        };
        let name = tenant.settings.branding.display_name.clone().unwrap_or_else(|| tenant.name.clone());
        Ok(WebauthnCore::new_unsafe_experts_only(&name, &rp_id, origins, CEREMONY_TTL, Some(false), Some(false)))
    }

    fn uv_policy(tenant: &Tenant) -> UserVerificationPolicy {
        match tenant.settings.passkeys.user_verification {
            UserVerification::Required => UserVerificationPolicy::Required,
            UserVerification::Preferred => UserVerificationPolicy::Preferred,
        }
    }

    fn key(tenant: &Tenant, ceremony_id: &str) -> String {
        format!("passkey:{}:{}", tenant.id, SecretHash::of(ceremony_id).as_str())
    }

    async fn remember(&self, tenant: &Tenant, pending: &Pending) -> Result<String, ServiceError> {
        let id = generate_secret(CEREMONY_PREFIX).value;
        let value = serde_json::to_vec(pending).map_err(ServiceError::internal)?;
        let stored = self
            .ephemeral
            .put_once(&Self::key(tenant, id.expose()), &value, CEREMONY_TTL)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if !stored {
            return Err(ServiceError::internal("ceremony id collision"));
        }
        Ok(id.expose().to_owned())
    }

    /// Takes the ceremony: a second `finish` (a replayed challenge) finds nothing.
    async fn take(&self, tenant: &Tenant, ceremony_id: &str) -> Result<Pending, ServiceError> {
        if !ceremony_id.starts_with(CEREMONY_PREFIX) || ceremony_id.len() > 128 {
            return Err(ServiceError::PasskeyRejected("unknown, expired or finished ceremony"));
        }
        let raw = self
            .ephemeral
            .take(&Self::key(tenant, ceremony_id))
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?
            .ok_or(ServiceError::PasskeyRejected("unknown, expired or finished ceremony"))?;
        serde_json::from_slice(&raw).map_err(ServiceError::internal)
    }

    fn credentials_of(passkeys: &[Passkey]) -> Result<Vec<Credential>, ServiceError> {
        passkeys
            .iter()
            .map(|p| {
                let mut credential: Credential =
                    serde_json::from_value(p.credential.clone()).map_err(ServiceError::internal)?;
                // The stored counter is the authority; the JSON copy is from registration.
                credential.counter = p.sign_count;
                Ok(credential)
            })
            .collect()
    }

    /// Starts a registration: the options for `navigator.credentials.create()`.
    pub async fn register_begin(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        registrant: Registrant,
    ) -> Result<Ceremony, ServiceError> {
        self.auth.limit(tenant, ctx, "passkey_ceremony", CEREMONIES_PER_IP).await?;
        let (user_id, email, display, enrolling, signup, existing) = match registrant {
            Registrant::User(user) | Registrant::Enrolling(user) if user.status != UserStatus::Active => {
                return Err(ServiceError::InvalidToken);
            }
            Registrant::User(user) => {
                let existing = self.store.list_passkeys(&tenant.id, &user.id).await?;
                let display = user.name.clone().unwrap_or_else(|| user.email.as_str().to_owned());
                (user.id, user.email.as_str().to_owned(), display, false, None, existing)
            }
            Registrant::Enrolling(user) => {
                let existing = self.store.list_passkeys(&tenant.id, &user.id).await?;
                let display = user.name.clone().unwrap_or_else(|| user.email.as_str().to_owned());
                (user.id, user.email.as_str().to_owned(), display, true, None, existing)
            }
            Registrant::Signup { email, name } => {
                if tenant.settings.signup == SignupMode::InviteOnly {
                    return Err(ServiceError::Forbidden("sign-up is by invitation only"));
                }
                let mut errors = Vec::new();
                let parsed = Email::parse(&email).map_err(|why| errors.push(FieldError::new("email", why)));
                let name = check_user_name(name).map_err(|why| errors.push(FieldError::new("name", why)));
                let (Ok(parsed), Ok(name)) = (parsed, name) else { return Err(ServiceError::Validation(errors)) };
                let display = name.clone().unwrap_or_else(|| parsed.as_str().to_owned());
                let email = parsed.as_str().to_owned();
                (UserId::generate(), email.clone(), display, false, Some((email, name)), Vec::new())
            }
        };
        if existing.len() >= MAX_PASSKEYS {
            return Err(ServiceError::Conflict { constraint: "passkeys_per_user".into() });
        }
        let rp = self.relying_party(tenant)?;
        let settings = &tenant.settings.passkeys;
        let attestation = match settings.attestation {
            AttestationPolicy::None => AttestationConveyancePreference::None,
            AttestationPolicy::Indirect => AttestationConveyancePreference::Indirect,
            AttestationPolicy::Direct => AttestationConveyancePreference::Direct,
        };
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect::<Vec<_>>();
        let builder = rp
            .new_challenge_register_builder(user_id.as_str().as_bytes(), &email, &display)
            .map_err(|e| rejected(&e))?
            .attestation(attestation)
            .user_verification_policy(Self::uv_policy(tenant))
            .require_resident_key(true)
            .exclude_credentials(Some(exclude))
            .reject_synchronised_authenticators(false);
        let (options, state) = rp.generate_challenge_register(builder).map_err(|e| rejected(&e))?;
        let ceremony_id = self.remember(tenant, &Pending::Register { user_id, enrolling, signup, state }).await?;
        let options = serde_json::to_value(&options).map_err(ServiceError::internal)?;
        Ok(Ceremony { ceremony_id, options })
    }

    /// Finishes a registration: verifies the authenticator's answer against the tenant's
    /// policy and stores the passkey (with the new account, at sign-up). `caller` is the
    /// user the ceremony must belong to (`None` at sign-up); `enrolling` whether it was
    /// started from a sign-in challenge.
    #[allow(clippy::too_many_arguments, reason = "the ceremony, its caller and the answer")]
    pub async fn register_finish(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        caller: Option<&User>,
        enrolling_now: bool,
        ceremony_id: &str,
        credential: serde_json::Value,
        name: Option<String>,
    ) -> Result<Registered, ServiceError> {
        self.auth.limit(tenant, ctx, "passkey_ceremony", CEREMONIES_PER_IP).await?;
        // Malformed input is refused before the ceremony is spent.
        let reg: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| malformed("credential"))?;
        let Pending::Register { user_id, enrolling, signup, state } = self.take(tenant, ceremony_id).await? else {
            return Err(ServiceError::PasskeyRejected("this ceremony is not a registration"));
        };
        if caller.map(|u| &u.id) != signup.is_none().then_some(&user_id) || enrolling != enrolling_now {
            return Err(ServiceError::PasskeyRejected("this ceremony belongs to someone else"));
        }
        let name = match name.map(|n| n.trim().to_owned()) {
            None => "Passkey".to_owned(),
            Some(n) if (1..=100).contains(&n.chars().count()) && !n.chars().any(char::is_control) => n,
            Some(_) => return Err(ServiceError::invalid("name", "must be 1 to 100 characters")),
        };
        let rp = self.relying_party(tenant)?;
        let verified = rp.register_credential(&reg, &state, None).map_err(|e| rejected(&e))?;
        let settings = &tenant.settings.passkeys;
        let format = format_name(&verified);
        if !settings.allowed_attestation_formats.is_empty() && !settings.allowed_attestation_formats.contains(&format) {
            return Err(ServiceError::PasskeyRejected("this attestation format is not allowed"));
        }
        let aaguid = aaguid_of(&reg);
        // A model list needs an attestation that vouches for the model.
        let vouched = format != "none" && aaguid.as_ref().is_some_and(|a| settings.allowed_aaguids.contains(a));
        if !settings.allowed_aaguids.is_empty() && !vouched {
            return Err(ServiceError::PasskeyRejected("this authenticator model is not allowed"));
        }
        let now = self.clock.now();
        let passkey = Passkey {
            id: PasskeyId::generate(),
            user_id: user_id.clone(),
            credential_id: verified.cred_id.to_vec(),
            name,
            credential: serde_json::to_value(&verified).map_err(ServiceError::internal)?,
            sign_count: verified.counter,
            aaguid,
            attestation_format: format,
            backup_eligible: verified.backup_eligible,
            backup_state: verified.backup_state,
            created_at: now,
            last_used_at: None,
        };
        match signup {
            None => {
                let data =
                    serde_json::json!({ "passkey_id": passkey.id, "name": passkey.name, "aaguid": passkey.aaguid });
                let event =
                    AuditEvent::by_user(now, ctx, "passkey.registered", &tenant.id, Some(user_id.as_str()), data);
                let user = caller.ok_or(ServiceError::InvalidToken)?;
                let notice =
                    self.messenger.notice(tenant, ctx, self.clock.now(), user, MessageKind::PasskeyAdded).await?;
                self.store
                    .insert_passkey(&tenant.id, None, &passkey, &[notice], &event)
                    .await
                    .map_err(ServiceError::from_store("user"))?;
                self.messenger.queued();
                let method = Self::amr(passkey.backup_eligible, false)[0];
                Ok(Registered { passkey, signup: None, method })
            }
            Some((email, display)) => {
                let outcome = self.signup(tenant, ctx, &passkey, &email, display, &verified).await?;
                let method = Self::amr(passkey.backup_eligible, false)[0];
                Ok(Registered { passkey, signup: Some(outcome), method })
            }
        }
    }

    /// Creates the account of a passkey sign-up with its passkey and verification
    /// message, then signs in (a verified passkey is multi-factor on its own).
    #[allow(clippy::too_many_arguments, reason = "one sign-up's parts")]
    async fn signup(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        passkey: &Passkey,
        email: &str,
        name: Option<String>,
        verified: &Credential,
    ) -> Result<SignupOutcome, ServiceError> {
        self.auth.limit(tenant, ctx, "signup", 10).await?;
        let email = Email::parse(email).map_err(|why| ServiceError::invalid("email", &why))?;
        let now = self.clock.now();
        let user = User { id: passkey.user_id.clone(), ..User::signing_up(&tenant.id, email, name, now) };
        let verification =
            super::verification::VerificationService::verification_dispatch(&self.messenger, tenant, ctx, now, &user)
                .await?;
        let data = serde_json::json!({
            "via": "passkey",
            "passkey_id": passkey.id,
            "verification_message_id": verification.message.id,
        });
        let event = AuditEvent::by_user(now, ctx, "user.signup", &tenant.id, Some(user.id.as_str()), data);
        let signup = PasskeySignup { user: &user, verification: &verification.secret };
        let stored =
            self.store.insert_passkey(&tenant.id, Some(signup), passkey, &[verification.message], &event).await;
        match stored {
            Ok(()) => self.messenger.queued(),
            Err(StoreError::Conflict { constraint }) if constraint.starts_with("users_") => {
                if tenant.settings.require_verified_email {
                    // Answer exactly as for a new account, revealing nothing.
                    return Ok(SignupOutcome::VerificationRequired);
                }
                return Err(ServiceError::Conflict { constraint });
            }
            Err(e) => return Err(e.into()),
        }
        if tenant.settings.require_verified_email {
            return Ok(SignupOutcome::VerificationRequired);
        }
        let amr = Self::amr(verified.backup_eligible, verified.user_verified);
        let data = serde_json::json!({ "via": "passkey_signup", "passkey_id": passkey.id });
        match self.auth.sign_in_with(tenant, ctx, user, &amr, data).await? {
            LoginOutcome::SignedIn(tokens) => Ok(SignupOutcome::SignedIn(tokens)),
            LoginOutcome::MfaRequired(challenge) => Ok(SignupOutcome::MfaRequired(challenge)),
        }
    }

    fn amr(synced: bool, user_verified: bool) -> Vec<&'static str> {
        let mut amr = vec![if synced { "swk" } else { "hwk" }];
        if user_verified {
            amr.extend(["user", "mfa"]);
        }
        amr
    }

    /// Starts an assertion: the options for `navigator.credentials.get()`. For an
    /// email-first sign-in with an unknown address (or one without passkeys) the options
    /// name a credential derived from the address, so the answer does not tell.
    pub async fn assertion_begin(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        purpose: AssertionFor,
    ) -> Result<Ceremony, ServiceError> {
        self.auth.limit(tenant, ctx, "passkey_ceremony", CEREMONIES_PER_IP).await?;
        let (user_id, passkeys, decoy) = match purpose {
            AssertionFor::SignIn(None) => (None, Vec::new(), None),
            AssertionFor::SignIn(Some(email)) => {
                let parsed = Email::parse(&email).ok();
                let user = match &parsed {
                    Some(e) => self.store.find_user_by_email(&tenant.id, e.normalized()).await?,
                    None => None,
                };
                let passkeys = match &user {
                    Some(u) if u.status == UserStatus::Active => self.store.list_passkeys(&tenant.id, &u.id).await?,
                    _ => Vec::new(),
                };
                let normalized = parsed.map(|e| e.normalized().to_owned()).unwrap_or(email);
                let decoy = passkeys.is_empty().then(|| self.decoy_credential(tenant, &normalized));
                (user.filter(|_| !passkeys.is_empty()).map(|u| u.id), passkeys, decoy)
            }
            AssertionFor::User(user) => {
                let passkeys = self.store.list_passkeys(&tenant.id, &user.id).await?;
                if passkeys.is_empty() {
                    return Err(ServiceError::NotFound { resource: "passkey" });
                }
                (Some(user.id.clone()), passkeys, None)
            }
        };
        let rp = self.relying_party(tenant)?;
        let credentials = Self::credentials_of(&passkeys)?;
        let builder = rp
            .new_challenge_authenticate_builder(credentials, Some(Self::uv_policy(tenant)))
            .map_err(|e| rejected(&e))?;
        let (mut options, state) = rp.generate_challenge_authenticate(builder).map_err(|e| rejected(&e))?;
        let has_decoy = decoy.is_some();
        if let Some(decoy) = decoy {
            options.public_key.allow_credentials = vec![webauthn_rs_core::proto::AllowCredentials {
                type_: "public-key".into(),
                id: decoy,
                transports: None,
            }];
        }
        // An email-first ceremony for an unknown address is stored like any other and
        // bound to a user id no passkey has: whatever answers it is refused.
        let user_id = match (user_id, has_decoy) {
            (Some(id), _) => Some(id),
            (None, true) => Some(UserId::generate()),
            (None, false) => None,
        };
        let ceremony_id = self.remember(tenant, &Pending::Assert { user_id, state }).await?;
        let options = serde_json::to_value(&options).map_err(ServiceError::internal)?;
        Ok(Ceremony { ceremony_id, options })
    }

    /// A stable credential id for an address without passkeys (32 bytes of a keyed hash).
    fn decoy_credential(&self, tenant: &Tenant, normalized_email: &str) -> Vec<u8> {
        let hex = self.sealer.code_hash(&format!("passkey-decoy:{}", tenant.id), normalized_email);
        (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()
    }

    /// Verifies an assertion and advances the passkey's counter. `expected` is the user
    /// the ceremony must prove (second factor, step-up); `None` for a sign-in ceremony.
    async fn assert(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        ceremony_id: &str,
        credential: serde_json::Value,
        expected: Option<&User>,
    ) -> Result<Asserted, ServiceError> {
        self.auth.limit(tenant, ctx, "passkey_ceremony", CEREMONIES_PER_IP).await?;
        // Malformed input is refused before the ceremony is spent.
        let response: PublicKeyCredential = serde_json::from_value(credential).map_err(|_| malformed("credential"))?;
        let Pending::Assert { user_id, mut state } = self.take(tenant, ceremony_id).await? else {
            return Err(ServiceError::PasskeyRejected("this ceremony is not a sign-in"));
        };
        if let Some(expected) = expected
            && user_id.as_ref() != Some(&expected.id)
        {
            return Err(ServiceError::PasskeyRejected("this ceremony belongs to someone else"));
        }
        let passkey = self
            .store
            .find_passkey_by_credential(&tenant.id, &response.raw_id)
            .await?
            .ok_or(ServiceError::InvalidCredentials)?;
        // The passkey must be the ceremony's user's; a user handle, when present, too.
        if user_id.as_ref().is_some_and(|u| *u != passkey.user_id) {
            return Err(ServiceError::PasskeyRejected("this credential is not allowed here"));
        }
        if let Some(handle) = response.get_user_unique_id()
            && handle != passkey.user_id.as_str().as_bytes()
        {
            return Err(ServiceError::PasskeyRejected("the user handle does not match the credential"));
        }
        let user =
            self.store.get_user(&tenant.id, &passkey.user_id).await.map_err(|_| ServiceError::InvalidCredentials)?;
        if user.status != UserStatus::Active {
            return Err(ServiceError::InvalidCredentials);
        }
        state.set_allowed_credentials(Self::credentials_of(std::slice::from_ref(&passkey))?);
        let rp = self.relying_party(tenant)?;
        let result = match rp.authenticate_credential(&response, &state) {
            Ok(result) => result,
            Err(e) => {
                if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                    self.counter_alarm(tenant, ctx, &passkey).await?;
                }
                return Err(rejected(&e));
            }
        };
        let used = PasskeyUse {
            id: passkey.id.clone(),
            user_id: user.id.clone(),
            sign_count: result.counter(),
            backup_state: result.backup_state(),
            at: self.clock.now(),
        };
        if !self.store.use_passkey(&tenant.id, &used).await? {
            self.counter_alarm(tenant, ctx, &passkey).await?;
            return Err(rejected(&WebauthnError::CredentialPossibleCompromise));
        }
        Ok(Asserted { user, amr: Self::amr(passkey.backup_eligible, result.user_verified()) })
    }

    async fn counter_alarm(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        passkey: &Passkey,
    ) -> Result<(), ServiceError> {
        let data = serde_json::json!({ "passkey_id": passkey.id, "stored_count": passkey.sign_count });
        let event = AuditEvent::by_user(
            self.clock.now(),
            ctx,
            "passkey.counter_regressed",
            &tenant.id,
            Some(passkey.user_id.as_str()),
            data,
        );
        self.auth.record(event).await
    }

    /// Finishes a passkey sign-in: tokens, or a challenge when the authenticator did not
    /// verify the user and the account has another factor (or the tenant requires one).
    pub async fn sign_in(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        ceremony_id: &str,
        credential: serde_json::Value,
    ) -> Result<LoginOutcome, ServiceError> {
        let asserted = match self.assert(tenant, ctx, ceremony_id, credential, None).await {
            Ok(a) => a,
            Err(e) => {
                let reason = match &e {
                    ServiceError::PasskeyRejected(why) => *why,
                    _ => "invalid_credentials",
                };
                let event = AuditEvent::by_user(
                    self.clock.now(),
                    ctx,
                    "login.failure",
                    &tenant.id,
                    None,
                    serde_json::json!({ "via": "passkey", "reason": reason }),
                );
                self.auth.record(event).await?;
                return Err(e);
            }
        };
        if tenant.settings.require_verified_email && !asserted.user.email_verified {
            return Err(ServiceError::EmailNotVerified);
        }
        let data = serde_json::json!({ "via": "passkey" });
        self.auth.sign_in_with(tenant, ctx, asserted.user, &asserted.amr, data).await
    }

    /// Checks a passkey of `user` as a second factor or for step-up; the `amr` method.
    pub async fn verify_factor(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        user: &User,
        ceremony_id: &str,
        credential: serde_json::Value,
    ) -> Result<&'static str, ServiceError> {
        let asserted = self.assert(tenant, ctx, ceremony_id, credential, Some(user)).await?;
        Ok(asserted.amr[0])
    }

    /// The signed-in user's passkeys.
    pub async fn list(&self, tenant: &Tenant, access_token: &str) -> Result<Vec<Passkey>, ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        Ok(self.store.list_passkeys(&tenant.id, &user.id).await?)
    }

    /// Renames one of the user's passkeys.
    pub async fn rename(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        id: &PasskeyId,
        name: &str,
    ) -> Result<Passkey, ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        let name = name.trim();
        if !(1..=100).contains(&name.chars().count()) || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid("name", "must be 1 to 100 characters"));
        }
        let data = serde_json::json!({ "passkey_id": id, "name": name });
        let event =
            AuditEvent::by_user(self.clock.now(), ctx, "passkey.renamed", &tenant.id, Some(user.id.as_str()), data);
        self.store
            .rename_passkey(&tenant.id, &user.id, id, name, &event)
            .await
            .map_err(ServiceError::from_store("passkey"))?;
        self.store
            .list_passkeys(&tenant.id, &user.id)
            .await?
            .into_iter()
            .find(|p| &p.id == id)
            .ok_or(ServiceError::NotFound { resource: "passkey" })
    }

    /// Deletes one of the signed-in user's passkeys: a sensitive action (recent sign-in
    /// or a step-up token).
    pub async fn delete(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        id: &PasskeyId,
        step_up: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.auth.sensitive(tenant, ctx, access_token, step_up).await?;
        let user = &user;
        let data = serde_json::json!({ "passkey_id": id });
        let event =
            AuditEvent::by_user(self.clock.now(), ctx, "passkey.deleted", &tenant.id, Some(user.id.as_str()), data);
        let notice = self.messenger.notice(tenant, ctx, self.clock.now(), user, MessageKind::PasskeyRemoved).await?;
        self.store
            .delete_passkey(&tenant.id, &user.id, id, &[notice], &event)
            .await
            .map_err(ServiceError::from_store("passkey"))?;
        self.messenger.queued();
        Ok(())
    }
}

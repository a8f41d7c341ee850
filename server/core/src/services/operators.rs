//! Operator accounts: management by operator owners, and signing in with a password and
//! a mandatory TOTP (enrolled at the first sign-in) for a session token `gh_ops_…`.
//!
//! Sign-in always takes two steps: the password answers a single-use challenge (five
//! minutes, in the ephemeral store), and only a TOTP code for it yields a session. An
//! unknown address costs the same hash as a known one and gets the same answer.

use super::AuditLog;
use crate::access::{Capability, OperatorAccess, OperatorRole, Principal};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::ephemeral::EphemeralStore;
use crate::error::{FieldError, ServiceError};
use crate::ids::{OperatorId, OperatorSessionId, TenantId};
use crate::operator::{Operator, OperatorSession};
use crate::page::{Page, PageRequest};
use crate::password::{PasswordHasher, Verified, check_policy};
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::signing::Sealer;
use crate::store::Store;
use crate::tenant::PasswordPolicy;
use crate::user::{Email, check_user_name};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Prefix of operator session tokens.
pub const OPERATOR_SESSION_PREFIX: &str = "gh_ops_";
/// Prefix of sign-in challenge tokens.
const CHALLENGE_PREFIX: &str = "gh_opc_";
/// How long a session lasts.
const SESSION_TTL: time::Duration = time::Duration::hours(12);
/// How long the second step may wait.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Sign-in attempts per IP per minute.
const ATTEMPTS_PER_IP: u64 = 20;

/// A new operator.
#[derive(Debug, Clone)]
pub struct NewOperator {
    /// Sign-in address.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Initial password (the operator enrolls TOTP at the first sign-in).
    pub password: SecretString,
    /// Role.
    pub role: OperatorRole,
    /// Reachable tenants (`None`: all).
    pub tenant_ids: Option<Vec<TenantId>>,
}

/// Changes to an operator (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct OperatorPatch {
    /// New role.
    pub role: Option<OperatorRole>,
    /// New scope (`Some(None)`: all tenants).
    pub tenant_ids: Option<Option<Vec<TenantId>>>,
    /// Disable (ends every session) or enable.
    pub disabled: Option<bool>,
}

/// The second step of a sign-in.
#[derive(Debug)]
pub enum SignInStep {
    /// Enroll TOTP with this secret, then answer with a code.
    TotpSetup {
        /// Single-use challenge token.
        challenge: SecretString,
        /// Base32 secret.
        secret: SecretString,
        /// `otpauth://` URI.
        otpauth_uri: SecretString,
    },
    /// Answer with a TOTP code.
    TotpRequired {
        /// Single-use challenge token.
        challenge: SecretString,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    operator_id: OperatorId,
    /// A new secret (sealed) when enrolling.
    setup: Option<Vec<u8>>,
}

/// The operator use cases.
#[derive(Debug, Clone)]
pub struct OperatorService {
    store: Arc<dyn Store>,
    ephemeral: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    hasher: PasswordHasher,
    sealer: Arc<Sealer>,
}

fn unavailable(e: crate::ephemeral::EphemeralError) -> ServiceError {
    ServiceError::Unavailable(e.to_string())
}

fn sealing_context(id: &OperatorId) -> String {
    format!("operator-totp:{id}")
}

impl OperatorService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn Store>,
        ephemeral: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        audit: AuditLog,
        hasher: PasswordHasher,
        sealer: Arc<Sealer>,
    ) -> Self {
        Self { store, ephemeral, clock, audit, hasher, sealer }
    }

    async fn check_scope(&self, tenant_ids: &Option<Vec<TenantId>>) -> Result<(), ServiceError> {
        if let Some(scope) = tenant_ids {
            if scope.is_empty() || scope.len() > 100 {
                return Err(ServiceError::invalid("tenant_ids", "must list 1 to 100 tenants"));
            }
            for (i, id) in scope.iter().enumerate() {
                if self.store.get_tenant(id).await.is_err() {
                    return Err(ServiceError::invalid(&format!("tenant_ids[{i}]"), "no such tenant"));
                }
            }
        }
        Ok(())
    }

    /// Creates an operator account.
    pub async fn create(
        &self,
        op: &OperatorAccess,
        ctx: &RequestContext,
        input: NewOperator,
    ) -> Result<Operator, ServiceError> {
        op.require(Capability::Operators)?;
        let mut errors = Vec::new();
        let email = Email::parse(&input.email).map_err(|why| errors.push(FieldError::new("email", why)));
        let name = check_user_name(input.name).map_err(|why| errors.push(FieldError::new("name", why)));
        let (Ok(email), Ok(name)) = (email, name) else { return Err(ServiceError::Validation(errors)) };
        let policy = PasswordPolicy { min_length: 12, ..PasswordPolicy::default() };
        check_policy(&policy, input.password.expose(), &email)
            .map_err(|e| ServiceError::Validation(vec![FieldError::new("password", e.message)]))?;
        self.check_scope(&input.tenant_ids).await?;
        let operator = Operator {
            id: OperatorId::generate(),
            email,
            name,
            role: input.role,
            tenant_ids: input.tenant_ids,
            password_hash: self.hasher.hash(&input.password).await?,
            totp_sealed: None,
            totp_last_step: None,
            disabled: false,
            created_at: self.clock.now(),
            last_login_at: None,
        };
        let event =
            self.audit.change(op.principal(), ctx, "operator.create", None, Some(("operator", operator.id.as_str())));
        self.store.create_operator(&operator, &event).await.map_err(ServiceError::from_store("operator"))?;
        Ok(operator)
    }

    /// Operators by id.
    pub async fn list(&self, op: &OperatorAccess, page: &PageRequest) -> Result<Page<Operator>, ServiceError> {
        op.require(Capability::Operators)?;
        Ok(self.store.list_operators(page).await?)
    }

    /// Changes an operator's role, scope or status (disabling ends their sessions).
    pub async fn update(
        &self,
        op: &OperatorAccess,
        ctx: &RequestContext,
        id: &OperatorId,
        patch: OperatorPatch,
    ) -> Result<Operator, ServiceError> {
        op.require(Capability::Operators)?;
        let mut operator = self.store.get_operator(id).await.map_err(ServiceError::from_store("operator"))?;
        if let Some(scope) = patch.tenant_ids {
            self.check_scope(&scope).await?;
            operator.tenant_ids = scope;
        }
        if let Some(role) = patch.role {
            operator.role = role;
        }
        if let Some(disabled) = patch.disabled {
            operator.disabled = disabled;
        }
        let event = self.audit.change(op.principal(), ctx, "operator.update", None, Some(("operator", id.as_str())));
        self.store
            .update_operator(&operator, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("operator"))?;
        Ok(operator)
    }

    /// Deletes an operator account and its sessions.
    pub async fn delete(&self, op: &OperatorAccess, ctx: &RequestContext, id: &OperatorId) -> Result<(), ServiceError> {
        op.require(Capability::Operators)?;
        if matches!(op.principal(), Principal::Operator { id: me, .. } if me == id) {
            return Err(ServiceError::Forbidden("operators cannot delete themselves"));
        }
        let event = self.audit.change(op.principal(), ctx, "operator.delete", None, Some(("operator", id.as_str())));
        self.store.delete_operator(id, &event).await.map_err(ServiceError::from_store("operator"))
    }

    async fn limit(&self, ctx: &RequestContext) -> Result<(), ServiceError> {
        let key = format!("rl:operator_login:{}", ctx.ip.as_deref().unwrap_or("unknown"));
        let count = self.ephemeral.increment(&key, Duration::from_secs(60)).await.map_err(unavailable)?;
        if count.hits > ATTEMPTS_PER_IP {
            return Err(ServiceError::RateLimited { retry_after: count.resets_in.as_secs().max(1) });
        }
        Ok(())
    }

    fn event(&self, ctx: &RequestContext, action: &str, id: Option<&OperatorId>) -> AuditEvent {
        AuditEvent::by_operator(self.clock.now(), ctx, action, id.map(OperatorId::as_str), serde_json::json!({}))
    }

    /// First step: the password. Answers the second step (enroll TOTP, or a code).
    pub async fn sign_in(
        &self,
        ctx: &RequestContext,
        email: &str,
        password: &SecretString,
    ) -> Result<SignInStep, ServiceError> {
        self.limit(ctx).await?;
        let email = Email::parse(email).ok();
        let operator = match &email {
            Some(e) => self.store.find_operator_by_email(e.normalized()).await?,
            None => None,
        };
        let verified = self.hasher.verify(password, operator.as_ref().map(|o| o.password_hash.as_str())).await?;
        let (Some(operator), Verified::Yes { .. }) = (operator, verified) else {
            self.audit.record(self.event(ctx, "operator.login_failure", None)).await?;
            return Err(ServiceError::InvalidCredentials);
        };
        if operator.disabled {
            self.audit.record(self.event(ctx, "operator.login_failure", Some(&operator.id))).await?;
            return Err(ServiceError::InvalidCredentials);
        }
        let challenge = generate_secret(CHALLENGE_PREFIX);
        let (pending, step) = match &operator.totp_sealed {
            Some(_) => (
                Pending { operator_id: operator.id.clone(), setup: None },
                SignInStep::TotpRequired { challenge: challenge.value.clone() },
            ),
            None => {
                let mut secret = [0u8; 20];
                rand::rng().fill(&mut secret);
                let totp = super::mfa::totp(secret.to_vec(), "Gatehouse", operator.email.as_str())?;
                let uri = totp.to_url().map_err(|e| ServiceError::internal(format!("totp url: {e:?}")))?;
                let sealed = self.sealer.seal(&sealing_context(&operator.id), &secret)?;
                let step = SignInStep::TotpSetup {
                    challenge: challenge.value.clone(),
                    secret: SecretString::new(super::mfa::base32_of(&secret)),
                    otpauth_uri: SecretString::new(uri),
                };
                (Pending { operator_id: operator.id.clone(), setup: Some(sealed) }, step)
            }
        };
        let value = serde_json::to_vec(&pending).map_err(ServiceError::internal)?;
        self.ephemeral
            .put_once(&format!("opchal:{}", challenge.hash.as_str()), &value, CHALLENGE_TTL)
            .await
            .map_err(unavailable)?;
        Ok(step)
    }

    /// Second step: a TOTP code for the challenge (enrolling the secret if it was a
    /// set-up). The challenge is spent either way. Answers the session token.
    pub async fn verify(
        &self,
        ctx: &RequestContext,
        challenge: &str,
        code: &str,
    ) -> Result<(SecretString, time::OffsetDateTime), ServiceError> {
        self.limit(ctx).await?;
        if !challenge.starts_with(CHALLENGE_PREFIX) || challenge.len() > 128 {
            return Err(ServiceError::InvalidToken);
        }
        let raw = self
            .ephemeral
            .take(&format!("opchal:{}", SecretHash::of(challenge).as_str()))
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::InvalidToken)?;
        let pending: Pending = serde_json::from_slice(&raw).map_err(ServiceError::internal)?;
        let mut operator =
            self.store.get_operator(&pending.operator_id).await.map_err(|_| ServiceError::InvalidToken)?;
        let sealed =
            pending.setup.clone().or_else(|| operator.totp_sealed.clone()).ok_or(ServiceError::InvalidToken)?;
        let secret = self.sealer.open(&sealing_context(&operator.id), &sealed)?;
        let now = self.clock.now();
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let totp = super::mfa::totp(secret, "Gatehouse", operator.email.as_str())?;
        let Some(step) = totp.check(code.trim(), unix) else {
            self.audit.record(self.event(ctx, "operator.login_failure", Some(&operator.id))).await?;
            return Err(ServiceError::InvalidCode);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if pending.setup.is_some() {
            operator.totp_sealed = Some(sealed);
            operator.totp_last_step = Some(step);
            let event = self.event(ctx, "operator.totp_enrolled", Some(&operator.id));
            self.store.update_operator(&operator, now, &event).await?;
        } else if !self.store.use_operator_totp_step(&operator.id, step).await? {
            return Err(ServiceError::InvalidCode);
        }
        let token = generate_secret(OPERATOR_SESSION_PREFIX);
        let session = OperatorSession {
            id: OperatorSessionId::generate(),
            operator_id: operator.id.clone(),
            token_hash: token.hash,
            created_at: now,
            expires_at: now + SESSION_TTL,
            revoked_at: None,
        };
        let mut event = self.event(ctx, "operator.login", Some(&operator.id));
        event.data = serde_json::json!({ "session_id": session.id });
        self.store.create_operator_session(&session, &event).await.map_err(|_| ServiceError::InvalidToken)?;
        Ok((token.value, session.expires_at))
    }

    /// Ends the caller's operator session.
    pub async fn sign_out(&self, principal: &Principal, ctx: &RequestContext) -> Result<(), ServiceError> {
        let Principal::Operator { id, session_id, .. } = principal else {
            return Err(ServiceError::Forbidden("only operator sessions sign out"));
        };
        let event = self.event(ctx, "operator.logout", Some(id));
        self.store
            .revoke_operator_session(session_id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("session"))
    }
}

//! The signed-in user's own account: who they are, their profile, their password, their
//! sessions, and the step-up that sensitive changes need.

use super::{AuthService, unavailable};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{FieldError, ServiceError};
use crate::ids::SessionId;
use crate::password::{Verified, check_policy};
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::session::Session;
use crate::signing::{AccessClaims, verify_access_token};
use crate::tenant::Tenant;
use crate::user::{User, UserStatus, check_user_name};

/// How long after signing in a session may do sensitive things without stepping up.
const STEP_UP_MAX_AGE: time::Duration = time::Duration::minutes(5);
/// Validity of a step-up token.
const STEP_UP_TTL: time::Duration = time::Duration::minutes(5);
/// Prefix of step-up tokens.
const STEP_UP_TOKEN_PREFIX: &str = "su_";

impl AuthService {
    /// The user behind an access token, if the token, its session and the user are all
    /// still valid.
    pub async fn me(&self, tenant: &Tenant, access_token: &str) -> Result<(User, AccessClaims), ServiceError> {
        let (user, claims, _) = self.signed_in(tenant, access_token).await?;
        Ok((user, claims))
    }

    /// The user, claims and session behind an access token, if all are still valid.
    pub async fn signed_in(
        &self,
        tenant: &Tenant,
        access_token: &str,
    ) -> Result<(User, AccessClaims, Session), ServiceError> {
        let keys = self.keys.verification_keys(tenant).await?;
        let claims = verify_access_token(access_token, &keys, &self.issuer(tenant), tenant.id.as_str())?;
        let session_id: SessionId = claims.sid.parse().map_err(|_| ServiceError::InvalidToken)?;
        let session = self.store.get_session(&tenant.id, &session_id).await.map_err(|_| ServiceError::InvalidToken)?;
        let user = self.store.get_user(&tenant.id, &session.user_id).await.map_err(|_| ServiceError::InvalidToken)?;
        if !session.is_live(self.clock.now()) || user.status != UserStatus::Active || user.id.as_str() != claims.sub {
            return Err(ServiceError::InvalidToken);
        }
        Ok((user, claims, session))
    }

    /// The signed-in user, for a sensitive action: the session signed in within five
    /// minutes (`STEP_UP_MAX_AGE`), or `step_up` is a live step-up token of this very
    /// session (spent here). Otherwise `StepUpRequired`.
    pub async fn sensitive(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        step_up: Option<&str>,
    ) -> Result<(User, AccessClaims), ServiceError> {
        let (user, claims, session) = self.signed_in(tenant, access_token).await?;
        let now = self.clock.now();
        if now - session.auth_time <= STEP_UP_MAX_AGE {
            return Ok((user, claims));
        }
        let token = step_up
            .filter(|t| t.starts_with(STEP_UP_TOKEN_PREFIX) && t.len() <= 128)
            .ok_or(ServiceError::StepUpRequired)?;
        let secret = self
            .store
            .find_one_time_by_token(&tenant.id, crate::messaging::Purpose::StepUp, &SecretHash::of(token), now)
            .await?
            .filter(|s| s.target == session.id.as_str())
            .ok_or(ServiceError::StepUpRequired)?;
        let event =
            AuditEvent::by_user(now, ctx, "step_up.used", &tenant.id, Some(user.id.as_str()), serde_json::json!({}));
        let redemption = crate::messaging::Redemption {
            secret_id: &secret.id,
            now,
            user: crate::messaging::UserWrite::None,
            revoke_sessions: None,
            session: None,
            issue: None,
            messages: &[],
            event: &event,
        };
        crate::services::redeem(self.store.as_ref(), &tenant.id, &redemption, ServiceError::StepUpRequired).await?;
        Ok((user, claims))
    }

    /// Checks the user's password as a sign-in would (back-off, failures counted).
    pub async fn check_password(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        user: &User,
        password: &SecretString,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let account_key = format!("login:acct:{}:{}", tenant.id, user.email.normalized());
        if let Some(until) = self.ephemeral.cache_get(&format!("{account_key}:locked")).await.map_err(unavailable)? {
            return Err(ServiceError::RateLimited {
                retry_after: String::from_utf8_lossy(&until).parse().unwrap_or(1),
            });
        }
        if !matches!(self.hasher.verify(password, user.password_hash.as_deref()).await?, Verified::Yes { .. }) {
            return Err(self.failed_login(tenant, ctx, Some(&account_key), Some(&user.id), reason).await);
        }
        Ok(())
    }

    /// Issues a step-up token for one sensitive action of `session`, after the caller
    /// proved a factor again (`method`).
    pub async fn issue_step_up(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        user: &User,
        session: &Session,
        method: &str,
    ) -> Result<SecretString, ServiceError> {
        let now = self.clock.now();
        let token = generate_secret(STEP_UP_TOKEN_PREFIX);
        let secret = crate::messaging::OneTimeSecret {
            id: crate::ids::OneTimeId::generate(),
            tenant_id: tenant.id.clone(),
            purpose: crate::messaging::Purpose::StepUp,
            target: session.id.to_string(),
            user_id: Some(user.id.clone()),
            token_hash: Some(token.hash),
            code_hash: None,
            attempts: 0,
            max_attempts: 0,
            data: serde_json::json!({ "method": method }),
            created_at: now,
            expires_at: now + STEP_UP_TTL,
            consumed_at: None,
        };
        let data = serde_json::json!({ "method": method, "session_id": session.id });
        let event = AuditEvent::by_user(now, ctx, "step_up.issued", &tenant.id, Some(user.id.as_str()), data);
        self.store.issue_one_time(&tenant.id, &secret, &[], &event).await?;
        Ok(token.value)
    }

    /// Changes the signed-in user's password after checking the current one, and signs
    /// out every other session.
    pub async fn change_password(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        current: &SecretString,
        new: &SecretString,
        step_up: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (mut user, claims) = self.sensitive(tenant, ctx, access_token, step_up).await?;
        self.check_password(tenant, ctx, &user, current, "wrong_current_password").await?;
        check_policy(&tenant.settings.password_policy, new.expose(), &user.email)
            .map_err(|e| ServiceError::Validation(vec![FieldError::new("new_password", e.message)]))?;
        let now = self.clock.now();
        user.password_hash = Some(self.hasher.hash(new).await?);
        user.updated_at = now;
        let event = AuditEvent::by_user(
            now,
            ctx,
            "user.password_change",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({}),
        );
        self.store.update_user(&tenant.id, &user, &event).await?;
        let keep: SessionId = claims.sid.parse().map_err(|_| ServiceError::InvalidToken)?;
        self.store.revoke_user_sessions(&tenant.id, &user.id, Some(&keep), now, "password_change").await?;
        Ok(())
    }

    /// The signed-in user's live sessions, and which of them is the caller's.
    pub async fn sessions(&self, tenant: &Tenant, access_token: &str) -> Result<(Vec<Session>, String), ServiceError> {
        let (user, claims) = self.me(tenant, access_token).await?;
        let sessions = self.store.list_user_sessions(&tenant.id, &user.id, self.clock.now()).await?;
        Ok((sessions, claims.sid))
    }

    /// Signs out one of the user's own sessions (`NotFound` for anyone else's).
    pub async fn revoke_session(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        session_id: &SessionId,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.me(tenant, access_token).await?;
        let now = self.clock.now();
        self.store
            .revoke_user_session(&tenant.id, &user.id, session_id, now, "revoked_by_user")
            .await
            .map_err(ServiceError::from_store("session"))?;
        let data = serde_json::json!({ "session_id": session_id });
        self.audit
            .record(AuditEvent::by_user(now, ctx, "session.revoke", &tenant.id, Some(user.id.as_str()), data))
            .await
    }

    /// Signs out everywhere, this session included.
    pub async fn revoke_all_sessions(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        step_up: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.sensitive(tenant, ctx, access_token, step_up).await?;
        let now = self.clock.now();
        let count = self.store.revoke_user_sessions(&tenant.id, &user.id, None, now, "signed_out_everywhere").await?;
        let data = serde_json::json!({ "revoked": count });
        self.audit
            .record(AuditEvent::by_user(now, ctx, "session.revoke_all", &tenant.id, Some(user.id.as_str()), data))
            .await
    }

    /// Changes the signed-in user's own profile (name, picture, locale).
    pub async fn update_me(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        name: Option<String>,
        profile: crate::user::UserProfile,
    ) -> Result<User, ServiceError> {
        let (mut user, _) = self.me(tenant, access_token).await?;
        if name.is_some() {
            user.name = check_user_name(name).map_err(|why| ServiceError::invalid("name", &why))?;
        }
        user.profile.picture = profile.picture.or(user.profile.picture);
        user.profile.locale = profile.locale.or(user.profile.locale);
        crate::user::check_profile(&user.profile).map_err(ServiceError::Validation)?;
        user.updated_at = self.clock.now();
        let event = AuditEvent::by_user(
            user.updated_at,
            ctx,
            "user.profile_update",
            &tenant.id,
            Some(user.id.as_str()),
            serde_json::json!({}),
        );
        self.store.update_user(&tenant.id, &user, &event).await?;
        Ok(user)
    }
}

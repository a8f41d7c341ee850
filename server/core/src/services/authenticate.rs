//! Turning a management-API bearer credential into a [`Principal`].

use super::admin_tokens::ADMIN_TOKEN_PREFIX;
use super::operators::OPERATOR_SESSION_PREFIX;
use super::secret_keys::SECRET_KEY_PREFIX;
use crate::access::Principal;
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::secret::{SecretHash, SecretString};
use crate::store::Store;
use std::sync::Arc;

/// Uses are recorded at most this often per credential, so reads stay reads.
const TOUCH_INTERVAL: time::Duration = time::Duration::minutes(1);
/// Longer bearer values are refused before hashing.
const MAX_CREDENTIAL_LEN: usize = 256;

/// Checks management-API credentials.
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    break_glass: Option<SecretString>,
}

impl Authenticator {
    /// An authenticator; `break_glass` is `GATEHOUSE_ADMIN_TOKEN` if set.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, break_glass: Option<SecretString>) -> Self {
        Self { store, clock, break_glass }
    }

    /// Who presented `bearer`, or `Unauthenticated`. Unknown, revoked and expired
    /// credentials are indistinguishable to the caller.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, ServiceError> {
        if bearer.len() > MAX_CREDENTIAL_LEN {
            return Err(ServiceError::Unauthenticated);
        }
        let now = self.clock.now();
        if bearer.starts_with(SECRET_KEY_PREFIX) {
            let hash = SecretHash::of(bearer);
            let key = self.store.find_active_secret_key(&hash, now).await?.ok_or(ServiceError::Unauthenticated)?;
            if key.last_used_at.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
                self.store.touch_secret_key(&key.tenant_id, &key.id, now).await?;
            }
            return Ok(Principal::SecretKey { id: key.id, tenant_id: key.tenant_id });
        }
        if bearer.starts_with(OPERATOR_SESSION_PREFIX) {
            let (session, operator) = self
                .store
                .find_operator_session(&SecretHash::of(bearer), now)
                .await?
                .ok_or(ServiceError::Unauthenticated)?;
            return Ok(Principal::Operator {
                id: operator.id,
                session_id: session.id,
                tenant_scope: operator.tenant_ids,
                role: operator.role,
            });
        }
        if bearer.starts_with(ADMIN_TOKEN_PREFIX) {
            if self.break_glass.as_ref().is_some_and(|bg| bg.constant_time_eq(bearer)) {
                return Ok(Principal::BreakGlass);
            }
            let hash = SecretHash::of(bearer);
            let token = self.store.find_active_admin_token(&hash).await?.ok_or(ServiceError::Unauthenticated)?;
            if token.last_used_at.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
                self.store.touch_admin_token(&token.id, now).await?;
            }
            return Ok(Principal::AdminToken { id: token.id, tenant_scope: token.tenant_scope, role: token.role });
        }
        Err(ServiceError::Unauthenticated)
    }
}

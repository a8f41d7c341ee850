//! Operator API tokens (`gh_admin_…`) for automation, and the first-start bootstrap token.

use super::AuditLog;
use super::secret_keys::check_key_name;
use crate::access::{Capability, OperatorAccess, OperatorRole};
use crate::audit::{ActorType, AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::credentials::AdminTokenRecord;
use crate::error::ServiceError;
use crate::ids::{AdminTokenId, EventId, TenantId};
use crate::page::{Page, PageRequest};
use crate::secret::{SecretString, generate_secret};
use crate::store::Store;
use std::sync::Arc;

/// Prefix of every operator token.
pub const ADMIN_TOKEN_PREFIX: &str = "gh_admin_";

/// A token just made, with its secret (shown once).
#[derive(Debug, Clone)]
pub struct IssuedAdminToken {
    /// The stored record.
    pub record: AdminTokenRecord,
    /// The secret.
    pub secret: SecretString,
}

/// The operator-token use cases.
#[derive(Debug, Clone)]
pub struct AdminTokenService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
}

impl AdminTokenService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog) -> Self {
        Self { store, clock, audit }
    }

    /// Creates a token, optionally limited to some tenants (which must exist).
    pub async fn create(
        &self,
        op: &OperatorAccess,
        ctx: &RequestContext,
        name: Option<String>,
        tenant_scope: Option<Vec<TenantId>>,
        role: OperatorRole,
    ) -> Result<IssuedAdminToken, ServiceError> {
        op.require(Capability::Operators)?;
        let name = check_key_name(name)?;
        if let Some(scope) = &tenant_scope {
            if scope.is_empty() || scope.len() > 100 {
                return Err(ServiceError::invalid("tenant_ids", "must list 1 to 100 tenants"));
            }
            for (i, tenant_id) in scope.iter().enumerate() {
                if self.store.get_tenant(tenant_id).await.is_err() {
                    return Err(ServiceError::invalid(&format!("tenant_ids[{i}]"), "no such tenant"));
                }
            }
        }
        let mut issued = self.issue(name, tenant_scope);
        issued.record.role = role;
        let target = Some(("admin_token", issued.record.id.as_str()));
        let event = self.audit.change(op.principal(), ctx, "admin_token.create", None, target);
        self.store.create_admin_token(&issued.record, &event).await?;
        Ok(issued)
    }

    /// All tokens, revoked ones included.
    pub async fn list(
        &self,
        op: &OperatorAccess,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> Result<Page<AdminTokenRecord>, ServiceError> {
        op.require(Capability::Operators)?;
        let tokens = self.store.list_admin_tokens(page).await?;
        self.audit.read(op.principal(), ctx, "admin_token.list", None, None).await?;
        Ok(tokens)
    }

    /// Revokes a token at once.
    pub async fn revoke(
        &self,
        op: &OperatorAccess,
        ctx: &RequestContext,
        token_id: &AdminTokenId,
    ) -> Result<(), ServiceError> {
        op.require(Capability::Operators)?;
        let target = Some(("admin_token", token_id.as_str()));
        let event = self.audit.change(op.principal(), ctx, "admin_token.revoke", None, target);
        self.store
            .revoke_admin_token(token_id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("admin_token"))
    }

    /// On first start without a break-glass token: makes an unrestricted token if no
    /// operator token exists yet and returns it to be printed once. `None` otherwise.
    pub async fn bootstrap(&self) -> Result<Option<SecretString>, ServiceError> {
        let issued = self.issue("bootstrap".into(), None);
        let event = AuditEvent {
            id: EventId::generate(),
            tenant_id: None,
            actor_type: ActorType::System,
            actor_id: None,
            action: "admin_token.bootstrap".into(),
            target_type: Some("admin_token".into()),
            target_id: Some(issued.record.id.to_string()),
            ip: None,
            user_agent: None,
            request_id: None,
            data: serde_json::json!({}),
            created_at: self.clock.now(),
        };
        let created = self.store.create_first_admin_token(&issued.record, &event).await?;
        Ok(created.then_some(issued.secret))
    }

    fn issue(&self, name: String, tenant_scope: Option<Vec<TenantId>>) -> IssuedAdminToken {
        let generated = generate_secret(ADMIN_TOKEN_PREFIX);
        let record = AdminTokenRecord {
            id: AdminTokenId::generate(),
            name,
            display_prefix: generated.display_prefix,
            hash: generated.hash,
            tenant_scope,
            role: OperatorRole::Owner,
            created_at: self.clock.now(),
            last_used_at: None,
            revoked_at: None,
        };
        IssuedAdminToken { record, secret: generated.value }
    }
}

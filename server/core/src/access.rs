//! Who is calling the management API, and capability handles that prove what they may
//! touch. Services accept the handles, never raw ids, so a forgotten check cannot compile.

use crate::audit::{ActorType, AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::{AdminTokenId, EventId, SecretKeyId, TenantId};

/// An authenticated management-API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The break-glass `GATEHOUSE_ADMIN_TOKEN`: everything.
    BreakGlass,
    /// An operator API token, possibly limited to some tenants.
    AdminToken {
        /// Token record id.
        id: AdminTokenId,
        /// Reachable tenants; `None` means all.
        tenant_scope: Option<Vec<TenantId>>,
    },
    /// A tenant secret key: its own tenant only.
    SecretKey {
        /// Key record id.
        id: SecretKeyId,
        /// The key's tenant.
        tenant_id: TenantId,
    },
}

impl Principal {
    /// Kind of caller, for audit.
    pub fn actor_type(&self) -> ActorType {
        match self {
            Self::BreakGlass => ActorType::BreakGlass,
            Self::AdminToken { .. } => ActorType::AdminToken,
            Self::SecretKey { .. } => ActorType::SecretKey,
        }
    }

    /// Credential id, for audit.
    pub fn actor_id(&self) -> Option<String> {
        match self {
            Self::BreakGlass => None,
            Self::AdminToken { id, .. } => Some(id.to_string()),
            Self::SecretKey { id, .. } => Some(id.to_string()),
        }
    }

    /// Tenants this caller reaches; `None` means all.
    pub fn tenant_scope(&self) -> Option<Vec<TenantId>> {
        match self {
            Self::BreakGlass => None,
            Self::AdminToken { tenant_scope, .. } => tenant_scope.clone(),
            Self::SecretKey { tenant_id, .. } => Some(vec![tenant_id.clone()]),
        }
    }

    /// A handle on one tenant. Outside the caller's reach the tenant is reported as
    /// not found, so a key cannot even learn that another tenant exists.
    pub fn tenant(&self, tenant_id: &TenantId) -> Result<TenantAccess, ServiceError> {
        let reachable = self.tenant_scope().is_none_or(|scope| scope.contains(tenant_id));
        if !reachable {
            return Err(ServiceError::NotFound { resource: "tenant" });
        }
        Ok(TenantAccess { tenant_id: tenant_id.clone(), principal: self.clone() })
    }

    /// A handle for operator-level actions (creating tenants, operator tokens): only
    /// callers unrestricted to particular tenants get one.
    pub fn operator(&self) -> Result<OperatorAccess, ServiceError> {
        match self {
            Self::BreakGlass | Self::AdminToken { tenant_scope: None, .. } => {
                Ok(OperatorAccess { principal: self.clone() })
            }
            Self::AdminToken { .. } => Err(ServiceError::Forbidden("this token is limited to some tenants")),
            Self::SecretKey { .. } => Err(ServiceError::Forbidden("a tenant secret key cannot do this")),
        }
    }

    /// An audit event caused by this caller.
    pub fn event(
        &self,
        clock: &dyn Clock,
        ctx: &RequestContext,
        action: &str,
        tenant_id: Option<&TenantId>,
        target: Option<(&str, &str)>,
    ) -> AuditEvent {
        AuditEvent {
            id: EventId::generate(),
            tenant_id: tenant_id.cloned(),
            actor_type: self.actor_type(),
            actor_id: self.actor_id(),
            action: action.to_owned(),
            target_type: target.map(|(kind, _)| kind.to_owned()),
            target_id: target.map(|(_, id)| id.to_owned()),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            data: serde_json::Value::Object(Default::default()),
            created_at: clock.now(),
        }
    }
}

/// Proof that the caller may act on one tenant.
#[derive(Debug, Clone)]
pub struct TenantAccess {
    tenant_id: TenantId,
    principal: Principal,
}

impl TenantAccess {
    /// The tenant.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Proof that the caller is an unrestricted operator.
#[derive(Debug, Clone)]
pub struct OperatorAccess {
    principal: Principal,
}

impl OperatorAccess {
    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_key_reaches_only_its_own_tenant_and_no_operator_actions() {
        let own = TenantId::generate();
        let other = TenantId::generate();
        let key = Principal::SecretKey { id: SecretKeyId::generate(), tenant_id: own.clone() };
        assert!(key.tenant(&own).is_ok());
        assert!(matches!(key.tenant(&other), Err(ServiceError::NotFound { .. })));
        assert!(matches!(key.operator(), Err(ServiceError::Forbidden(_))));
    }

    #[test]
    fn a_scoped_operator_token_reaches_only_listed_tenants() {
        let listed = TenantId::generate();
        let token = Principal::AdminToken { id: AdminTokenId::generate(), tenant_scope: Some(vec![listed.clone()]) };
        assert!(token.tenant(&listed).is_ok());
        assert!(token.tenant(&TenantId::generate()).is_err());
        assert!(token.operator().is_err());
        assert!(Principal::BreakGlass.operator().is_ok());
    }
}

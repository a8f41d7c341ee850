//! Who is calling the management API, and capability handles that prove what they may
//! touch. Services accept the handles, never raw ids, so a forgotten check cannot compile.

use crate::audit::{ActorType, AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::{AdminTokenId, EventId, SecretKeyId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an operator may do, by role (issue 6's operator roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Everything, including operator tokens and accounts.
    #[default]
    Owner,
    /// Reads, changes, secrets, signing keys and the audit log.
    SecurityAdmin,
    /// Reads and changes tenants' users, organizations and settings.
    SupportAdmin,
    /// Reads only (tenants and their usage).
    BillingAdmin,
    /// Reads and the audit log.
    ReadOnlyAuditor,
}

/// A class of management action, checked against the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Reading resources.
    Read,
    /// Creating, changing and deleting resources.
    Write,
    /// Issuing or revoking credentials (secret keys) and reading message bodies.
    Secrets,
    /// Rotating signing keys.
    Keys,
    /// Reading the audit log.
    Audit,
    /// Managing operator tokens and accounts.
    Operators,
}

impl OperatorRole {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::SecurityAdmin => "security_admin",
            Self::SupportAdmin => "support_admin",
            Self::BillingAdmin => "billing_admin",
            Self::ReadOnlyAuditor => "read_only_auditor",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Owner, Self::SecurityAdmin, Self::SupportAdmin, Self::BillingAdmin, Self::ReadOnlyAuditor]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Whether the role allows a class of action.
    pub fn allows(self, cap: Capability) -> bool {
        use Capability::*;
        match self {
            Self::Owner => true,
            Self::SecurityAdmin => matches!(cap, Read | Write | Secrets | Keys | Audit),
            Self::SupportAdmin => matches!(cap, Read | Write),
            Self::BillingAdmin => matches!(cap, Read),
            Self::ReadOnlyAuditor => matches!(cap, Read | Audit),
        }
    }
}

fn denied(cap: Capability) -> ServiceError {
    ServiceError::Forbidden(match cap {
        Capability::Read => "this role may not read here",
        Capability::Write => "this role may not change anything",
        Capability::Secrets => "this role may not handle secrets",
        Capability::Keys => "this role may not rotate signing keys",
        Capability::Audit => "this role may not read the audit log",
        Capability::Operators => "only operator owners manage operators",
    })
}

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
        /// What it may do there.
        role: OperatorRole,
    },
    /// A signed-in operator account (session token `gh_ops_…`).
    Operator {
        /// The operator.
        id: crate::ids::OperatorId,
        /// The session.
        session_id: crate::ids::OperatorSessionId,
        /// Reachable tenants; `None` means all.
        tenant_scope: Option<Vec<TenantId>>,
        /// What the operator may do.
        role: OperatorRole,
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
            Self::Operator { .. } => ActorType::Operator,
            Self::SecretKey { .. } => ActorType::SecretKey,
        }
    }

    /// Credential id, for audit.
    pub fn actor_id(&self) -> Option<String> {
        match self {
            Self::BreakGlass => None,
            Self::AdminToken { id, .. } => Some(id.to_string()),
            Self::Operator { id, .. } => Some(id.to_string()),
            Self::SecretKey { id, .. } => Some(id.to_string()),
        }
    }

    /// Tenants this caller reaches; `None` means all.
    pub fn tenant_scope(&self) -> Option<Vec<TenantId>> {
        match self {
            Self::BreakGlass => None,
            Self::AdminToken { tenant_scope, .. } | Self::Operator { tenant_scope, .. } => tenant_scope.clone(),
            Self::SecretKey { tenant_id, .. } => Some(vec![tenant_id.clone()]),
        }
    }

    /// Whether the caller may do this class of thing at all (a secret key may do
    /// everything in its tenant except manage operators).
    pub fn allows(&self, cap: Capability) -> bool {
        match self {
            Self::BreakGlass => true,
            Self::AdminToken { role, .. } | Self::Operator { role, .. } => role.allows(cap),
            Self::SecretKey { .. } => cap != Capability::Operators,
        }
    }

    /// Refuses unless the caller's role allows `cap`.
    pub fn require(&self, cap: Capability) -> Result<(), ServiceError> {
        if self.allows(cap) { Ok(()) } else { Err(denied(cap)) }
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
            Self::BreakGlass
            | Self::AdminToken { tenant_scope: None, .. }
            | Self::Operator { tenant_scope: None, .. } => Ok(OperatorAccess { principal: self.clone() }),
            Self::AdminToken { .. } | Self::Operator { .. } => {
                Err(ServiceError::Forbidden("this operator is limited to some tenants"))
            }
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

    /// The handle, if the caller's role allows `cap` (else `Forbidden`).
    pub fn require(&self, cap: Capability) -> Result<&Self, ServiceError> {
        self.principal.require(cap)?;
        Ok(self)
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

    /// The handle, if the caller's role allows `cap` (else `Forbidden`).
    pub fn require(&self, cap: Capability) -> Result<&Self, ServiceError> {
        self.principal.require(cap)?;
        Ok(self)
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
        let token = Principal::AdminToken {
            id: AdminTokenId::generate(),
            tenant_scope: Some(vec![listed.clone()]),
            role: OperatorRole::Owner,
        };
        assert!(token.tenant(&listed).is_ok());
        assert!(token.tenant(&TenantId::generate()).is_err());
        assert!(token.operator().is_err());
        assert!(Principal::BreakGlass.operator().is_ok());
    }

    #[test]
    fn roles_allow_their_classes_only() {
        use Capability::*;
        let all = [Read, Write, Secrets, Keys, Audit, Operators];
        let allowed = |role: OperatorRole| all.iter().filter(|c| role.allows(**c)).count();
        assert_eq!(allowed(OperatorRole::Owner), 6);
        assert_eq!(allowed(OperatorRole::SecurityAdmin), 5);
        assert!(!OperatorRole::SecurityAdmin.allows(Operators));
        assert!(OperatorRole::SupportAdmin.allows(Write) && !OperatorRole::SupportAdmin.allows(Secrets));
        assert!(OperatorRole::ReadOnlyAuditor.allows(Audit) && !OperatorRole::ReadOnlyAuditor.allows(Write));
        assert_eq!(allowed(OperatorRole::BillingAdmin), 1);
        for role in ["owner", "security_admin", "support_admin", "billing_admin", "read_only_auditor"] {
            assert_eq!(OperatorRole::parse(role).unwrap().as_str(), role);
        }
        let key = Principal::SecretKey { id: SecretKeyId::generate(), tenant_id: TenantId::generate() };
        assert!(key.allows(Secrets) && !key.allows(Operators));
    }
}

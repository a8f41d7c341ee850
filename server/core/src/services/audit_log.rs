//! Recording and reading the audit log.

use crate::access::Principal;
use crate::audit::{AuditEvent, AuditQuery, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::page::{Page, PageRequest};
use crate::store::Store;
use std::sync::Arc;

/// Filters a caller may give when listing audit events.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this tenant.
    pub tenant_id: Option<TenantId>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor_id: Option<String>,
}

/// The audit log service.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    record_reads: bool,
}

impl AuditLog {
    /// A log over `store`; `record_reads` also records read-only calls.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, record_reads: bool) -> Self {
        Self {
            store,
            clock,
            record_reads,
        }
    }

    /// Builds the event for a change; the store writes it with the change.
    pub fn change(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        action: &str,
        tenant_id: Option<&TenantId>,
        target: Option<(&str, &str)>,
    ) -> AuditEvent {
        principal.event(self.clock.as_ref(), ctx, action, tenant_id, target)
    }

    /// Records a read-only call, if reads are recorded.
    pub async fn read(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        action: &str,
        tenant_id: Option<&TenantId>,
        target: Option<(&str, &str)>,
    ) -> Result<(), ServiceError> {
        if !self.record_reads {
            return Ok(());
        }
        let event = self.change(principal, ctx, action, tenant_id, target);
        Ok(self.store.append_audit_event(&event).await?)
    }

    /// Lists events the caller may see.
    pub async fn list(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        filter: AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, ServiceError> {
        if let Some(tenant_id) = &filter.tenant_id {
            principal.tenant(tenant_id)?;
        }
        let query = AuditQuery {
            tenant_id: filter.tenant_id,
            tenant_scope: principal.tenant_scope(),
            action: filter.action,
            actor_id: filter.actor_id,
        };
        let events = self.store.list_audit_events(&query, page).await?;
        self.read(
            principal,
            ctx,
            "audit_event.list",
            query.tenant_id.as_ref(),
            None,
        )
        .await?;
        Ok(events)
    }
}

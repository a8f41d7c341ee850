//! Operators' view of a tenant's messages: delivery status for everyone with access to
//! the tenant, and the content (the dev outbox) for operators when no relay is set up.

use super::AuditLog;
use super::messenger::Messenger;
use crate::access::{Capability, Principal, TenantAccess};
use crate::audit::RequestContext;
use crate::error::ServiceError;
use crate::messaging::{OutboxRecord, RenderedMessage};
use crate::page::{Page, PageRequest};
use crate::store::Store;
use std::sync::Arc;

/// Reads the outbox.
#[derive(Debug, Clone)]
pub struct OutboxService {
    store: Arc<dyn Store>,
    audit: AuditLog,
    messenger: Messenger,
}

impl OutboxService {
    /// Wires the service.
    pub fn new(store: Arc<dyn Store>, audit: AuditLog, messenger: Messenger) -> Self {
        Self { store, audit, messenger }
    }

    /// The tenant's messages with their delivery status (no content).
    pub async fn list(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> Result<Page<OutboxRecord>, ServiceError> {
        access.require(Capability::Read)?;
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let page = self.store.list_messages(access.tenant_id(), page).await?;
        self.audit.read(access.principal(), ctx, "message.list", Some(access.tenant_id()), None).await?;
        Ok(page)
    }

    /// The dev outbox: messages with their content, which includes live links and codes.
    /// Operators only (never a tenant secret key), and only while no relay is configured
    /// (`enabled`); the read is always audited.
    pub async fn dev_outbox(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        page: &PageRequest,
        enabled: bool,
    ) -> Result<Page<(OutboxRecord, RenderedMessage)>, ServiceError> {
        access.require(Capability::Secrets)?;
        if !enabled {
            return Err(ServiceError::NotFound { resource: "dev outbox (a relay is configured)" });
        }
        if matches!(access.principal(), Principal::SecretKey { .. }) {
            return Err(ServiceError::Forbidden("the dev outbox is for operators, not tenant secret keys"));
        }
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let page = self.store.list_messages(access.tenant_id(), page).await?;
        let event = self.audit.change(access.principal(), ctx, "dev_outbox.read", Some(access.tenant_id()), None);
        self.audit.record(event).await?;
        let mut data = Vec::with_capacity(page.data.len());
        for record in page.data {
            let content = self.messenger.open(&record.message)?;
            data.push((record, content));
        }
        Ok(Page { data, next_cursor: page.next_cursor })
    }
}

//! Recording and reading the audit log.
//!
//! Events of changes are written by the store in the change's own transaction. Events of
//! reads have nothing to share a transaction with, so they go through a *group commit*:
//! one writer task stores whatever events are waiting in one transaction, and every
//! caller waits until its event is committed. Under load many reads share a commit; no
//! event is ever acknowledged before it is stored.

use crate::access::{Capability, Principal};
use crate::audit::{AuditEvent, AuditQuery, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::page::{Page, PageRequest};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 256;
/// Events that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;

type Pending = (AuditEvent, oneshot::Sender<Result<(), StoreError>>);

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
    /// The group-commit writer; `None` outside a Tokio runtime (then each read event is
    /// written on its own).
    writer: Option<mpsc::Sender<Pending>>,
}

impl AuditLog {
    /// A log over `store`; `record_reads` also records read-only calls. Inside a Tokio
    /// runtime this starts the group-commit writer, which ends when the last clone of
    /// this log is dropped.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, record_reads: bool) -> Self {
        let writer = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            runtime.spawn(group_commit(store.clone(), rx));
            tx
        });
        Self { store, clock, record_reads, writer }
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

    /// Records a read-only call, if reads are recorded; returns once it is stored.
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
        self.record(self.change(principal, ctx, action, tenant_id, target)).await
    }

    /// Stores an event that accompanies no other change; returns once it is stored.
    pub async fn record(&self, event: AuditEvent) -> Result<(), ServiceError> {
        let Some(writer) = &self.writer else {
            return Ok(self.store.append_audit_events(std::slice::from_ref(&event)).await?);
        };
        let (done, committed) = oneshot::channel();
        writer.send((event, done)).await.map_err(|_| ServiceError::internal("audit writer stopped"))?;
        committed.await.map_err(|_| ServiceError::internal("audit writer stopped"))??;
        Ok(())
    }

    /// Lists events the caller may see.
    pub async fn list(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        filter: AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, ServiceError> {
        // Out of reach is "not found" before anything else, as on every tenant route.
        if let Some(tenant_id) = &filter.tenant_id {
            principal.tenant(tenant_id)?;
        }
        principal.require(Capability::Audit)?;
        let query = AuditQuery {
            tenant_id: filter.tenant_id,
            tenant_scope: principal.tenant_scope(),
            action: filter.action,
            actor_id: filter.actor_id,
        };
        let events = self.store.list_audit_events(&query, page).await?;
        self.read(principal, ctx, "audit_event.list", query.tenant_id.as_ref(), None).await?;
        Ok(events)
    }
}

/// Stores waiting events in batches until every sender is gone.
async fn group_commit(store: Arc<dyn Store>, mut queue: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<AuditEvent> = batch.iter().map(|(event, _)| event.clone()).collect();
        let result = store.append_audit_events(&events).await;
        for (_, done) in batch.drain(..) {
            // A caller that gave up waiting is not an error.
            let _ = done.send(result.clone());
        }
    }
}

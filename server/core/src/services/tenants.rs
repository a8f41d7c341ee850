//! Creating, reading, changing and deleting tenants.

use super::AuditLog;
use crate::access::{Capability, OperatorAccess, Principal, TenantAccess};
use crate::audit::RequestContext;
use crate::clock::Clock;
use crate::error::{FieldError, ServiceError};
use crate::ids::TenantId;
use crate::page::{Page, PageRequest};
use crate::store::{Store, StoreError};
use crate::tenant::{Tenant, TenantSettings, TenantSlug, check_tenant_name};
use std::sync::Arc;

/// Input for a new tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Requested slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Settings to start with (merged over the defaults).
    pub settings: Option<serde_json::Value>,
}

/// A partial update: absent fields stay as they are; `settings` is a JSON merge patch.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    /// New display name.
    pub name: Option<String>,
    /// Merge patch over the current settings.
    pub settings: Option<serde_json::Value>,
}

/// How many times an update retries when another writer got there first.
const UPDATE_ATTEMPTS: usize = 5;

/// How long a replica may answer end-user requests from a tenant it read by slug. The
/// replica that changes or deletes a tenant forgets it at once; others lag by at most
/// this much (ADR 11).
pub const TENANT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Tenants kept at most; beyond, expired entries are dropped on insert.
const TENANT_CACHE_SIZE: usize = 10_000;

/// Tenants by slug, kept a moment in memory: every end-user request starts by looking
/// its tenant up, and a database round trip per request is most of a refresh's cost.
#[derive(Debug, Clone, Default)]
pub struct TenantCache {
    entries: Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Tenant)>>>,
}

impl TenantCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (std::time::Instant, Tenant)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant with this slug, if read less than [`TENANT_CACHE_TTL`] ago.
    pub fn get(&self, slug: &str) -> Option<Tenant> {
        self.lock().get(slug).filter(|(at, _)| at.elapsed() < TENANT_CACHE_TTL).map(|(_, t)| t.clone())
    }

    /// Remembers a tenant just read.
    pub fn put(&self, tenant: &Tenant) {
        let mut entries = self.lock();
        if entries.len() >= TENANT_CACHE_SIZE {
            entries.retain(|_, (at, _)| at.elapsed() < TENANT_CACHE_TTL);
        }
        entries.insert(tenant.slug.as_str().to_owned(), (std::time::Instant::now(), tenant.clone()));
    }

    /// Forgets a tenant that changed.
    pub fn forget(&self, tenant_id: &crate::ids::TenantId) {
        self.lock().retain(|_, (_, t)| &t.id != tenant_id);
    }
}

/// The tenant use cases.
#[derive(Debug, Clone)]
pub struct TenantService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    cache: TenantCache,
}

impl TenantService {
    /// A service over `store`; changes make `cache` forget the tenant.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog, cache: TenantCache) -> Self {
        Self { store, clock, audit, cache }
    }

    /// Creates a tenant.
    pub async fn create(
        &self,
        op: &OperatorAccess,
        ctx: &RequestContext,
        input: NewTenant,
    ) -> Result<Tenant, ServiceError> {
        op.require(Capability::Write)?;
        let mut errors = Vec::new();
        let slug = TenantSlug::parse(&input.slug).map_err(|why| errors.push(FieldError::new("slug", why)));
        let name = check_tenant_name(&input.name).map_err(|e| errors.push(e));
        let settings = match input.settings {
            None => Ok(TenantSettings::default()),
            Some(value) => TenantSettings::default().merged(&value).map_err(|e| match e {
                ServiceError::Validation(fields) => errors.extend(fields),
                _ => errors.push(FieldError::new("settings", "invalid")),
            }),
        };
        let (Ok(slug), Ok(name), Ok(settings)) = (slug, name, settings) else {
            return Err(ServiceError::Validation(errors));
        };
        let now = self.clock.now();
        let tenant =
            Tenant { id: TenantId::generate(), slug, name, settings, created_at: now, updated_at: now, version: 1 };
        let event = self.audit.change(
            op.principal(),
            ctx,
            "tenant.create",
            Some(&tenant.id),
            Some(("tenant", tenant.id.as_str())),
        );
        self.store.create_tenant(&tenant, &event).await?;
        Ok(tenant)
    }

    /// One tenant.
    pub async fn get(&self, access: &TenantAccess, ctx: &RequestContext) -> Result<Tenant, ServiceError> {
        access.require(Capability::Read)?;
        let tenant = self.load(access).await?;
        let target = Some(("tenant", tenant.id.as_str()));
        self.audit.read(access.principal(), ctx, "tenant.read", Some(&tenant.id), target).await?;
        Ok(tenant)
    }

    /// The tenants the caller reaches.
    pub async fn list(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> Result<Page<Tenant>, ServiceError> {
        principal.require(Capability::Read)?;
        let scope = principal.tenant_scope();
        let tenants = self.store.list_tenants(scope.as_deref(), page).await?;
        self.audit.read(principal, ctx, "tenant.list", None, None).await?;
        Ok(tenants)
    }

    /// Changes name and/or settings. Concurrent updates never lose each other's changes.
    pub async fn update(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        patch: TenantPatch,
    ) -> Result<Tenant, ServiceError> {
        access.require(Capability::Write)?;
        let name =
            patch.name.as_deref().map(check_tenant_name).transpose().map_err(|e| ServiceError::Validation(vec![e]))?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.load(access).await?;
            let settings = match &patch.settings {
                Some(p) => current.settings.merged(p)?,
                None => current.settings.clone(),
            };
            let updated = Tenant {
                name: name.clone().unwrap_or_else(|| current.name.clone()),
                settings,
                updated_at: self.clock.now(),
                version: current.version + 1,
                ..current
            };
            let target = Some(("tenant", updated.id.as_str()));
            let event = self.audit.change(access.principal(), ctx, "tenant.update", Some(&updated.id), target);
            match self.store.update_tenant(&updated, &event).await {
                Ok(()) => {
                    self.cache.forget(&updated.id);
                    return Ok(updated);
                }
                Err(StoreError::Conflict { constraint }) if constraint == "tenants_version" => {
                    continue;
                }
                Err(e) => return Err(ServiceError::from_store("tenant")(e)),
            }
        }
        Err(ServiceError::Conflict { constraint: "tenants_version".into() })
    }

    /// Soft-deletes a tenant: it disappears from every API and its keys stop working.
    pub async fn delete(&self, access: &TenantAccess, ctx: &RequestContext) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let id = access.tenant_id();
        let event =
            self.audit.change(access.principal(), ctx, "tenant.delete", Some(id), Some(("tenant", id.as_str())));
        self.store.delete_tenant(id, self.clock.now(), &event).await.map_err(ServiceError::from_store("tenant"))?;
        self.cache.forget(id);
        Ok(())
    }

    async fn load(&self, access: &TenantAccess) -> Result<Tenant, ServiceError> {
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))
    }
}

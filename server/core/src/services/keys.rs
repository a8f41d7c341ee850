//! A tenant's signing keys: created on first need, published as a JWKS, rotated with
//! the next key announced before it signs. Parsed keys are cached by key id (keys never
//! change once written), so signing does not unseal or parse per token; the public keys
//! are parsed for verification once per cached key set.

use super::AuditLog;
use crate::access::{Capability, TenantAccess};
use crate::audit::{ActorType, AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::{EventId, SigningKeyId};
use crate::signing::{KeyStatus, Sealer, Signer, SigningKeyRecord, generate_key, verification_keys};
use crate::store::{Store, StoreError};
use crate::tenant::Tenant;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long after rotation a retired key stays published beyond the longest access-token
/// lifetime, for clock skew and caches.
const RETIRE_MARGIN: time::Duration = time::Duration::minutes(5);

/// How long a replica may serve a tenant's key set from memory. Safe to lag by this
/// much: a key becomes active only after a whole rotation period published as `next`,
/// and a retired key stays published for longer than any token it signed lives.
const KEY_SET_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// A tenant's published keys as loaded, and parsed for verification, with when.
#[derive(Debug, Clone)]
struct Published {
    at: std::time::Instant,
    records: Arc<Vec<SigningKeyRecord>>,
    verification: Arc<gatehouse_verify::KeySet>,
}

type KeySetCache = HashMap<crate::ids::TenantId, Published>;

/// The signing-key use cases.
#[derive(Debug, Clone)]
pub struct KeyService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    sealer: Arc<Sealer>,
    signers: Arc<Mutex<HashMap<SigningKeyId, Arc<Signer>>>>,
    key_sets: Arc<Mutex<KeySetCache>>,
}

impl KeyService {
    /// A service over `store`, sealing private keys with `sealer`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog, sealer: Arc<Sealer>) -> Self {
        Self { store, clock, audit, sealer, signers: Arc::default(), key_sets: Arc::default() }
    }

    /// The keys to publish (cached for a few seconds), creating the tenant's first keys
    /// if it has none.
    pub async fn published(&self, tenant: &Tenant) -> Result<Arc<Vec<SigningKeyRecord>>, ServiceError> {
        Ok(self.cached(tenant).await?.records)
    }

    /// The published keys parsed for verifying the tenant's tokens (cached with them).
    pub async fn verification_keys(&self, tenant: &Tenant) -> Result<Arc<gatehouse_verify::KeySet>, ServiceError> {
        Ok(self.cached(tenant).await?.verification)
    }

    async fn cached(&self, tenant: &Tenant) -> Result<Published, ServiceError> {
        if let Some(published) = self.key_sets.lock().unwrap_or_else(|p| p.into_inner()).get(&tenant.id)
            && published.at.elapsed() < KEY_SET_TTL
        {
            return Ok(published.clone());
        }
        let records = self.load_published(tenant).await?;
        let published = Published {
            at: std::time::Instant::now(),
            verification: Arc::new(verification_keys(&records)),
            records: Arc::new(records),
        };
        let mut cache = self.key_sets.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, cached| cached.at.elapsed() < KEY_SET_TTL);
        cache.insert(tenant.id.clone(), published.clone());
        Ok(published)
    }

    fn forget(&self, tenant: &Tenant) {
        self.key_sets.lock().unwrap_or_else(|p| p.into_inner()).remove(&tenant.id);
    }

    async fn load_published(&self, tenant: &Tenant) -> Result<Vec<SigningKeyRecord>, ServiceError> {
        let now = self.clock.now();
        let keys = self.store.published_signing_keys(&tenant.id, now).await?;
        if keys.iter().any(|k| k.status == KeyStatus::Active) {
            return Ok(keys);
        }
        let active = generate_key(&self.sealer, &tenant.id, tenant.settings.signing_alg, KeyStatus::Active, now)?;
        let next = generate_key(&self.sealer, &tenant.id, tenant.settings.signing_alg, KeyStatus::Next, now)?;
        match self.store.create_initial_signing_keys(&tenant.id, &active, &next).await {
            // Another request or replica created them first: use theirs.
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(self.store.published_signing_keys(&tenant.id, now).await?)
    }

    /// The key that signs the tenant's tokens now.
    pub async fn signer(&self, tenant: &Tenant) -> Result<Arc<Signer>, ServiceError> {
        let keys = self.published(tenant).await?;
        let active = keys
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .ok_or_else(|| ServiceError::internal("tenant has no active signing key"))?;
        let mut cache = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signer) = cache.get(&active.id) {
            return Ok(signer.clone());
        }
        let signer = Arc::new(Signer::from_record(&self.sealer, active)?);
        cache.insert(active.id.clone(), signer.clone());
        Ok(signer)
    }

    /// The public JWKS document.
    pub async fn jwks(&self, tenant: &Tenant) -> Result<serde_json::Value, ServiceError> {
        let keys = self.published(tenant).await?;
        Ok(serde_json::json!({ "keys": keys.iter().map(|k| k.public_jwk.clone()).collect::<Vec<_>>() }))
    }

    /// The published keys, for operators.
    pub async fn list(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
    ) -> Result<Vec<SigningKeyRecord>, ServiceError> {
        access.require(Capability::Read)?;
        let tenant = self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let keys = self.load_published(&tenant).await?;
        self.audit.read(access.principal(), ctx, "signing_key.list", Some(&tenant.id), None).await?;
        Ok(keys)
    }

    /// Rotates through the management API.
    pub async fn rotate(&self, access: &TenantAccess, ctx: &RequestContext) -> Result<SigningKeyId, ServiceError> {
        access.require(Capability::Keys)?;
        let tenant = self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let event = self.audit.change(access.principal(), ctx, "signing_key.rotate", Some(&tenant.id), None);
        self.rotate_with_event(&tenant, event).await
    }

    /// Rotates the tenant's keys if its active key is older than the tenant's rotation
    /// period. Safe to run on every replica at once: the store re-checks under its lock,
    /// so a due tenant is rotated once.
    pub async fn rotate_if_due(&self, tenant: &Tenant) -> Result<Option<SigningKeyId>, ServiceError> {
        let days = tenant.settings.signing_key_rotation_days;
        if days == 0 {
            return Ok(None);
        }
        let now = self.clock.now();
        let cutoff = now - time::Duration::days(i64::from(days));
        let keys = self.load_published(tenant).await?;
        let active = keys.iter().find(|k| k.status == KeyStatus::Active);
        if active.and_then(|k| k.activated_at).is_some_and(|at| at >= cutoff) {
            return Ok(None);
        }
        let new_next = generate_key(&self.sealer, &tenant.id, tenant.settings.signing_alg, KeyStatus::Next, now)?;
        let until = now + time::Duration::seconds(i64::from(tenant.settings.access_token_ttl_seconds)) + RETIRE_MARGIN;
        let mut event = self.system_event(tenant, "scheduled");
        event.data = serde_json::json!({ "via": "schedule", "rotation_days": days });
        let rotated = self.store.rotate_signing_keys(&tenant.id, &new_next, until, Some(cutoff), &event).await?;
        if rotated.is_some() {
            self.forget(tenant);
        }
        Ok(rotated)
    }

    /// Runs [`KeyService::rotate_if_due`] over every tenant, a page at a time; returns how
    /// many were rotated. A failing tenant is logged and skipped.
    pub async fn rotate_due_tenants(&self) -> Result<usize, ServiceError> {
        let mut rotated = 0;
        let mut page = crate::page::PageRequest::first(crate::page::MAX_LIMIT);
        loop {
            let tenants = self.store.list_tenants(None, &page).await?;
            for tenant in &tenants.data {
                match self.rotate_if_due(tenant).await {
                    Ok(Some(_)) => rotated += 1,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(tenant.id = %tenant.id, error = %e, "scheduled key rotation failed"),
                }
            }
            match tenants.next_cursor {
                Some(cursor) => page = crate::page::PageRequest::parse(Some(crate::page::MAX_LIMIT), Some(&cursor))?,
                None => return Ok(rotated),
            }
        }
    }

    fn system_event(&self, tenant: &Tenant, via: &str) -> AuditEvent {
        AuditEvent {
            id: EventId::generate(),
            tenant_id: Some(tenant.id.clone()),
            actor_type: ActorType::System,
            actor_id: None,
            action: "signing_key.rotate".into(),
            target_type: None,
            target_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            data: serde_json::json!({ "via": via }),
            created_at: self.clock.now(),
        }
    }

    /// Rotates as Gatehouse itself (`gatehouse keys rotate`).
    pub async fn rotate_as_system(&self, tenant: &Tenant) -> Result<SigningKeyId, ServiceError> {
        let event = self.system_event(tenant, "cli");
        self.rotate_with_event(tenant, event).await
    }

    async fn rotate_with_event(&self, tenant: &Tenant, mut event: AuditEvent) -> Result<SigningKeyId, ServiceError> {
        let keys = self.load_published(tenant).await?;
        if let Some(next) = keys.iter().find(|k| k.status == KeyStatus::Next) {
            event.target_type = Some("signing_key".into());
            event.target_id = Some(next.id.to_string());
        }
        let now = self.clock.now();
        let new_next = generate_key(&self.sealer, &tenant.id, tenant.settings.signing_alg, KeyStatus::Next, now)?;
        let lifetime = time::Duration::seconds(i64::from(tenant.settings.access_token_ttl_seconds));
        let until = now + lifetime + RETIRE_MARGIN;
        event.data =
            serde_json::json!({ "next_key_id": new_next.id, "retired_published_until": until.unix_timestamp() });
        let active = self.store.rotate_signing_keys(&tenant.id, &new_next, until, None, &event).await?;
        self.forget(tenant);
        active.ok_or_else(|| ServiceError::internal("unconditional rotation did not rotate"))
    }
}

//! Tenant secret keys (`sk_…`): created and shown once, listed by prefix, revoked, rotated.

use super::AuditLog;
use crate::access::{Capability, TenantAccess};
use crate::audit::RequestContext;
use crate::clock::Clock;
use crate::credentials::SecretKeyRecord;
use crate::error::ServiceError;
use crate::ids::SecretKeyId;
use crate::page::{Page, PageRequest};
use crate::secret::{SecretString, generate_secret};
use crate::store::{Rotation, Store};
use std::sync::Arc;

/// Prefix of every tenant secret key, so secret scanners can find leaked ones.
pub const SECRET_KEY_PREFIX: &str = "sk_";
/// Longest overlap a rotation may give the old key.
pub const MAX_ROTATION_OVERLAP: time::Duration = time::Duration::days(7);
/// Overlap when the caller names none.
pub const DEFAULT_ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// A key just made, with its secret (shown once).
#[derive(Debug, Clone)]
pub struct IssuedSecretKey {
    /// The stored record.
    pub record: SecretKeyRecord,
    /// The secret.
    pub secret: SecretString,
}

/// The secret-key use cases.
#[derive(Debug, Clone)]
pub struct SecretKeyService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
}

impl SecretKeyService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog) -> Self {
        Self { store, clock, audit }
    }

    /// Creates a key for the tenant.
    pub async fn create(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        name: Option<String>,
    ) -> Result<IssuedSecretKey, ServiceError> {
        access.require(Capability::Secrets)?;
        let name = check_key_name(name)?;
        let issued = self.issue(access, name);
        let event = self.audit.change(
            access.principal(),
            ctx,
            "secret_key.create",
            Some(access.tenant_id()),
            Some(("secret_key", issued.record.id.as_str())),
        );
        self.store
            .create_secret_key(access.tenant_id(), &issued.record, &event)
            .await
            .map_err(ServiceError::from_store("tenant"))?;
        Ok(issued)
    }

    /// The tenant's keys, revoked and expired ones included.
    pub async fn list(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        page: &PageRequest,
    ) -> Result<Page<SecretKeyRecord>, ServiceError> {
        access.require(Capability::Read)?;
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let keys = self.store.list_secret_keys(access.tenant_id(), page).await?;
        self.audit.read(access.principal(), ctx, "secret_key.list", Some(access.tenant_id()), None).await?;
        Ok(keys)
    }

    /// Revokes a key at once.
    pub async fn revoke(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        key_id: &SecretKeyId,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Secrets)?;
        let event = self.audit.change(
            access.principal(),
            ctx,
            "secret_key.revoke",
            Some(access.tenant_id()),
            Some(("secret_key", key_id.as_str())),
        );
        self.store
            .revoke_secret_key(access.tenant_id(), key_id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("secret_key"))
    }

    /// Replaces a key: the successor works at once, the old key until `overlap` has passed.
    pub async fn rotate(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        key_id: &SecretKeyId,
        overlap: Option<time::Duration>,
    ) -> Result<IssuedSecretKey, ServiceError> {
        access.require(Capability::Secrets)?;
        let overlap = overlap.unwrap_or(DEFAULT_ROTATION_OVERLAP);
        if overlap.is_negative() || overlap > MAX_ROTATION_OVERLAP {
            return Err(ServiceError::invalid("overlap_seconds", "must be 0 to 604800"));
        }
        let old = self
            .store
            .get_secret_key(access.tenant_id(), key_id)
            .await
            .map_err(ServiceError::from_store("secret_key"))?;
        let now = self.clock.now();
        if !old.is_active(now) {
            return Err(ServiceError::NotFound { resource: "secret_key" });
        }
        let issued = self.issue(access, old.name.clone());
        let mut event = self.audit.change(
            access.principal(),
            ctx,
            "secret_key.rotate",
            Some(access.tenant_id()),
            Some(("secret_key", key_id.as_str())),
        );
        event.data =
            serde_json::json!({ "successor_id": issued.record.id, "overlap_seconds": overlap.whole_seconds() });
        let rotation = Rotation { old_expires_at: now + overlap };
        self.store
            .rotate_secret_key(access.tenant_id(), key_id, rotation, &issued.record, &event)
            .await
            .map_err(ServiceError::from_store("secret_key"))?;
        Ok(issued)
    }

    fn issue(&self, access: &TenantAccess, name: String) -> IssuedSecretKey {
        let generated = generate_secret(SECRET_KEY_PREFIX);
        let record = SecretKeyRecord {
            id: SecretKeyId::generate(),
            tenant_id: access.tenant_id().clone(),
            name,
            display_prefix: generated.display_prefix,
            hash: generated.hash,
            created_at: self.clock.now(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        IssuedSecretKey { record, secret: generated.value }
    }
}

/// Checks a credential label: optional, at most 100 characters, no control characters.
pub fn check_key_name(name: Option<String>) -> Result<String, ServiceError> {
    let name = name.map(|n| n.trim().to_owned()).unwrap_or_default();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid("name", "must be at most 100 characters, no control characters"));
    }
    Ok(name)
}

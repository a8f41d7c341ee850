//! Verified domains of organizations (DNS TXT proof) and what they let users with a
//! verified email there do: join automatically, or discover and join.

use super::orgs::OrgService;
use crate::access::{Capability, TenantAccess};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::ServiceError;
use crate::ids::OrganizationId;
use crate::org::{self, DomainJoin, Membership, OrgDomain, Organization};
use crate::secret::generate_secret;
use crate::store::{Store, StoreError};
use crate::tenant::Tenant;
use crate::user::User;

/// Organizations with a verified domain equal to the user's verified email's domain,
/// whose policy lets them join, and which the user is not a member of yet.
async fn joinable(store: &dyn Store, tenant: &Tenant, user: &User) -> Result<Vec<Organization>, ServiceError> {
    if !user.email_verified {
        return Ok(Vec::new());
    }
    let Some((_, domain)) = user.email.normalized().rsplit_once('@') else { return Ok(Vec::new()) };
    let mine: Vec<OrganizationId> =
        store.list_user_memberships(&tenant.id, &user.id).await?.into_iter().map(|(o, _)| o.id).collect();
    Ok(store.orgs_by_verified_domain(&tenant.id, domain).await?.into_iter().filter(|o| !mine.contains(&o.id)).collect())
}

/// Adds a user whose email was just verified to every `auto_join` organization of their
/// domain (a no-op for everyone else).
pub async fn auto_join(
    store: &dyn Store,
    tenant: &Tenant,
    ctx: &RequestContext,
    user: &User,
    now: time::OffsetDateTime,
) -> Result<(), ServiceError> {
    for org in joinable(store, tenant, user).await?.into_iter().filter(|o| o.domain_join == DomainJoin::AutoJoin) {
        let member = Membership {
            org_id: org.id.clone(),
            user_id: user.id.clone(),
            role: org.domain_join_role,
            created_at: now,
        };
        let data = serde_json::json!({ "org_id": org.id, "role": member.role, "via": "domain_auto_join" });
        let event = AuditEvent::by_user(now, ctx, "organization.join", &tenant.id, Some(user.id.as_str()), data);
        match store.add_member(&tenant.id, &member, &event).await {
            // Joined meanwhile by another path: fine.
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl OrgService {
    /// Claims a domain for an organization: answers the TXT record to publish at
    /// `_gatehouse-challenge.<domain>`.
    pub async fn add_domain(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        domain: &str,
    ) -> Result<OrgDomain, ServiceError> {
        access.require(Capability::Write)?;
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        org::check_domain(&domain).map_err(|e| ServiceError::Validation(vec![e]))?;
        self.get(access, org_id).await?;
        let token = generate_secret("");
        let claim = OrgDomain {
            org_id: org_id.clone(),
            domain: domain.clone(),
            verification_token: format!("gatehouse-domain-verification={}", token.value.expose()),
            verified_at: None,
            created_at: self.clock.now(),
        };
        let mut event = self.event(access, ctx, "organization.domain_add", ("organization", org_id.as_str()));
        event.data = serde_json::json!({ "domain": domain });
        self.store
            .add_domain(access.tenant_id(), &claim, &event)
            .await
            .map_err(ServiceError::from_store("organization"))?;
        Ok(claim)
    }

    /// The organization's domains.
    pub async fn domains(
        &self,
        access: &TenantAccess,
        org_id: &OrganizationId,
    ) -> Result<Vec<OrgDomain>, ServiceError> {
        access.require(Capability::Read)?;
        self.get(access, org_id).await?;
        Ok(self.store.list_domains(access.tenant_id(), org_id).await?)
    }

    /// Looks for the TXT record now; marks the domain verified when it is there.
    pub async fn verify_domain(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        domain: &str,
    ) -> Result<OrgDomain, ServiceError> {
        access.require(Capability::Write)?;
        let claim = self
            .domains(access, org_id)
            .await?
            .into_iter()
            .find(|d| d.domain == domain)
            .ok_or(ServiceError::NotFound { resource: "domain" })?;
        if claim.verified_at.is_some() {
            return Ok(claim);
        }
        let records = self
            .resolver
            .txt(&org::challenge_name(domain))
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if !records.iter().any(|r| r.trim() == claim.verification_token) {
            return Err(ServiceError::DomainNotVerified);
        }
        let mut event = self.event(access, ctx, "organization.domain_verified", ("organization", org_id.as_str()));
        event.data = serde_json::json!({ "domain": domain });
        let now = self.clock.now();
        self.store
            .verify_domain(access.tenant_id(), org_id, domain, now, &event)
            .await
            .map_err(ServiceError::from_store("domain"))?;
        Ok(OrgDomain { verified_at: Some(now), ..claim })
    }

    /// Removes a domain claim.
    pub async fn delete_domain(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        domain: &str,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let mut event = self.event(access, ctx, "organization.domain_delete", ("organization", org_id.as_str()));
        event.data = serde_json::json!({ "domain": domain });
        self.store
            .delete_domain(access.tenant_id(), org_id, domain, &event)
            .await
            .map_err(ServiceError::from_store("domain"))
    }

    /// Organizations the signed-in user may join through their verified email's domain.
    pub async fn discoverable(&self, tenant: &Tenant, access_token: &str) -> Result<Vec<Organization>, ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        joinable(self.store.as_ref(), tenant, &user).await
    }

    /// Joins an organization offered (or auto-joined) through the user's verified email
    /// domain, with the organization's domain role.
    pub async fn join(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        org_id: &OrganizationId,
    ) -> Result<Membership, ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        let org = joinable(self.store.as_ref(), tenant, &user)
            .await?
            .into_iter()
            .find(|o| &o.id == org_id)
            .ok_or(ServiceError::NotFound { resource: "organization" })?;
        let member = Membership {
            org_id: org.id.clone(),
            user_id: user.id.clone(),
            role: org.domain_join_role.clone(),
            created_at: self.clock.now(),
        };
        let data = serde_json::json!({ "org_id": org.id, "role": member.role, "via": "domain" });
        let event =
            AuditEvent::by_user(member.created_at, ctx, "organization.join", &tenant.id, Some(user.id.as_str()), data);
        self.store.add_member(&tenant.id, &member, &event).await?;
        Ok(member)
    }
}

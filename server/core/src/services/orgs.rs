//! Organizations: management (organizations, members, roles, permission checks) through
//! a [`TenantAccess`] handle, and the end user's side (their organizations, org-scoped
//! tokens, leaving). Invitations live in `org_invitations`, verified domains in
//! `org_domains`; all three extend [`OrgService`].
//!
//! Every member change that could leave an organization without an owner is refused in
//! the store's transaction (`Conflict{last_owner}`); removing a member revokes their
//! sessions scoped to the organization in the same transaction.

use super::auth::{AuthService, LoginOutcome, TokenSet};
use super::messenger::Messenger;
use crate::access::{Capability, TenantAccess};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::dns::TxtResolver;
use crate::error::{FieldError, ServiceError};
use crate::ids::{OrganizationId, TenantId, UserId};
use crate::org::{self, DomainJoin, MAX_DEPTH, Membership, Organization, Role};
use crate::page::{Page, PageRequest};
use crate::password::PasswordHasher;
use crate::store::{OrgFilter, Store, StoreError};
use crate::tenant::Tenant;
use std::sync::Arc;

/// How long an invitation stays valid.
pub(super) const INVITATION_TTL: time::Duration = time::Duration::days(7);
/// Prefix of invitation tokens.
pub const INVITATION_TOKEN_PREFIX: &str = "invt_";
/// Largest metadata document.
const MAX_METADATA_BYTES: usize = 8 * 1024;

/// A new organization.
#[derive(Debug, Clone, Default)]
pub struct NewOrg {
    /// URL name, unique in the tenant.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Logo (https).
    pub logo_url: Option<String>,
    /// Free-form JSON object.
    pub metadata: Option<serde_json::Value>,
    /// Parent organization.
    pub parent_id: Option<OrganizationId>,
    /// A user to make its first owner.
    pub owner_user_id: Option<UserId>,
    /// What its verified domains do (default `off`).
    pub domain_join: Option<DomainJoin>,
    /// The role users join with through a domain (default `member`).
    pub domain_join_role: Option<String>,
}

/// Changes to an organization (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct OrgPatch {
    /// New slug.
    pub slug: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New logo.
    pub logo_url: Option<String>,
    /// New metadata (replaces the old).
    pub metadata: Option<serde_json::Value>,
    /// New domain policy.
    pub domain_join: Option<DomainJoin>,
    /// New role for domain joins.
    pub domain_join_role: Option<String>,
}

/// The answer of a permission check.
#[derive(Debug, Clone)]
pub struct PermissionCheck {
    /// Whether the user holds the permission in the organization.
    pub allowed: bool,
    /// The user's role there, if a member.
    pub role: Option<String>,
    /// The role's permission that grants it (`*`, `billing:*`, or the permission).
    pub granted_by: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// How accepting an invitation ended.
#[derive(Debug)]
pub enum Accepted {
    /// A signed-in user joined.
    Joined(Membership),
    /// A new account was created and signed in (or must answer a challenge).
    SignedUp(Membership, LoginOutcome),
}

/// The organization use cases.
#[derive(Debug, Clone)]
pub struct OrgService {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) auth: AuthService,
    pub(super) messenger: Messenger,
    pub(super) hasher: PasswordHasher,
    pub(super) resolver: Arc<dyn TxtResolver>,
}

fn check_name(name: &str) -> Result<String, FieldError> {
    let trimmed = name.trim();
    if (1..=200).contains(&trimmed.chars().count()) && !trimmed.chars().any(char::is_control) {
        Ok(trimmed.to_owned())
    } else {
        Err(FieldError::new("name", "must be 1 to 200 characters, no control characters"))
    }
}

fn check_logo(logo: &Option<String>) -> Result<(), FieldError> {
    match logo {
        Some(l) if !(url::Url::parse(l).is_ok_and(|u| u.scheme() == "https") && l.len() <= 2048) => {
            Err(FieldError::new("logo_url", "must be an https URL"))
        }
        _ => Ok(()),
    }
}

fn check_metadata(metadata: &serde_json::Value) -> Result<(), FieldError> {
    if !metadata.is_object() || metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(FieldError::new("metadata", "must be a JSON object of at most 8 KiB"));
    }
    Ok(())
}

/// The permissions of a role of the tenant (built in or custom); `None` if no such role.
pub async fn role_permissions(
    store: &dyn Store,
    tenant_id: &TenantId,
    key: &str,
) -> Result<Option<Vec<String>>, ServiceError> {
    if let Some(role) = org::built_in_role(key) {
        return Ok(Some(role.permissions));
    }
    Ok(store.list_roles(tenant_id).await?.into_iter().find(|r| r.key == key).map(|r| r.permissions))
}

impl OrgService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        auth: AuthService,
        messenger: Messenger,
        hasher: PasswordHasher,
        resolver: Arc<dyn TxtResolver>,
    ) -> Self {
        Self { store, clock, auth, messenger, hasher, resolver }
    }

    pub(super) fn event(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        action: &str,
        target: (&str, &str),
    ) -> AuditEvent {
        access.principal().event(self.clock.as_ref(), ctx, action, Some(access.tenant_id()), Some(target))
    }

    pub(super) async fn tenant(&self, access: &TenantAccess) -> Result<Tenant, ServiceError> {
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))
    }

    pub(super) async fn known_role(&self, tenant_id: &TenantId, key: &str) -> Result<(), ServiceError> {
        match role_permissions(self.store.as_ref(), tenant_id, key).await? {
            Some(_) => Ok(()),
            None => Err(ServiceError::invalid("role", "is not a role of this tenant")),
        }
    }

    /// Creates an organization (nested under `parent_id` up to depth 4), optionally with
    /// its first owner.
    pub async fn create(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        input: NewOrg,
    ) -> Result<Organization, ServiceError> {
        access.require(Capability::Write)?;
        self.tenant(access).await?;
        let tenant_id = access.tenant_id();
        let mut errors = Vec::new();
        let _ = org::check_slug("slug", &input.slug).map_err(|e| errors.push(e));
        let name = check_name(&input.name).map_err(|e| errors.push(e));
        let _ = check_logo(&input.logo_url).map_err(|e| errors.push(e));
        let metadata = input.metadata.unwrap_or_else(|| serde_json::json!({}));
        let _ = check_metadata(&metadata).map_err(|e| errors.push(e));
        let (Ok(name), true) = (name, errors.is_empty()) else { return Err(ServiceError::Validation(errors)) };
        let depth = match &input.parent_id {
            Some(parent) => {
                let parent = self.store.get_org(tenant_id, parent).await.map_err(|e| match e {
                    StoreError::NotFound => ServiceError::invalid("parent_id", "is not an organization of this tenant"),
                    other => other.into(),
                })?;
                if parent.depth >= MAX_DEPTH {
                    return Err(ServiceError::invalid("parent_id", "organizations nest at most 5 levels deep"));
                }
                parent.depth + 1
            }
            None => 0,
        };
        if let Some(role) = &input.domain_join_role {
            self.known_role(tenant_id, role).await?;
        }
        let now = self.clock.now();
        let org = Organization {
            id: OrganizationId::generate(),
            slug: input.slug,
            name,
            logo_url: input.logo_url,
            metadata,
            parent_id: input.parent_id,
            depth,
            domain_join: input.domain_join.unwrap_or_default(),
            domain_join_role: input.domain_join_role.unwrap_or_else(|| "member".into()),
            created_at: now,
            updated_at: now,
        };
        let owner = input.owner_user_id.map(|user_id| Membership {
            org_id: org.id.clone(),
            user_id,
            role: org::OWNER.into(),
            created_at: now,
        });
        let mut event = self.event(access, ctx, "organization.create", ("organization", org.id.as_str()));
        event.data = serde_json::json!({ "slug": org.slug, "owner": owner.as_ref().map(|o| &o.user_id) });
        self.store.create_org(tenant_id, &org, owner.as_ref(), &event).await.map_err(|e| match e {
            StoreError::NotFound if owner.is_some() => {
                ServiceError::invalid("owner_user_id", "is not a user of this tenant")
            }
            other => ServiceError::from_store("tenant")(other),
        })?;
        Ok(org)
    }

    /// One organization.
    pub async fn get(&self, access: &TenantAccess, id: &OrganizationId) -> Result<Organization, ServiceError> {
        access.require(Capability::Read)?;
        self.store.get_org(access.tenant_id(), id).await.map_err(ServiceError::from_store("organization"))
    }

    /// Organizations (all, the children of one, or one's whole subtree).
    pub async fn list(
        &self,
        access: &TenantAccess,
        filter: &OrgFilter,
        page: &PageRequest,
    ) -> Result<Page<Organization>, ServiceError> {
        access.require(Capability::Read)?;
        self.tenant(access).await?;
        for id in [&filter.parent_id, &filter.subtree_of].into_iter().flatten() {
            self.get(access, id).await?;
        }
        Ok(self.store.list_orgs(access.tenant_id(), filter, page).await?)
    }

    /// Changes an organization's slug, name, logo or metadata.
    pub async fn update(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        id: &OrganizationId,
        patch: OrgPatch,
    ) -> Result<Organization, ServiceError> {
        access.require(Capability::Write)?;
        let mut org = self.get(access, id).await?;
        let mut errors = Vec::new();
        if let Some(slug) = patch.slug {
            let _ = org::check_slug("slug", &slug).map_err(|e| errors.push(e));
            org.slug = slug;
        }
        if let Some(name) = patch.name {
            match check_name(&name) {
                Ok(n) => org.name = n,
                Err(e) => errors.push(e),
            }
        }
        if patch.logo_url.is_some() {
            let _ = check_logo(&patch.logo_url).map_err(|e| errors.push(e));
            org.logo_url = patch.logo_url;
        }
        if let Some(metadata) = patch.metadata {
            let _ = check_metadata(&metadata).map_err(|e| errors.push(e));
            org.metadata = metadata;
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        if let Some(policy) = patch.domain_join {
            org.domain_join = policy;
        }
        if let Some(role) = patch.domain_join_role {
            self.known_role(access.tenant_id(), &role).await?;
            org.domain_join_role = role;
        }
        org.updated_at = self.clock.now();
        let event = self.event(access, ctx, "organization.update", ("organization", id.as_str()));
        self.store
            .update_org(access.tenant_id(), &org, &event)
            .await
            .map_err(ServiceError::from_store("organization"))?;
        Ok(org)
    }

    /// Deletes an organization without sub-organizations, with its members and
    /// invitations; its sessions end.
    pub async fn delete(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        id: &OrganizationId,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let event = self.event(access, ctx, "organization.delete", ("organization", id.as_str()));
        self.store
            .delete_org(access.tenant_id(), id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("organization"))
    }

    /// Adds a user to an organization with a role.
    pub async fn add_member(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        user_id: &UserId,
        role: &str,
    ) -> Result<Membership, ServiceError> {
        access.require(Capability::Write)?;
        self.get(access, org_id).await?;
        self.known_role(access.tenant_id(), role).await?;
        let member = Membership {
            org_id: org_id.clone(),
            user_id: user_id.clone(),
            role: role.to_owned(),
            created_at: self.clock.now(),
        };
        let mut event = self.event(access, ctx, "organization.member_add", ("organization", org_id.as_str()));
        event.data = serde_json::json!({ "user_id": user_id, "role": role });
        self.store.add_member(access.tenant_id(), &member, &event).await.map_err(|e| match e {
            StoreError::NotFound => ServiceError::invalid("user_id", "is not a user of this tenant"),
            other => other.into(),
        })?;
        Ok(member)
    }

    /// Members of an organization.
    pub async fn members(
        &self,
        access: &TenantAccess,
        org_id: &OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Membership>, ServiceError> {
        access.require(Capability::Read)?;
        self.get(access, org_id).await?;
        Ok(self.store.list_members(access.tenant_id(), org_id, page).await?)
    }

    /// Changes a member's role (never leaving the organization without an owner).
    pub async fn change_role(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        user_id: &UserId,
        role: &str,
    ) -> Result<Membership, ServiceError> {
        access.require(Capability::Write)?;
        self.known_role(access.tenant_id(), role).await?;
        let mut event = self.event(access, ctx, "organization.member_role_change", ("organization", org_id.as_str()));
        event.data = serde_json::json!({ "user_id": user_id, "role": role });
        self.store
            .change_member_role(access.tenant_id(), org_id, user_id, role, &event)
            .await
            .map_err(ServiceError::from_store("member"))?;
        self.store
            .get_member(access.tenant_id(), org_id, user_id)
            .await?
            .ok_or(ServiceError::NotFound { resource: "member" })
    }

    /// Removes a member (never the last owner); their org-scoped sessions end.
    pub async fn remove_member(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        user_id: &UserId,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let mut event = self.event(access, ctx, "organization.member_remove", ("organization", org_id.as_str()));
        event.data = serde_json::json!({ "user_id": user_id });
        self.store
            .remove_member(access.tenant_id(), org_id, user_id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("member"))
    }

    /// Built-in and custom roles.
    pub async fn roles(&self, access: &TenantAccess) -> Result<Vec<Role>, ServiceError> {
        access.require(Capability::Read)?;
        self.tenant(access).await?;
        let mut roles = org::built_in_roles();
        roles.extend(self.store.list_roles(access.tenant_id()).await?);
        Ok(roles)
    }

    /// Creates or replaces a custom role.
    pub async fn put_role(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        role: Role,
        create: bool,
    ) -> Result<Role, ServiceError> {
        access.require(Capability::Write)?;
        if org::built_in_role(&role.key).is_some() {
            return Err(ServiceError::Forbidden("built-in roles cannot be changed"));
        }
        let mut errors = Vec::new();
        let _ = org::check_slug("key", &role.key).map_err(|e| errors.push(e));
        let name = check_name(&role.name).map_err(|e| errors.push(e));
        if role.permissions.len() > 200 {
            errors.push(FieldError::new("permissions", "at most 200"));
        }
        for (i, p) in role.permissions.iter().enumerate() {
            if let Err(why) = org::check_permission(p) {
                errors.push(FieldError::new(format!("permissions[{i}]"), why));
            }
        }
        if role.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
            errors.push(FieldError::new("description", "at most 500 characters"));
        }
        let (Ok(name), true) = (name, errors.is_empty()) else { return Err(ServiceError::Validation(errors)) };
        let role = Role { name, built_in: false, ..role };
        let action = if create { "role.create" } else { "role.update" };
        let mut event = self.event(access, ctx, action, ("role", &role.key));
        event.data = serde_json::json!({ "permissions": role.permissions });
        self.store
            .put_role(access.tenant_id(), &role, create, &event)
            .await
            .map_err(ServiceError::from_store("role"))?;
        Ok(role)
    }

    /// Deletes a custom role nobody holds.
    pub async fn delete_role(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        key: &str,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        if org::built_in_role(key).is_some() {
            return Err(ServiceError::Forbidden("built-in roles cannot be deleted"));
        }
        let event = self.event(access, ctx, "role.delete", ("role", key));
        self.store.delete_role(access.tenant_id(), key, &event).await.map_err(ServiceError::from_store("role"))
    }

    /// Whether `user_id` holds `permission` in the organization, and why.
    pub async fn check(
        &self,
        access: &TenantAccess,
        org_id: &OrganizationId,
        user_id: &UserId,
        permission: &str,
    ) -> Result<PermissionCheck, ServiceError> {
        access.require(Capability::Read)?;
        org::check_permission(permission).map_err(|why| ServiceError::invalid("permission", &why))?;
        self.get(access, org_id).await?;
        let Some(member) = self.store.get_member(access.tenant_id(), org_id, user_id).await? else {
            return Ok(PermissionCheck {
                allowed: false,
                role: None,
                granted_by: None,
                reason: "the user is not a member of the organization".into(),
            });
        };
        let permissions =
            role_permissions(self.store.as_ref(), access.tenant_id(), &member.role).await?.unwrap_or_default();
        let granted_by = org::granting(&permissions, permission).map(str::to_owned);
        let reason = match &granted_by {
            Some(g) => format!("role {} grants {g}", member.role),
            None => format!("role {} does not grant {permission}", member.role),
        };
        Ok(PermissionCheck { allowed: granted_by.is_some(), role: Some(member.role), granted_by, reason })
    }

    /// The signed-in user's organizations and roles.
    pub async fn mine(
        &self,
        tenant: &Tenant,
        access_token: &str,
    ) -> Result<Vec<(Organization, Membership)>, ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        Ok(self.store.list_user_memberships(&tenant.id, &user.id).await?)
    }

    /// A token set scoped to one of the user's organizations: a new session bound to it
    /// (same sign-in time and methods), whose refreshes stay scoped and which ends when
    /// the user leaves or is removed.
    pub async fn org_token(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        org_id: &OrganizationId,
    ) -> Result<TokenSet, ServiceError> {
        let (user, _, current) = self.auth.signed_in(tenant, access_token).await?;
        // Not a member and no such organization answer alike.
        self.store
            .get_member(&tenant.id, org_id, &user.id)
            .await?
            .ok_or(ServiceError::NotFound { resource: "organization" })?;
        let amr: Vec<&str> = current.amr.iter().map(String::as_str).collect();
        let (mut session, first, secret) = self.auth.new_session(tenant, ctx, &user.id, &amr);
        session.auth_time = current.auth_time;
        session.org_id = Some(org_id.clone());
        let data = serde_json::json!({ "session_id": session.id, "org_id": org_id, "from_session": current.id });
        let event = AuditEvent::by_user(
            session.created_at,
            ctx,
            "organization.token",
            &tenant.id,
            Some(user.id.as_str()),
            data,
        );
        self.store.create_session(&tenant.id, &session, &first, &event).await?;
        self.auth.token_set(tenant, user, &session, secret).await
    }

    /// The signed-in user leaves one of their organizations (never as its last owner);
    /// their sessions scoped to it end at once.
    pub async fn leave(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        org_id: &OrganizationId,
    ) -> Result<(), ServiceError> {
        let (user, _) = self.auth.me(tenant, access_token).await?;
        let data = serde_json::json!({ "org_id": org_id });
        let event =
            AuditEvent::by_user(self.clock.now(), ctx, "organization.leave", &tenant.id, Some(user.id.as_str()), data);
        self.store
            .remove_member(&tenant.id, org_id, &user.id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("organization"))
    }
}

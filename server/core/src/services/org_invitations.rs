//! Invitations to organizations: sent by email as single-use links, listed, resent,
//! revoked, and accepted by the invited address (signed in, or by signing up).

use super::orgs::{Accepted, INVITATION_TOKEN_PREFIX, INVITATION_TTL, OrgService};
use super::templates::TemplateVars;
use crate::access::{Capability, TenantAccess};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{FieldError, ServiceError};
use crate::ids::{InvitationId, OrganizationId};
use crate::messaging::{MessageKind, UserWrite};
use crate::org::{Invitation, Membership};
use crate::password::check_policy;
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::store::{Acceptance, StoreError};
use crate::tenant::Tenant;
use crate::user::{Email, User, check_user_name};

impl OrgService {
    /// Invites an address to an organization with a role: a single-use link by email,
    /// valid seven days; a newer invitation of the same address replaces an older one.
    pub async fn invite(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        email: &str,
        role: &str,
    ) -> Result<Invitation, ServiceError> {
        access.require(Capability::Write)?;
        let tenant = self.tenant(access).await?;
        let org = self.get(access, org_id).await?;
        let email = Email::parse(email).map_err(|why| ServiceError::invalid("email", &why))?;
        self.known_role(&tenant.id, role).await?;
        let now = self.clock.now();
        let token = generate_secret(INVITATION_TOKEN_PREFIX);
        let invitation = Invitation {
            id: InvitationId::generate(),
            org_id: org.id.clone(),
            email: email.normalized().to_owned(),
            role: role.to_owned(),
            token_hash: token.hash,
            invited_by: access.principal().actor_id(),
            created_at: now,
            expires_at: now + INVITATION_TTL,
            accepted_at: None,
            revoked_at: None,
        };
        let vars = TemplateVars {
            link: Some(self.messenger.link(&tenant, "accept-invitation", token.value.expose())),
            expires_minutes: Some(INVITATION_TTL.whole_minutes()),
            email: Some(email.as_str().to_owned()),
            org_name: Some(org.name.clone()),
            ..TemplateVars::for_tenant(&tenant)
        };
        let message =
            self.messenger.compose(&tenant, ctx, now, MessageKind::Invitation, email.as_str(), None, &vars).await?;
        let mut event = self.event(access, ctx, "invitation.create", ("invitation", invitation.id.as_str()));
        event.data = serde_json::json!({ "org_id": org.id, "role": role, "message_id": message.id });
        self.store
            .create_invitation(&tenant.id, &invitation, &[message], &event)
            .await
            .map_err(ServiceError::from_store("organization"))?;
        self.messenger.queued();
        Ok(invitation)
    }

    /// The organization's invitations, newest first.
    pub async fn invitations(
        &self,
        access: &TenantAccess,
        org_id: &OrganizationId,
    ) -> Result<Vec<Invitation>, ServiceError> {
        access.require(Capability::Read)?;
        self.get(access, org_id).await?;
        Ok(self.store.list_invitations(access.tenant_id(), org_id).await?)
    }

    /// Sends a pending invitation again, as a new invitation (new link, new expiry; the
    /// old link stops working).
    pub async fn resend(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        id: &InvitationId,
    ) -> Result<Invitation, ServiceError> {
        access.require(Capability::Write)?;
        let old = self
            .invitations(access, org_id)
            .await?
            .into_iter()
            .find(|i| &i.id == id && i.accepted_at.is_none() && i.revoked_at.is_none())
            .ok_or(ServiceError::NotFound { resource: "pending invitation" })?;
        // Expired ones may be sent again too: that is what resending is for.
        self.invite(access, ctx, org_id, &old.email, &old.role).await
    }

    /// Revokes a pending invitation.
    pub async fn revoke(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        org_id: &OrganizationId,
        id: &InvitationId,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let event = self.event(access, ctx, "invitation.revoke", ("invitation", id.as_str()));
        self.store
            .revoke_invitation(access.tenant_id(), org_id, id, self.clock.now(), &event)
            .await
            .map_err(ServiceError::from_store("pending invitation"))
    }

    /// Accepts an invitation: as the signed-in user whose email it was sent to, or by
    /// creating the account (`password`, optional `name`; the link proved the address),
    /// which works even when sign-up is by invitation only.
    pub async fn accept(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        token: &str,
        access_token: Option<&str>,
        signup: Option<(SecretString, Option<String>)>,
    ) -> Result<Accepted, ServiceError> {
        self.auth.limit(tenant, ctx, "invitation_accept", 30).await?;
        let now = self.clock.now();
        let invitation = if token.starts_with(INVITATION_TOKEN_PREFIX) && token.len() <= 128 {
            self.store.find_invitation_by_token(&tenant.id, &SecretHash::of(token), now).await?
        } else {
            None
        };
        let invitation = invitation.ok_or(ServiceError::InvalidCode)?;
        let (mut user, insert) = match (access_token, signup) {
            (Some(bearer), _) => {
                let (user, _) = self.auth.me(tenant, bearer).await?;
                if user.email.normalized() != invitation.email {
                    return Err(ServiceError::Forbidden("this invitation was sent to another address"));
                }
                (user, false)
            }
            (None, Some((password, name))) => {
                let email = Email::parse(&invitation.email).map_err(|why| ServiceError::invalid("email", &why))?;
                let name = check_user_name(name).map_err(|why| ServiceError::invalid("name", &why))?;
                check_policy(&tenant.settings.password_policy, password.expose(), &email)
                    .map_err(|e| ServiceError::Validation(vec![FieldError::new("password", e.message)]))?;
                // The invitation link proved the address.
                let user = User {
                    email_verified: true,
                    password_hash: Some(self.hasher.hash(&password).await?),
                    ..User::signing_up(&tenant.id, email, name, now)
                };
                (user, true)
            }
            (None, None) => {
                return Err(ServiceError::invalid("password", "is required to accept without signing in"));
            }
        };
        // The link proved the address.
        let verifies = !user.email_verified;
        user.email_verified = true;
        let membership = Membership {
            org_id: invitation.org_id.clone(),
            user_id: user.id.clone(),
            role: invitation.role.clone(),
            created_at: now,
        };
        let data = serde_json::json!({
            "invitation_id": invitation.id, "org_id": invitation.org_id, "role": invitation.role, "new_user": insert,
        });
        let event = AuditEvent::by_user(now, ctx, "invitation.accept", &tenant.id, Some(user.id.as_str()), data);
        let write = match (insert, verifies) {
            (true, _) => UserWrite::Insert(&user),
            (false, true) => UserWrite::Update(&user),
            (false, false) => UserWrite::None,
        };
        let acceptance = Acceptance {
            invitation_id: &invitation.id,
            now,
            user: write,
            membership: &membership,
            session: None,
            event: &event,
        };
        self.store.accept_invitation(&tenant.id, &acceptance).await.map_err(|e| match e {
            StoreError::NotFound => ServiceError::InvalidCode,
            other => other.into(),
        })?;
        if !insert {
            return Ok(Accepted::Joined(membership));
        }
        let outcome =
            self.auth.sign_in_with(tenant, ctx, user, &["pwd"], serde_json::json!({ "via": "invitation" })).await?;
        Ok(Accepted::SignedUp(membership, outcome))
    }
}

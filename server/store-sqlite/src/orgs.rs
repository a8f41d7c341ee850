//! Organizations, members, roles and invitations on SQLite.

use crate::audit::insert_event;
use crate::messaging::insert_messages;
use crate::sessions::{insert_refresh, insert_session};
use crate::time_codec::{dec, dec_opt, enc};
use crate::users::{insert_user, update_user_row};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{InvitationId, OrganizationId, TenantId, UserId};
use gatehouse_core::messaging::{OutboxMessage, UserWrite};
use gatehouse_core::org::{DomainJoin, Invitation, Membership, OWNER, OrgDomain, Organization, Role};
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::store::{Acceptance, OrgFilter, OrgStore, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

const ORG_COLUMNS: &str =
    "id, slug, name, logo_url, metadata, parent_id, depth, created_at, updated_at, domain_join, domain_join_role";
const INVITATION_COLUMNS: &str =
    "id, org_id, email, role, token_hash, invited_by, created_at, expires_at, accepted_at, revoked_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt organization row: {what}"))
}

fn parse<T: std::str::FromStr>(row: &SqliteRow, column: &str) -> Result<T, StoreError> {
    row.try_get::<String, _>(column).map_err(map_err)?.parse().map_err(|_| corrupt(column))
}

fn decode_org(row: &SqliteRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: parse(row, "id")?,
        slug: row.try_get("slug").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        logo_url: row.try_get("logo_url").map_err(map_err)?,
        metadata: serde_json::from_str(&row.try_get::<String, _>("metadata").map_err(map_err)?)
            .map_err(|_| corrupt("metadata"))?,
        parent_id: row
            .try_get::<Option<String>, _>("parent_id")
            .map_err(map_err)?
            .map(|p| p.parse())
            .transpose()
            .map_err(|_| corrupt("parent_id"))?,
        depth: u32::try_from(row.try_get::<i64, _>("depth").map_err(map_err)?).map_err(|_| corrupt("depth"))?,
        domain_join: DomainJoin::parse(&row.try_get::<String, _>("domain_join").map_err(map_err)?)
            .ok_or_else(|| corrupt("domain_join"))?,
        domain_join_role: row.try_get("domain_join_role").map_err(map_err)?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        updated_at: dec(row.try_get("updated_at").map_err(map_err)?)?,
    })
}

fn decode_member(row: &SqliteRow) -> Result<Membership, StoreError> {
    Ok(Membership {
        org_id: parse(row, "org_id")?,
        user_id: parse(row, "user_id")?,
        role: row.try_get("role").map_err(map_err)?,
        created_at: dec(row.try_get("member_created_at").map_err(map_err)?)?,
    })
}

fn decode_role(row: &SqliteRow) -> Result<Role, StoreError> {
    Ok(Role {
        key: row.try_get("key").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        description: row.try_get("description").map_err(map_err)?,
        permissions: serde_json::from_str(&row.try_get::<String, _>("permissions").map_err(map_err)?)
            .map_err(|_| corrupt("permissions"))?,
        built_in: false,
    })
}

fn decode_invitation(row: &SqliteRow) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: parse(row, "id")?,
        org_id: parse(row, "org_id")?,
        email: row.try_get("email").map_err(map_err)?,
        role: row.try_get("role").map_err(map_err)?,
        token_hash: SecretHash::from_stored(row.try_get::<String, _>("token_hash").map_err(map_err)?),
        invited_by: row.try_get("invited_by").map_err(map_err)?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        expires_at: dec(row.try_get("expires_at").map_err(map_err)?)?,
        accepted_at: dec_opt(row.try_get("accepted_at").map_err(map_err)?)?,
        revoked_at: dec_opt(row.try_get("revoked_at").map_err(map_err)?)?,
    })
}

fn decode_domain(row: &SqliteRow) -> Result<OrgDomain, StoreError> {
    Ok(OrgDomain {
        org_id: parse(row, "org_id")?,
        domain: row.try_get("domain").map_err(map_err)?,
        verification_token: row.try_get("verification_token").map_err(map_err)?,
        verified_at: dec_opt(row.try_get("verified_at").map_err(map_err)?)?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
    })
}

/// Composite primary keys are named like Postgres names them.
fn named(e: StoreError, table: &str) -> StoreError {
    match e {
        StoreError::Conflict { constraint } if constraint.starts_with(table) && !constraint.ends_with("slug_key") => {
            StoreError::Conflict { constraint: format!("{table}_pkey") }
        }
        other => other,
    }
}

async fn insert_member(tx: &mut Tx, tenant_id: &TenantId, m: &Membership) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO org_members (tenant_id, org_id, user_id, role, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5
         WHERE EXISTS (SELECT 1 FROM organizations WHERE tenant_id = ?1 AND id = ?2)
           AND EXISTS (SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?3)",
    )
    .bind(tenant_id.as_str())
    .bind(m.org_id.as_str())
    .bind(m.user_id.as_str())
    .bind(&m.role)
    .bind(enc(m.created_at))
    .execute(&mut **tx)
    .await
    .map_err(|e| named(map_err(e), "org_members"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The member's current role, `NotFound` if not a member; `Conflict{last_owner}` when
/// they are the organization's only owner and `keeps_owner` is false.
async fn check_owner_left(
    tx: &mut Tx,
    tenant_id: &TenantId,
    org_id: &OrganizationId,
    user_id: &UserId,
    keeps_owner: bool,
) -> Result<(), StoreError> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM org_members WHERE tenant_id = ?1 AND org_id = ?2 AND user_id = ?3")
            .bind(tenant_id.as_str())
            .bind(org_id.as_str())
            .bind(user_id.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
    let role = role.ok_or(StoreError::NotFound)?;
    if role == OWNER && !keeps_owner {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM org_members WHERE tenant_id = ?1 AND org_id = ?2 AND role = 'owner' AND user_id <> ?3",
        )
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .bind(user_id.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
        if others == 0 {
            return Err(StoreError::Conflict { constraint: "last_owner".into() });
        }
    }
    Ok(())
}

/// A page of a tenant's organizations (`?1` tenant, `?2` cursor, `?3` parent, `?4` ancestor,
/// `?5` size).
/// The cursor bounds the index walk (`id > ?2`, `''` on the first page), so a page
/// never re-reads the pages before it.
pub(crate) static ORGS_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH RECURSIVE subtree (id) AS (
             SELECT id FROM organizations WHERE tenant_id = ?1 AND parent_id = ?4
             UNION ALL
             SELECT o.id FROM organizations o JOIN subtree s ON o.parent_id = s.id WHERE o.tenant_id = ?1
         )
         SELECT {ORG_COLUMNS} FROM organizations
         WHERE tenant_id = ?1 AND id > ?2
           AND (?3 IS NULL OR parent_id = ?3)
           AND (?4 IS NULL OR id IN (SELECT id FROM subtree))
         ORDER BY id LIMIT ?5"
    )
});

/// A page of an organization's members (`?1` tenant, `?2` organization, `?3` cursor,
/// `?4` size), walking the primary key from the cursor.
pub(crate) const MEMBERS_PAGE: &str = "SELECT org_id, user_id, role, created_at AS member_created_at FROM org_members
     WHERE tenant_id = ?1 AND org_id = ?2 AND user_id > ?3 ORDER BY user_id LIMIT ?4";

#[async_trait]
impl OrgStore for SqliteStore {
    async fn create_org(
        &self,
        tenant_id: &TenantId,
        org: &Organization,
        owner: Option<&Membership>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(&format!(
            "INSERT INTO organizations (tenant_id, {ORG_COLUMNS})
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12
             WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND deleted_at IS NULL)
               AND (?7 IS NULL OR EXISTS (SELECT 1 FROM organizations WHERE tenant_id = ?1 AND id = ?7))"
        ))
        .bind(tenant_id.as_str())
        .bind(org.id.as_str())
        .bind(&org.slug)
        .bind(&org.name)
        .bind(&org.logo_url)
        .bind(org.metadata.to_string())
        .bind(org.parent_id.as_ref().map(|p| p.as_str()))
        .bind(i64::from(org.depth))
        .bind(enc(org.created_at))
        .bind(enc(org.updated_at))
        .bind(org.domain_join.as_str())
        .bind(&org.domain_join_role)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(owner) = owner {
            insert_member(&mut tx, tenant_id, owner).await?;
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_org(&self, tenant_id: &TenantId, id: &OrganizationId) -> Result<Organization, StoreError> {
        let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM organizations WHERE tenant_id = ?1 AND id = ?2"))
            .bind(tenant_id.as_str())
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        decode_org(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list_orgs(
        &self,
        tenant_id: &TenantId,
        filter: &OrgFilter,
        page: &PageRequest,
    ) -> Result<Page<Organization>, StoreError> {
        let rows = sqlx::query(&ORGS_PAGE)
            .bind(tenant_id.as_str())
            .bind(page.lower_bound())
            .bind(filter.parent_id.as_ref().map(|p| p.as_str()))
            .bind(filter.subtree_of.as_ref().map(|p| p.as_str()))
            .bind(page.fetch_limit())
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let orgs = rows.iter().map(decode_org).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(orgs, page, |o| o.id.as_str()))
    }

    async fn update_org(&self, tenant_id: &TenantId, org: &Organization, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE organizations SET slug = ?3, name = ?4, logo_url = ?5, metadata = ?6, updated_at = ?7,
                                      domain_join = ?8, domain_join_role = ?9
             WHERE tenant_id = ?1 AND id = ?2",
        )
        .bind(tenant_id.as_str())
        .bind(org.id.as_str())
        .bind(&org.slug)
        .bind(&org.name)
        .bind(&org.logo_url)
        .bind(org.metadata.to_string())
        .bind(enc(org.updated_at))
        .bind(org.domain_join.as_str())
        .bind(&org.domain_join_role)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_org(
        &self,
        tenant_id: &TenantId,
        id: &OrganizationId,
        _now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let children: i64 =
            sqlx::query_scalar("SELECT count(*) FROM organizations WHERE tenant_id = ?1 AND parent_id = ?2")
                .bind(tenant_id.as_str())
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        if children > 0 {
            return Err(StoreError::Conflict { constraint: "organizations_has_children".into() });
        }
        // Members, invitations and the sessions scoped to it go with it (cascades).
        let done = sqlx::query("DELETE FROM organizations WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant_id.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn add_member(
        &self,
        tenant_id: &TenantId,
        member: &Membership,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_member(&mut tx, tenant_id, member).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_member(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        user_id: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let row = sqlx::query(
            "SELECT org_id, user_id, role, created_at AS member_created_at FROM org_members
             WHERE tenant_id = ?1 AND org_id = ?2 AND user_id = ?3",
        )
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .bind(user_id.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.as_ref().map(decode_member).transpose()
    }

    async fn list_members(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Membership>, StoreError> {
        let rows = sqlx::query(MEMBERS_PAGE)
            .bind(tenant_id.as_str())
            .bind(org_id.as_str())
            .bind(page.lower_bound())
            .bind(page.fetch_limit())
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let members = rows.iter().map(decode_member).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(members, page, |m| m.user_id.as_str()))
    }

    async fn change_member_role(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        user_id: &UserId,
        role: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        check_owner_left(&mut tx, tenant_id, org_id, user_id, role == OWNER).await?;
        sqlx::query("UPDATE org_members SET role = ?4 WHERE tenant_id = ?1 AND org_id = ?2 AND user_id = ?3")
            .bind(tenant_id.as_str())
            .bind(org_id.as_str())
            .bind(user_id.as_str())
            .bind(role)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn remove_member(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        user_id: &UserId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        check_owner_left(&mut tx, tenant_id, org_id, user_id, false).await?;
        sqlx::query("DELETE FROM org_members WHERE tenant_id = ?1 AND org_id = ?2 AND user_id = ?3")
            .bind(tenant_id.as_str())
            .bind(org_id.as_str())
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = ?4, revoke_reason = 'left_organization'
             WHERE tenant_id = ?1 AND org_id = ?2 AND user_id = ?3 AND revoked_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .bind(user_id.as_str())
        .bind(enc(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_user_memberships(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<Vec<(Organization, Membership)>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.slug, o.name, o.logo_url, o.metadata, o.parent_id, o.depth, o.created_at, o.updated_at,
                    o.domain_join, o.domain_join_role,
                    m.org_id, m.user_id, m.role, m.created_at AS member_created_at
             FROM org_members m JOIN organizations o ON o.tenant_id = m.tenant_id AND o.id = m.org_id
             WHERE m.tenant_id = ?1 AND m.user_id = ?2 ORDER BY o.id",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| Ok((decode_org(r)?, decode_member(r)?))).collect()
    }

    async fn put_role(
        &self,
        tenant_id: &TenantId,
        role: &Role,
        create: bool,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let permissions = serde_json::json!(role.permissions).to_string();
        let done = if create {
            sqlx::query(
                "INSERT INTO org_roles (tenant_id, key, name, description, permissions)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND deleted_at IS NULL)",
            )
        } else {
            sqlx::query(
                "UPDATE org_roles SET name = ?3, description = ?4, permissions = ?5 WHERE tenant_id = ?1 AND key = ?2",
            )
        }
        .bind(tenant_id.as_str())
        .bind(&role.key)
        .bind(&role.name)
        .bind(&role.description)
        .bind(permissions)
        .execute(&mut *tx)
        .await
        .map_err(|e| named(map_err(e), "org_roles"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_roles(&self, tenant_id: &TenantId) -> Result<Vec<Role>, StoreError> {
        let rows =
            sqlx::query("SELECT key, name, description, permissions FROM org_roles WHERE tenant_id = ?1 ORDER BY key")
                .bind(tenant_id.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
        rows.iter().map(decode_role).collect()
    }

    async fn delete_role(&self, tenant_id: &TenantId, key: &str, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let in_use: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM org_members WHERE tenant_id = ?1 AND role = ?2)
                  + (SELECT count(*) FROM invitations
                     WHERE tenant_id = ?1 AND role = ?2 AND accepted_at IS NULL AND revoked_at IS NULL)",
        )
        .bind(tenant_id.as_str())
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if in_use > 0 {
            return Err(StoreError::Conflict { constraint: "org_roles_in_use".into() });
        }
        let done = sqlx::query("DELETE FROM org_roles WHERE tenant_id = ?1 AND key = ?2")
            .bind(tenant_id.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_invitation(
        &self,
        tenant_id: &TenantId,
        inv: &Invitation,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE invitations SET revoked_at = ?4
             WHERE tenant_id = ?1 AND org_id = ?2 AND email = ?3 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(inv.org_id.as_str())
        .bind(&inv.email)
        .bind(enc(inv.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let done = sqlx::query(&format!(
            "INSERT INTO invitations (tenant_id, {INVITATION_COLUMNS})
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
             WHERE EXISTS (SELECT 1 FROM organizations WHERE tenant_id = ?1 AND id = ?3)"
        ))
        .bind(tenant_id.as_str())
        .bind(inv.id.as_str())
        .bind(inv.org_id.as_str())
        .bind(&inv.email)
        .bind(&inv.role)
        .bind(inv.token_hash.as_str())
        .bind(&inv.invited_by)
        .bind(enc(inv.created_at))
        .bind(enc(inv.expires_at))
        .bind(inv.accepted_at.map(enc))
        .bind(inv.revoked_at.map(enc))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_messages(&mut tx, tenant_id, messages).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_invitations(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
    ) -> Result<Vec<Invitation>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE tenant_id = ?1 AND org_id = ?2 ORDER BY id DESC LIMIT 500"
        ))
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_invitation).collect()
    }

    async fn find_invitation_by_token(
        &self,
        tenant_id: &TenantId,
        token_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations
             WHERE tenant_id = ?1 AND token_hash = ?2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3"
        ))
        .bind(tenant_id.as_str())
        .bind(token_hash.as_str())
        .bind(enc(now))
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.as_ref().map(decode_invitation).transpose()
    }

    async fn revoke_invitation(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        id: &InvitationId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at = ?4
             WHERE tenant_id = ?1 AND org_id = ?2 AND id = ?3 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .bind(id.as_str())
        .bind(enc(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn accept_invitation(&self, tenant_id: &TenantId, a: &Acceptance<'_>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE invitations SET accepted_at = ?3
             WHERE tenant_id = ?1 AND id = ?2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
        )
        .bind(tenant_id.as_str())
        .bind(a.invitation_id.as_str())
        .bind(enc(a.now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        match a.user {
            UserWrite::None => {}
            UserWrite::Insert(user) => insert_user(&mut tx, tenant_id, user).await?,
            UserWrite::Update(user) => update_user_row(&mut tx, tenant_id, user).await?,
        }
        insert_member(&mut tx, tenant_id, a.membership).await?;
        if let Some((session, refresh)) = a.session {
            insert_session(&mut tx, tenant_id, session).await?;
            insert_refresh(&mut tx, tenant_id, &session.id, refresh).await?;
        }
        insert_event(&mut tx, a.event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn add_domain(&self, tenant_id: &TenantId, d: &OrgDomain, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO org_domains (tenant_id, org_id, domain, verification_token, verified_at, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM organizations WHERE tenant_id = ?1 AND id = ?2)",
        )
        .bind(tenant_id.as_str())
        .bind(d.org_id.as_str())
        .bind(&d.domain)
        .bind(&d.verification_token)
        .bind(d.verified_at.map(enc))
        .bind(enc(d.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| named(map_err(e), "org_domains"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_domains(&self, tenant_id: &TenantId, org_id: &OrganizationId) -> Result<Vec<OrgDomain>, StoreError> {
        let rows = sqlx::query(
            "SELECT org_id, domain, verification_token, verified_at, created_at FROM org_domains
             WHERE tenant_id = ?1 AND org_id = ?2 ORDER BY domain",
        )
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_domain).collect()
    }

    async fn verify_domain(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        domain: &str,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE org_domains SET verified_at = COALESCE(verified_at, ?4)
             WHERE tenant_id = ?1 AND org_id = ?2 AND domain = ?3",
        )
        .bind(tenant_id.as_str())
        .bind(org_id.as_str())
        .bind(domain)
        .bind(enc(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict { constraint: "org_domains_verified_key".into() },
            other => other,
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_domain(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        domain: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM org_domains WHERE tenant_id = ?1 AND org_id = ?2 AND domain = ?3")
            .bind(tenant_id.as_str())
            .bind(org_id.as_str())
            .bind(domain)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn orgs_by_verified_domain(
        &self,
        tenant_id: &TenantId,
        domain: &str,
    ) -> Result<Vec<Organization>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations
             WHERE tenant_id = ?1 AND domain_join <> 'off'
               AND id IN (SELECT org_id FROM org_domains WHERE tenant_id = ?1 AND domain = ?2 AND verified_at IS NOT NULL)
             ORDER BY id"
        ))
        .bind(tenant_id.as_str())
        .bind(domain)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_org).collect()
    }
}

//! Tenants on Postgres.

use crate::audit::insert_event;
use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::TenantId;
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::store::{StoreError, TenantStore};
use gatehouse_core::tenant::{Tenant, TenantSlug};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

const COLUMNS: &str = "id, slug, name, settings, version, created_at, updated_at";

fn decode(row: &PgRow) -> Result<Tenant, StoreError> {
    let bad = |what: &str| StoreError::Backend(format!("corrupt tenant row: {what}"));
    Ok(Tenant {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| bad("id"))?,
        slug: TenantSlug::parse(&row.try_get::<String, _>("slug").map_err(map_err)?).map_err(|_| bad("slug"))?,
        name: row.try_get("name").map_err(map_err)?,
        settings: serde_json::from_value(row.try_get("settings").map_err(map_err)?).map_err(|_| bad("settings"))?,
        version: row.try_get("version").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

fn settings_json(tenant: &Tenant) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(&tenant.settings).map_err(|e| StoreError::Backend(e.to_string()))
}

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(&self, tenant: &Tenant, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.system_tx().await?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, settings, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.id.as_str())
        .bind(tenant.slug.as_str())
        .bind(&tenant.name)
        .bind(settings_json(tenant)?)
        .bind(tenant.version)
        .bind(tenant.created_at)
        .bind(tenant.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Tenant, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL"))
            .bind(tenant_id.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        decode(&row)
    }

    async fn get_tenant_by_slug(&self, slug: &TenantSlug) -> Result<Tenant, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1 AND deleted_at IS NULL"))
            .bind(slug.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        decode(&row)
    }

    async fn list_tenants(&self, scope: Option<&[TenantId]>, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let scope: Option<Vec<&str>> = scope.map(|ids| ids.iter().map(TenantId::as_str).collect());
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenants
             WHERE deleted_at IS NULL AND id > $1 AND ($2::text[] IS NULL OR id = ANY($2))
             ORDER BY id LIMIT $3"
        ))
        .bind(page.lower_bound())
        .bind(scope)
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        let tenants = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(tenants, page, |t| t.id.as_str()))
    }

    async fn update_tenant(&self, tenant: &Tenant, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(&tenant.id).await?;
        let done = sqlx::query(
            "UPDATE tenants SET name = $2, settings = $3, version = $4, updated_at = $5
             WHERE id = $1 AND version = $4 - 1 AND deleted_at IS NULL",
        )
        .bind(tenant.id.as_str())
        .bind(&tenant.name)
        .bind(settings_json(tenant)?)
        .bind(tenant.version)
        .bind(tenant.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT version FROM tenants WHERE id = $1 AND deleted_at IS NULL")
                    .bind(tenant.id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
            return Err(match exists {
                Some(_) => StoreError::Conflict { constraint: "tenants_version".into() },
                None => StoreError::NotFound,
            });
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_tenant(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done =
            sqlx::query("UPDATE tenants SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(tenant_id.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE secret_keys SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL")
            .bind(tenant_id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn count_tenants(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE deleted_at IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

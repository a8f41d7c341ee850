//! Tenants on SQLite.

use crate::audit::insert_event;
use crate::time_codec::{dec, enc};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::TenantId;
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::store::{StoreError, TenantStore};
use gatehouse_core::tenant::{Tenant, TenantSlug};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

const COLUMNS: &str = "id, slug, name, settings, version, created_at, updated_at";

fn decode(row: &SqliteRow) -> Result<Tenant, StoreError> {
    let bad = |what: &str| StoreError::Backend(format!("corrupt tenant row: {what}"));
    let settings: String = row.try_get("settings").map_err(map_err)?;
    Ok(Tenant {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| bad("id"))?,
        slug: TenantSlug::parse(&row.try_get::<String, _>("slug").map_err(map_err)?).map_err(|_| bad("slug"))?,
        name: row.try_get("name").map_err(map_err)?,
        settings: serde_json::from_str(&settings).map_err(|_| bad("settings"))?,
        version: row.try_get("version").map_err(map_err)?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        updated_at: dec(row.try_get("updated_at").map_err(map_err)?)?,
    })
}

fn settings_json(tenant: &Tenant) -> Result<String, StoreError> {
    serde_json::to_string(&tenant.settings).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A JSON array of ids, for `IN (SELECT value FROM json_each(?))`.
pub(crate) fn id_list(ids: Option<&[TenantId]>) -> Option<String> {
    ids.map(|ids| serde_json::Value::from(ids.iter().map(TenantId::as_str).collect::<Vec<_>>()).to_string())
}

/// A page of live tenants (`?1` cursor, `?2` scope as a JSON array, `?3` size).
/// The cursor bounds the index walk (`id > ?1`, `''` on the first page), so a page
/// never re-reads the pages before it.
pub(crate) static TENANTS_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM tenants
         WHERE deleted_at IS NULL AND id > ?1
           AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))
         ORDER BY id LIMIT ?3"
    )
});

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, settings, version, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(tenant.id.as_str())
        .bind(tenant.slug.as_str())
        .bind(&tenant.name)
        .bind(settings_json(tenant)?)
        .bind(tenant.version)
        .bind(enc(tenant.created_at))
        .bind(enc(tenant.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Tenant, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = ?1 AND deleted_at IS NULL"))
            .bind(tenant_id.as_str())
            .fetch_one(self.reader())
            .await
            .map_err(map_err)?;
        decode(&row)
    }

    async fn get_tenant_by_slug(&self, slug: &TenantSlug) -> Result<Tenant, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = ?1 AND deleted_at IS NULL"))
            .bind(slug.as_str())
            .fetch_one(self.reader())
            .await
            .map_err(map_err)?;
        decode(&row)
    }

    async fn list_tenants(&self, scope: Option<&[TenantId]>, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let rows = sqlx::query(&TENANTS_PAGE)
            .bind(page.lower_bound())
            .bind(id_list(scope))
            .bind(page.fetch_limit())
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let tenants = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(tenants, page, |t| t.id.as_str()))
    }

    async fn update_tenant(&self, tenant: &Tenant, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE tenants SET name = ?2, settings = ?3, version = ?4, updated_at = ?5
             WHERE id = ?1 AND version = ?4 - 1 AND deleted_at IS NULL",
        )
        .bind(tenant.id.as_str())
        .bind(&tenant.name)
        .bind(settings_json(tenant)?)
        .bind(tenant.version)
        .bind(enc(tenant.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT version FROM tenants WHERE id = ?1 AND deleted_at IS NULL")
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
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE tenants SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")
                .bind(tenant_id.as_str())
                .bind(enc(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE secret_keys SET revoked_at = ?2 WHERE tenant_id = ?1 AND revoked_at IS NULL")
            .bind(tenant_id.as_str())
            .bind(enc(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn count_tenants(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE deleted_at IS NULL")
            .fetch_one(self.reader())
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

//! Tenant secret keys and operator tokens on SQLite.

use crate::audit::insert_event;
use crate::time_codec::{dec, dec_opt, enc};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::credentials::{AdminTokenRecord, SecretKeyRecord};
use gatehouse_core::ids::{AdminTokenId, SecretKeyId, TenantId};
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::store::{AdminTokenStore, Rotation, SecretKeyStore, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

const KEY_COLUMNS: &str = "k.id, k.tenant_id, k.name, k.display_prefix, k.secret_hash, k.created_at, k.last_used_at, k.expires_at, k.revoked_at";
const TOKEN_COLUMNS: &str =
    "id, name, display_prefix, secret_hash, tenant_scope, created_at, last_used_at, revoked_at, role";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt credential row: {what}"))
}

fn decode_key(row: &SqliteRow) -> Result<SecretKeyRecord, StoreError> {
    Ok(SecretKeyRecord {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row.try_get::<String, _>("tenant_id").map_err(map_err)?.parse().map_err(|_| corrupt("tenant_id"))?,
        name: row.try_get("name").map_err(map_err)?,
        display_prefix: row.try_get("display_prefix").map_err(map_err)?,
        hash: SecretHash::from_stored(row.try_get("secret_hash").map_err(map_err)?),
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        last_used_at: dec_opt(row.try_get("last_used_at").map_err(map_err)?)?,
        expires_at: dec_opt(row.try_get("expires_at").map_err(map_err)?)?,
        revoked_at: dec_opt(row.try_get("revoked_at").map_err(map_err)?)?,
    })
}

fn decode_token(row: &SqliteRow) -> Result<AdminTokenRecord, StoreError> {
    let scope: Option<String> = row.try_get("tenant_scope").map_err(map_err)?;
    Ok(AdminTokenRecord {
        role: gatehouse_core::access::OperatorRole::parse(&row.try_get::<String, _>("role").map_err(map_err)?)
            .ok_or_else(|| corrupt("role"))?,
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        name: row.try_get("name").map_err(map_err)?,
        display_prefix: row.try_get("display_prefix").map_err(map_err)?,
        hash: SecretHash::from_stored(row.try_get("secret_hash").map_err(map_err)?),
        tenant_scope: scope.map(|s| serde_json::from_str(&s)).transpose().map_err(|_| corrupt("tenant_scope"))?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        last_used_at: dec_opt(row.try_get("last_used_at").map_err(map_err)?)?,
        revoked_at: dec_opt(row.try_get("revoked_at").map_err(map_err)?)?,
    })
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    key: &SecretKeyRecord,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO secret_keys (id, tenant_id, name, display_prefix, secret_hash, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?2 AND deleted_at IS NULL)",
    )
    .bind(key.id.as_str())
    .bind(key.tenant_id.as_str())
    .bind(&key.name)
    .bind(&key.display_prefix)
    .bind(key.hash.as_str())
    .bind(enc(key.created_at))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// A page of a tenant's secret keys (`?1` tenant, `?2` cursor, `?3` size).
/// The cursor bounds the index walk (`id > ?2`, `''` on the first page), so a page
/// never re-reads the pages before it.
pub(crate) static SECRET_KEYS_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {KEY_COLUMNS} FROM secret_keys k WHERE k.tenant_id = ?1 AND k.id > ?2
         ORDER BY k.id LIMIT ?3"
    )
});

/// A page of operator tokens (`?1` cursor, `?2` size).
/// The cursor bounds the index walk (`id > ?1`, `''` on the first page), so a page
/// never re-reads the pages before it.
pub(crate) static ADMIN_TOKENS_PAGE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE id > ?1 ORDER BY id LIMIT ?2"));

#[async_trait]
impl SecretKeyStore for SqliteStore {
    async fn create_secret_key(
        &self,
        tenant_id: &TenantId,
        key: &SecretKeyRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        if &key.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.write_tx().await?;
        insert_key(&mut tx, key).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_secret_key(&self, tenant_id: &TenantId, key_id: &SecretKeyId) -> Result<SecretKeyRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM secret_keys k WHERE k.tenant_id = ?1 AND k.id = ?2"))
            .bind(tenant_id.as_str())
            .bind(key_id.as_str())
            .fetch_one(self.reader())
            .await
            .map_err(map_err)?;
        decode_key(&row)
    }

    async fn list_secret_keys(
        &self,
        tenant_id: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<SecretKeyRecord>, StoreError> {
        let rows = sqlx::query(&SECRET_KEYS_PAGE)
            .bind(tenant_id.as_str())
            .bind(page.lower_bound())
            .bind(page.fetch_limit())
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let keys = rows.iter().map(decode_key).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(keys, page, |k| k.id.as_str()))
    }

    async fn revoke_secret_key(
        &self,
        tenant_id: &TenantId,
        key_id: &SecretKeyId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE secret_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(key_id.as_str())
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

    async fn rotate_secret_key(
        &self,
        tenant_id: &TenantId,
        old_key_id: &SecretKeyId,
        rotation: Rotation,
        successor: &SecretKeyRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        if &successor.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE secret_keys SET expires_at = ?3
             WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL AND expires_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(old_key_id.as_str())
        .bind(enc(rotation.old_expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM secret_keys WHERE tenant_id = ?1 AND id = ?2")
                    .bind(tenant_id.as_str())
                    .bind(old_key_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
            return Err(match exists {
                Some(_) => StoreError::Conflict { constraint: "secret_keys_rotated".into() },
                None => StoreError::NotFound,
            });
        }
        insert_key(&mut tx, successor).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_active_secret_key(
        &self,
        hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<SecretKeyRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM secret_keys k JOIN tenants t ON t.id = k.tenant_id
             WHERE k.secret_hash = ?1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?2)
               AND t.deleted_at IS NULL"
        ))
        .bind(hash.as_str())
        .bind(enc(now))
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.as_ref().map(decode_key).transpose()
    }

    async fn touch_secret_key(
        &self,
        tenant_id: &TenantId,
        key_id: &SecretKeyId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE secret_keys SET last_used_at = ?3 WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant_id.as_str())
            .bind(key_id.as_str())
            .bind(enc(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    token: &AdminTokenRecord,
) -> Result<(), StoreError> {
    let scope = token
        .tenant_scope
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    sqlx::query(
        "INSERT INTO admin_tokens (id, name, display_prefix, secret_hash, tenant_scope, created_at, role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(token.id.as_str())
    .bind(&token.name)
    .bind(&token.display_prefix)
    .bind(token.hash.as_str())
    .bind(scope)
    .bind(enc(token.created_at))
    .bind(token.role.as_str())
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn create_admin_token(&self, token: &AdminTokenRecord, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_token(&mut tx, token).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_first_admin_token(&self, token: &AdminTokenRecord, event: &AuditEvent) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // The single writer connection serialises concurrent callers.
        let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_tokens WHERE revoked_at IS NULL")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if existing > 0 {
            return Ok(false);
        }
        insert_token(&mut tx, token).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn list_admin_tokens(&self, page: &PageRequest) -> Result<Page<AdminTokenRecord>, StoreError> {
        let rows = sqlx::query(&ADMIN_TOKENS_PAGE)
            .bind(page.lower_bound())
            .bind(page.fetch_limit())
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let tokens = rows.iter().map(decode_token).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(tokens, page, |t| t.id.as_str()))
    }

    async fn revoke_admin_token(
        &self,
        token_id: &AdminTokenId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE admin_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(token_id.as_str())
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

    async fn find_active_admin_token(&self, hash: &SecretHash) -> Result<Option<AdminTokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE secret_hash = ?1 AND revoked_at IS NULL"
        ))
        .bind(hash.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.as_ref().map(decode_token).transpose()
    }

    async fn touch_admin_token(&self, token_id: &AdminTokenId, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE admin_tokens SET last_used_at = ?2 WHERE id = ?1")
            .bind(token_id.as_str())
            .bind(enc(now))
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

//! Second factors on SQLite.

use crate::audit::insert_event;
use crate::messaging::insert_messages;
use crate::time_codec::{dec, dec_opt, enc};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{TenantId, UserId};
use gatehouse_core::messaging::OutboxMessage;
use gatehouse_core::mfa::TotpFactor;
use gatehouse_core::passkey::SecondFactors;
use gatehouse_core::store::{MfaStore, StoreError};
use sqlx::Row;
use time::OffsetDateTime;

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn insert_codes(
    tx: &mut Tx,
    tenant_id: &TenantId,
    user_id: &UserId,
    hashes: &[String],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = ?1 AND user_id = ?2")
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    for hash in hashes {
        sqlx::query("INSERT INTO recovery_codes (tenant_id, user_id, code_hash, created_at) VALUES (?1, ?2, ?3, ?4)")
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .bind(hash)
            .bind(enc(now))
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl MfaStore for SqliteStore {
    async fn put_pending_totp(
        &self,
        tenant_id: &TenantId,
        f: &TotpFactor,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO mfa_totp (tenant_id, user_id, secret_sealed, created_at)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2)
             ON CONFLICT (tenant_id, user_id) DO UPDATE
                 SET secret_sealed = EXCLUDED.secret_sealed, created_at = EXCLUDED.created_at, last_step = NULL
                 WHERE mfa_totp.enabled_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(f.user_id.as_str())
        .bind(&f.secret_sealed)
        .bind(enc(f.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2")
                .bind(tenant_id.as_str())
                .bind(f.user_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            return Err(match exists {
                Some(_) => StoreError::Conflict { constraint: "mfa_totp_enabled".into() },
                None => StoreError::NotFound,
            });
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_totp(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<Option<TotpFactor>, StoreError> {
        let row = sqlx::query(
            "SELECT secret_sealed, enabled_at, last_step, created_at FROM mfa_totp WHERE tenant_id = ?1 AND user_id = ?2",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpFactor {
            user_id: user_id.clone(),
            secret_sealed: row.try_get("secret_sealed").map_err(map_err)?,
            enabled_at: dec_opt(row.try_get("enabled_at").map_err(map_err)?)?,
            last_step: row.try_get("last_step").map_err(map_err)?,
            created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        }))
    }

    #[allow(clippy::too_many_arguments, reason = "the change, its codes, notices and event: one transaction")]
    async fn enable_totp(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        created_at: OffsetDateTime,
        step: i64,
        hashes: &[String],
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let now = event.created_at;
        let done = sqlx::query(
            "UPDATE mfa_totp SET enabled_at = ?4, last_step = ?5
             WHERE tenant_id = ?1 AND user_id = ?2 AND created_at = ?3 AND enabled_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(enc(created_at))
        .bind(enc(now))
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_codes(&mut tx, tenant_id, user_id, hashes, now).await?;
        insert_messages(&mut tx, tenant_id, messages).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn use_totp_step(&self, tenant_id: &TenantId, user_id: &UserId, step: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE mfa_totp SET last_step = ?3
             WHERE tenant_id = ?1 AND user_id = ?2 AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < ?3)",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_totp(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM mfa_totp WHERE tenant_id = ?1 AND user_id = ?2")
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_codes(&mut tx, tenant_id, user_id, &[], event.created_at).await?;
        insert_messages(&mut tx, tenant_id, messages).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn use_recovery_code(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = ?4
             WHERE tenant_id = ?1 AND user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(code_hash)
        .bind(enc(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn replace_recovery_codes(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        hashes: &[String],
        now: OffsetDateTime,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_codes(&mut tx, tenant_id, user_id, hashes, now).await?;
        insert_messages(&mut tx, tenant_id, messages).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn count_recovery_codes(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recovery_codes WHERE tenant_id = ?1 AND user_id = ?2 AND used_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .fetch_one(self.reader())
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn second_factors(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<SecondFactors, StoreError> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE tenant_id = ?1 AND user_id = ?2 AND enabled_at IS NOT NULL),
                    (SELECT count(*) FROM passkeys WHERE tenant_id = ?1 AND user_id = ?2)",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .fetch_one(self.reader())
        .await
        .map_err(map_err)?;
        let passkeys: i64 = row.try_get(1).map_err(map_err)?;
        Ok(SecondFactors {
            totp: row.try_get(0).map_err(map_err)?,
            passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
        })
    }
}

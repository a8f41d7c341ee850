//! Passkeys on SQLite.

use crate::audit::insert_event;
use crate::messaging::{insert_messages, insert_secret};
use crate::time_codec::{dec, dec_opt, enc};
use crate::users::insert_user;
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{PasskeyId, TenantId, UserId};
use gatehouse_core::messaging::OutboxMessage;
use gatehouse_core::passkey::{Passkey, PasskeyUse};
use gatehouse_core::store::{PasskeySignup, PasskeyStore, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const COLUMNS: &str = "id, user_id, credential_id, name, credential, sign_count, aaguid, attestation_format,
                       backup_eligible, backup_state, created_at, last_used_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt passkey row: {what}"))
}

fn decode(row: &SqliteRow) -> Result<Passkey, StoreError> {
    Ok(Passkey {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        user_id: row.try_get::<String, _>("user_id").map_err(map_err)?.parse().map_err(|_| corrupt("user_id"))?,
        credential_id: row.try_get("credential_id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        credential: serde_json::from_str(&row.try_get::<String, _>("credential").map_err(map_err)?)
            .map_err(|_| corrupt("credential"))?,
        sign_count: u32::try_from(row.try_get::<i64, _>("sign_count").map_err(map_err)?)
            .map_err(|_| corrupt("sign_count"))?,
        aaguid: row.try_get("aaguid").map_err(map_err)?,
        attestation_format: row.try_get("attestation_format").map_err(map_err)?,
        backup_eligible: row.try_get("backup_eligible").map_err(map_err)?,
        backup_state: row.try_get("backup_state").map_err(map_err)?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        last_used_at: dec_opt(row.try_get("last_used_at").map_err(map_err)?)?,
    })
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn insert_passkey(
        &self,
        tenant_id: &TenantId,
        signup: Option<PasskeySignup<'_>>,
        p: &Passkey,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(signup) = signup {
            insert_user(&mut tx, tenant_id, signup.user).await?;
            insert_secret(&mut tx, tenant_id, signup.verification).await?;
        }
        let done = sqlx::query(&format!(
            "INSERT INTO passkeys (tenant_id, {COLUMNS})
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
             WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?3)"
        ))
        .bind(tenant_id.as_str())
        .bind(p.id.as_str())
        .bind(p.user_id.as_str())
        .bind(&p.credential_id)
        .bind(&p.name)
        .bind(p.credential.to_string())
        .bind(i64::from(p.sign_count))
        .bind(&p.aaguid)
        .bind(&p.attestation_format)
        .bind(p.backup_eligible)
        .bind(p.backup_state)
        .bind(enc(p.created_at))
        .bind(p.last_used_at.map(enc))
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

    async fn list_passkeys(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<Vec<Passkey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY created_at, id"
        ))
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn find_passkey_by_credential(
        &self,
        tenant_id: &TenantId,
        credential_id: &[u8],
    ) -> Result<Option<Passkey>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM passkeys WHERE tenant_id = ?1 AND credential_id = ?2"))
            .bind(tenant_id.as_str())
            .bind(credential_id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode).transpose()
    }

    async fn use_passkey(&self, tenant_id: &TenantId, used: &PasskeyUse) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE passkeys SET sign_count = ?4, backup_state = ?5, last_used_at = ?6
             WHERE tenant_id = ?1 AND id = ?2 AND user_id = ?3
               AND (sign_count < ?4 OR (?4 = 0 AND sign_count = 0))",
        )
        .bind(tenant_id.as_str())
        .bind(used.id.as_str())
        .bind(used.user_id.as_str())
        .bind(i64::from(used.sign_count))
        .bind(used.backup_state)
        .bind(enc(used.at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rename_passkey(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        id: &PasskeyId,
        name: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE passkeys SET name = ?4 WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3")
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .bind(id.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_passkey(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        id: &PasskeyId,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM passkeys WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3")
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .bind(id.as_str())
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
}

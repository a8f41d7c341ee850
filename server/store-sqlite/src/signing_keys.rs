//! Token signing keys on Postgres.

use crate::audit::insert_event;
use crate::time_codec::{dec, dec_opt, enc};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{SigningKeyId, TenantId};
use gatehouse_core::signing::{KeyStatus, SigningKeyRecord, alg_name, parse_alg};
use gatehouse_core::store::{SigningKeyStore, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

const COLUMNS: &str = "id, tenant_id, alg, public_jwk, private_sealed, status, created_at, activated_at, publish_until";

fn decode(row: &SqliteRow) -> Result<SigningKeyRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt signing key row: {what}"));
    Ok(SigningKeyRecord {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row.try_get::<String, _>("tenant_id").map_err(map_err)?.parse().map_err(|_| corrupt("tenant_id"))?,
        alg: parse_alg(&row.try_get::<String, _>("alg").map_err(map_err)?).ok_or_else(|| corrupt("alg"))?,
        public_jwk: serde_json::from_str(&row.try_get::<String, _>("public_jwk").map_err(map_err)?)
            .map_err(|_| corrupt("public_jwk"))?,
        private_sealed: row.try_get("private_sealed").map_err(map_err)?,
        status: KeyStatus::parse(&row.try_get::<String, _>("status").map_err(map_err)?)
            .ok_or_else(|| corrupt("status"))?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        activated_at: dec_opt(row.try_get("activated_at").map_err(map_err)?)?,
        publish_until: dec_opt(row.try_get("publish_until").map_err(map_err)?)?,
    })
}

async fn insert(tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>, key: &SigningKeyRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (id, tenant_id, alg, public_jwk, private_sealed, status, created_at, publish_until,
                                   activated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(key.id.as_str())
    .bind(key.tenant_id.as_str())
    .bind(alg_name(key.alg))
    .bind(key.public_jwk.to_string())
    .bind(&key.private_sealed)
    .bind(key.status.as_str())
    .bind(enc(key.created_at))
    .bind(key.publish_until.map(enc))
    .bind(key.activated_at.map(enc))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn published_signing_keys(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_keys
             WHERE tenant_id = ?1 AND (status <> 'retired' OR publish_until > ?2) ORDER BY id"
        ))
        .bind(tenant_id.as_str())
        .bind(enc(now))
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn create_initial_signing_keys(
        &self,
        tenant_id: &TenantId,
        active: &SigningKeyRecord,
        next: &SigningKeyRecord,
    ) -> Result<(), StoreError> {
        if &active.tenant_id != tenant_id || &next.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.write_tx().await?;
        // SQLite names the column, not the partial index, in its error: name the rule.
        let rename = |e: StoreError| match e {
            StoreError::Conflict { .. } => StoreError::Conflict { constraint: "signing_keys_one_active".into() },
            other => other,
        };
        insert(&mut tx, active).await.map_err(rename)?;
        insert(&mut tx, next).await.map_err(rename)?;
        tx.commit().await.map_err(map_err)
    }

    async fn rotate_signing_keys(
        &self,
        tenant_id: &TenantId,
        new_next: &SigningKeyRecord,
        retire_publish_until: OffsetDateTime,
        only_if_activated_before: Option<OffsetDateTime>,
        event: &AuditEvent,
    ) -> Result<Option<SigningKeyId>, StoreError> {
        let mut tx = self.write_tx().await?;
        // Lock the tenant's current keys: concurrent rotations run one after the other,
        // and the due-check below sees the winner's result.
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, status, activated_at FROM signing_keys
             WHERE tenant_id = ?1 AND status IN ('active', 'next')",
        )
        .bind(tenant_id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let corrupt = || StoreError::Backend("corrupt signing key row".into());
        if let Some(cutoff) = only_if_activated_before {
            let activated = rows.iter().find(|(_, status, _)| status == "active").and_then(|(_, _, at)| *at);
            let due = match activated {
                Some(activated) => dec(activated)? < cutoff,
                None => true,
            };
            if !due {
                return Ok(None);
            }
        }
        let next_id: SigningKeyId = rows
            .iter()
            .find(|(_, status, _)| status == "next")
            .ok_or(StoreError::NotFound)?
            .0
            .parse()
            .map_err(|_| corrupt())?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', publish_until = ?2 WHERE tenant_id = ?1 AND status = 'active'",
        )
        .bind(tenant_id.as_str())
        .bind(enc(retire_publish_until))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("UPDATE signing_keys SET status = 'active', activated_at = ?3 WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant_id.as_str())
            .bind(next_id.as_str())
            .bind(enc(new_next.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert(&mut tx, new_next).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(next_id))
    }
}

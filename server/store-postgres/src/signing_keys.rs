//! Token signing keys on Postgres.

use crate::audit::insert_event;
use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{SigningKeyId, TenantId};
use gatehouse_core::signing::{KeyStatus, SigningKeyRecord, alg_name, parse_alg};
use gatehouse_core::store::{SigningKeyStore, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

const COLUMNS: &str = "id, tenant_id, alg, public_jwk, private_sealed, status, created_at, activated_at, publish_until";

fn decode(row: &PgRow) -> Result<SigningKeyRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt signing key row: {what}"));
    Ok(SigningKeyRecord {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row.try_get::<String, _>("tenant_id").map_err(map_err)?.parse().map_err(|_| corrupt("tenant_id"))?,
        alg: parse_alg(&row.try_get::<String, _>("alg").map_err(map_err)?).ok_or_else(|| corrupt("alg"))?,
        public_jwk: row.try_get("public_jwk").map_err(map_err)?,
        private_sealed: row.try_get("private_sealed").map_err(map_err)?,
        status: KeyStatus::parse(&row.try_get::<String, _>("status").map_err(map_err)?)
            .ok_or_else(|| corrupt("status"))?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        activated_at: row.try_get("activated_at").map_err(map_err)?,
        publish_until: row.try_get("publish_until").map_err(map_err)?,
    })
}

async fn insert(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>, key: &SigningKeyRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (id, tenant_id, alg, public_jwk, private_sealed, status, created_at, publish_until,
                                   activated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(key.id.as_str())
    .bind(key.tenant_id.as_str())
    .bind(alg_name(key.alg))
    .bind(&key.public_jwk)
    .bind(&key.private_sealed)
    .bind(key.status.as_str())
    .bind(key.created_at)
    .bind(key.publish_until)
    .bind(key.activated_at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SigningKeyStore for PgStore {
    async fn published_signing_keys(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_keys
             WHERE tenant_id = $1 AND (status <> 'retired' OR publish_until > $2) ORDER BY id"
        ))
        .bind(tenant_id.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
        let mut tx = self.tenant_tx(tenant_id).await?;
        insert(&mut tx, active).await?;
        insert(&mut tx, next).await?;
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
        let mut tx = self.tenant_tx(tenant_id).await?;
        // Lock the tenant's current keys: concurrent rotations run one after the other,
        // and the due-check below sees the winner's result.
        let rows: Vec<(String, String, Option<OffsetDateTime>)> = sqlx::query_as(
            "SELECT id, status, activated_at FROM signing_keys
             WHERE tenant_id = $1 AND status IN ('active', 'next') FOR UPDATE",
        )
        .bind(tenant_id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let corrupt = || StoreError::Backend("corrupt signing key row".into());
        if let Some(cutoff) = only_if_activated_before {
            let activated = rows.iter().find(|(_, status, _)| status == "active").and_then(|(_, _, at)| *at);
            let due = match activated {
                Some(activated) => activated < cutoff,
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
            "UPDATE signing_keys SET status = 'retired', publish_until = $2 WHERE tenant_id = $1 AND status = 'active'",
        )
        .bind(tenant_id.as_str())
        .bind(retire_publish_until)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("UPDATE signing_keys SET status = 'active', activated_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.as_str())
            .bind(next_id.as_str())
            .bind(new_next.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert(&mut tx, new_next).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(next_id))
    }
}

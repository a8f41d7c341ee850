//! Operator accounts and sessions on SQLite.

use crate::audit::insert_event;
use crate::time_codec::{dec, dec_opt, enc};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::access::OperatorRole;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{OperatorId, OperatorSessionId};
use gatehouse_core::operator::{Operator, OperatorSession};
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::store::{OperatorStore, StoreError};
use gatehouse_core::user::Email;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

const COLUMNS: &str = "o.id, o.email, o.name, o.role, o.tenant_scope, o.password_hash, o.totp_sealed,
                       o.totp_last_step, o.disabled, o.created_at, o.last_login_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt operator row: {what}"))
}

fn decode(row: &SqliteRow) -> Result<Operator, StoreError> {
    let scope: Option<String> = row.try_get("tenant_scope").map_err(map_err)?;
    Ok(Operator {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        email: Email::parse(&row.try_get::<String, _>("email").map_err(map_err)?).map_err(|_| corrupt("email"))?,
        name: row.try_get("name").map_err(map_err)?,
        role: OperatorRole::parse(&row.try_get::<String, _>("role").map_err(map_err)?)
            .ok_or_else(|| corrupt("role"))?,
        tenant_ids: scope.map(|s| serde_json::from_str(&s)).transpose().map_err(|_| corrupt("tenant_scope"))?,
        password_hash: row.try_get("password_hash").map_err(map_err)?,
        totp_sealed: row.try_get("totp_sealed").map_err(map_err)?,
        totp_last_step: row.try_get("totp_last_step").map_err(map_err)?,
        disabled: row.try_get("disabled").map_err(map_err)?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        last_login_at: dec_opt(row.try_get("last_login_at").map_err(map_err)?)?,
    })
}

fn scope_of(o: &Operator) -> Result<Option<String>, StoreError> {
    o.tenant_ids.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Backend(e.to_string()))
}

/// A page of operators (`?1` cursor, `?2` size).
/// The cursor bounds the index walk (`id > ?1`, `''` on the first page), so a page
/// never re-reads the pages before it.
pub(crate) static OPERATORS_PAGE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM operators o WHERE o.id > ?1 ORDER BY o.id LIMIT ?2"));

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn create_operator(&self, o: &Operator, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO operators (id, email, email_normalized, name, role, tenant_scope, password_hash, totp_sealed,
                                    totp_last_step, disabled, created_at, last_login_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .bind(o.id.as_str())
        .bind(o.email.as_str())
        .bind(o.email.normalized())
        .bind(&o.name)
        .bind(o.role.as_str())
        .bind(scope_of(o)?)
        .bind(&o.password_hash)
        .bind(&o.totp_sealed)
        .bind(o.totp_last_step)
        .bind(o.disabled)
        .bind(enc(o.created_at))
        .bind(o.last_login_at.map(enc))
        .execute(&mut *tx)
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Conflict { .. } => StoreError::Conflict { constraint: "operators_email_key".into() },
            other => other,
        })?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_operator(&self, id: &OperatorId) -> Result<Operator, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM operators o WHERE o.id = ?1"))
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        decode(&row.ok_or(StoreError::NotFound)?)
    }

    async fn find_operator_by_email(&self, normalized_email: &str) -> Result<Option<Operator>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM operators o WHERE o.email_normalized = ?1"))
            .bind(normalized_email)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode).transpose()
    }

    async fn list_operators(&self, page: &PageRequest) -> Result<Page<Operator>, StoreError> {
        let rows = sqlx::query(&OPERATORS_PAGE)
            .bind(page.lower_bound())
            .bind(page.fetch_limit())
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let operators = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(operators, page, |o| o.id.as_str()))
    }

    async fn update_operator(&self, o: &Operator, now: OffsetDateTime, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE operators SET name = ?2, role = ?3, tenant_scope = ?4, password_hash = ?5, totp_sealed = ?6,
                                  totp_last_step = ?7, disabled = ?8, last_login_at = ?9
             WHERE id = ?1",
        )
        .bind(o.id.as_str())
        .bind(&o.name)
        .bind(o.role.as_str())
        .bind(scope_of(o)?)
        .bind(&o.password_hash)
        .bind(&o.totp_sealed)
        .bind(o.totp_last_step)
        .bind(o.disabled)
        .bind(o.last_login_at.map(enc))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if o.disabled {
            sqlx::query("UPDATE operator_sessions SET revoked_at = ?2 WHERE operator_id = ?1 AND revoked_at IS NULL")
                .bind(o.id.as_str())
                .bind(enc(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn use_operator_totp_step(&self, id: &OperatorId, step: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE operators SET totp_last_step = ?2
             WHERE id = ?1 AND totp_sealed IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < ?2)",
        )
        .bind(id.as_str())
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_operator(&self, id: &OperatorId, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM operators WHERE id = ?1")
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

    async fn create_operator_session(&self, session: &OperatorSession, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO operator_sessions (id, operator_id, token_hash, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM operators WHERE id = ?2 AND disabled = 0)",
        )
        .bind(session.id.as_str())
        .bind(session.operator_id.as_str())
        .bind(session.token_hash.as_str())
        .bind(enc(session.created_at))
        .bind(enc(session.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE operators SET last_login_at = ?2 WHERE id = ?1")
            .bind(session.operator_id.as_str())
            .bind(enc(session.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_operator_session(
        &self,
        token_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<(OperatorSession, Operator)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, s.id AS session_id, s.created_at AS session_created_at, s.expires_at, s.revoked_at
             FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
             WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2 AND o.disabled = 0"
        ))
        .bind(token_hash.as_str())
        .bind(enc(now))
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let operator = decode(&row)?;
        let session = OperatorSession {
            id: row.try_get::<String, _>("session_id").map_err(map_err)?.parse().map_err(|_| corrupt("session_id"))?,
            operator_id: operator.id.clone(),
            token_hash: token_hash.clone(),
            created_at: dec(row.try_get("session_created_at").map_err(map_err)?)?,
            expires_at: dec(row.try_get("expires_at").map_err(map_err)?)?,
            revoked_at: dec_opt(row.try_get("revoked_at").map_err(map_err)?)?,
        };
        Ok(Some((session, operator)))
    }

    async fn revoke_operator_session(
        &self,
        id: &OperatorSessionId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE operator_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
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
}

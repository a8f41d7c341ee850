//! Sessions and refresh tokens on Postgres.

use crate::audit::insert_event;
use crate::time_codec::{dec, dec_opt, enc};
use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{SessionId, TenantId, UserId};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::session::{RefreshOutcome, RefreshToken, Session};
use gatehouse_core::store::{RotationEvent, SessionStore, StoreError};
use gatehouse_core::user::User;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

const COLUMNS: &str =
    "id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr, ip, user_agent, revoked_at, org_id";

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

fn decode(row: &SqliteRow) -> Result<Session, StoreError> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt session row: {what}"));
    Ok(Session {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row.try_get::<String, _>("tenant_id").map_err(map_err)?.parse().map_err(|_| corrupt("tenant_id"))?,
        user_id: row.try_get::<String, _>("user_id").map_err(map_err)?.parse().map_err(|_| corrupt("user_id"))?,
        created_at: dec(row.try_get("created_at").map_err(map_err)?)?,
        last_seen_at: dec(row.try_get("last_seen_at").map_err(map_err)?)?,
        expires_at: dec(row.try_get("expires_at").map_err(map_err)?)?,
        auth_time: dec(row.try_get("auth_time").map_err(map_err)?)?,
        amr: serde_json::from_str(&row.try_get::<String, _>("amr").map_err(map_err)?).map_err(|_| corrupt("amr"))?,
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        revoked_at: dec_opt(row.try_get("revoked_at").map_err(map_err)?)?,
        org_id: row
            .try_get::<Option<String>, _>("org_id")
            .map_err(map_err)?
            .map(|o| o.parse())
            .transpose()
            .map_err(|_| corrupt("org_id"))?,
    })
}

pub(crate) async fn insert_refresh(
    tx: &mut Tx,
    tenant_id: &TenantId,
    session_id: &SessionId,
    token: &RefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(token.hash.as_str())
    .bind(tenant_id.as_str())
    .bind(session_id.as_str())
    .bind(enc(token.created_at))
    .bind(enc(token.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn insert_session(tx: &mut Tx, tenant_id: &TenantId, session: &Session) -> Result<(), StoreError> {
    sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr, ip, user_agent, org_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .bind(session.id.as_str())
        .bind(tenant_id.as_str())
        .bind(session.user_id.as_str())
        .bind(enc(session.created_at))
        .bind(enc(session.last_seen_at))
        .bind(enc(session.expires_at))
        .bind(enc(session.auth_time))
        .bind(serde_json::json!(session.amr).to_string())
        .bind(&session.ip)
        .bind(&session.user_agent)
        .bind(session.org_id.as_ref().map(|o| o.as_str()))
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn load_session(tx: &mut Tx, tenant_id: &TenantId, session_id: &str) -> Result<Session, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE tenant_id = ?1 AND id = ?2"))
        .bind(tenant_id.as_str())
        .bind(session_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
    decode(&row)
}

async fn revoke(
    tx: &mut Tx,
    tenant_id: &TenantId,
    session: &mut Session,
    now: OffsetDateTime,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET revoked_at = ?3, revoke_reason = ?4 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL")
        .bind(tenant_id.as_str())
        .bind(session.id.as_str())
        .bind(enc(now))
        .bind(reason)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    session.revoked_at.get_or_insert(now);
    Ok(())
}

/// A rotation's writes, one batch: spend the presented token, keeping its sealed
/// successor for the grace window, and clear the sealed successors its predecessors
/// kept; store the successor; touch the session; record the audit event. Numbered
/// parameters are shared by the statements (the event's from `?9`). The first names its
/// rows by primary key only: with the session in its outer condition SQLite searched
/// the session index, reading every spent token of the session's chain (as on Postgres).
static ROTATION_WRITES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE refresh_tokens
         SET used_at = CASE WHEN token_hash = ?2 THEN ?3 ELSE used_at END,
             successor_sealed = CASE WHEN token_hash = ?2 THEN ?4 ELSE NULL END
         WHERE tenant_id = ?1
           AND token_hash IN (SELECT ?2 UNION ALL
                              SELECT token_hash FROM refresh_tokens
                              WHERE tenant_id = ?1 AND session_id = ?5 AND successor_sealed IS NOT NULL);
         INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at)
         VALUES (?6, ?1, ?5, ?7, ?8);
         UPDATE sessions SET last_seen_at = ?3 WHERE tenant_id = ?1 AND id = ?5;
         {};",
        crate::audit::insert_event_sql(9)
    )
});

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(
        &self,
        tenant_id: &TenantId,
        session: &Session,
        refresh: &RefreshToken,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        if &session.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.write_tx().await?;
        insert_session(&mut tx, tenant_id, session).await?;
        insert_refresh(&mut tx, tenant_id, &session.id, refresh).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn record_login(
        &self,
        tenant_id: &TenantId,
        user: &User,
        session: &Session,
        refresh: &RefreshToken,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        if &session.tenant_id != tenant_id || &user.tenant_id != tenant_id || session.user_id != user.id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE users SET last_login_at = ?3, password_hash = ?4, updated_at = ?5 WHERE tenant_id = ?1 AND id = ?2",
        )
        .bind(tenant_id.as_str())
        .bind(user.id.as_str())
        .bind(user.last_login_at.map(enc))
        .bind(&user.password_hash)
        .bind(enc(user.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_session(&mut tx, tenant_id, session).await?;
        insert_refresh(&mut tx, tenant_id, &session.id, refresh).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_session(&self, tenant_id: &TenantId, session_id: &SessionId) -> Result<Session, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE tenant_id = ?1 AND id = ?2"))
            .bind(tenant_id.as_str())
            .bind(session_id.as_str())
            .fetch_one(self.reader())
            .await
            .map_err(map_err)?;
        decode(&row)
    }

    async fn sweep_ended_sessions(&self, ended_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        // Tokens first, so a batch (and the one writer's time) is bounded in rows however
        // many tokens a session has; sessions once their tokens are gone. Found through
        // `sessions_expires_at_idx` and `sessions_revoked_at_idx` (0021).
        let statements = [
            "DELETE FROM refresh_tokens WHERE token_hash IN (
                 SELECT r.token_hash FROM sessions s JOIN refresh_tokens r ON r.session_id = s.id
                 WHERE s.expires_at < ?1 OR s.revoked_at < ?1 LIMIT ?2)",
            "DELETE FROM sessions WHERE id IN (
                 SELECT id FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1 LIMIT ?2)",
        ];
        self.sweep(&statements, ended_before, limit).await
    }

    async fn rotate_refresh_token(
        &self,
        tenant_id: &TenantId,
        presented: &SecretHash,
        successor: &RefreshToken,
        successor_sealed: &[u8],
        now: OffsetDateTime,
        grace: time::Duration,
        event: &RotationEvent,
    ) -> Result<RefreshOutcome, StoreError> {
        // Few statements on purpose: the single writer is held for the whole transaction,
        // so every round trip to it is time no other write can use.
        let mut tx = self.write_tx().await?;
        // The user comes with the token (the caller needs it for the new access token).
        let row = sqlx::query(&format!(
            "SELECT s.id, s.tenant_id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.auth_time, s.amr,
                    s.ip, s.user_agent, s.revoked_at, s.org_id, rt.expires_at AS token_expires_at,
                    rt.used_at AS token_used_at, rt.successor_sealed AS token_successor_sealed, {}
             FROM refresh_tokens rt JOIN sessions s ON s.tenant_id = rt.tenant_id AND s.id = rt.session_id
             JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
             WHERE rt.tenant_id = ?1 AND rt.token_hash = ?2",
            *crate::users::JOINED_COLUMNS
        ))
        .bind(tenant_id.as_str())
        .bind(presented.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(RefreshOutcome::Invalid) };
        let mut session = decode(&row)?;
        let user = Box::new(crate::users::decode_prefixed(&row, "u_")?);
        let expires_at: i64 = row.try_get("token_expires_at").map_err(map_err)?;
        let used_at: Option<i64> = row.try_get("token_used_at").map_err(map_err)?;
        let sealed: Option<Vec<u8>> = row.try_get("token_successor_sealed").map_err(map_err)?;
        if !session.is_live(now) {
            return Ok(RefreshOutcome::Invalid);
        }
        if let (Some(used), Some(sealed)) = (used_at, &sealed)
            && now - dec(used)? <= grace
        {
            return Ok(RefreshOutcome::Raced { session, successor_sealed: sealed.clone(), user });
        }
        if used_at.is_some() {
            revoke(&mut tx, tenant_id, &mut session, now, "refresh_token_reuse").await?;
            tx.commit().await.map_err(map_err)?;
            return Ok(RefreshOutcome::Reused(session));
        }
        if dec(expires_at)? <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        // The writes, sent to the writer as one batch (one round trip): see ROTATION_WRITES.
        session.last_seen_at = now;
        let event = event.for_session(&session);
        let batch = sqlx::query(&ROTATION_WRITES)
            .bind(tenant_id.as_str())
            .bind(presented.as_str())
            .bind(enc(now))
            .bind(successor_sealed)
            .bind(session.id.as_str())
            .bind(successor.hash.as_str())
            .bind(enc(successor.created_at))
            .bind(enc(successor.expires_at));
        crate::audit::bind_event(batch, &event).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(RefreshOutcome::Rotated { session, user })
    }

    async fn revoke_session_by_refresh_token(
        &self,
        tenant_id: &TenantId,
        presented: &SecretHash,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.write_tx().await?;
        let session_id: Option<String> =
            sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE tenant_id = ?1 AND token_hash = ?2")
                .bind(tenant_id.as_str())
                .bind(presented.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(session_id) = session_id else { return Ok(None) };
        let mut session = load_session(&mut tx, tenant_id, &session_id).await?;
        revoke(&mut tx, tenant_id, &mut session, now, reason).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(session))
    }

    async fn list_user_sessions(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE tenant_id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > ?3 ORDER BY id"
        ))
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(enc(now))
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;

        rows.iter().map(decode).collect()
    }

    async fn revoke_user_session(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        session_id: &SessionId,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ?4, revoke_reason = ?5
             WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3 AND revoked_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(session_id.as_str())
        .bind(enc(now))
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    }

    async fn revoke_user_sessions(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        except: Option<&SessionId>,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ?3, revoke_reason = ?4 WHERE tenant_id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND (?5 IS NULL OR id <> ?5)",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(enc(now))
        .bind(reason)
        .bind(except.map(SessionId::as_str))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rotation's spend finds its rows by primary key, never through the session
    /// index (which would read every spent token of the session's chain).
    #[tokio::test]
    async fn the_rotation_spend_never_searches_the_session_index() {
        let path = std::env::temp_dir().join(format!("gatehouse-plan-{}.db", gatehouse_core::ids::EventId::generate()));
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()), 1).await.unwrap();
        let spend = ROTATION_WRITES.split(';').next().unwrap();
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {spend}"))
            .bind("tnt_x")
            .bind("hash")
            .bind("now")
            .bind(b"sealed".as_slice())
            .bind("ses_x")
            .fetch_all(&store.read)
            .await
            .unwrap();
        // Each row is (id, parent, unused, detail).
        let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(3)).collect();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(plan.iter().any(|step| step.contains("(token_hash=?)")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("refresh_tokens_session_id_idx")), "{plan:?}");
    }
}

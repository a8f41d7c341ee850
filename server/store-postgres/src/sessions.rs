//! Sessions and refresh tokens on Postgres.

use crate::audit::{bind_event, insert_event};
use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{SessionId, TenantId, UserId};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::session::{RefreshOutcome, RefreshToken, Session};
use gatehouse_core::store::{RotationEvent, SessionStore, StoreError};
use gatehouse_core::user::User;
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

const COLUMNS: &str =
    "id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr, ip, user_agent, revoked_at, org_id";

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The rotation, one call of `gatehouse_rotate_refresh_token` (migration 0024): `$1`
/// tenant, `$2` presented hash, `$3` now, `$4` the earliest spend that counts as a race,
/// `$5` the sealed successor, `$6`–`$8` successor hash, creation and expiry, `$9`–`$16`
/// the event's id, tenant, action, ip, user agent, request id, data and time. Answers
/// the outcome, the sealed successor of a race, the session's columns and the user's
/// (aliased `u_…`).
pub(crate) static ROTATION_CALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT r.outcome, r.successor_sealed, (r.sess).*, {}
         FROM gatehouse_rotate_refresh_token($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) r",
        crate::users::columns_of("(r.account)")
    )
});

fn decode(row: &PgRow) -> Result<Session, StoreError> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt session row: {what}"));
    Ok(Session {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row.try_get::<String, _>("tenant_id").map_err(map_err)?.parse().map_err(|_| corrupt("tenant_id"))?,
        user_id: row.try_get::<String, _>("user_id").map_err(map_err)?.parse().map_err(|_| corrupt("user_id"))?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        last_seen_at: row.try_get("last_seen_at").map_err(map_err)?,
        expires_at: row.try_get("expires_at").map_err(map_err)?,
        auth_time: row.try_get("auth_time").map_err(map_err)?,
        amr: serde_json::from_value(row.try_get("amr").map_err(map_err)?).map_err(|_| corrupt("amr"))?,
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        revoked_at: row.try_get("revoked_at").map_err(map_err)?,
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
    const INSERT: &str = "INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at)
                          VALUES ($1, $2, $3, $4, $5)";
    sqlx::query(INSERT)
        .bind(token.hash.as_str())
        .bind(tenant_id.as_str())
        .bind(session_id.as_str())
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn insert_session(tx: &mut Tx, tenant_id: &TenantId, session: &Session) -> Result<(), StoreError> {
    let insert = sqlx::query(
        "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, auth_time, amr, ip, user_agent, org_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    );
    let insert = insert.bind(session.id.as_str()).bind(tenant_id.as_str()).bind(session.user_id.as_str());
    bind_session_times_and_device(insert, session).execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
}

/// Binds a session's columns after its ids, in the order of [`insert_session`]'s list
/// (`created_at` … `org_id`).
fn bind_session_times_and_device<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    session: &'q Session,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .bind(session.auth_time)
        .bind(serde_json::json!(session.amr))
        .bind(&session.ip)
        .bind(&session.user_agent)
        .bind(session.org_id.as_ref().map(|o| o.as_str()))
}

async fn load_session(tx: &mut Tx, tenant_id: &TenantId, session_id: &str) -> Result<Session, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE"))
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
    sqlx::query("UPDATE sessions SET revoked_at = $3, revoke_reason = $4 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
        .bind(tenant_id.as_str())
        .bind(session.id.as_str())
        .bind(now)
        .bind(reason)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    session.revoked_at.get_or_insert(now);
    Ok(())
}

/// One batch of the sweep's first step: refresh tokens of sessions that ended before
/// `$1`, at most `$2` of them. Each batch is chosen once (a materialized CTE): as
/// `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` the subquery may run again, skip what
/// it locked itself, and return more than `n`.
pub(crate) const SWEEP_TOKENS: &str = "WITH batch AS MATERIALIZED (
         SELECT r.token_hash FROM sessions s
         JOIN refresh_tokens r ON r.tenant_id = s.tenant_id AND r.session_id = s.id
         WHERE s.expires_at < $1 OR s.revoked_at < $1 LIMIT $2 FOR UPDATE OF r SKIP LOCKED)
     DELETE FROM refresh_tokens t USING batch WHERE t.token_hash = batch.token_hash";

/// One batch of the sweep's second step: sessions that ended before `$1`, at most `$2`
/// of them (what tokens they still have go by the key's cascade).
pub(crate) const SWEEP_SESSIONS: &str = "WITH batch AS MATERIALIZED (
         SELECT id FROM sessions WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
     DELETE FROM sessions s USING batch WHERE s.id = batch.id";

#[async_trait]
impl SessionStore for PgStore {
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
        let mut tx = self.tenant_tx(tenant_id).await?;
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
        // The sign-in is the hottest write path: its four writes are one call of
        // `gatehouse_record_login` (migration 0014), which names the tenant for row-level
        // security itself. One statement is one transaction, so there is no BEGIN or
        // COMMIT to wait for: one round trip instead of three. A user who is gone
        // writes nothing and the call answers 0.
        let statement = sqlx::query(
            "SELECT gatehouse_record_login($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                                           $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)",
        );
        let statement = statement
            .bind(tenant_id.as_str())
            .bind(user.id.as_str())
            .bind(user.last_login_at)
            .bind(&user.password_hash)
            .bind(user.updated_at)
            .bind(session.id.as_str());
        let statement = bind_session_times_and_device(statement, session)
            .bind(refresh.hash.as_str())
            .bind(refresh.created_at)
            .bind(refresh.expires_at);
        let row = bind_event(statement, event).fetch_one(self.pool()).await.map_err(map_err)?;
        let written: i64 = row.try_get(0).map_err(map_err)?;
        if written == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_session(&self, tenant_id: &TenantId, session_id: &SessionId) -> Result<Session, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant_id.as_str())
            .bind(session_id.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        decode(&row)
    }

    async fn sweep_ended_sessions(&self, ended_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        // Tokens first, so a batch is bounded in rows however many tokens a session has
        // (a session refreshed all month keeps thousands); sessions once their tokens are
        // (nearly) gone. Found through `sessions_expires_at_idx` and
        // `sessions_revoked_at_idx` (0021), then the tokens' session index. SKIP LOCKED:
        // replicas sweeping at once take different rows rather than wait on (or deadlock
        // over) the same.
        self.sweep(&[SWEEP_TOKENS, SWEEP_SESSIONS], ended_before, limit).await
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
        // One statement, its own transaction: no BEGIN, SET LOCAL or COMMIT, so the
        // presented token's row is locked for one round trip instead of four (ADR 27).
        // The function decides as the SQLite store does in Rust, in the same order.
        let template = event.template();
        let row = sqlx::query(&ROTATION_CALL)
            .bind(tenant_id.as_str())
            .bind(presented.as_str())
            .bind(now)
            .bind(now - grace)
            .bind(successor_sealed)
            .bind(successor.hash.as_str())
            .bind(successor.created_at)
            .bind(successor.expires_at)
            .bind(template.id.as_str())
            .bind(template.tenant_id.as_ref().map(TenantId::as_str))
            .bind(&template.action)
            .bind(&template.ip)
            .bind(&template.user_agent)
            .bind(&template.request_id)
            .bind(&template.data)
            .bind(template.created_at)
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        let outcome: String = row.try_get("outcome").map_err(map_err)?;
        if outcome == "invalid" {
            return Ok(RefreshOutcome::Invalid);
        }
        let session = decode(&row)?;
        let user = Box::new(crate::users::decode_prefixed(&row, "u_")?);
        match outcome.as_str() {
            "rotated" => Ok(RefreshOutcome::Rotated { session, user }),
            "reused" => Ok(RefreshOutcome::Reused(session)),
            "raced" => {
                let sealed: Vec<u8> = row.try_get("successor_sealed").map_err(map_err)?;
                Ok(RefreshOutcome::Raced { session, successor_sealed: sealed, user })
            }
            other => Err(StoreError::Backend(format!("unknown rotation outcome {other}"))),
        }
    }

    async fn revoke_session_by_refresh_token(
        &self,
        tenant_id: &TenantId,
        presented: &SecretHash,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let session_id: Option<String> =
            sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2")
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
        let mut tx = self.tenant_tx(tenant_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 ORDER BY id"
        ))
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $4, revoke_reason = $5
             WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(session_id.as_str())
        .bind(now)
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
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoke_reason = $4 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND ($5::text IS NULL OR id <> $5)",
        )
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(now)
        .bind(reason)
        .bind(except.map(SessionId::as_str))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

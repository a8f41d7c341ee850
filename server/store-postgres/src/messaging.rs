//! One-time secrets, the message outbox and template overrides on Postgres.

use crate::audit::insert_event;
use crate::sessions::{insert_refresh, insert_session};
use crate::users::{insert_user, update_user_row};
use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{MessageId, TenantId};
use gatehouse_core::messaging::{
    Channel, DeliveryOutcome, DeliveryStatus, MessageKind, OneTimeSecret, OutboxMessage, OutboxRecord, Purpose,
    Redemption, SignUp, SignUpStart, TemplateOverride, UserWrite,
};
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::store::{MessagingStore, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

const SECRET_COLUMNS: &str = "id, tenant_id, purpose, target, user_id, token_hash, code_hash, attempts, max_attempts, \
                              data, created_at, expires_at, consumed_at";
const OUTBOX_COLUMNS: &str = "id, tenant_id, channel, recipient, kind, sealed, status, attempts, next_attempt_at, \
                              last_error, created_at, sent_at";

/// The sweep of expired one-time secrets (`$1` expired before, `$2` batch size): found
/// through `one_time_secrets_expires_at_idx` (0022), a batch chosen once and taken
/// `SKIP LOCKED`, as the session sweep's (ADR 23).
const SWEEP_EXPIRED_SECRETS: &str = "WITH batch AS MATERIALIZED (
         SELECT id FROM one_time_secrets WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
     DELETE FROM one_time_secrets o USING batch WHERE o.id = batch.id";

/// The sweep of finished messages (`$1` queued before, `$2` batch size): found through
/// `outbox_finished_created_at_idx` (0023), a batch chosen once and taken `SKIP LOCKED`,
/// as the session sweep's (ADR 23). A message waiting for, or in, an attempt is never
/// taken.
pub(crate) const SWEEP_FINISHED_MESSAGES: &str = "WITH batch AS MATERIALIZED (
         SELECT id FROM outbox WHERE created_at < $1 AND status IN ('sent', 'failed')
         LIMIT $2 FOR UPDATE SKIP LOCKED)
     DELETE FROM outbox o USING batch WHERE o.id = batch.id";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt messaging row: {what}"))
}

fn decode_secret(row: &PgRow) -> Result<OneTimeSecret, StoreError> {
    let user_id: Option<String> = row.try_get("user_id").map_err(map_err)?;
    let token_hash: Option<String> = row.try_get("token_hash").map_err(map_err)?;
    Ok(OneTimeSecret {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row.try_get::<String, _>("tenant_id").map_err(map_err)?.parse().map_err(|_| corrupt("tenant"))?,
        purpose: Purpose::parse(&row.try_get::<String, _>("purpose").map_err(map_err)?)
            .ok_or_else(|| corrupt("purpose"))?,
        target: row.try_get("target").map_err(map_err)?,
        user_id: user_id.map(|u| u.parse()).transpose().map_err(|_| corrupt("user_id"))?,
        token_hash: token_hash.map(SecretHash::from_stored),
        code_hash: row.try_get("code_hash").map_err(map_err)?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts").map_err(map_err)?)
            .map_err(|_| corrupt("attempts"))?,
        max_attempts: u32::try_from(row.try_get::<i32, _>("max_attempts").map_err(map_err)?)
            .map_err(|_| corrupt("max_attempts"))?,
        data: row.try_get("data").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        expires_at: row.try_get("expires_at").map_err(map_err)?,
        consumed_at: row.try_get("consumed_at").map_err(map_err)?,
    })
}

fn decode_message(row: &PgRow) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        message: OutboxMessage {
            id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
            tenant_id: row
                .try_get::<String, _>("tenant_id")
                .map_err(map_err)?
                .parse()
                .map_err(|_| corrupt("tenant"))?,
            channel: Channel::parse(&row.try_get::<String, _>("channel").map_err(map_err)?)
                .ok_or_else(|| corrupt("channel"))?,
            recipient: row.try_get("recipient").map_err(map_err)?,
            kind: MessageKind::parse(&row.try_get::<String, _>("kind").map_err(map_err)?)
                .ok_or_else(|| corrupt("kind"))?,
            sealed: row.try_get("sealed").map_err(map_err)?,
            created_at: row.try_get("created_at").map_err(map_err)?,
        },
        status: DeliveryStatus::parse(&row.try_get::<String, _>("status").map_err(map_err)?)
            .ok_or_else(|| corrupt("status"))?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts").map_err(map_err)?)
            .map_err(|_| corrupt("attempts"))?,
        next_attempt_at: row.try_get("next_attempt_at").map_err(map_err)?,
        last_error: row.try_get("last_error").map_err(map_err)?,
        sent_at: row.try_get("sent_at").map_err(map_err)?,
    })
}

fn decode_template(row: &PgRow) -> Result<TemplateOverride, StoreError> {
    Ok(TemplateOverride {
        kind: MessageKind::parse(&row.try_get::<String, _>("kind").map_err(map_err)?).ok_or_else(|| corrupt("kind"))?,
        locale: row.try_get("locale").map_err(map_err)?,
        subject: row.try_get("subject").map_err(map_err)?,
        html: row.try_get("html").map_err(map_err)?,
        text: row.try_get("text").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) async fn insert_secret(tx: &mut Tx, tenant_id: &TenantId, secret: &OneTimeSecret) -> Result<(), StoreError> {
    if &secret.tenant_id != tenant_id {
        return Err(StoreError::NotFound);
    }
    // Only the newest secret of a purpose and target stays usable.
    sqlx::query(
        "UPDATE one_time_secrets SET consumed_at = $4
         WHERE tenant_id = $1 AND purpose = $2 AND target = $3 AND consumed_at IS NULL",
    )
    .bind(tenant_id.as_str())
    .bind(secret.purpose.as_str())
    .bind(&secret.target)
    .bind(secret.created_at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query(&format!(
        "INSERT INTO one_time_secrets ({SECRET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(secret.id.as_str())
    .bind(tenant_id.as_str())
    .bind(secret.purpose.as_str())
    .bind(&secret.target)
    .bind(secret.user_id.as_ref().map(|u| u.as_str()))
    .bind(secret.token_hash.as_ref().map(SecretHash::as_str))
    .bind(&secret.code_hash)
    .bind(count(secret.attempts))
    .bind(count(secret.max_attempts))
    .bind(&secret.data)
    .bind(secret.created_at)
    .bind(secret.expires_at)
    .bind(secret.consumed_at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn insert_messages(
    tx: &mut Tx,
    tenant_id: &TenantId,
    messages: &[OutboxMessage],
) -> Result<(), StoreError> {
    for m in messages {
        if &m.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO outbox (id, tenant_id, channel, recipient, kind, sealed, status, attempts, next_attempt_at,
                                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
        )
        .bind(m.id.as_str())
        .bind(tenant_id.as_str())
        .bind(m.channel.as_str())
        .bind(&m.recipient)
        .bind(m.kind.as_str())
        .bind(&m.sealed)
        .bind(m.created_at)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl MessagingStore for PgStore {
    async fn issue_one_time(
        &self,
        tenant_id: &TenantId,
        secret: &OneTimeSecret,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        insert_secret(&mut tx, tenant_id, secret).await?;
        insert_messages(&mut tx, tenant_id, messages).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn sign_up(&self, tenant_id: &TenantId, sign_up: &SignUp<'_>) -> Result<(), StoreError> {
        if !sign_up.starts_its_own_account(tenant_id) {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.tenant_tx(tenant_id).await?;
        insert_user(&mut tx, tenant_id, sign_up.user).await?;
        insert_secret(&mut tx, tenant_id, sign_up.verification).await?;
        insert_messages(&mut tx, tenant_id, sign_up.messages).await?;
        insert_event(&mut tx, sign_up.event).await?;
        match sign_up.then {
            SignUpStart::Nothing => {}
            SignUpStart::Challenge(challenge, event) => {
                insert_secret(&mut tx, tenant_id, challenge).await?;
                insert_event(&mut tx, event).await?;
            }
            SignUpStart::Session(session, refresh, event) => {
                insert_session(&mut tx, tenant_id, session).await?;
                insert_refresh(&mut tx, tenant_id, &session.id, refresh).await?;
                insert_event(&mut tx, event).await?;
            }
        }
        tx.commit().await.map_err(map_err)
    }

    async fn sweep_expired_one_time(&self, expired_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.sweep(&[SWEEP_EXPIRED_SECRETS], expired_before, limit).await
    }

    async fn find_one_time_by_token(
        &self,
        tenant_id: &TenantId,
        purpose: Purpose,
        token_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeSecret>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {SECRET_COLUMNS} FROM one_time_secrets
             WHERE tenant_id = $1 AND purpose = $2 AND token_hash = $3 AND consumed_at IS NULL AND expires_at > $4"
        ))
        .bind(tenant_id.as_str())
        .bind(purpose.as_str())
        .bind(token_hash.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(decode_secret).transpose()
    }

    async fn find_one_time_by_target(
        &self,
        tenant_id: &TenantId,
        purpose: Purpose,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeSecret>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {SECRET_COLUMNS} FROM one_time_secrets
             WHERE tenant_id = $1 AND purpose = $2 AND target = $3 AND consumed_at IS NULL AND expires_at > $4
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(tenant_id.as_str())
        .bind(purpose.as_str())
        .bind(target)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(decode_secret).transpose()
    }

    async fn attempt_one_time_code(
        &self,
        tenant_id: &TenantId,
        purpose: Purpose,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeSecret>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(&format!(
            "UPDATE one_time_secrets SET attempts = attempts + 1
             WHERE id = (SELECT id FROM one_time_secrets
                         WHERE tenant_id = $1 AND purpose = $2 AND target = $3 AND code_hash IS NOT NULL
                           AND consumed_at IS NULL AND expires_at > $4 AND attempts < max_attempts
                         ORDER BY id DESC LIMIT 1 FOR UPDATE)
               AND attempts < max_attempts
             RETURNING {SECRET_COLUMNS}"
        ))
        .bind(tenant_id.as_str())
        .bind(purpose.as_str())
        .bind(target)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(decode_secret).transpose()
    }

    async fn redeem_one_time(&self, tenant_id: &TenantId, r: &Redemption<'_>) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done = sqlx::query(
            "UPDATE one_time_secrets SET consumed_at = $3
             WHERE tenant_id = $1 AND id = $2 AND consumed_at IS NULL AND expires_at > $3",
        )
        .bind(tenant_id.as_str())
        .bind(r.secret_id.as_str())
        .bind(r.now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let user_id = match r.user {
            UserWrite::None => None,
            UserWrite::Insert(user) => {
                insert_user(&mut tx, tenant_id, user).await?;
                Some(&user.id)
            }
            UserWrite::Update(user) => {
                update_user_row(&mut tx, tenant_id, user).await?;
                Some(&user.id)
            }
        };
        if let (Some(reason), Some(user_id)) = (r.revoke_sessions, user_id) {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3, revoke_reason = $4
                 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .bind(r.now)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        if let Some((session, refresh)) = r.session {
            insert_session(&mut tx, tenant_id, session).await?;
            insert_refresh(&mut tx, tenant_id, &session.id, refresh).await?;
        }
        if let Some(secret) = r.issue {
            insert_secret(&mut tx, tenant_id, secret).await?;
        }
        insert_messages(&mut tx, tenant_id, r.messages).await?;
        insert_event(&mut tx, r.event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn enqueue_messages(
        &self,
        tenant_id: &TenantId,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        insert_messages(&mut tx, tenant_id, messages).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn claim_due_messages(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut tx = self.system_tx().await?;
        // SKIP LOCKED: replicas claiming at once each get different messages.
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $2
             WHERE id IN (SELECT id FROM outbox
                          WHERE (status = 'pending' AND next_attempt_at <= $1)
                             OR (status = 'sending' AND lease_until <= $1)
                          ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(decode_message).collect()
    }

    async fn finish_delivery(
        &self,
        tenant_id: &TenantId,
        message_id: &MessageId,
        outcome: &DeliveryOutcome,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let update = outcome.update();
        let done = sqlx::query(
            "UPDATE outbox SET status = $3, next_attempt_at = COALESCE($4, next_attempt_at),
                               last_error = COALESCE($5, last_error), sent_at = $6, lease_until = NULL,
                               sealed = CASE WHEN $7 THEN ''::bytea ELSE sealed END
             WHERE tenant_id = $1 AND id = $2 AND status = 'sending'",
        )
        .bind(tenant_id.as_str())
        .bind(message_id.as_str())
        .bind(update.status.as_str())
        .bind(update.next_attempt_at)
        .bind(update.error)
        .bind(update.sent_at)
        .bind(update.erase_content)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn sweep_finished_messages(&self, queued_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.sweep(&[SWEEP_FINISHED_MESSAGES], queued_before, limit).await
    }

    async fn list_messages(&self, tenant_id: &TenantId, page: &PageRequest) -> Result<Page<OutboxRecord>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE tenant_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(tenant_id.as_str())
        .bind(page.lower_bound())
        .bind(page.fetch_limit())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let records = rows.iter().map(decode_message).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(records, page, |r| r.message.id.as_str()))
    }

    async fn put_template(
        &self,
        tenant_id: &TenantId,
        t: &TemplateOverride,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done = sqlx::query(
            "INSERT INTO message_templates (tenant_id, kind, locale, subject, html, text, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL)
             ON CONFLICT (tenant_id, kind, locale)
             DO UPDATE SET subject = EXCLUDED.subject, html = EXCLUDED.html, text = EXCLUDED.text,
                           updated_at = EXCLUDED.updated_at",
        )
        .bind(tenant_id.as_str())
        .bind(t.kind.as_str())
        .bind(&t.locale)
        .bind(&t.subject)
        .bind(&t.html)
        .bind(&t.text)
        .bind(t.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_template(
        &self,
        tenant_id: &TenantId,
        kind: MessageKind,
        locale: &str,
    ) -> Result<Option<TemplateOverride>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(
            "SELECT kind, locale, subject, html, text, updated_at FROM message_templates
             WHERE tenant_id = $1 AND kind = $2 AND locale = $3",
        )
        .bind(tenant_id.as_str())
        .bind(kind.as_str())
        .bind(locale)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(decode_template).transpose()
    }

    async fn list_templates(&self, tenant_id: &TenantId) -> Result<Vec<TemplateOverride>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let rows = sqlx::query(
            "SELECT kind, locale, subject, html, text, updated_at FROM message_templates
             WHERE tenant_id = $1 ORDER BY kind, locale",
        )
        .bind(tenant_id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(decode_template).collect()
    }

    async fn delete_template(
        &self,
        tenant_id: &TenantId,
        kind: MessageKind,
        locale: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done = sqlx::query("DELETE FROM message_templates WHERE tenant_id = $1 AND kind = $2 AND locale = $3")
            .bind(tenant_id.as_str())
            .bind(kind.as_str())
            .bind(locale)
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

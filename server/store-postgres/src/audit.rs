//! The audit log on Postgres.

use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::{ActorType, AuditEvent, AuditQuery};
use gatehouse_core::ids::TenantId;
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::store::{AuditStore, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// Inserts an event inside the caller's transaction.
pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| insert_event_sql(1));
    bind_event(sqlx::query(&INSERT), event).execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
}

/// The insert of one event whose twelve columns ([`bind_event`]'s order) are the
/// parameters `$first` to `$first + 11` (a larger statement binds other values first).
pub(crate) fn insert_event_sql(first: usize) -> String {
    let values: Vec<String> = (first..first + 12).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip,
                                   user_agent, request_id, data, created_at)
         VALUES ({})",
        values.join(", ")
    )
}

/// Binds an event's twelve columns in the order of [`insert_event`]'s column list (also
/// used where an insert of an event is part of a larger statement).
pub(crate) fn bind_event<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    event: &'q AuditEvent,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(event.id.as_str())
        .bind(event.tenant_id.as_ref().map(TenantId::as_str))
        .bind(event.actor_type.as_str())
        .bind(&event.actor_id)
        .bind(&event.action)
        .bind(&event.target_type)
        .bind(&event.target_id)
        .bind(&event.ip)
        .bind(&event.user_agent)
        .bind(&event.request_id)
        .bind(&event.data)
        .bind(event.created_at)
}

fn decode(row: &PgRow) -> Result<AuditEvent, StoreError> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt audit row: {what}"));
    let tenant_id: Option<String> = row.try_get("tenant_id").map_err(map_err)?;
    let actor_type: String = row.try_get("actor_type").map_err(map_err)?;
    Ok(AuditEvent {
        id: row.try_get::<String, _>("id").map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: tenant_id.map(|t| t.parse()).transpose().map_err(|_| corrupt("tenant_id"))?,
        actor_type: ActorType::parse(&actor_type).ok_or_else(|| corrupt("actor_type"))?,
        actor_id: row.try_get("actor_id").map_err(map_err)?,
        action: row.try_get("action").map_err(map_err)?,
        target_type: row.try_get("target_type").map_err(map_err)?,
        target_id: row.try_get("target_id").map_err(map_err)?,
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        request_id: row.try_get("request_id").map_err(map_err)?,
        data: row.try_get("data").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    })
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.system_tx().await?;
        for event in events {
            insert_event(&mut tx, event).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_audit_events(&self, query: &AuditQuery, page: &PageRequest) -> Result<Page<AuditEvent>, StoreError> {
        let scope: Option<Vec<&str>> =
            query.tenant_scope.as_ref().map(|ids| ids.iter().map(TenantId::as_str).collect());
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE ($1::text IS NULL OR id > $1)
               AND ($2::text IS NULL OR tenant_id = $2)
               AND ($3::text[] IS NULL OR tenant_id = ANY($3))
               AND ($4::text IS NULL OR action = $4)
               AND ($5::text IS NULL OR actor_id = $5)
             ORDER BY id LIMIT $6",
        )
        .bind(page.after.as_deref())
        .bind(query.tenant_id.as_ref().map(TenantId::as_str))
        .bind(scope)
        .bind(query.action.as_deref())
        .bind(query.actor_id.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(self.system())
        .await
        .map_err(map_err)?;
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(events, page, |e| e.id.as_str()))
    }
}

//! The audit log on SQLite.

use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::{ActorType, AuditEvent, AuditQuery};
use gatehouse_core::ids::TenantId;
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::store::{AuditStore, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// The `INSERT` of one audit event, its twelve values numbered from `?{first}`: so it
/// can join a batch of statements that share numbered parameters (one trip to the
/// writer for the batch). [`bind_event`] binds the values in this order.
pub(crate) fn insert_event_sql(first: usize) -> String {
    let values: Vec<String> = (first..first + 12).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip,
                                   user_agent, request_id, data, created_at)
         VALUES ({})",
        values.join(", ")
    )
}

/// Binds an event's twelve values after the query's own, in [`insert_event_sql`]'s order.
pub(crate) fn bind_event<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    event: &'q AuditEvent,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
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
        .bind(event.data.to_string())
        .bind(crate::time_codec::enc(event.created_at))
}

/// The event insert on its own.
static INSERT_EVENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| insert_event_sql(1));

/// Inserts an event inside the caller's transaction.
pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    bind_event(sqlx::query(&INSERT_EVENT), event).execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
}

fn decode(row: &SqliteRow) -> Result<AuditEvent, StoreError> {
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
        data: serde_json::from_str(&row.try_get::<String, _>("data").map_err(map_err)?).map_err(|_| corrupt("data"))?,
        created_at: crate::time_codec::dec(row.try_get("created_at").map_err(map_err)?)?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for event in events {
            insert_event(&mut tx, event).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_audit_events(&self, query: &AuditQuery, page: &PageRequest) -> Result<Page<AuditEvent>, StoreError> {
        let scope = crate::tenants::id_list(query.tenant_scope.as_deref());
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE (?1 IS NULL OR id > ?1)
               AND (?2 IS NULL OR tenant_id = ?2)
               AND (?3 IS NULL OR tenant_id IN (SELECT value FROM json_each(?3)))
               AND (?4 IS NULL OR action = ?4)
               AND (?5 IS NULL OR actor_id = ?5)
             ORDER BY id LIMIT ?6",
        )
        .bind(page.after.as_deref())
        .bind(query.tenant_id.as_ref().map(TenantId::as_str))
        .bind(scope)
        .bind(query.action.as_deref())
        .bind(query.actor_id.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(events, page, |e| e.id.as_str()))
    }
}

//! The audit log on Postgres.

use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::{ActorType, AuditEvent, AuditQuery};
use gatehouse_core::ids::TenantId;
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::store::{AuditStore, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

/// Inserts an event inside the caller's transaction.
pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    const INSERT: &str = "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type,
                                                    target_id, ip, user_agent, request_id, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    bind_event(sqlx::query(INSERT), event).execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
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

/// The page of events `query` asks for, as a statement that names only the filters it
/// was given, each a condition an index answers in `id` order: `tenant_id` with
/// `audit_events_tenant_id_idx`, `action` (and `tenant_id`) with
/// `audit_events_action_tenant_idx`, `actor_id` with `audit_events_actor_id_idx`. (One
/// statement with `($n IS NULL OR column = $n)` for every filter could use none of them
/// under a generic plan, and walked the whole log in `id` order to fill a small tenant's
/// page.) A caller limited to some tenants reads at most one page from each, merged.
pub(crate) fn list_statement<'q>(query: &'q AuditQuery, page: &'q PageRequest) -> QueryBuilder<'q, Postgres> {
    let mut sql = QueryBuilder::new("");
    if let Some(scope) = &query.tenant_scope {
        let scope: Vec<&str> = scope.iter().map(TenantId::as_str).collect();
        sql.push("SELECT e.* FROM (SELECT DISTINCT t FROM unnest(");
        sql.push_bind(scope);
        sql.push("::text[]) t) AS scope (tenant_id) CROSS JOIN LATERAL (");
        sql.push("SELECT * FROM audit_events WHERE tenant_id = scope.tenant_id");
    } else {
        sql.push("SELECT * FROM audit_events WHERE TRUE");
    }
    if let Some(after) = &page.after {
        sql.push(" AND id > ").push_bind(after.as_str());
    }
    if let Some(tenant_id) = &query.tenant_id {
        sql.push(" AND tenant_id = ").push_bind(tenant_id.as_str());
    }
    if let Some(action) = &query.action {
        sql.push(" AND action = ").push_bind(action.as_str());
    }
    if let Some(actor_id) = &query.actor_id {
        sql.push(" AND actor_id = ").push_bind(actor_id.as_str());
    }
    sql.push(" ORDER BY id LIMIT ").push_bind(page.fetch_limit());
    if query.tenant_scope.is_some() {
        sql.push(") e ORDER BY e.id LIMIT ").push_bind(page.fetch_limit());
    }
    sql
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
        // Unnamed, so planned for these arguments every time: a plan cached for every
        // tenant would be the one for the average tenant, and walk the log in `id` order
        // for a small one. The list is an administrator's read, not a hot path.
        let mut statement = list_statement(query, page);
        let rows = statement.build().persistent(false).fetch_all(self.system()).await.map_err(map_err)?;
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(events, page, |e| e.id.as_str()))
    }
}

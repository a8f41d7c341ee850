//! The audit log on SQLite.

use crate::{SqliteStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::{ActorType, AuditEvent, AuditQuery};
use gatehouse_core::ids::TenantId;
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::store::{AuditStore, StoreError};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

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

/// The page of events `query` asks for (`scope` is its tenant scope as a JSON array), as
/// a statement that names only the filters it was given: `column = ?` is a condition
/// SQLite can answer from an index, `(? IS NULL OR column = ?)` is not, and made it walk
/// the whole log in `id` order to fill a small tenant's page. Each filter has an index
/// ordered by `id`: the tenant's, the action's, the action's by tenant, the actor's.
fn list_statement<'q>(query: &'q AuditQuery, scope: Option<String>, page: &'q PageRequest) -> QueryBuilder<'q, Sqlite> {
    let mut sql = QueryBuilder::new("SELECT * FROM audit_events WHERE 1");
    if let Some(after) = &page.after {
        sql.push(" AND id > ").push_bind(after.as_str());
    }
    if let Some(tenant_id) = &query.tenant_id {
        sql.push(" AND tenant_id = ").push_bind(tenant_id.as_str());
    }
    if let Some(scope) = scope {
        sql.push(" AND tenant_id IN (SELECT value FROM json_each(").push_bind(scope).push("))");
    }
    if let Some(action) = &query.action {
        sql.push(" AND action = ").push_bind(action.as_str());
    }
    if let Some(actor_id) = &query.actor_id {
        sql.push(" AND actor_id = ").push_bind(actor_id.as_str());
    }
    sql.push(" ORDER BY id LIMIT ").push_bind(page.fetch_limit());
    sql
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
        let mut statement = list_statement(query, scope, page);
        let rows = statement.build().fetch_all(self.reader()).await.map_err(map_err)?;
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(events, page, |e| e.id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every filter of the audit list is searched through an index ordered by `id`,
    /// whichever filters a caller combines: never a walk of the whole log, and no sort
    /// but for a caller limited to some tenants (their events are merged by a sort here;
    /// Postgres merges a page from each).
    #[tokio::test]
    async fn every_filter_of_the_list_is_searched_through_an_index() {
        let tenant = TenantId::generate();
        let page = PageRequest { after: Some("evt_x".into()), limit: 50 };
        let filters = [
            AuditQuery { tenant_id: Some(tenant.clone()), ..AuditQuery::default() },
            AuditQuery {
                tenant_id: Some(tenant.clone()),
                action: Some("login.failure".into()),
                ..AuditQuery::default()
            },
            AuditQuery { tenant_scope: Some(vec![tenant.clone()]), ..AuditQuery::default() },
            AuditQuery { action: Some("login.failure".into()), ..AuditQuery::default() },
            AuditQuery { actor_id: Some("usr_x".into()), ..AuditQuery::default() },
        ];
        for query in filters {
            let scope = crate::tenants::id_list(query.tenant_scope.as_deref());
            let plan = crate::query_plan(&mut list_statement(&query, scope, &page)).await;
            let reads: Vec<&String> = plan.iter().filter(|step| step.contains("audit_events")).collect();
            assert!(reads.iter().all(|step| step.starts_with("SEARCH audit_events USING")), "{query:?}: {plan:?}");
            // A tenant's page of one action is searched by both, not filtered from either.
            if query.tenant_id.is_some() && query.action.is_some() {
                assert!(reads.iter().any(|step| step.contains("(action=? AND tenant_id=?")), "{plan:?}");
            }
            let sorted = plan.iter().any(|step| step.contains("TEMP B-TREE"));
            assert_eq!(sorted, query.tenant_scope.is_some(), "{query:?}: {plan:?}");
        }
    }
}

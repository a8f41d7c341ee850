//! A throwaway Postgres schema per test, dropped when the guard drops (even on panic).

use crate::PgStore;
use sqlx::{ConnectOptions, Connection};

/// Where tests find Postgres; override with `GATEHOUSE_TEST_POSTGRES_URL`.
pub fn base_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The refresh rotation's one statement, a call of `gatehouse_rotate_refresh_token`
/// (`$1` tenant, `$2` presented hash, `$3` now, `$4` the earliest spend that counts as a
/// race, `$5` sealed successor, `$6`–`$8` successor hash, creation and expiry, `$9`–`$16`
/// the audit event's id, tenant, action, ip, user agent, request id, data and time), for
/// tests of what it reads and locks.
pub fn rotation_sql() -> &'static str {
    &crate::sessions::ROTATION_CALL
}

/// The audit list's statement for `query` and `page`, for tests of its plan. Its
/// parameters follow the filters given, in this order: tenant scope, cursor, tenant,
/// action, actor, page size (and the page size again when scoped).
pub fn audit_list_sql(query: &gatehouse_core::audit::AuditQuery, page: &gatehouse_core::page::PageRequest) -> String {
    crate::audit::list_statement(query, page).sql().to_owned()
}

/// The user list's statement, for tests of its plan. Its parameters: tenant, then
/// those of the filters given (cursor, email prefix, status, created from, created
/// before), then the page size.
pub fn user_list_sql(
    tenant_id: &gatehouse_core::ids::TenantId,
    filter: &gatehouse_core::user::UserFilter,
    page: &gatehouse_core::page::PageRequest,
) -> String {
    crate::users::list_statement(tenant_id, filter, page).sql().to_owned()
}

/// The sweep of ended sessions' two statements, tokens then sessions (`$1` ended
/// before, `$2` batch size), for tests of their plans.
pub fn session_sweep_sql() -> [&'static str; 2] {
    [crate::sessions::SWEEP_TOKENS, crate::sessions::SWEEP_SESSIONS]
}

/// The sweep of finished outbox messages (`$1` queued before, `$2` batch size), for
/// tests of its plan.
pub fn finished_message_sweep_sql() -> &'static str {
    crate::messaging::SWEEP_FINISHED_MESSAGES
}

/// A migrated, empty schema of its own.
#[derive(Debug)]
pub struct TestSchema {
    /// Schema name.
    pub schema: String,
    /// Connection URL whose `search_path` is the schema.
    pub url: String,
}

impl TestSchema {
    /// Creates and migrates a fresh schema.
    pub async fn create() -> Result<Self, Box<dyn std::error::Error>> {
        let schema =
            format!("gh_test_{}", gatehouse_core::ids::EventId::generate().as_str().trim_start_matches("evt_"));
        let base = base_url();
        let mut conn = base.parse::<sqlx::postgres::PgConnectOptions>()?.connect().await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await?;
        conn.close().await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        PgStore::migrate(&url).await?;
        Ok(Self { schema, url })
    }

    /// A store on the schema.
    pub async fn store(&self) -> Result<PgStore, Box<dyn std::error::Error>> {
        Ok(PgStore::connect(&self.url, 8).await?)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        let base = base_url();
        // A separate thread and runtime: Drop may run inside (or outside) a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let Ok(options) = base.parse::<sqlx::postgres::PgConnectOptions>() else {
                    return;
                };
                if let Ok(mut conn) = options.connect().await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

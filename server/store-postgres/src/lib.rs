//! Gatehouse storage on PostgreSQL (sqlx).
//!
//! The application connects as the database owner only to migrate; everything else
//! runs as the `gatehouse_app` role, to which row-level security applies. Every
//! tenant-owned operation runs in a transaction that names its tenant with
//! `set_config('gatehouse.tenant_id', …, true)`, so a query that forgot its tenant
//! filter still sees nothing of another tenant.
//!
//! This crate must not depend on HTTP or on the other backends.

mod audit;
mod credentials;
mod error;
mod messaging;
mod mfa;
mod operators;
mod orgs;
mod passkeys;
mod sessions;
mod signing_keys;
mod tenants;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod users;

use async_trait::async_trait;
use gatehouse_core::ids::TenantId;
use gatehouse_core::store::{PoolStats, Store, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgPool, Postgres, Transaction};
use std::str::FromStr;

pub use error::map_err;

/// Migrations embedded from `migrations/postgres/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The non-owner role the application acts as.
pub const APP_ROLE: &str = "gatehouse_app";

/// How long a pooled connection may sit idle and still be handed out without a ping.
/// sqlx already pings every connection as it goes back to the pool, so one that comes
/// back out within this window was alive a moment ago; only connections idle longer are
/// checked again (the window HikariCP calls `aliveBypassWindowMs`). See ADR 18.
pub const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// A Postgres-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    /// Sessions with no scope: they see no tenant-owned row outside a transaction that
    /// names its tenant.
    pool: PgPool,
    /// Sessions declared system scope at connect time, for cross-tenant work only
    /// (operator listings, credential lookups by hash): one round trip per query.
    system: PgPool,
}

impl PgStore {
    /// Applies pending migrations as the connecting (owner) user.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let mut conn = options.connect().await.map_err(map_err)?;
        MIGRATOR.run(&mut conn).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        conn.close().await.map_err(map_err)
    }

    /// Whether every embedded migration has been applied.
    pub async fn is_migrated(url: &str) -> Result<bool, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let mut conn = options.connect().await.map_err(map_err)?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
        conn.close().await.map_err(map_err)?;
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    /// Connects the pools; every connection acts as [`APP_ROLE`]. `max_connections` is
    /// for tenant work; system-scope work gets a pool of half that size (at least 2).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let pool = Self::pool_options(max_connections, "").connect_with(options.clone()).await.map_err(map_err)?;
        let system = Self::pool_options((max_connections / 2).max(2), "SET gatehouse.scope = 'system';")
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self { pool, system })
    }

    fn pool_options(max_connections: u32, extra: &'static str) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            // sqlx's default pings every idle connection before handing it out: a round
            // trip per pool use that, under load, checks a connection released
            // milliseconds ago. Ping only those idle longer than the window.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute(format!("SET ROLE {APP_ROLE}; {extra}").as_str()).await?;
                    Ok(())
                })
            })
    }

    /// The system-scope pool.
    pub(crate) fn system(&self) -> &PgPool {
        &self.system
    }

    /// The pool (for tests that probe row-level security directly).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction that sees only `tenant_id`'s rows of tenant-owned tables. `BEGIN`
    /// and the `SET LOCAL` travel in one round trip; the id is inlined, which is safe
    /// because a [`TenantId`] is only ever `tnt_` and 26 Crockford base32 characters
    /// (checked again here).
    pub async fn tenant_tx(&self, tenant_id: &TenantId) -> Result<Transaction<'static, Postgres>, StoreError> {
        let id = tenant_id.as_str();
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StoreError::NotFound);
        }
        self.pool.begin_with(format!("BEGIN; SET LOCAL gatehouse.tenant_id = '{id}'")).await.map_err(map_err)
    }

    /// Ends a transaction that only read, without waiting for the server: a dropped
    /// transaction queues its `ROLLBACK`, which travels with the check sqlx makes when
    /// the connection goes back to the pool (nobody else gets the connection before
    /// it). A read-only transaction has nothing to commit, so the caller is spared a
    /// round trip.
    pub(crate) fn end_read(tx: Transaction<'static, Postgres>) {
        drop(tx);
    }

    /// A transaction for cross-tenant work: operator listings, lookups by secret hash.
    pub async fn system_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.system.begin().await.map_err(map_err)
    }

    /// One batch of a retention sweep: `statements` (each with `$1` the cut-off and `$2`
    /// the rows it may still delete) in order, in one cross-tenant transaction, until
    /// `limit` rows went; how many did. Sent unnamed, so each is planned for the cut-off
    /// at hand: a generic plan cannot tell how few rows are that old, and reads them all.
    pub(crate) async fn sweep(
        &self,
        statements: &[&'static str],
        cutoff: time::OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut tx = self.system_tx().await?;
        let mut swept = 0;
        for statement in statements {
            let left = i64::from(limit) - i64::try_from(swept).unwrap_or(i64::MAX);
            if left <= 0 {
                break;
            }
            let done = sqlx::query(statement)
                .persistent(false)
                .bind(cutoff)
                .bind(left)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            swept += done.rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(swept)
    }

    /// The schema as `table.column [null]` and `unique name` lines, for the parity test.
    pub async fn describe_schema(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        for (table, column, nullable) in columns {
            let null = if nullable == "YES" { " null" } else { "" };
            out.insert(format!("{table}.{column}{null}"));
        }
        // Unique indexes, whether behind a constraint or standing alone (partial ones).
        let uniques: Vec<(String,)> = sqlx::query_as(
            "SELECT i.relname::text FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema() AND x.indisunique AND NOT x.indisprimary
               AND t.relname <> '_sqlx_migrations'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        for (name,) in uniques {
            out.insert(format!("unique {name}"));
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let idle = self.pool.num_idle() + self.system.num_idle();
        PoolStats { size: self.pool.size() + self.system.size(), idle: u32::try_from(idle).unwrap_or(u32::MAX) }
    }
}

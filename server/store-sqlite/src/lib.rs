//! Gatehouse storage on SQLite (sqlx), the embedded default.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one
//! connection and queue in the application instead of failing with `SQLITE_BUSY`;
//! reads use a separate pool and run concurrently under WAL. WAL checkpoints run on a
//! background task, not after the writer's commits ([`checkpoint`]). Tenant isolation is
//! by the tenant filter in every query (SQLite has no row-level security).
//!
//! This crate must not depend on HTTP or on the other backends.

mod audit;
pub mod checkpoint;
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
mod time_codec;
mod users;

use async_trait::async_trait;
use gatehouse_core::store::{PoolStats, Store, StoreError};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use error::map_err;

/// Migrations embedded from `migrations/sqlite/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// A SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Stops with the last clone of the store.
    _checkpointer: Arc<checkpoint::Checkpointer>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, applies migrations, and starts
    /// the background checkpoints ([`checkpoint::CHECKPOINT_EVERY`]). Needs a Tokio
    /// runtime.
    pub async fn open(url: &str, readers: u32) -> Result<Self, StoreError> {
        Self::open_checkpointing(url, readers, checkpoint::CHECKPOINT_EVERY).await
    }

    /// [`SqliteStore::open`] with the background task checkpointing every `every`.
    pub(crate) async fn open_checkpointing(url: &str, readers: u32, every: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // A connection to a file in this process cannot drop the way a socket can, so the
        // ping sqlx would send (a hop to the connection's worker thread and back) before
        // every pool use buys nothing.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_with(checkpoint::for_writer(options.clone()))
            .await
            .map_err(map_err)?;
        MIGRATOR.run(&write).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(map_err)?;
        let checkpointer = Arc::new(checkpoint::Checkpointer::start(&options, every).await?);
        Ok(Self { read, write, _checkpointer: checkpointer })
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// A write transaction that takes SQLite's write lock at `BEGIN`. Within a process
    /// the single writer connection already serialises writes; `IMMEDIATE` also makes a
    /// second process on the same file (another replica, the CLI) wait its turn under
    /// the busy timeout, instead of failing when a read inside the transaction would
    /// have to be upgraded to a write after someone else committed.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.write.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
    }

    /// One batch of a retention sweep: `statements` (each with `?1` the cut-off and `?2`
    /// the rows it may still delete) in order, in one write transaction, until `limit`
    /// rows went; how many did. The batch bounds the one writer's time.
    pub(crate) async fn sweep(
        &self,
        statements: &[&'static str],
        cutoff: time::OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut swept = 0;
        for statement in statements {
            let left = i64::from(limit) - i64::try_from(swept).unwrap_or(i64::MAX);
            if left <= 0 {
                break;
            }
            let done = sqlx::query(statement)
                .bind(time_codec::enc(cutoff))
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
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
        )
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        for (table,) in tables {
            let columns: Vec<(String, i64, i64)> =
                sqlx::query_as("SELECT name, \"notnull\", pk FROM pragma_table_info(?)")
                    .bind(&table)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)?;
            for (column, not_null, pk) in columns {
                let null = if not_null == 0 && pk == 0 { " null" } else { "" };
                out.insert(format!("{table}.{column}{null}"));
            }
            let indexes: Vec<(String, i64, String)> =
                sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list(?)")
                    .bind(&table)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)?;
            for (name, unique, origin) in indexes {
                if unique == 1 && origin == "c" {
                    out.insert(format!("unique {name}"));
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await.map_err(map_err)?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let size = self.read.size() + self.write.size();
        let idle = self.read.num_idle() + self.write.num_idle();
        PoolStats { size, idle: u32::try_from(idle).unwrap_or(u32::MAX) }
    }
}

/// `EXPLAIN QUERY PLAN` of a built statement on a fresh, migrated database: the detail
/// of each step, for tests of the store's plans.
#[cfg(test)]
pub(crate) async fn query_plan(statement: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>) -> Vec<String> {
    use sqlx::Execute;
    let sql = statement.sql().to_owned();
    query_plan_of(&sql, statement.build().take_arguments().unwrap().unwrap()).await
}

/// `EXPLAIN QUERY PLAN` of `sql` with `arguments` on a fresh, migrated database.
#[cfg(test)]
pub(crate) async fn query_plan_of(sql: &str, arguments: sqlx::sqlite::SqliteArguments<'_>) -> Vec<String> {
    use sqlx::Row;
    let path = std::env::temp_dir().join(format!("gatehouse-plan-{}.db", gatehouse_core::ids::EventId::generate()));
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()), 1).await.unwrap();
    let rows = sqlx::query_with(&format!("EXPLAIN QUERY PLAN {sql}"), arguments).fetch_all(store.reader()).await;
    store.read.close().await;
    store.write.close().await;
    remove_database(&path);
    // Each row is (id, parent, unused, detail).
    rows.unwrap().iter().map(|row| row.get::<String, _>(3)).collect()
}

/// Deletes a test's database file with its log and shared-memory files.
#[cfg(test)]
pub(crate) fn remove_database(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Arguments;

    /// Every list with a cursor searches its index from the cursor: `id > ?` (bound to
    /// `''` on the first page) bounds the walk, where `(? IS NULL OR id > ?)` could not,
    /// and page k re-read the k - 1 pages before it.
    #[tokio::test]
    async fn every_list_starts_its_walk_at_the_cursor() {
        let lists: [(&str, usize); 7] = [
            (&crate::credentials::SECRET_KEYS_PAGE, 3),
            (&crate::credentials::ADMIN_TOKENS_PAGE, 2),
            (&crate::messaging::OUTBOX_PAGE, 3),
            (&crate::operators::OPERATORS_PAGE, 2),
            (&crate::orgs::ORGS_PAGE, 5),
            (crate::orgs::MEMBERS_PAGE, 4),
            (&crate::tenants::TENANTS_PAGE, 3),
        ];
        for (sql, parameters) in lists {
            let mut arguments = sqlx::sqlite::SqliteArguments::default();
            for _ in 0..parameters {
                arguments.add(None::<String>).unwrap();
            }
            let plan = super::query_plan_of(sql, arguments).await;
            let bounded = plan.iter().any(|step| step.starts_with("SEARCH") && step.contains("id>?)"));
            assert!(bounded, "{sql}: {plan:?}");
        }
    }
}

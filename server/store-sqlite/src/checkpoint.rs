//! WAL checkpoints off the write path.
//!
//! Under WAL every commit appends its pages to the `-wal` file, and a checkpoint copies
//! them back into the database file and syncs it. By default the connection whose commit
//! takes the log past 1,000 pages runs that checkpoint itself, right after its commit.
//! This store writes through one connection, so every write queued behind such a commit
//! waited for the copy and the `fsync` (20–30 ms at sign-in load, about twice a second):
//! the sign-in tail on SQLite was those waits.
//!
//! Here a background task checkpoints on a connection of its own every
//! [`CHECKPOINT_EVERY`], in `PASSIVE` mode (it never waits for the writer or a reader),
//! and the writer's own automatic checkpoint is raised to [`WRITER_CHECKPOINT_PAGES`].
//! That threshold is a safety valve, not the usual path: a log restarts from its start
//! only when a checkpoint finished with no commit after it, which a steady stream of
//! writes can keep from happening; then the log grows until the writer reaches the
//! threshold and checkpoints the little the background left, and the log restarts.
//! See ADR 26.

use crate::error::map_err;
use gatehouse_core::store::StoreError;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use std::time::Duration;
use tokio::time::MissedTickBehavior;

/// How often the background task checkpoints.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// WAL pages after which the writer connection checkpoints by itself (SQLite's
/// `wal_autocheckpoint`; its default is 1,000). About 40 MiB of log at 4 KiB pages.
pub const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// The writer's connection options: its automatic checkpoint raised to the safety valve.
pub(crate) fn for_writer(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options.pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
}

/// The background checkpoint task; dropping it (with the last clone of the store)
/// stops the task and closes its connection.
#[derive(Debug)]
pub(crate) struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    /// Opens the task's connection with `options` (read-write: a checkpoint writes the
    /// database file; it never commits, so its own automatic checkpoint never fires) and
    /// checkpoints every `every`, the first time `every` from now.
    pub(crate) async fn start(options: &SqliteConnectOptions, every: Duration) -> Result<Self, StoreError> {
        let mut connection = options.connect().await.map_err(map_err)?;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // Logged when checkpoints start failing and when they work again, not on
            // every tick: a full disk would otherwise write a line five times a second.
            let mut failing = false;
            loop {
                ticks.tick().await;
                match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut connection).await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("SQLite checkpoints work again");
                    }
                    Ok(_) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "SQLite checkpoint failed; the writer's own checkpoint still bounds the log");
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(Self(task))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use std::path::{Path, PathBuf};

    const PAGE: u64 = 4096;

    /// A store on a fresh file that checkpoints every `every`, and the file's path.
    async fn store(every: Duration) -> (SqliteStore, PathBuf) {
        let path = std::env::temp_dir().join(format!("gatehouse-ckpt-{}.db", gatehouse_core::ids::EventId::generate()));
        let store = SqliteStore::open_checkpointing(&format!("sqlite://{}", path.display()), 1, every).await.unwrap();
        sqlx::query("CREATE TABLE filler (b BLOB NOT NULL)").execute(store.writer()).await.unwrap();
        (store, path)
    }

    /// Writes `pages` pages through the store's writer, a hundred per transaction (one
    /// 3,000-byte row fills a page).
    async fn fill(store: &SqliteStore, pages: u64) {
        for _ in 0..pages / 100 {
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
                 INSERT INTO filler SELECT randomblob(3000) FROM n",
            )
            .execute(store.writer())
            .await
            .unwrap();
        }
    }

    fn size(path: &Path, suffix: &str) -> u64 {
        std::fs::metadata(format!("{}{suffix}", path.display())).map_or(0, |m| m.len())
    }

    /// 2,000 pages (twice SQLite's default threshold) go to the log and stay there: the
    /// writer does not stop to copy them into the database file.
    #[tokio::test]
    async fn the_writer_does_not_checkpoint_at_sqlites_default_threshold() {
        let (store, path) = store(Duration::from_secs(3600)).await;
        let before = size(&path, "");
        fill(&store, 2_000).await;
        assert_eq!(size(&path, ""), before, "the database file grew: the writer checkpointed");
        assert!(size(&path, "-wal") > 2_000 * PAGE, "the log holds the writes");
        drop(store);
        crate::remove_database(&path);
    }

    /// The background task copies the log into the database file by itself.
    #[tokio::test]
    async fn the_background_task_checkpoints_the_log() {
        let (store, path) = store(Duration::from_millis(20)).await;
        let before = size(&path, "");
        fill(&store, 2_000).await;
        let mut grown = false;
        for _ in 0..250 {
            if size(&path, "") >= before + 1_900 * PAGE {
                grown = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(grown, "after 5 s the database file holds {} bytes", size(&path, ""));
        drop(store);
        crate::remove_database(&path);
    }

    /// Without the background task the writer's own checkpoint bounds the log: it
    /// restarts before it holds much more than the threshold (with no automatic
    /// checkpoint at all it would hold all 13,000 pages).
    #[tokio::test]
    async fn the_writer_checkpoints_past_the_safety_valve() {
        let (store, path) = store(Duration::from_secs(3600)).await;
        fill(&store, u64::from(WRITER_CHECKPOINT_PAGES) + 3_000).await;
        // A frame is a page and a 24-byte header; one transaction may overshoot.
        let bound = (u64::from(WRITER_CHECKPOINT_PAGES) + 200) * (PAGE + 24);
        assert!(size(&path, "-wal") <= bound, "log of {} bytes", size(&path, "-wal"));
        // The log's pages up to the threshold (less the pages written more than once).
        let copied = size(&path, "");
        assert!(
            copied > u64::from(WRITER_CHECKPOINT_PAGES) * PAGE * 9 / 10,
            "the writer never checkpointed: {copied} bytes"
        );
        drop(store);
        crate::remove_database(&path);
    }
}

//! The storage conformance suite on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

use gatehouse_core::store::Store;
use gatehouse_store_sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Deletes the database files when the test ends.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn make() -> (TempDb, Arc<dyn Store>) {
    let path = std::env::temp_dir().join(format!("gatehouse-test-{}.db", gatehouse_core::ids::EventId::generate()));
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()), 4).await.unwrap();
    (TempDb(path), Arc::new(store))
}

gatehouse_core::store_conformance_tests!(make);

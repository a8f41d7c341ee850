//! The Postgres and SQLite migrations define the same tables, columns, nullability and
//! unique constraints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests: a failed step is a failed test")]

#[tokio::test]
async fn postgres_and_sqlite_schemas_match() {
    let schema = gatehouse_store_postgres::testing::TestSchema::create().await.unwrap();
    let pg = schema.store().await.unwrap().describe_schema().await.unwrap();
    let path = std::env::temp_dir().join(format!("gatehouse-parity-{}.db", gatehouse_core::ids::EventId::generate()));
    let sqlite = gatehouse_store_sqlite::SqliteStore::open(&format!("sqlite://{}", path.display()), 1).await.unwrap();
    let lite = sqlite.describe_schema().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert!(pg.contains("tenants.slug") && pg.contains("unique tenants_slug_key"), "{pg:?}");
    let only_pg: Vec<_> = pg.difference(&lite).collect();
    let only_sqlite: Vec<_> = lite.difference(&pg).collect();
    assert!(
        only_pg.is_empty() && only_sqlite.is_empty(),
        "only in Postgres: {only_pg:?}; only in SQLite: {only_sqlite:?}"
    );
    assert_eq!(
        gatehouse_store_postgres::MIGRATOR.iter().map(|m| (m.version, m.description.clone())).collect::<Vec<_>>(),
        gatehouse_store_sqlite::MIGRATOR.iter().map(|m| (m.version, m.description.clone())).collect::<Vec<_>>(),
        "migration numbers and names must match"
    );
}
